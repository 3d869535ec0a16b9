"""Argument helpers shared by the Python entry points."""

from __future__ import annotations

import math
import os
from numbers import Integral, Number, Real
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from routereval.errors import InputError, ParameterError

if TYPE_CHECKING:  # numpy is imported where an array is made, not with routereval
    import numpy as np


def is_real(value: Any) -> bool:
    """True for a finite real number, numpy's included (a bool is not a number here: ``True`` is no
    cost or timeout)."""
    import numpy as np

    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is True or False (numpy's too); a truthy string such as ``"no"`` must not switch
    an option on, so anything else is a :class:`ParameterError` naming ``name``."""
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ParameterError(f"{name} must be True or False; got {value!r}")


def check_int(value: Any, name: str, *, low: int | None = None, high: int | None = None,
              high_text: str | None = None) -> int:
    """``value`` as a Python int (numpy integers too; not a bool or a float) in ``[low, high]``
    (either bound optional); ``high_text`` spells the upper bound in the message (``"2**32 - 1"``)."""
    if (isinstance(value, bool) or not isinstance(value, Integral) or (low is not None and value < low)
            or (high is not None and value > high)):
        top = high_text or str(high)
        expected = ("an int" if low is None and high is None else f"an int >= {low}" if high is None
                    else f"an int <= {top}" if low is None else f"an int in [{low}, {top}]")
        raise ParameterError(f"{name} must be {expected}; got {value!r}")
    return int(value)


def as_path(value: Any, name: str) -> Path:
    """``value`` (a str or os.PathLike) as a Path, else an :class:`InputError` naming ``name``."""
    if isinstance(value, (str, os.PathLike)) and str(value) != "":
        return Path(value)
    raise InputError(f"{name} must be a path (a str or pathlib.Path); got {value!r}")


def float_array(value: Any, name: str, *, shape: tuple[int | None, ...] | None = None, ndim: int | None = None,
                finite: bool = True, expected: str = "") -> "np.ndarray":
    """``value`` as a float64 array, else a one-line :class:`InputError` naming ``name``.

    ``shape`` (None where any length goes) or ``ndim`` is checked when given, and with
    ``finite`` every value must be finite; ``expected`` describes the array in the messages.
    """
    import numpy as np

    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a numeric array{' ' + expected if expected else ''}; "
                         f"got {type(value).__name__}") from None
    want = ndim if shape is None else len(shape)
    if want is not None and (arr.ndim != want or any(s is not None and s != a
                                                      for s, a in zip(shape or (), arr.shape))):
        if shape is None:
            raise InputError(f"{name} must be a {want}-D array; got shape {arr.shape}")
        dims = ", ".join("any" if s is None else str(s) for s in shape) + ("," if want == 1 else "")
        raise InputError(f"{name} must have shape ({dims}); got {arr.shape}")
    if finite and not np.isfinite(arr).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise InputError(f"{name} must be finite; it holds {arr[where]} at position "
                         f"{where[0] if len(where) == 1 else where}")
    return arr


def option(keyword: str, flag: str | None = None) -> str:
    """A parameter named for both audiences, ``"max_batch (--max-batch)"``: the Python keyword and
    the CLI flag (default: the keyword with dashes)."""
    return f"{keyword} ({flag or '--' + keyword.replace('_', '-')})"


def as_list(value: Any, what: str) -> list | None:
    """``value`` as a list: one value (a str is one name, never its characters; a number one number) or an
    iterable of them; None stays None."""
    if value is None:
        return None
    if isinstance(value, (str, bytes, Number)):
        return [value]
    try:
        return list(value)
    except TypeError:
        raise InputError(f"{what}: expected one value or a list of them; got {type(value).__name__}") from None


def check_choices(values: Any, what: str, allowed: Sequence | None = None) -> list:
    """``values`` (one or several; a str is one value) as a list without repeats, each among ``allowed``.

    One line on a bad value: ``what`` names the parameter, and the message lists what is allowed.
    """
    vals = list(dict.fromkeys(as_list(values, what) or ()))
    if not vals:
        raise ParameterError(f"{what} must not be empty")
    if allowed is not None:
        bad = [v for v in vals if v not in allowed]
        if bad:
            raise ParameterError(f"{what}: unknown value {bad[0]!r}; expected some of {', '.join(map(str, allowed))}")
    return vals
