"""Statistics of averaged cells from stored per-prompt scores (pure numpy).

A report row averages a router's figures over several cells (the three groups, pool draws,
seeds). Its confidence interval is the bootstrap of that average: each cell's test prompts
are resampled independently, the resampled cell means are combined with the average's
weights, and the percentiles of the combined means are the interval (averaging the cells'
own interval ends would overstate the width: independent errors partly cancel).
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from routereval import metrics as M
from routereval.errors import InputError


@functools.lru_cache(maxsize=8)
def _counts(n: int, n_boot: int, random_state) -> np.ndarray:
    """(n_boot, n) how often each prompt is drawn in each resample of :func:`metrics.bootstrap_indices`."""
    idx = M.bootstrap_indices(n, n_boot=n_boot, random_state=random_state)
    rows = np.repeat(np.arange(n_boot, dtype=np.int64) * n, n)
    counts = np.bincount(rows + idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)
    counts.setflags(write=False)
    return counts


def resample_means(values: np.ndarray, *, n_boot: int = 1000, random_state=0) -> np.ndarray:
    """(k, n_boot) bootstrap means of each row of ``values`` (k, n), all on the same resamples.

    The resamples are those of :func:`routereval.metrics.bootstrap_indices` (so row i equals
    ``metrics.bootstrap_means(values[i], ...)``); drawn once and applied to k rows at once as a
    matrix product (the routers of one cell share its resamples).
    """
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    n = v.shape[1]
    if n == 0:
        raise InputError("cannot resample a cell without test prompts")
    return v @ _counts(n, n_boot, _hashable(random_state)).T / n


def _hashable(random_state):
    return tuple(int(x) for x in random_state) if isinstance(random_state, (list, tuple, np.ndarray)) else random_state


def percentile_ci(means: np.ndarray, *, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap means (n_boot,)."""
    a = (1 - level) / 2
    lo, hi = np.quantile(np.asarray(means, dtype=np.float64), [a, 1 - a])
    return float(lo), float(hi)


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
        total += float(w) * resample_means(x, n_boot=n_boot, random_state=rs)[0]
    return percentile_ci(total, level=level)


def paired_p_values(routed: np.ndarray, best: np.ndarray, *, n_boot: int = 1000, random_state=0) -> np.ndarray:
    """(k,) one-sided paired bootstrap p-values that row i of ``routed`` beats row i of ``best`` (k, n).

    Row for row :func:`routereval.metrics.paired_bootstrap_p` (same resamples, same formula), for
    k cells of one test-set size and seed at once.
    """
    d = np.atleast_2d(np.asarray(routed, dtype=np.float64) - np.asarray(best, dtype=np.float64))
    means = resample_means(d, n_boot=n_boot, random_state=random_state)
    return (1 + np.count_nonzero(means <= 0, axis=1)) / (n_boot + 1)


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof=1) of the finite ``values``; std None for fewer than 2."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return None, None
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else None)
