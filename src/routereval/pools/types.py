"""Splits and candidate pools: index arrays into a benchmark, never copies of its data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routereval.data.splits import MISSING_POLICIES, PROTOCOLS, Split  # noqa: F401 - re-exported

GROUPS = ("all_strong", "all_weak", "strong_to_weak", "random")
PAPER_GROUPS = ("all_strong", "all_weak", "strong_to_weak")
PAPER_MS = (3, 5, 10, 100, 1000)
EASY_MS = (3, 5)
HARD_MS = (10, 100, 1000)


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
    missing
        The missing-records policy the pool was built under: ``complete`` (no missing
        records), ``models`` (only models evaluated on every prompt were eligible) or
        ``prompts`` (the split only holds prompts every model was evaluated on).
    missing_note
        One line on what that policy left out ("" when nothing is missing).
    choice_oracle
        Oracle of the pool on the prompts it was chosen on (all prompts for ``paper``,
        train+val for ``clean``; NaN for ``random``).
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
    missing: str = "complete"
    choice_oracle: float = float("nan")
    missing_note: str = ""

    def __repr__(self) -> str:
        names = [str(x) for x in self.model_names[:4]]
        more = f", ... ({self.m} in all)" if self.m > 4 else ""
        return (f"Pool({self.benchmark!r}, m={self.m} {self.group}, protocol {self.protocol}, draw {self.draw}, "
                f"split {self.split.name} {len(self.split.train)}/{len(self.split.val)}/{len(self.split.test)}; "
                f"models: {', '.join(names)}{more})")
