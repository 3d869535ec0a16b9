"""Splits and candidate pools: index arrays into a benchmark, never copies of its data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PROTOCOLS = ("clean", "paper")
GROUPS = ("all_strong", "all_weak", "strong_to_weak", "random")


@dataclass(frozen=True)
class Split:
    """A train/val/test split of a benchmark's prompts.

    Attributes
    ----------
    train, val, test
        Prompt (column) indices into the benchmark, disjoint.
    seed
        The seed the split was drawn with.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int = 42

    @property
    def fit_prompts(self) -> np.ndarray:
        """Train and val prompts: all that the ``clean`` protocol may look at while choosing."""
        return np.concatenate([self.train, self.val])


@dataclass(frozen=True)
class Pool:
    """A candidate pool of ``m`` models of one benchmark, with the split it is used on.

    Attributes
    ----------
    benchmark
        Benchmark name.
    group
        ``all_strong``, ``all_weak``, ``strong_to_weak`` or ``random``.
    m
        Number of candidate models.
    protocol
        ``clean`` (chosen on train+val only) or ``paper`` (the reference: all prompts).
    models
        (m,) row indices into the benchmark's models, in the pool's order.
    model_names
        (m,) model ids.
    split
        The prompt split the pool is evaluated on.
    best_single
        Position in the pool (0..m-1) of the best single model under the protocol:
        best on test for ``paper``, best on train+val for ``clean``.
    draw
        For ``random`` pools, which seeded draw this is.
    """

    benchmark: str
    group: str
    m: int
    protocol: str
    models: np.ndarray
    model_names: np.ndarray
    split: Split
    best_single: int
    draw: int = 0
