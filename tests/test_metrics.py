"""Every metric against a naive loop implementation, plus properties shared by all metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from routereval import metrics as M
from routereval.errors import InputError


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    n, m = 200, 5
    Y = (rng.random((n, m)) < np.array([0.3, 0.5, 0.6, 0.4, 0.2])).astype(float)
    routes = rng.integers(0, m, n)
    return Y, routes


# ---------------------------------------------------------------- naive loops


def naive_mu(Y, routes):
    tot = 0.0
    for i in range(len(routes)):
        tot += Y[i][routes[i]]
    return tot / len(routes)


def naive_entropy_rows(P, thr):
    tot = 0.0
    for row in P:
        h = 0.0
        for p in row:
            if p > thr:
                h -= p * math.log2(p)
        tot += h
    return tot / len(P)


def test_mu_oracle_gap_against_loops(data):
    Y, routes = data
    assert M.mu(Y, routes) == pytest.approx(naive_mu(Y, routes))
    orc = sum(max(row) for row in Y) / len(Y)
    assert M.oracle(Y) == pytest.approx(orc)
    assert M.oracle_gap(Y, routes) == pytest.approx(orc - naive_mu(Y, routes))
    assert M.v_r(0.5, 0.8) == pytest.approx(0.625)
    assert M.v_b(0.3, 0.6) == pytest.approx(0.5)
    assert math.isnan(M.v_b(0.3, 0.0))


def test_oracle_recall_against_loop():
    rng = np.random.default_rng(1)
    Y = np.round(rng.random((300, 4)) * (rng.random((300, 4)) < 0.5), 2)  # graded, some all-zero rows
    routes = rng.integers(0, 4, 300)
    solvable = good = 0
    for i in range(300):
        best = max(Y[i])
        if best > 0:
            solvable += 1
            if Y[i, routes[i]] >= 0.95 * best:
                good += 1
    assert M.oracle_recall(Y, routes) == pytest.approx(good / solvable)
    oracle_routes = Y.argmax(axis=1)
    assert M.oracle_recall(Y, oracle_routes) == 1.0
    assert math.isnan(M.oracle_recall(np.zeros((3, 2)), np.zeros(3, dtype=int)))


def test_selection_shares_and_entropy_against_loops(data):
    Y, routes = data
    m = Y.shape[1]
    counts = [0] * m
    for r in routes:
        counts[r] += 1
    shares = [c / len(routes) for c in counts]
    assert M.selection_shares(routes, m) == pytest.approx(shares)
    h = -sum(p * math.log2(p) for p in shares if p > 0)
    assert M.selection_entropy(routes, m) == pytest.approx(h)
    assert M.selection_entropy(np.full(50, 3), m) == 0.0  # collapse onto one model
    assert M.selection_entropy(np.arange(40) % 4, 4) == pytest.approx(2.0)


@pytest.mark.parametrize("thr", [1e-10, 1e-4, None])
def test_e_p_against_loop(thr):
    rng = np.random.default_rng(2)
    P = rng.random((50, 6)) ** 4
    P[:5, 2:] = 0.0
    P[5, 1] = 5e-5  # below the 1e-4 threshold
    P /= P.sum(axis=1, keepdims=True)
    assert M.e_p(P, threshold=thr) == pytest.approx(naive_entropy_rows(P, 0.0 if thr is None else thr))


def test_e_p_uniform_and_one_hot():
    assert M.e_p(np.full((10, 8), 1 / 8)) == pytest.approx(3.0)
    assert M.e_p(np.eye(4)[[0, 1, 2, 3, 0]]) == 0.0


def test_bootstrap_functions_against_loops(data):
    Y, routes = data
    routed = Y[np.arange(len(Y)), routes]
    best = Y[:, 2]
    idx = M.bootstrap_indices(len(routed), n_boot=300, random_state=5)
    assert idx.shape == (300, len(routed))
    means, ratios, diffs = [], [], []
    for row in idx:
        a = sum(routed[j] for j in row) / len(row)
        b = sum(best[j] for j in row) / len(row)
        means.append(a)
        ratios.append(a / b)
        diffs.append(a - b)
    lo, hi = M.bootstrap_ci(routed, n_boot=300, random_state=5)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    assert M.v_b_ci(routed, best, n_boot=300, random_state=5) == pytest.approx(tuple(np.quantile(ratios, [0.025, 0.975])))
    p = M.paired_bootstrap_p(routed, best, n_boot=300, random_state=5)
    assert p == pytest.approx((1 + sum(d <= 0 for d in diffs)) / 301)


def test_cis_contain_the_point_estimate_and_p_value_direction():
    rng = np.random.default_rng(3)
    for seed in range(5):
        v = (rng.random(400) < 0.6).astype(float)
        b = (rng.random(400) < 0.5).astype(float)
        lo, hi = M.bootstrap_ci(v, random_state=seed)
        assert lo <= v.mean() <= hi and hi - lo < 0.2
        lo, hi = M.v_b_ci(v, b, random_state=seed)
        assert lo <= v.mean() / b.mean() <= hi
    strong = np.ones(300)
    weak = (rng.random(300) < 0.5).astype(float)
    assert M.paired_bootstrap_p(strong, weak) < 0.01  # clearly better
    assert M.paired_bootstrap_p(weak, strong) == 1.0  # clearly worse: never beats


def test_mean_cost_against_loop(data):
    Y, routes = data
    C = np.random.default_rng(4).random(Y.shape)
    assert M.mean_cost(C, routes) == pytest.approx(naive_mu(C, routes))


def naive_hull_value(c, q, x):
    """Best quality reachable at cost <= x by mixing two points (or one): the non-decreasing hull."""
    best = -np.inf
    for i in range(len(c)):
        if c[i] <= x:
            best = max(best, q[i])
        for j in range(len(c)):
            if c[i] <= x < c[j]:
                lam = (c[j] - x) / (c[j] - c[i])
                best = max(best, lam * q[i] + (1 - lam) * q[j])
    return best


def test_aiq_against_brute_force_hull():
    rng = np.random.default_rng(5)
    for _ in range(5):
        c = rng.random(8)
        q = rng.random(8)
        grid = np.linspace(c.min(), c.max(), 4001)
        vals = np.array([naive_hull_value(c, q, x) for x in grid])
        naive = np.trapezoid(vals, grid) / (c.max() - c.min())
        assert M.aiq(c, q) == pytest.approx(naive, abs=2e-3)
        hc, hq = M.non_decreasing_hull(c, q)
        assert np.all(np.diff(hc) > 0) and np.all(np.diff(hq) >= 0)
        assert hq[-1] == pytest.approx(q.max())


def test_aiq_simple_cases():
    assert M.aiq([0, 1], [0.2, 0.6]) == pytest.approx(0.4)  # a line: its mean
    assert M.aiq([0, 1, 2], [0.5, 0.5, 0.2]) == pytest.approx(0.5)  # flat after the best point
    assert M.aiq([1.0], [0.7]) == pytest.approx(0.7)
    # a dominated middle point does not count; the hull of (0,0),(1,1) is the diagonal
    assert M.aiq([0, 0.5, 1], [0.0, 0.1, 1.0]) == pytest.approx(0.5)


def test_apgr_against_loop():
    x = np.array([0.0, 0.1, 0.3, 0.6, 1.0])
    q = np.array([0.5, 0.62, 0.7, 0.75, 0.8])
    weak, strong = 0.5, 0.8
    area = 0.0
    for i in range(len(x) - 1):
        p0, p1 = (q[i] - weak) / (strong - weak), (q[i + 1] - weak) / (strong - weak)
        area += (x[i + 1] - x[i]) * (p0 + p1) / 2
    assert M.apgr(x[::-1], q[::-1], weak=weak, strong=strong) == pytest.approx(area)
    # a router no better than mixing weak and strong at random recovers half the gap
    assert M.apgr(x, weak + x * (strong - weak), weak=weak, strong=strong) == pytest.approx(0.5)


def test_tradeoff_routes_against_loop():
    rng = np.random.default_rng(6)
    pred, u = rng.random((20, 4)), rng.random(4)
    lams = np.array([0.0, 0.5, 5.0])
    out = M.tradeoff_routes(pred, u, lams)
    for a, lam in enumerate(lams):
        for i in range(20):
            vals = [pred[i, j] - lam * u[j] for j in range(4)]
            assert out[a, i] == int(np.argmax(vals))
    assert np.all(out[-1] == np.argmin(u))  # a high price of cost: the cheapest model


def test_oracle_beats_every_routing(data):
    Y, _ = data
    rng = np.random.default_rng(7)
    for _ in range(50):
        assert M.oracle(Y) >= M.mu(Y, rng.integers(0, Y.shape[1], len(Y)))
    best_col = int(Y.mean(axis=0).argmax())
    best_score = Y[:, best_col].mean()
    assert M.v_b(M.mu(Y, np.full(len(Y), best_col)), best_score) == 1.0


def test_bad_routes_are_one_clear_error(data):
    Y, routes = data
    with pytest.raises(InputError, match="routes have shape"):
        M.mu(Y, routes[:-1])
    with pytest.raises(InputError, match=r"model indices in \[0, 4\]"):
        M.mu(Y, routes + 1)
    with pytest.raises(InputError, match="2-D"):
        M.e_p(np.ones(3))


_X = np.linspace(0.0, 1.0, 10)


@pytest.mark.parametrize("call, match", [
    # the bootstrap's options and values (numpy's own errors, or a silent NaN or a 2-D mean, before)
    (lambda: M.bootstrap_ci(_X, n_boot=0), r"n_boot \(bootstrap resamples\) must be an int >= 1; got 0"),
    (lambda: M.bootstrap_ci(_X, level=95), r"level must be the interval's coverage in \(0, 1\), e.g. 0.95; got 95"),
    (lambda: M.bootstrap_ci(np.ones((4, 3))), r"values must be a 1-D array; got shape \(4, 3\)"),
    (lambda: M.bootstrap_ci(np.array([])), "values holds no value"),
    (lambda: M.bootstrap_ci(np.r_[_X, np.nan]), r"values must be finite; it holds nan at position 10"),
    (lambda: M.bootstrap_ci(["a", "b"]), "values must be a numeric array"),
    (lambda: M.bootstrap_means(_X, n_boot=-1), "n_boot"),
    (lambda: M.bootstrap_indices(0), r"n \(the number of prompts\) must be an int >= 1"),
    (lambda: M.v_b_ci(_X, _X[:9]), "routed and best must hold the same prompts; got 10 and 9 values"),
    (lambda: M.v_b_ci(_X, _X, level=0), "level must be"),
    (lambda: M.paired_bootstrap_p(_X, _X[:9]), "routed and best must hold the same prompts"),
    (lambda: M.paired_bootstrap_p(_X, _X, n_boot=1.5), "n_boot"),
    # selection: indices past m were dropped silently (shares summing to 0.5)
    (lambda: M.selection_shares(np.array([0, 1, 4, 4]), 2), r"routes must be int model indices in \[0, 1\] \(m = 2\); "
                                                             r"got values from 0 to 4"),
    (lambda: M.selection_entropy(np.array([0, 1, 4, 4]), 2), r"in \[0, 1\]"),
    (lambda: M.selection_shares(np.array([0.0, 1.0]), 2), "got dtype float64"),
    (lambda: M.selection_shares(np.array([0, 1]), 0), r"m \(the number of pool models\) must be an int >= 1"),
    (lambda: M.oracle_recall(np.ones((3, 2)), np.zeros(3, dtype=int), rel=95), r"rel must be .* in \(0, 1\]; got 95"),
    (lambda: M.oracle(np.ones(3)), "scores must be a 2-D array"),
    (lambda: M.oracle(np.ones((0, 3))), "scores hold no value"),
])
def test_bad_inputs_to_every_metric_are_one_error_of_the_package(call, match):
    from routereval.errors import RouterEvalError

    with pytest.raises(RouterEvalError, match=match):
        call()


def test_ratios_to_a_zero_score_are_nan_alike():
    assert math.isnan(M.v_r(0.5, 0.0)) and math.isnan(M.v_b(0.5, 0.0))  # v_r raised ZeroDivisionError


@pytest.mark.parametrize("router, ref_threshold", [
    ("linear", None), ("mlp", None),  # router/MLPR_LinearR/train.py: every softmax term counts
    ("mlc", 1e-4),  # router/RoBERTa-MLC/roberta_MLC.py: np.where(p > 1e-4, ...)
    ("kmeans", 1e-4), ("knn", 1e-10),
])
def test_each_routers_e_p_uses_the_reference_threshold(router, ref_threshold):
    from routereval.routers import get_router_class

    # probabilities in (1e-10, 1e-4] are where the thresholds disagree
    probs = np.array([[1 - 5e-5 - 1e-6, 5e-5, 1e-6], [0.5, 0.5 - 2e-9, 2e-9]])
    naive = 0.0
    for row in probs:
        for p in row:
            if p > (0.0 if ref_threshold is None else ref_threshold):
                naive -= p * math.log2(p)
    naive /= len(probs)
    got = M.e_p(probs, threshold=get_router_class(router).ep_threshold)
    assert got == pytest.approx(naive, rel=1e-12)
