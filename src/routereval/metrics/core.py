"""The metric functions (pure numpy; every one is tested against a naive loop).

Shapes: ``Y`` (n, m) scores in [0, 1] of the pool's m models on n test prompts;
``routes`` (n,) int model index per prompt; ``probs`` (n, m) selection probabilities;
``C`` (n, m) cost (USD) of each model on each prompt.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from routereval.errors import InputError, ParameterError
from routereval.validate import check_int, float_array, is_real

# --------------------------------------------------------------------------- helpers


def _values(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` as a non-empty 1-D float array of finite per-prompt values (n,)."""
    a = float_array(x, name, ndim=1, expected="(n,) of per-prompt values")
    if not a.size:
        raise InputError(f"{name} holds no value; expected one per test prompt")
    return a


def _paired(routed: np.ndarray, best: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two per-prompt arrays of a paired statistic, checked to be of one length (the same prompts)."""
    routed, best = _values(routed, "routed"), _values(best, "best")
    if len(routed) != len(best):
        raise InputError(f"routed and best must hold the same prompts; got {len(routed)} and {len(best)} values")
    return routed, best


def _boot_options(n_boot: int, level: float | None = None) -> int:
    """``n_boot`` as an int >= 1, and ``level`` (when given) checked to be in (0, 1)."""
    if level is not None and not (is_real(level) and 0 < level < 1):
        raise ParameterError(f"level must be the interval's coverage in (0, 1), e.g. 0.95; got {level!r}")
    return check_int(n_boot, "n_boot (bootstrap resamples)", low=1)


def _route_indices(routes: np.ndarray, m: int) -> np.ndarray:
    """``routes`` checked to hold int model indices in [0, m) (any shape)."""
    if routes.size and (not np.issubdtype(routes.dtype, np.integer) or routes.min() < 0 or routes.max() >= m):
        got = (f"dtype {routes.dtype}" if not np.issubdtype(routes.dtype, np.integer)
               else f"values from {routes.min()} to {routes.max()}")
        raise InputError(f"routes must be int model indices in [0, {m - 1}] (m = {m}); got {got}")
    return routes


def _check_routes(Y: np.ndarray, routes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    Y = np.asarray(Y, dtype=np.float64)
    routes = np.asarray(routes)
    if Y.ndim != 2:
        raise InputError(f"scores must be 2-D (n_prompts, n_models), got shape {Y.shape}")
    if routes.shape != (Y.shape[0],):
        raise InputError(f"routes have shape {routes.shape}, expected ({Y.shape[0]},): one model index per prompt")
    return Y, _route_indices(routes, Y.shape[1])


def routed_scores(Y: np.ndarray, routes: np.ndarray) -> np.ndarray:
    """(n,) score of the routed model on each prompt: ``Y[i, routes[i]]``."""
    Y, routes = _check_routes(Y, routes)
    return Y[np.arange(Y.shape[0]), routes]


# --------------------------------------------------------------------------- quality


def mu(Y: np.ndarray, routes: np.ndarray) -> float:
    """µ_o: mean test score of the routed models."""
    return float(routed_scores(Y, routes).mean())


def oracle(Y: np.ndarray) -> float:
    """Score of the oracle r_o: mean over prompts of the best pool model's score."""
    Y = float_array(Y, "scores", ndim=2, expected="(n_prompts, n_models)")
    if not Y.size:
        raise InputError(f"scores hold no value (shape {Y.shape}); expected (n_prompts, n_models) with both > 0")
    return float(Y.max(axis=1).mean())


def v_r(mu_value: float, reference_score: float) -> float:
    """V_R = µ_o / the reference (GPT-4-class) model's score (NaN when that is 0, as :func:`v_b`)."""
    return float(mu_value) / float(reference_score) if reference_score else float("nan")


def v_b(mu_value: float, best_single_score: float) -> float:
    """V_B = µ_o / the best single model's score (NaN when that is 0)."""
    return float(mu_value) / float(best_single_score) if best_single_score else float("nan")


def oracle_gap(Y: np.ndarray, routes: np.ndarray) -> float:
    """Oracle score minus µ_o (>= 0)."""
    return oracle(Y) - mu(Y, routes)


def oracle_recall(Y: np.ndarray, routes: np.ndarray, *, rel: float = 0.95) -> float:
    """Share of solvable prompts on which the router picked a model that solves it.

    A prompt is solvable when some pool model scores above 0; a model solves it when it
    scores at least ``rel`` times the prompt's best (for 0/1 scores: it is correct), the
    same rule as the training labels of graded benchmarks. NaN when nothing is solvable.
    """
    if not (is_real(rel) and 0 < rel <= 1):
        raise ParameterError(f"rel must be the share of a prompt's best score that solves it, in (0, 1]; got {rel!r}")
    Y, routes = _check_routes(Y, routes)
    best = Y.max(axis=1)
    solvable = best > 0
    good = solvable & (Y[np.arange(Y.shape[0]), routes] >= rel * best)
    return float(good.sum() / solvable.sum()) if solvable.any() else float("nan")


# --------------------------------------------------------------------------- selection


def selection_shares(routes: np.ndarray, m: int) -> np.ndarray:
    """(m,) share of the prompts routed to each model (zeros when no prompt is routed)."""
    m = check_int(m, "m (the number of pool models)", low=1)
    routes = np.asarray(routes)
    if routes.ndim != 1:
        raise InputError(f"routes must be 1-D, one model index per prompt; got shape {routes.shape}")
    if routes.size == 0:
        return np.zeros(m)
    return np.bincount(_route_indices(routes, m), minlength=m) / routes.size


def selection_entropy(routes: np.ndarray, m: int) -> float:
    """Entropy in bits of the selection histogram over the test set (0: collapse onto one model)."""
    p = selection_shares(routes, m)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum()) + 0.0


def e_p(probs: np.ndarray, *, threshold: float | None = 1e-10) -> float:
    """E_p as the reference computes it: mean over prompts of -sum_j p_j log2 p_j.

    Terms with ``p_j <= threshold`` count 0 (the reference uses 1e-10 for r_o and PRknn,
    1e-4 for C-RoBERTa and MLC, none for LinearR/MLPR: ``threshold=None`` keeps every p > 0).
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise InputError(f"selection probabilities must be 2-D (n_prompts, n_models), got shape {p.shape}")
    keep = p > (0.0 if threshold is None else threshold)
    terms = np.where(keep, p * np.log2(np.where(keep, p, 1.0)), 0.0)
    return float(-terms.sum() / p.shape[0]) + 0.0


# --------------------------------------------------------------------------- bootstrap


def _batches(n: int, n_boot: int, random_state, chunk: int = 128) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(random_state)
    for start in range(0, n_boot, chunk):
        yield rng.integers(0, n, size=(min(chunk, n_boot - start), n), dtype=np.int64)


def bootstrap_indices(n: int, *, n_boot: int = 1000, random_state=0) -> np.ndarray:
    """(n_boot, n) resampled prompt indices: the draws every bootstrap function here uses."""
    n = check_int(n, "n (the number of prompts)", low=1)
    return np.concatenate(list(_batches(n, _boot_options(n_boot), random_state)))


def _boot_means(values: np.ndarray, n_boot: int, random_state) -> np.ndarray:
    # chunks bound memory to chunk x n indices (12k test prompts x 1,000 resamples would be 96 MB)
    return np.concatenate([values[idx].mean(axis=1) for idx in _batches(len(values), n_boot, random_state)])


def bootstrap_means(values: np.ndarray, *, n_boot: int = 1000, random_state=0) -> np.ndarray:
    """(n_boot,) means of ``values`` (n,) over the resamples of :func:`bootstrap_indices`."""
    return _boot_means(_values(values, "values"), _boot_options(n_boot), random_state)


def bootstrap_ci(values: np.ndarray, *, n_boot: int = 1000, level: float = 0.95, random_state=0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (n,) over resampled prompts."""
    n_boot = _boot_options(n_boot, level)
    means = _boot_means(_values(values, "values"), n_boot, random_state)
    a = (1 - level) / 2
    lo, hi = np.quantile(means, [a, 1 - a])
    return float(lo), float(hi)


def v_b_ci(routed: np.ndarray, best: np.ndarray, *, n_boot: int = 1000, level: float = 0.95,
           random_state=0) -> tuple[float, float]:
    """Paired percentile bootstrap CI of V_B = mean(routed) / mean(best).

    ``routed`` (n,) scores of the routed models, ``best`` (n,) scores of the best single
    model on the same prompts; both are resampled with the same indices.
    """
    n_boot = _boot_options(n_boot, level)
    routed, best = _paired(routed, best)
    ratios = []
    for idx in _batches(len(routed), n_boot, random_state):
        b = best[idx].mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios.append(np.where(b > 0, routed[idx].mean(axis=1) / np.where(b > 0, b, 1), np.nan))
    r = np.concatenate(ratios)
    a = (1 - level) / 2
    lo, hi = np.nanquantile(r, [a, 1 - a]) if np.isfinite(r).any() else (np.nan, np.nan)
    return float(lo), float(hi)


def paired_bootstrap_p(routed: np.ndarray, best: np.ndarray, *, n_boot: int = 1000, random_state=0) -> float:
    """One-sided paired bootstrap p-value for "the router beats the best single model".

    (1 + #{resamples whose mean of routed - best is <= 0}) / (n_boot + 1): small when the
    router's advantage survives resampling the test prompts.
    """
    n_boot = _boot_options(n_boot)
    routed, best = _paired(routed, best)
    means = _boot_means(routed - best, n_boot, random_state)
    return float((1 + np.count_nonzero(means <= 0)) / (n_boot + 1))


# --------------------------------------------------------------------------- cost


def mean_cost(C: np.ndarray, routes: np.ndarray) -> float:
    """Mean cost per prompt (USD) of the routed models."""
    return float(routed_scores(C, routes).mean())


def non_decreasing_hull(cost: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of RouterBench's non-decreasing convex hull of (cost, quality) points.

    The upper concave hull (any mix of two routers is reachable by routing a share of
    prompts to each), cut at its highest point (spending more never has to cost quality).
    Returns (k,) costs and (k,) qualities, costs increasing.
    """
    c = np.asarray(cost, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if c.shape != q.shape or c.ndim != 1 or c.size == 0:
        raise InputError(f"cost and quality must be 1-D arrays of the same non-zero length, got {c.shape} and {q.shape}")
    order = np.lexsort((-q, c))
    c, q = c[order], q[order]
    keep = np.r_[True, c[1:] != c[:-1]]  # best quality at each cost
    c, q = c[keep], q[keep]
    hull: list[int] = []  # monotone chain, upper side; a handful of points, a loop is fine
    for i in range(len(c)):
        while len(hull) >= 2:
            i0, i1 = hull[-2], hull[-1]
            if (c[i1] - c[i0]) * (q[i] - q[i0]) - (q[i1] - q[i0]) * (c[i] - c[i0]) >= 0:
                hull.pop()
            else:
                break
        hull.append(i)
    hc, hq = c[hull], q[hull]
    top = int(np.argmax(hq))
    return hc[: top + 1], hq[: top + 1]


def aiq(cost: np.ndarray, quality: np.ndarray, *, cost_range: tuple[float, float] | None = None) -> float:
    """RouterBench AIQ: mean of the non-decreasing convex hull over the cost range.

    ``cost_range`` (lo, hi) defaults to the points' own range; beyond the most expensive
    hull vertex the hull stays flat, below the cheapest point it is 0 (nothing is reachable).
    A single cost level gives its best quality.
    """
    hc, hq = non_decreasing_hull(cost, quality)
    lo, hi = (float(np.min(cost)), float(np.max(cost))) if cost_range is None else map(float, cost_range)
    if hi <= lo:
        return float(hq[-1])
    xs = np.r_[hc, hi] if hc[-1] < hi else hc
    ys = np.r_[hq, hq[-1]] if hc[-1] < hi else hq
    xs_c = np.clip(xs, lo, hi)
    ys_c = np.interp(xs_c, xs, ys)
    area = float(np.sum((xs_c[1:] - xs_c[:-1]) * (ys_c[1:] + ys_c[:-1]) / 2))
    return area / (hi - lo)


def apgr(share: np.ndarray, quality: np.ndarray, *, weak: float, strong: float) -> float:
    """RouteLLM's APGR: mean performance gap recovered over the share of calls to the strong model.

    PGR = (quality - weak) / (strong - weak) at each point; the area under PGR against
    ``share`` (in [0, 1], e.g. the share of prompts sent to the strong model or the
    normalised cost) by the trapezoid rule, divided by the share range.
    """
    x = np.asarray(share, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if x.shape != q.shape or x.ndim != 1 or x.size < 2:
        raise InputError("APGR needs at least two (share, quality) points of the same length")
    if strong == weak:
        return float("nan")
    order = np.argsort(x, kind="stable")
    x, pgr = x[order], (q[order] - weak) / (strong - weak)
    span = x[-1] - x[0]
    if span <= 0:
        return float(pgr.mean())
    return float(np.sum((x[1:] - x[:-1]) * (pgr[1:] + pgr[:-1]) / 2) / span)


def tradeoff_routes(pred: np.ndarray, unit_cost: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
    """(L, n) routes maximising ``pred - lam * unit_cost`` for each willingness-to-pay ``lam``.

    ``pred`` (n, m) a router's predicted scores, ``unit_cost`` (m,) each model's cost
    (e.g. its mean cost on train, scaled to [0, 1]); RouterBench's trade-off sweep.
    """
    pred = np.asarray(pred, dtype=np.float64)
    lam = np.asarray(lambdas, dtype=np.float64)
    return np.argmax(pred[None] - lam[:, None, None] * np.asarray(unit_cost, dtype=np.float64)[None, None, :], axis=2)
