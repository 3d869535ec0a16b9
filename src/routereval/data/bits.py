"""Bit-packed binary score matrices: packing, unpacking and popcounts.

A binary score matrix of shape (n_models, n_prompts) is packed along the prompt
axis, big-endian bit order (``np.packbits`` default), into uint8 of shape
(n_models, ceil(n_prompts / 8)). Padding bits are always zero.
"""

from __future__ import annotations

import numpy as np

# popcount of every byte value; np.bitwise_count exists from numpy 2.0 and is faster,
# the table is the fallback and the reference in tests.
_POPCOUNT_TABLE = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def pack(binary: np.ndarray) -> np.ndarray:
    """Pack a (n_rows, n_cols) 0/1 (or bool) matrix into (n_rows, ceil(n_cols/8)) uint8."""
    return np.packbits(np.asarray(binary, dtype=bool), axis=-1)


def unpack(packed: np.ndarray, n_cols: int, *, dtype=np.float32) -> np.ndarray:
    """Inverse of :func:`pack`: (n_rows, n_bytes) uint8 -> (n_rows, n_cols) of ``dtype``."""
    return np.unpackbits(np.asarray(packed), axis=-1, count=n_cols).astype(dtype, copy=False)


def take_columns(packed: np.ndarray, columns: np.ndarray, *, dtype=np.float32) -> np.ndarray:
    """Columns ``columns`` (k,) of the packed (n_rows, n_bytes) matrix, as (n_rows, k) of ``dtype``, without unpacking
    the rest."""
    c = np.asarray(columns, dtype=np.int64)
    return ((np.asarray(packed)[:, c // 8] >> (7 - c % 8).astype(np.uint8)) & 1).astype(dtype, copy=False)


def popcount(packed: np.ndarray, axis: int | None = -1) -> np.ndarray:
    """Number of set bits along ``axis`` (all bits when ``axis`` is None), as int64."""
    packed = np.asarray(packed, dtype=np.uint8)
    counts = np.bitwise_count(packed) if hasattr(np, "bitwise_count") else _POPCOUNT_TABLE[packed]
    return counts.sum(axis=axis, dtype=np.int64)


def column_mask(n_cols: int, columns: np.ndarray | None) -> np.ndarray:
    """Packed (ceil(n_cols/8),) mask with the bits of ``columns`` set (all when None)."""
    mask = np.zeros(n_cols, dtype=bool)
    if columns is None:
        mask[:] = True
    else:
        mask[np.asarray(columns)] = True
    return np.packbits(mask)
