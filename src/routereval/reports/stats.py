"""Statistics of averaged cells from stored per-prompt scores (pure numpy).

A report row averages a router's figures over several cells (the three groups, pool draws,
seeds). Its confidence interval is the bootstrap of that average: each cell's test prompts
are resampled independently, the resampled cell means are combined with the average's
weights, and the percentiles of the combined means are the interval (averaging the cells'
own interval ends would overstate the width: independent errors partly cancel).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from routereval import metrics as M
from routereval.errors import InputError


def weighted_average_ci(samples: Sequence[np.ndarray], weights: Sequence[float], *, n_boot: int = 1000,
                        level: float = 0.95, random_states: Sequence | None = None) -> tuple[float, float]:
    """Percentile bootstrap CI of ``sum_i w_i * mean(samples[i])``, resampling each cell alone.

    Parameters
    ----------
    samples
        k arrays, the i-th (n_i,) the per-prompt scores of cell i (e.g. a router's routed scores).
    weights
        (k,) weight of each cell's mean in the average (e.g. 1/3 per group).
    n_boot, level
        Resamples and the interval's coverage.
    random_states
        k seeds, one per cell (cells resampled with the same seed draw the same prompts: two
        routers on the same cells are compared on common resamples). Default: 0, 1, ..., k-1.

    Returns
    -------
    (lo, hi)
    """
    if len(samples) != len(weights) or not len(samples):
        raise InputError(f"need one weight per cell and at least one cell; got {len(samples)} cells, "
                         f"{len(weights)} weights")
    states = list(range(len(samples))) if random_states is None else list(random_states)
    total = np.zeros(n_boot)
    for x, w, rs in zip(samples, weights, states):
        total += float(w) * M.bootstrap_means(x, n_boot=n_boot, random_state=rs)
    a = (1 - level) / 2
    lo, hi = np.quantile(total, [a, 1 - a])
    return float(lo), float(hi)


def wins(routed: Sequence[np.ndarray], best: Sequence[np.ndarray], *, seeds: Sequence[int], n_boot: int = 1000,
         alpha: float = 0.05) -> tuple[int, np.ndarray]:
    """Cells where the router beats the pool's best single model: paired bootstrap p < ``alpha``.

    ``routed[i]`` and ``best[i]`` are (n_i,) the routed and best-single scores of cell i on the
    same test prompts; ``seeds[i]`` seeds its bootstrap (the cell's seed, as ``eval`` does, so
    the p-values equal the stored ``p_beats_best_single`` for the same ``n_boot``).

    Returns
    -------
    (count, p)
        The number of winning cells and (k,) the p-values.
    """
    p = np.array([M.paired_bootstrap_p(r, b, n_boot=n_boot, random_state=s)
                  for r, b, s in zip(routed, best, seeds)], dtype=np.float64)
    return int(np.count_nonzero(p < alpha)), p


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof=1) of the finite ``values``; std None for fewer than 2."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return None, None
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else None)
