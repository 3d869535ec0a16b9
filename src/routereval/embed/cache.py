"""The on-disk embedding cache: ``CORPUS/embeddings-cache/<encoder key>/<sha256 of the texts>.npy``."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from routereval.atomic import replacing
from routereval.data.store import EMBEDDINGS_CACHE as CACHE_DIR  # the corpus layout is the store's


def texts_hash(texts: Sequence[str], extra: Sequence[str] | None = None) -> str:
    h = hashlib.sha256()
    for group in (texts, extra or ()):
        h.update(len(group).to_bytes(8, "little"))
        for t in group:
            b = t.encode("utf-8", "surrogatepass")
            h.update(len(b).to_bytes(8, "little"))  # length-prefixed: no ambiguity between splits
            h.update(b)
    return h.hexdigest()


def save_atomic(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr)


def load_cached(path: Path, n: int, width: int | None) -> np.ndarray | None:
    """The cached (n, width) float embeddings at ``path``, or None when missing or not valid.

    A truncated or foreign file, a wrong shape, a non-float dtype or a NaN/inf value means the
    cache cannot be trusted: the caller recomputes and overwrites it.
    """
    if not path.is_file():
        return None
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    ok = (isinstance(arr, np.ndarray) and arr.ndim == 2 and arr.dtype.kind == "f" and arr.shape[0] == n
          and (width is None or arr.shape[1] == width) and bool(np.isfinite(arr).all()))
    return arr if ok else None
