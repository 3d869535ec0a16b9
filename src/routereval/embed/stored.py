"""Embeddings stored with a benchmark (official files, synthetic corpora)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from routereval.data.model import Benchmark


def stored_embedding(bench: "Benchmark", encoder: str) -> np.ndarray | None:
    """The embedding stored under ``encoder`` (``"official/X"`` also finds ``"X"`` and vice versa), or None."""
    for key in (encoder, encoder.removeprefix("official/"), f"official/{encoder}"):
        if key in bench.embeddings:
            return bench.embeddings[key]
    return None
