"""Argument helpers shared by the Python entry points."""

from __future__ import annotations

import math
from numbers import Integral, Number
from typing import Any

from routereval.errors import InputError


def is_real(value: Any) -> bool:
    """True for a finite integer or float, numpy's included (a bool is not a number here: ``True`` is no
    cost or timeout)."""
    return isinstance(value, (Integral, float)) and not isinstance(value, bool) and math.isfinite(value)


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
