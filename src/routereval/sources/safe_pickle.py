"""A restricted unpickler for the official RouterEval files.

A pickle is a program: loading one with :func:`pickle.load` runs whatever callable
it names (``os.system``, ``builtins.exec``, ...). The official RouterEval files only
hold dicts, lists and tuples of strings, numbers and numpy arrays, so
:func:`safe_load` admits exactly the globals those need and refuses every other one
*before* it is imported or called, with an :class:`~routereval.errors.UnsafePickleError`
naming the file and the refused global.

Admitted globals (``module.name`` as written in the pickle):

- Python built-ins: ``dict``, ``list``, ``tuple``, ``set``, ``frozenset``, ``str``, ``bytes``,
  ``bytearray``, ``int``, ``float``, ``complex``, ``bool`` (``__builtin__`` in protocol 0-2
  pickles), ``collections.OrderedDict``, and ``_codecs.encode`` (protocol 0-2 pickles
  store ``bytes`` as ``_codecs.encode(text, "latin1")``).
- numpy arrays, dtypes and scalars as numpy 1.x (``numpy.core``) and 2.x (``numpy._core``)
  pickle them: ``numpy.ndarray``, ``numpy.dtype``, ``multiarray._reconstruct``,
  ``multiarray.scalar`` and ``numeric._frombuffer`` (protocol 5).

pandas is not admitted: the reference code (MilkThink-Lab/RouterEval) reads every file
with plain dict/array indexing, and the files hold no DataFrames.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import IO, Any, Callable

from routereval.errors import InputError, UnsafePickleError

_BUILTINS = ("dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray",
             "int", "float", "complex", "bool")


def _numpy_table() -> dict[str, Callable[[], Any]]:
    """Admitted numpy globals -> resolver (resolved lazily: numpy is imported only when needed)."""

    def core(mod: str, name: str) -> Callable[[], Any]:
        # numpy 2 keeps numpy.core only as a deprecated alias: always resolve to numpy._core
        def resolve() -> Any:
            import importlib

            return getattr(importlib.import_module(f"numpy._core.{mod}"), name)

        return resolve

    def top(name: str) -> Callable[[], Any]:
        def resolve() -> Any:
            import numpy

            return getattr(numpy, name)

        return resolve

    table: dict[str, Callable[[], Any]] = {"numpy.ndarray": top("ndarray"), "numpy.dtype": top("dtype")}
    for pkg in ("numpy.core", "numpy._core"):
        for mod, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                          ("_multiarray_umath", "_reconstruct"), ("_multiarray_umath", "scalar"),
                          ("numeric", "_frombuffer")):
            table[f"{pkg}.{mod}.{name}"] = core(mod, name)
    return table


def _builtin_table() -> dict[str, Callable[[], Any]]:
    import builtins
    import codecs
    import collections

    table: dict[str, Callable[[], Any]] = {}
    for name in _BUILTINS:
        obj = getattr(builtins, name)
        table[f"builtins.{name}"] = table[f"__builtin__.{name}"] = (lambda o=obj: o)
    table["collections.OrderedDict"] = lambda: collections.OrderedDict
    table["_codecs.encode"] = lambda: codecs.encode
    return table


ADMITTED: dict[str, Callable[[], Any]] = {**_builtin_table(), **_numpy_table()}
ADMITTED_SUMMARY = ("builtins " + "/".join(_BUILTINS) + ", collections.OrderedDict, _codecs.encode, "
                    "numpy ndarray/dtype/_reconstruct/scalar/_frombuffer")


class RestrictedUnpickler(pickle.Unpickler):
    """An :class:`pickle.Unpickler` that resolves only the globals in :data:`ADMITTED`.

    Parameters
    ----------
    file
        A binary file object positioned at the start of the pickle.
    name
        The file's name, for error messages.
    """

    def __init__(self, file: IO[bytes], *, name: str) -> None:
        # fix_imports=False: names are matched exactly as written; the table lists the
        # Python 2 spellings (__builtin__) that protocol 0-2 pickles use.
        super().__init__(file, fix_imports=False, encoding="latin1")
        self._name = name

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102 - see class docstring
        key = f"{module}.{name}"
        resolve = ADMITTED.get(key)
        if resolve is None:
            raise UnsafePickleError(f"refused global {key!r}: this file is not one of the admitted data pickles "
                                    f"(admitted: {ADMITTED_SUMMARY})", file=self._name)
        return resolve()

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102
        raise UnsafePickleError("refused persistent id: data pickles carry no persistent references", file=self._name)


def safe_load(source: str | os.PathLike | IO[bytes]) -> Any:
    """Load a pickle of plain data (dicts, lists, strings, numbers, numpy arrays) safely.

    Parameters
    ----------
    source
        A path or a binary file object.

    Returns
    -------
    The unpickled object.

    Raises
    ------
    UnsafePickleError
        The pickle names a global outside :data:`ADMITTED` (nothing it names is imported or called).
    InputError
        The file is missing or is not a valid pickle.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InputError("no such file; expected a pickle file", file=path)
        with open(path, "rb") as f:
            return _load(io.BufferedReader(f, buffer_size=1 << 20), str(path))
    return _load(source, getattr(source, "name", "<pickle stream>"))


def _load(f: IO[bytes], name: str) -> Any:
    try:
        return RestrictedUnpickler(f, name=name).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError, OverflowError, UnicodeDecodeError) as e:
        raise InputError(f"not a valid data pickle ({type(e).__name__}: {e})", file=name) from None
