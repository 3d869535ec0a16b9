"""Save and load a fitted router with its pool, encoder name and metadata; never a pickle.

A router directory holds

- ``router.json``: format version, the router spec (registry name or ``module:Class``),
  its hyperparameters, the JSON part of its learned state, a description of every array
  (dtype, shape), the pool, the encoder name, free metadata and the SHA-256 of the arrays;
- ``state.safetensors``: the arrays of the learned state (safetensors holds raw tensors
  only, it cannot run code when read).

Loading checks the checksum, that the arrays are exactly those the JSON lists, and
(through :meth:`Router.load_state_dict`) that the keys are the router's learned state.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routereval.data.store import sha256_file
from routereval.errors import InputError
from routereval.routers.base import Router, make_router

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



def save_router(router: Router, path: str | os.PathLike, *, pool: dict[str, Any] | None = None,
                encoder: str | None = None, metadata: dict[str, Any] | None = None, spec: str | None = None) -> Path:
    """Write a fitted ``router`` to the directory ``path`` (replaced atomically).

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
    """
    from safetensors.numpy import save_file

    router._check_fitted() if hasattr(router, "_check_fitted") else None
    path = Path(path)
    params = router.get_params()
    if not _jsonable(params):
        raise InputError(f"router hyperparameters {params!r} are not all JSON values; they cannot be saved")
    arrays, values = _split_state(router.state_dict())
    doc = {
        "format": FORMAT, "version": VERSION, "spec": spec or router_spec(router), "params": params,
        "state_values": values,
        "state_arrays": {k: {"dtype": str(a.dtype), "shape": list(a.shape)} for k, a in arrays.items()},
        "pool": pool or {}, "encoder": encoder, "metadata": metadata or {},
    }
    if not _jsonable(doc["pool"]) or not _jsonable(doc["metadata"]):
        raise InputError("pool and metadata must be JSON values (str, int, float, bool, None, lists, dicts)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save_file(arrays, str(tmp / "state.safetensors"))
        doc["sha256"] = sha256_file(tmp / "state.safetensors")
        (tmp / "router.json").write_text(json.dumps(doc, indent=2, sort_keys=True))
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_router(path: str | os.PathLike) -> SavedRouter:
    """Read a router directory written by :func:`save_router`; refuses anything it did not write."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
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
    from routereval.routers.base import get_router_class

    cls = get_router_class(str(doc["spec"]))
    if not issubclass(cls, Router):
        raise InputError(f"router class {doc['spec']!r} does not derive from routereval's Router", file=meta_file)
    router = make_router(doc["spec"], **doc["params"])
    router.load_state_dict({**doc["state_values"], **arrays})
    return SavedRouter(router=router, spec=doc["spec"], pool=doc["pool"], encoder=doc["encoder"],
                       metadata=doc["metadata"])
