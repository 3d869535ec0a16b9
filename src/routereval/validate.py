"""Argument helpers shared by the Python entry points."""

from __future__ import annotations

from numbers import Number
from typing import Any

from routereval.errors import InputError


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
