"""Save and load a fitted router with its pool, encoder name and metadata; never a pickle.

A router directory holds

- ``router.json``: format version, the router spec (registry name or ``module:Class``),
  its hyperparameters, the JSON part of its learned state, a description of every array
  (dtype, shape), the pool, the encoder name, free metadata and the SHA-256 of the arrays;
- ``state.safetensors``: the arrays of the learned state (safetensors holds raw tensors
  only, it cannot run code when read).

Loading checks the checksum, that the arrays are exactly those the JSON lists,
(through :meth:`Router.load_state_dict`) that the keys are the router's learned state, and
(:func:`check_state_layout`) that every array its class's ``state_layout`` names has the shape
its hyperparameters, feature count and pool size imply.

The checksum covers ``state.safetensors`` only, not ``router.json``'s ``params``: an edited
hyperparameter is caught by the shape check instead, which says what contradicts what (and
leaves run-time settings such as ``device``, ``n_jobs`` or knn's ``tie_break`` editable).
"""

from __future__ import annotations

import json
import os
import re
import reprlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routereval.atomic import naming_target, temporary_dir
from routereval.data.store import sha256_file
from routereval.errors import InputError
from routereval.routers.base import Router, make_router
from routereval.validate import as_list, as_path, check_bool

FORMAT = "routereval-router"
VERSION = 1
_JSON_TYPES = (bool, int, float, str, type(None))


@dataclass
class SavedRouter:
    """A router loaded from disk, with what was saved alongside it."""

    router: Router
    spec: str
    pool: dict[str, Any]
    encoder: str | None
    metadata: dict[str, Any] = field(default_factory=dict)


def router_spec(router: Router) -> str:
    """The registry name of a built-in router, else ``module:Class``."""
    from routereval.routers.base import available_routers

    name = getattr(router, "name", "")
    if name and available_routers().get(name) is type(router):
        return name
    return f"{type(router).__module__}:{type(router).__qualname__}"


def _jsonable(v: Any) -> bool:
    if isinstance(v, _JSON_TYPES):
        return not (isinstance(v, float) and not np.isfinite(v))
    if isinstance(v, (list, tuple)):
        return all(_jsonable(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _jsonable(x) for k, x in v.items())
    return False


def _plain(v: Any) -> Any:
    """``v`` with numpy scalars and arrays made Python values (``seed=np.int64(3)`` is a JSON int, an array of
    model names a list), containers walked."""
    if isinstance(v, (np.generic, np.ndarray)):
        return _plain(v.tolist()) if isinstance(v, np.ndarray) else v.item()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _not_json(v: Any, where: str) -> str | None:
    """Where in ``v`` (named from ``where``) the first value that JSON cannot hold is, or None."""
    if isinstance(v, dict):
        for k, x in v.items():
            bad = f"{where} key {k!r}" if not isinstance(k, str) else _not_json(x, f"{where}[{k!r}]")
            if bad:
                return bad
        return None
    if isinstance(v, list):
        return next((b for i, x in enumerate(v) if (b := _not_json(x, f"{where}[{i}]"))), None)
    return None if _jsonable(v) else f"{where} = " + reprlib.repr(v).replace("\n", " ")


def _split_state(state: dict) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays, values = {}, {}
    for k, v in state.items():
        if isinstance(v, np.generic):
            v = v.item()
        if _jsonable(v):
            values[k] = v
            continue
        if hasattr(v, "detach"):  # a torch tensor
            v = v.detach().cpu().numpy()
        a = np.asarray(v)
        if a.dtype == object or a.dtype.kind in "USV":
            raise InputError(f"router state {k!r} holds {a.dtype} values; only numeric arrays and JSON values can be saved")
        arrays[k] = np.ascontiguousarray(a)
    return arrays, values



def _is_saved_router(path: Path) -> bool:
    """True when ``path`` holds exactly a router written by :func:`save_router` (safe to replace)."""
    if {p.name for p in path.iterdir()} != {"router.json", "state.safetensors"}:
        return False
    try:
        doc = json.loads((path / "router.json").read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and doc.get("format") == FORMAT and (path / "state.safetensors").is_file()


def check_save_target(path: str | os.PathLike) -> Path:
    """The resolved directory to write to; refuses to replace anything but an empty directory or a saved router."""
    path = as_path(path, "path").expanduser().resolve()  # resolved first: "." has no name to write beside
    if not path.name:
        raise InputError("cannot save a router to the file system root; name a directory", file=path)
    if path.exists() or path.is_symlink():
        if not path.is_dir() or path.is_symlink():
            raise InputError("exists and is not a directory; refusing to replace it (choose a new or empty directory)",
                             file=path)
        if any(path.iterdir()) and not _is_saved_router(path):
            raise InputError("is a non-empty directory that is not a saved router; refusing to replace it "
                             "(choose a new or empty directory)", file=path)
    return path


def save_router(router: Router, path: str | os.PathLike, *, pool: dict[str, Any] | None = None,
                encoder: str | None = None, metadata: dict[str, Any] | None = None, spec: str | None = None) -> Path:
    """Write a fitted ``router`` to the directory ``path`` (each file replaced atomically).

    ``path`` may be missing, an empty directory or a router saved earlier; anything else
    (a file, a directory with other content) is refused with :class:`InputError`.

    Parameters
    ----------
    pool
        JSON description of the pool (benchmark, group, m, protocol, model names, ...).
    encoder
        Name of the prompt encoder whose embeddings the router was fitted on.
    metadata
        Any further JSON (seed, corpus, metrics on val, ...).
    spec
        How to rebuild the router's class; defaults to its registry name or ``module:Class``.

    Returns
    -------
    Path
        The resolved directory written.
    """
    from safetensors.numpy import save_file

    if not isinstance(router, Router):
        raise InputError(f"router must be a fitted routereval Router; got {type(router).__name__}")
    router._check_fitted()
    path = check_save_target(path)
    doc = {"format": FORMAT, "version": VERSION, "spec": spec or router_spec(router),
           "params": _plain(router.get_params()), "pool": _plain(pool or {}), "encoder": encoder,
           "metadata": _plain(metadata or {})}
    _check_saved_fields(doc, router)  # everything load_router will check, checked before writing
    state = router.state_dict()
    layout = type(router).state_layout
    if isinstance(layout, dict):  # arrays its class's layout does not describe would be refused at load: say so now
        try:
            _check_layout(router, layout, state, meta_file=path / "router.json", arr_file=path / "state.safetensors")
        except InputError as e:
            raise InputError(f"cannot save router {type(router).__name__}: its learned arrays contradict the state_layout "
                             f"of {_layout_owner(type(router)).__name__}, so it could not be loaded back "
                             f"({e.reason.replace(_EDITED, '')}); a subclass that changes an array's shape declares "
                             "its own state_layout") from None
    arrays, values = _split_state(state)
    doc["state_values"] = values
    doc["state_arrays"] = {k: {"dtype": str(a.dtype), "shape": list(a.shape)} for k, a in arrays.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    # a hidden sibling made with the user's umask (mkdtemp's 0700 would make a shared router private)
    tmp = temporary_dir(path)
    try:
        try:
            save_file(arrays, str(tmp / "state.safetensors"))
        except Exception as e:  # safetensors' own error type, naming a temporary of its own
            if (errno := _os_errno(e)) is None:
                raise
            raise OSError(errno, os.strerror(errno), str(tmp / "state.safetensors")) from None
        os.chmod(tmp / "state.safetensors", tmp.stat().st_mode & 0o666)  # safetensors writes 0600; umask's instead
        doc["sha256"] = sha256_file(tmp / "state.safetensors")
        (tmp / "router.json").write_text(json.dumps(doc, indent=2, sort_keys=True))
        if path.exists():
            check_save_target(path)  # checked again just before the swap
            # replace the two files in place (the directory may be someone's working directory); each
            # rename is atomic, and a reader between them meets a checksum error, never a mixed router
            for name in ("state.safetensors", "router.json"):
                (tmp / name).replace(path / name)
            tmp.rmdir()
        else:
            tmp.rename(path)
    except OSError as e:  # a full disk, say: the error names the router, not its temporary
        shutil.rmtree(tmp, ignore_errors=True)
        err = naming_target(e, tmp, path)
        if err is e:
            raise
        raise err from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _os_errno(e: Exception) -> int | None:
    """The errno of an I/O error a library reports only in its message ("... (os error 28) ..."), else None."""
    m = re.search(r"\(os error (\d+)\)", str(e))
    return int(m[1]) if m else None


def _check_saved_fields(doc: dict, router: Router) -> None:
    """One-line :class:`InputError` for a pool, encoder, metadata or spec that :func:`load_router` would refuse."""
    for key in ("pool", "metadata"):
        if not isinstance(doc[key], dict):
            raise InputError(f"{key} must be a dict of JSON values; got {type(doc[key]).__name__}")
    if doc["encoder"] is not None and not isinstance(doc["encoder"], str):
        raise InputError(f"encoder must be the encoder's name (a str) or None; got {doc['encoder']!r}")
    for key in ("params", "pool", "metadata"):
        bad = _not_json(doc[key], key)
        if bad:
            raise InputError(f"{bad}: not a JSON value (str, int, finite float, bool, None, list, dict with str keys); "
                             "it cannot be saved")
    models, m = doc["pool"].get("models"), getattr(router, "n_models_", None)
    if models is not None and m is not None and (not isinstance(models, list) or len(models) != m):
        raise InputError(f"pool['models'] must list the router's {m} models in its score columns' order; "
                         f"got {models!r}")
    spec = doc["spec"]
    if not isinstance(spec, str):
        raise InputError(f"spec must be a registry name or 'module:Class'; got {spec!r}")
    if ":" not in spec:  # a registry name must rebuild this very class (a module:Class is imported only on load)
        from routereval.routers.base import get_router_class

        if get_router_class(spec) is not type(router):
            raise InputError(f"spec {spec!r} names another router class than {type(router).__name__}")


_DOC_TYPES: dict[str, tuple[type, ...]] = {
    "spec": (str,), "params": (dict,), "state_values": (dict,), "state_arrays": (dict,), "pool": (dict,),
    "encoder": (str, type(None)), "metadata": (dict,), "sha256": (str,),
}


def _check_doc(doc: dict, meta_file: Path) -> None:
    """Type-check every field of router.json (one-line :class:`InputError` naming the file)."""
    for key, types in _DOC_TYPES.items():
        if not isinstance(doc[key], types):
            want = " or ".join("null" if t is type(None) else {"str": "a string", "dict": "an object"}[t.__name__]
                               for t in types)
            raise InputError(f"{key!r} must be {want}, got {type(doc[key]).__name__}", file=meta_file)
    for key in ("params", "state_values", "pool", "metadata"):
        if not _jsonable(doc[key]):
            raise InputError(f"{key!r} must hold JSON values with string keys", file=meta_file)
    for k, entry in doc["state_arrays"].items():
        ok = (isinstance(entry, dict) and set(entry) == {"dtype", "shape"} and isinstance(entry["dtype"], str)
              and isinstance(entry["shape"], list)
              and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in entry["shape"]))
        if not ok:
            raise InputError(f"state_arrays[{k!r}] must be {{\"dtype\": str, \"shape\": [int >= 0, ...]}}, "
                             f"got {entry!r}", file=meta_file)


def _spec_class(spec: str, meta_file: Path, *, trust_code: bool, trust_modules: tuple[str, ...]) -> type[Router]:
    """The router class of a saved spec: registry names always, ``module:Class`` only when trusted."""
    from routereval.routers.base import get_router_class

    if ":" in spec:
        mod = spec.partition(":")[0]
        trusted = trust_code or any(mod == t or mod.startswith(t + ".") for t in trust_modules)
        if not trusted:  # importing the module would run its code: refused before any import
            raise InputError(
                f"router class {spec!r} is not a registered router; loading it would import module {mod!r} and run "
                f"its code: pass trust_modules=({mod!r},) (or trust_code=True) to load_router if you trust it",
                file=meta_file)
    try:
        return get_router_class(spec)
    except InputError as e:
        raise type(e)(e.reason, file=meta_file) from None


def load_router(path: str | os.PathLike, *, trust_code: bool = False,
                trust_modules: tuple[str, ...] | list[str] = ()) -> SavedRouter:
    """Read a router directory written by :func:`save_router`; refuses anything it did not write.

    Parameters
    ----------
    path
        The router directory.
    trust_code, trust_modules
        A saved spec naming a registry router (built-in or installed entry point) always
        loads. A ``module:Class`` spec imports that module, which runs its code, so it loads
        only when the module (or a package above it) is in ``trust_modules``, or with
        ``trust_code=True``; otherwise :class:`InputError`. One module name alone is taken as
        one name.

    Returns
    -------
    SavedRouter
        ``.router`` (fitted), ``.spec``, ``.pool`` (benchmark, models, split, costs...),
        ``.encoder`` (the embedding its inputs need) and ``.metadata``.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    trust_code = check_bool(trust_code, "trust_code")  # a truthy "no" must not run code
    trust_modules = tuple(as_list(trust_modules, "trust_modules") or ())
    if not all(isinstance(t, str) and t for t in trust_modules):
        raise InputError(f"trust_modules must be module names (str); got {trust_modules!r}")
    path = as_path(path, "path")
    meta_file, arr_file = path / "router.json", path / "state.safetensors"
    for f in (meta_file, arr_file):
        if not f.is_file():
            raise InputError("missing; not a saved router directory", file=f)
    try:
        doc = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"not valid JSON: {e}", file=meta_file) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"not a routereval router file (format {FORMAT!r} expected)", file=meta_file)
    if doc.get("version") != VERSION:
        raise InputError(f"router format version {doc.get('version')!r}, this routereval reads {VERSION}", file=meta_file)
    known = {"format", "version", "spec", "params", "state_values", "state_arrays", "pool", "encoder", "metadata", "sha256"}
    if set(doc) != known:
        raise InputError(f"unexpected keys {sorted(set(doc) ^ known)}; expected exactly {sorted(known)}", file=meta_file)
    _check_doc(doc, meta_file)
    if sha256_file(arr_file) != doc["sha256"]:
        raise InputError("checksum differs from router.json's sha256: the file was changed", file=arr_file)
    try:
        arrays = load_file(str(arr_file))
    except (SafetensorError, OSError, ValueError) as e:
        raise InputError(f"cannot read tensors: {e}", file=arr_file) from None
    listed = doc["state_arrays"]
    if set(arrays) != set(listed):
        raise InputError(f"arrays {sorted(arrays)} differ from those router.json lists {sorted(listed)}", file=arr_file)
    for k, a in arrays.items():
        if str(a.dtype) != listed[k]["dtype"] or list(a.shape) != listed[k]["shape"]:
            raise InputError(f"array {k!r} is {a.dtype}{list(a.shape)}, router.json says "
                             f"{listed[k]['dtype']}{listed[k]['shape']}", file=arr_file)
    overlap = set(arrays) & set(doc["state_values"])
    if overlap:
        raise InputError(f"state keys {sorted(overlap)} are both arrays and values", file=meta_file)
    _spec_class(doc["spec"], meta_file, trust_code=trust_code, trust_modules=tuple(trust_modules))
    try:
        router = make_router(doc["spec"], **doc["params"])
        router.validate_params()
        router.load_state_dict({**doc["state_values"], **arrays})
    except InputError as e:
        raise type(e)(e.reason, file=meta_file) from None
    check_state_layout(router, {**doc["state_values"], **arrays}, meta_file=meta_file, arr_file=arr_file)
    return SavedRouter(router=router, spec=doc["spec"], pool=doc["pool"], encoder=doc["encoder"],
                       metadata=doc["metadata"])


# --------------------------------------------------------------------------- state layout
# The arrays' axes come from each router class's ``state_layout`` (see Router): "m" and "d" are the sizes
# in state n_models_ and n_features_in_, a hyperparameter's name its value in params.
_SIZE_OF = {"m": ("n_models_", "arrays for {} models"), "d": ("n_features_in_", "arrays for {}-dimensional embeddings")}
_PHRASE = {"k": "arrays for {} clusters"}  # a hyperparameter's size in words; default "{}-wide arrays"
_EDITED = "; the file was edited or belongs to another state"


def _shape(a: np.ndarray) -> str:
    return "(" + ", ".join(str(n) for n in a.shape) + ("," if a.ndim == 1 else "") + ")"


def check_state_layout(router: Router, state: dict[str, Any], *, meta_file: Path, arr_file: Path) -> None:
    """One-line :class:`InputError` when a router's loaded arrays contradict its hyperparameters.

    Every array its class's ``state_layout`` names must have the shape the router's
    hyperparameters (``params`` of router.json), its feature count and its pool size
    (``n_features_in_``, ``n_models_``) imply, and arrays must agree on the sizes they share:
    ``params.dim = 8`` with 16-wide IRT abilities is refused, naming router.json, the parameter,
    its value and the arrays' size. A plugin router is checked when its class declares a
    ``state_layout`` (a subclass inherits its parent's); one without (None) is not.
    """
    layout = type(router).state_layout
    if layout is None:
        return
    owner = _layout_owner(type(router))
    if not isinstance(layout, dict):
        raise InputError(f"router {router._label()}: {owner.__name__}.state_layout must be a dict of array name -> "
                         f"axes or None, got {type(layout).__name__}", file=meta_file)
    try:
        _check_layout(router, layout, state, meta_file=meta_file, arr_file=arr_file)
    except InputError as e:
        if owner is type(router):
            raise
        raise InputError(f"{e.reason} (the layout is {owner.__name__}'s, which {type(router).__name__} inherits: a "
                         "subclass that changes an array's shape declares its own state_layout)", file=e.file) from None


def _layout_owner(cls: type) -> type:
    """The class in ``cls``'s MRO whose body declares the ``state_layout`` it has."""
    return next((c for c in cls.__mro__ if "state_layout" in vars(c)), cls)


def _check_layout(router: Router, layout: dict, state: dict[str, Any], *, meta_file: Path, arr_file: Path) -> None:
    params = router.get_params()
    label = router._label()
    seen: dict[str, list[tuple[str, np.ndarray, int]]] = {}  # symbol -> (key, array, size)
    for key, dims in layout.items():
        if key not in state:  # optional or missing keys: load_state_dict has ruled on them
            continue
        a = state[key]
        if not isinstance(a, np.ndarray):
            raise InputError(f"router {label}: state {key!r} must be an array in state.safetensors, "
                             f"got {type(a).__name__} in state_values", file=meta_file)
        if a.ndim != len(dims):
            raise InputError(f"router {label}: array {key!r} has shape {_shape(a)}, expected "
                             f"{len(dims)} axes ({', '.join(map(str, dims))})", file=arr_file)
        for size, sym in zip(a.shape, dims):
            if isinstance(sym, int):
                if size != sym:
                    raise InputError(f"router {label}: array {key!r} has shape {_shape(a)}, expected "
                                     f"({', '.join(map(str, dims))})", file=arr_file)
            else:
                seen.setdefault(sym, []).append((key, a, int(size)))
    sizes: dict[str, int] = {}
    for sym, found in seen.items():
        distinct = dict.fromkeys(size for *_, size in found)
        if len(distinct) > 1:
            parts = ", ".join(dict.fromkeys(f"{key} {_shape(a)}" for key, a, _ in found))
            raise InputError(f"router {label}: arrays disagree on their {sym} size ({parts})", file=arr_file)
        size = sizes[sym] = next(iter(distinct))
        if sym in _SIZE_OF:
            name, phrase = _SIZE_OF[sym]
            where, declared = f"state_values.{name}", state.get(name)
        elif sym in params:
            where, declared, phrase = f"params.{sym}", params[sym], _PHRASE.get(sym, "{}-wide arrays")
        else:
            continue
        if isinstance(declared, bool) or not isinstance(declared, int) or declared != size:
            arrays = ", ".join(dict.fromkeys(f"{key} {_shape(a)}" for key, a, _ in found))
            raise InputError(f"{where} = {declared!r} but state.safetensors holds {phrase.format(size)} ({arrays})"
                             f"{_EDITED}", file=meta_file)
    _check_state_values(router, state, params, sizes, meta_file=meta_file)


def _check_state_values(router: Router, state: dict[str, Any], params: dict[str, Any], sizes: dict[str, int], *,
                        meta_file: Path) -> None:
    """The JSON part of a built-in router's state that follows from its hyperparameters and arrays."""
    from routereval.routers.knn import KNNRouter
    from routereval.routers.mlc import MLC

    tail = _EDITED
    if isinstance(router, KNNRouter) and "n_train" in sizes:
        want, got = min(params["k"], sizes["n_train"]), state.get("k_")
        if isinstance(got, bool) or not isinstance(got, int) or got != want:
            raise InputError(f"params.k = {params['k']!r} but state_values.k_ = {got!r} (k capped at the "
                             f"{sizes['n_train']} training prompts of state.safetensors would be {want}){tail}",
                             file=meta_file)
    if isinstance(router, MLC) and "n_weights" in sizes:
        names, shapes = state.get("weight_names_"), state.get("weight_shapes_")
        ok = (isinstance(names, list) and isinstance(shapes, list) and len(names) == len(shapes)
              and all(isinstance(s, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in s)
                      for s in shapes))
        if not ok:
            raise InputError("state_values.weight_names_ and weight_shapes_ must be lists of equal length (a name and "
                             f"a shape [int >= 0, ...] per weight tensor){tail}", file=meta_file)
        total = sum(int(np.prod(s)) for s in shapes)
        if total != sizes["n_weights"]:
            raise InputError(f"state_values.weight_shapes_ add up to {total} weights but state.safetensors' weights_ "
                             f"holds {sizes['n_weights']}{tail}", file=meta_file)
