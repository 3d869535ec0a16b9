"""One exception hierarchy for the whole package.

Every error a user can cause derives from :class:`RouterEvalError`; the CLI turns
each of them into one line on stderr and exit status 2.
"""

from __future__ import annotations

from pathlib import Path


class RouterEvalError(Exception):
    """Base class of every routereval error a user can cause."""


class InputError(RouterEvalError, ValueError):
    """Bad input: a file, a row, a column or a parameter that is not what was expected.

    Parameters
    ----------
    message
        What was wrong and what would be right.
    file, row, column
        Where the problem is, when known; they prefix the message.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file = None if file is None else str(file)
        self.row = row
        self.column = column
        self.reason = message
        where = []
        if self.file is not None:
            where.append(self.file)
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(": ".join([*where, message]))


class ParameterError(InputError):
    """A hyperparameter or option outside its allowed values."""


class CorpusError(RouterEvalError):
    """A corpus directory that is missing, damaged or of another schema version."""


class UnsafePickleError(InputError):
    """A pickle that asks for something the restricted unpickler does not admit."""


class NotFittedError(RouterEvalError, AttributeError):
    """A router was used before ``fit``."""
