"""Cold start: a model's vector from a few answers, anchors, the mean estimate, the study and add-model."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from dataclasses import replace
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest

from routereval.coldstart.anchors import (
    METHODS,
    AdaptiveTest,
    adaptive_test,
    allocate,
    cluster_positions,
    design_positions,
    kmeans,
    response_features,
    select_anchors,
    stratified_positions,
)
from routereval.coldstart.calibrate import (calibrate_items, calibrate_more, calibrate_prompts, expected_logit_scale,
                                            item_deltas)
from routereval.coldstart.estimate import MeanEstimate, estimate_mean, gp_combine, population_weight
from routereval.coldstart.neighbours import neighbour_correction
from routereval.data.model import Benchmark, Corpus
from routereval.data.store import open_corpus, write_corpus
from routereval.errors import InputError, ParameterError
from routereval.routers import make_router
from routereval.routers.base import CapabilityError
from routereval.routers.newmodel import log_posterior, map_logistic, population_prior

from coldstart_worlds import irt_world, sig as _sig, world_benchmark


@pytest.fixture(scope="module")
def world_corpus(tmp_path_factory):
    return _world_corpus(tmp_path_factory.mktemp("coldstart") / "corpus")


def _world_corpus(out, **world):
    X, S, P, topic = irt_world(**world)
    words = ("algebra", "poetry", "history", "biology")
    texts = [f"question {i} on {words[t]} number {i * 7 % 13}" for i, t in enumerate(topic)]
    write_corpus(Corpus.from_benchmarks([world_benchmark(X, S, topic, texts=texts)]), out)
    return out


# --------------------------------------------------------------------------- the maths


def test_population_weight_is_the_least_squares_weight_of_the_anchor_mean_over_the_references():
    """lam = sum (P - t)(P - A) / sum (P - A)^2 over the references, clipped: 1 where their anchor means hit their
    known means, 0 where p-IRT does; one per target; a seeded sample of at most max_refs; None under 3."""
    rng = np.random.default_rng(0)
    Y = (rng.random((40, 20)) < 0.6).astype(float)  # 20 references' answers on 40 anchors
    A = Y.mean(axis=0)
    P = 0.55 + 0.3 * (A - A.mean())  # a p-IRT that shrinks towards the population

    def est(y):
        a = float(y.mean())
        return MeanEstimate(0.0, 0.0, 1.0, 0.1, a, 0.55 + 0.3 * (a - A.mean()), 0.0, len(y))

    assert population_weight(est, Y, A) == pytest.approx(1.0)
    assert population_weight(est, Y, P) == pytest.approx(0.0)
    assert population_weight(est, Y, 0.3 * A + 0.7 * P) == pytest.approx(0.3)
    t = P + rng.normal(0, 0.02, 20)  # against a naive loop
    want = sum((P[j] - t[j]) * (P[j] - A[j]) for j in range(20)) / sum((P[j] - A[j]) ** 2 for j in range(20))
    assert population_weight(est, Y, t) == pytest.approx(float(np.clip(want, 0, 1)), abs=1e-12)
    assert population_weight(est, Y, P - 2 * (A - P)) == 0.0  # clipped
    # several targets: one weight each (the study's test mean and the mean over every prompt)
    two = population_weight(lambda y: (est(y), est(y)), Y, np.column_stack([A, P]))
    np.testing.assert_allclose(two, [1.0, 0.0], atol=1e-12)
    # a seeded sample of the references: the same seed, the same weight
    noisy = 0.5 * A + 0.5 * P + rng.normal(0, 0.05, 20)
    one = population_weight(est, Y, noisy, max_refs=5, seed=3)
    assert one == population_weight(est, Y, noisy, max_refs=5, seed=3) != population_weight(est, Y, noisy)
    assert population_weight(est, Y[:, :2], A[:2]) is None and population_weight(est, Y, A, max_refs=2) is None
    with pytest.raises(InputError, match="1 estimate\\(s\\) per reference but 2 known mean\\(s\\)"):
        population_weight(est, Y, np.column_stack([A, P]))
    with pytest.raises(InputError, match="no anchor mean"):
        population_weight(lambda y: replace(est(y), anchor_mean=None), Y, A)


def test_map_logistic_matches_a_generic_optimiser():
    from scipy.optimize import minimize

    rng = np.random.default_rng(1)
    Z, o = rng.normal(size=(60, 5)), rng.normal(size=60)
    y = rng.random(60)  # graded scores: soft targets
    mu, L = rng.normal(size=5), rng.normal(size=(5, 5))
    cov = L @ L.T + np.eye(5)
    phi, post = map_logistic(Z, o, y, mu, cov)
    P = np.linalg.inv(cov)
    ref = minimize(lambda f: -log_posterior(f, Z, o, y, np.ones(60), mu, P), mu, method="BFGS",
                   options={"gtol": 1e-10}).x
    np.testing.assert_allclose(phi, ref, atol=1e-5)
    # the Laplace covariance is the inverse of the numerical negative Hessian at the mode
    eps, H = 1e-4, np.zeros((5, 5))
    for i in range(5):
        for j in range(5):
            e_i, e_j = np.eye(5)[i] * eps, np.eye(5)[j] * eps
            f = lambda v: log_posterior(v, Z, o, y, np.ones(60), mu, P)  # noqa: E731
            H[i, j] = -(f(phi + e_i + e_j) - f(phi + e_i - e_j) - f(phi - e_i + e_j) + f(phi - e_i - e_j)) / (4 * eps ** 2)
    np.testing.assert_allclose(post, np.linalg.inv(H), rtol=1e-3, atol=1e-6)


def test_population_prior_is_the_shrunk_sample_covariance():
    rng = np.random.default_rng(2)
    Phi = rng.normal(size=(30, 4)) @ np.diag([1.0, 2.0, 0.5, 1.0])
    mean, cov = population_prior(Phi)
    np.testing.assert_allclose(mean, Phi.mean(axis=0))
    S = np.cov(Phi, rowvar=False)
    lam = 4 / 34
    want = (1 - lam) * S + lam * np.diag(np.diag(S))
    np.testing.assert_allclose(cov, want + np.eye(4) * 1e-4 * np.trace(want) / 4, rtol=1e-9)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    one_mean, one_cov = population_prior(Phi[:1])  # a single model: a broad proper prior
    assert np.all(np.linalg.eigvalsh(one_cov) >= 1.0)


def test_estimate_converges_to_the_truth_as_k_grows():
    """Known prompt side and a known new model: the posterior mode, and the mean estimate, approach the truth."""
    rng = np.random.default_rng(3)
    n, p = 20000, 3
    Z = np.hstack([rng.normal(size=(n, p - 1)), np.ones((n, 1))])
    o = rng.normal(size=n) * 0.5
    Phi_pop = rng.normal(size=(50, p))
    mean, cov = population_prior(Phi_pop)
    true_phi = Phi_pop[0] + 0.3
    probs = _sig(Z @ true_phi + o)
    y = (rng.random(n) < probs).astype(float)
    errs, mean_errs = [], []
    for k in (10, 100, 1000, 10000):
        idx = np.random.default_rng(k).permutation(n)[:k]
        phi, post = map_logistic(Z[idx], o[idx], y[idx], mean, cov)
        errs.append(np.linalg.norm(phi - true_phi))
        mean_errs.append(abs(_sig(Z @ phi + o).mean() - probs.mean()))
    assert errs[-1] < 0.1 and errs[-1] < errs[1] < errs[0]
    assert mean_errs[-1] < 0.015 and mean_errs[-1] < mean_errs[0]


def test_item_calibration_recovers_residual_difficulties():
    rng = np.random.default_rng(4)
    n, m = 3000, 200
    eta = rng.normal(size=(n, 1)) + rng.normal(size=(1, m))
    delta = rng.normal(size=n) * 1.2
    Y = (rng.random((n, m)) < _sig(eta + delta[:, None])).astype(float)
    Z = np.hstack([np.ones((n, 1)), eta[:, :1]])  # eta = z . phi with phi_j = (b_j, 1)
    Phi = np.column_stack([eta[0] - eta[0, 0], np.ones(m)])
    cal = calibrate_items(Z, np.zeros(n), Phi, Y)
    assert np.corrcoef(cal.delta, delta)[0, 1] > 0.95
    assert 1.0 < cal.spread < 1.9  # the true s^2 is 1.44
    # the probit approximation of E sigmoid(eta + N(0, s^2))
    s2, e = 2.0, 0.7
    mc = _sig(e + np.sqrt(s2) * np.random.default_rng(5).normal(size=400000)).mean()
    assert abs(_sig(e * expected_logit_scale(s2)) - mc) < 0.01
    d, v = item_deltas(np.zeros((1, 4)), np.array([[1.0, np.nan, 1.0, 0.0]]), 1.0)  # NaN answers are ignored
    d2, _ = item_deltas(np.zeros((1, 3)), np.array([[1.0, 1.0, 0.0]]), 1.0)
    np.testing.assert_allclose(d, d2)


def test_map_logistic_with_a_guessing_floor_matches_a_generic_optimiser():
    from scipy.optimize import minimize

    rng = np.random.default_rng(11)
    Z, o = rng.normal(size=(80, 4)), rng.normal(size=80)
    floor = rng.choice([0.0, 0.25, 0.5], size=80)
    y = (rng.random(80) < floor + (1 - floor) * _sig(Z @ np.array([0.5, -1.0, 0.3, 0.8]) + o)).astype(float)
    mu, cov = np.zeros(4), np.eye(4) * 2.0
    phi, _ = map_logistic(Z, o, y, mu, cov, floor=floor)

    def neg(f):  # the 3PL log posterior written out directly
        p = floor + (1 - floor) * _sig(Z @ f + o)
        return -(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)) - 0.5 * f @ np.linalg.inv(cov) @ f)

    ref = minimize(neg, mu, method="BFGS", options={"gtol": 1e-9}).x
    np.testing.assert_allclose(phi, ref, atol=1e-4)
    # floor 0 everywhere is the logistic model
    np.testing.assert_allclose(map_logistic(Z, o, y, mu, cov, floor=np.zeros(80))[0], map_logistic(Z, o, y, mu, cov)[0],
                               atol=1e-8)


def test_item_floors_recover_floors_slopes_and_difficulties():
    from routereval.coldstart.calibrate import MIN_FLOOR_MODELS, ItemCalibration, calibrate_floors, item_floors

    rng = np.random.default_rng(12)
    n, m = 600, 300
    eta = rng.normal(size=(1, m)) * 2.0 + np.zeros((n, 1))
    c = rng.choice([0.0, 0.25, 0.5], size=n)
    a = np.exp(rng.normal(0, 0.3, n))
    d = rng.normal(size=n)
    Y = (rng.random((n, m)) < c[:, None] + (1 - c[:, None]) * _sig(a[:, None] * eta + d[:, None])).astype(float)
    fc, fa, fd, _ = item_floors(eta, Y, 1.0, slope_var=0.1)
    assert np.mean(np.abs(fc - c) <= 0.1) > 0.7
    assert np.corrcoef(fa, a)[0, 1] > 0.6 and np.corrcoef(fd, d)[0, 1] > 0.9
    # the floors need binary answers of enough models
    cal = ItemCalibration(delta=np.zeros(n), spread=1.0)
    Zr, Phi = np.ones((n, 1)), eta[0][:, None]
    assert calibrate_floors(cal, Zr, np.zeros(n), Phi, Y) is not None
    assert calibrate_floors(cal, Zr, np.zeros(n), Phi[:MIN_FLOOR_MODELS - 1], Y[:, :MIN_FLOOR_MODELS - 1]) is None
    assert calibrate_floors(cal, Zr, np.zeros(n), Phi, Y * 0.5) is None


def test_gp_combine_weight_minimises_the_mse_with_correlated_errors():
    from routereval.coldstart.estimate import anchor_variance, combine_weight

    y = np.array([1, 0, 1, 1, 0, 1, 0, 1], dtype=float)
    p = np.array([0.6, 0.5, 0.7, 0.6, 0.3, 0.8, 0.4, 0.6])
    pt = np.full(1000, 0.6)
    w = np.full(8, 1 / 8)
    # naive: the anchor estimator's variance and p-IRT's MSE written out term by term
    pbar = sum(w[i] * p[i] for i in range(8))
    var_a = sum(w[i] ** 2 * p[i] * (1 - p[i]) for i in range(8)) + sum(w[i] ** 2 * (p[i] - pbar) ** 2 for i in range(8)) * 8 / 7
    assert anchor_variance(p, w) == pytest.approx(var_a)
    r = y - p
    rbar = float(w @ r)
    var_rbar = sum(w[i] ** 2 * (r[i] - rbar) ** 2 for i in range(8)) * 8 / 7
    mse = 0.001 + max(0, rbar ** 2 - var_rbar)
    for cross in (0.0, 0.0008, -0.0005):
        est = gp_combine(y, p, pt, grad_var=0.001, weights=w, cross_cov=cross)
        grid = np.linspace(0, 1, 100001)  # the weight of the smallest MSE of lam A + (1 - lam) P, by search
        want = grid[np.argmin(grid ** 2 * var_a + (1 - grid) ** 2 * mse + 2 * grid * (1 - grid) * cross)]
        assert est.lam == pytest.approx(want, abs=1e-4) and combine_weight(var_a, mse, cross) == pytest.approx(want, abs=1e-4)
        assert est.mean == pytest.approx(est.lam * 0.625 + (1 - est.lam) * 0.6)
        noise = 1000 * 0.24 / 1000 ** 2
        se2 = est.lam ** 2 * var_a + (1 - est.lam) ** 2 * mse + 2 * est.lam * (1 - est.lam) * cross + noise
        assert est.se == pytest.approx(np.sqrt(se2))
        assert est.low < est.mean < est.high
    assert gp_combine(y, p, pt, grad_var=0.001, weights=w).lam == pytest.approx(mse / (mse + var_a))  # no covariance
    assert combine_weight(0.001, 0.002, 0.003) == 0.0 and combine_weight(0.001, 0.004, 0.0015) == 1.0  # clipped
    alone = gp_combine(y, p, pt, grad_var=0.001, weights=None)  # adaptive: p-IRT alone
    assert alone.lam == 0 and alone.anchor_mean is None and alone.mean == pytest.approx(0.6)


def test_cross_covariance_matches_a_simulation():
    from routereval.coldstart.estimate import cross_covariance

    rng = np.random.default_rng(5)
    k, p = 60, 2
    Z, o = rng.normal(size=(k, p)), rng.normal(size=k) * 0.5
    Zt, ot = rng.normal(size=(300, p)), rng.normal(size=300) * 0.5
    mu, cov0 = np.zeros(p), np.eye(p) * 0.5
    phi_true = np.array([0.4, -0.3])
    pa = _sig(Z @ phi_true + o)
    w = rng.uniform(0.5, 1.5, k)
    w /= w.sum()
    ea, ep = [], []
    for _ in range(1500):
        y = (rng.random(k) < pa).astype(float)
        phi, _ = map_logistic(Z, o, y, mu, cov0)
        ea.append(w @ (y - pa))
        ep.append(_sig(Zt @ phi + ot).mean() - _sig(Zt @ phi_true + ot).mean())
    _, cov = map_logistic(Z, o, pa, mu, cov0)  # the posterior covariance of the expected answers
    st = _sig(Zt @ phi_true + ot)
    g = (st * (1 - st)) @ Zt / len(Zt)
    want = np.cov(ea, ep)[0, 1]
    got = cross_covariance(w, Z, cov, g, pa * (1 - pa))
    assert got == pytest.approx(want, rel=0.25)
    # naive sum
    assert got == pytest.approx(sum(w[i] * (g @ cov @ Z[i]) * pa[i] * (1 - pa[i]) for i in range(k)))


def test_clustered_standard_error_against_naive_sums():
    from routereval.coldstart.study import clustered_se

    rng = np.random.default_rng(3)
    v = rng.normal(size=12)
    assert clustered_se(v, list(range(12))) == pytest.approx(v.std(ddof=1) / np.sqrt(12))  # singletons: the usual SE
    cl = ["a", "a", "b", "b", "b", "c", "c", "d", "d", "d", "d", "e"]
    m = v.mean()
    sums = {c: sum(v[i] - m for i in range(12) if cl[i] == c) for c in set(cl)}
    naive = np.sqrt(sum(x ** 2 for x in sums.values()) * 5 / 4) / 12
    assert clustered_se(v, cl) == pytest.approx(naive)
    assert np.isnan(clustered_se(v, ["a"] * 12))


# --------------------------------------------------------------------------- anchors


def test_allocation_and_clusters_against_naive_versions():
    sizes = np.array([50, 30, 15, 5])
    for k in (1, 7, 10, 33, 100):
        a = allocate(sizes, k)
        assert a.sum() == k and np.all(a <= sizes)
        assert np.all(np.abs(a - k * sizes / sizes.sum()) < 1 + 1e-9)
    rng = np.random.default_rng(0)
    F = np.vstack([rng.normal(loc=c, scale=0.1, size=(40, 2)) for c in ((0, 0), (5, 5), (0, 5))])
    centres, labels = kmeans(F, 3, np.random.default_rng(1))
    assert len(set(labels[:40])) == len(set(labels[40:80])) == len(set(labels[80:])) == 1
    assert len(set(labels)) == 3
    naive = np.argmin(((F[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(labels, naive)
    pos, w = cluster_positions(F, 3, np.random.default_rng(1))
    assert sorted(pos // 40) == [0, 1, 2] and w.sum() == pytest.approx(1.0)
    # item features: distances are RMS differences of predicted probabilities over the models (with floors: 3PL)
    Z, o, Phi = rng.normal(size=(5, 3)), rng.normal(size=5), rng.normal(size=(7, 3))
    c = rng.uniform(0, 0.4, 5)
    for floor, max_models, rows in ((None, 128, range(7)), (c, 128, range(7)), (c, 4, (0, 2, 4, 6))):
        Fe = response_features(Z, o, Phi, floor=floor, max_models=max_models)
        naive = np.empty((5, 5))
        for i in range(5):
            for j in range(5):
                d2 = []
                for mdl in rows:
                    pi, pj = (1 / (1 + np.exp(-(Z[q] @ Phi[mdl] + o[q]))) for q in (i, j))
                    if floor is not None:
                        pi, pj = floor[i] + (1 - floor[i]) * pi, floor[j] + (1 - floor[j]) * pj
                    d2.append((pi - pj) ** 2)
                naive[i, j] = np.sqrt(np.mean(d2))
        np.testing.assert_allclose(np.sqrt(((Fe[:, None] - Fe[None]) ** 2).sum(-1)), naive, atol=1e-9)


def _naive_shrinkage(Y, r, bw):
    n = Y.shape[1]
    agree = [[sum(1 - abs(Y[i, j] - Y[i, l]) for i in range(len(Y))) / len(Y) for l in range(n)] for j in range(n)]
    c = []
    for j in range(n):
        others = [l for l in range(n) if l != j]
        best = max(agree[j][l] for l in others)
        w = {l: np.exp((agree[j][l] - best) / bw) for l in others}
        c.append(sum(w[l] * r[l] for l in others) / sum(w.values()))
    b = sum(rj * cj for rj, cj in zip(r, c)) / sum(cj * cj for cj in c)
    s2 = sum((rj - b * cj) ** 2 for rj, cj in zip(r, c)) / (n - 1)
    t2 = b * b * sum(cj * cj for cj in c) / s2
    return min(1.0, max(0.0, b * max(0.0, 1 - 1 / t2)))


def test_neighbour_correction_against_a_naive_version():
    rng = np.random.default_rng(3)
    k, n_ref = 30, 12
    y = (rng.random(k) < 0.6).astype(float)
    Y = (rng.random((k, n_ref)) < 0.6).astype(float)
    Y[:, :4] = np.where(rng.random((k, 4)) < 0.8, y[:, None], Y[:, :4])  # a family that answers like y
    target = rng.random(n_ref)
    target[:4] = 0.3 + Y[:, :4].mean(axis=0)  # whose estimates all miss by about 0.3

    def est(a):
        return float(a.mean()) * 0.9 + 0.05

    got = neighbour_correction(y, Y, target, est, neighbours=8, bandwidth=0.05)
    agree = [sum(1 - abs(y[i] - Y[i, j]) for i in range(k)) / k for j in range(n_ref)]
    eighth = sorted(agree, reverse=True)[7]
    top = [j for j in range(n_ref) if agree[j] >= eighth - 1e-12]  # the 8 most agreeing, and any tied with the 8th
    assert len(top) >= 8
    w = [np.exp((agree[j] - max(agree)) / 0.05) for j in top]
    resid = [target[j] - est(Y[:, j]) for j in top]
    shrink = _naive_shrinkage(Y[:, top], resid, 0.05)
    naive = shrink * sum(wj * rj for wj, rj in zip(w, resid)) / sum(w)
    assert 0 < shrink <= 1 and got == pytest.approx(naive, abs=1e-12)
    # its standard error: the sampling error of the weighted mean of the weighed residuals, shrunk alike
    wn = np.array(w) / sum(w)
    mean_r = sum(resid) / len(resid)
    sd_r = np.sqrt(sum((rj - mean_r) ** 2 for rj in resid) / (len(resid) - 1))
    naive_se = shrink * np.sqrt(sum(wj ** 2 for wj in wn)) * sd_r
    full = neighbour_correction(y, Y, target, est, neighbours=8, bandwidth=0.05, full_output=True)
    assert full.value == got and full.se == pytest.approx(naive_se, abs=1e-12) and full.se > 0
    # the references' error under the correction: each one's residual less the share of the others' prediction
    agree_top = np.array([[1 - np.mean(np.abs(Y[:, i] - Y[:, j])) for j in top] for i in top])
    loo = []
    for a_, i in enumerate(top):
        others = [b_ for b_ in range(len(top)) if b_ != a_]
        wo = np.array([np.exp((agree_top[a_, b_] - max(agree_top[a_, o] for o in others)) / 0.05) for b_ in others])
        loo.append(resid[a_] - shrink * (wo @ np.array([resid[b_] for b_ in others])) / wo.sum())
    assert full.error_rms == pytest.approx(np.sqrt(np.mean(np.square(loo))), abs=1e-12)
    q = neighbour_correction(y, Y, np.column_stack([target, 2 * target]), lambda a: [est(a), 2 * est(a)],
                             neighbours=8, bandwidth=0.05, full_output=True)
    np.testing.assert_allclose(q.se, [naive_se, 2 * naive_se], atol=1e-12)
    np.testing.assert_allclose(q.error_rms, [full.error_rms, 2 * full.error_rms], atol=1e-12)
    none = neighbour_correction(y, np.zeros((k, 0)), np.zeros(0), est, full_output=True)
    assert (none.value, none.se, none.error_rms) == (0.0, 0.0, 0.0)
    two = neighbour_correction(y, Y[:, :2], target[:2], est, full_output=True)  # too few to correct: the residuals
    assert two.value == 0.0 and two.error_rms == pytest.approx(np.sqrt(np.mean((target[:2] - [est(Y[:, 0]), est(Y[:, 1])]) ** 2)))
    # q sets of targets at once: one correction per set, the same weights
    both = neighbour_correction(y, Y, np.column_stack([target, 2 * target]), lambda a: [est(a), 2 * est(a)],
                                neighbours=8, bandwidth=0.05)
    np.testing.assert_allclose(both, [naive, 2 * naive], atol=1e-12)
    assert neighbour_correction(y, np.zeros((k, 0)), np.zeros(0), est) == 0.0
    with pytest.raises(InputError, match="references"):
        neighbour_correction(y, Y[:-1], target, est)


def test_neighbour_correction_does_not_depend_on_the_order_of_the_references():
    """Binary answers on few anchors tie often: every reference tied with the last weighed one is weighed, so
    shuffling the references (pool first, or corpus order) leaves the correction as it is."""
    from routereval.coldstart.neighbours import MAX_TIED, most_agreeing

    rng = np.random.default_rng(5)
    k, n_ref = 20, 300
    y = (rng.random(k) < 0.6).astype(float)
    Y = (rng.random((k, n_ref)) < 0.6).astype(float)
    target = rng.random(n_ref) * 0.2 + Y.mean(axis=0)

    def est(a):
        return float(a.mean())

    got = neighbour_correction(y, Y, target, est, neighbours=20)
    for perm in (rng.permutation(n_ref), np.arange(n_ref)[::-1]):
        assert neighbour_correction(y, Y[:, perm], target[perm], est, neighbours=20) == pytest.approx(got, abs=1e-12)
    a = 1 - np.abs(Y - y[:, None]).mean(axis=0)
    top = most_agreeing(a, 20)
    cut = np.sort(a)[::-1][19]
    assert len(top) > 20 and set(top) == set(np.flatnonzero(a >= cut)) and a[top].min() == cut  # ties kept
    assert list(a[top]) == sorted(a[top], reverse=True)
    assert len(most_agreeing(np.zeros(500), 20)) == MAX_TIED * 20  # all tied: capped
    # more tied than the cap: the tied kept are chosen by the references' content, so no order changes the correction
    Y2 = (rng.random((4, n_ref)) < 0.5).astype(float)   # 4 anchors: 5 agreement values for 300 references
    t2 = rng.random(n_ref)
    y2 = np.array([1.0, 0.0, 1.0, 0.0])
    a2 = 1 - np.abs(Y2 - y2[:, None]).mean(axis=0)
    assert np.sum(a2 >= np.sort(a2)[::-1][19]) > MAX_TIED * 20  # the cap binds
    got2 = neighbour_correction(y2, Y2, t2, est, neighbours=20)
    for perm in (rng.permutation(n_ref), np.arange(n_ref)[::-1]):
        assert neighbour_correction(y2, Y2[:, perm], t2[perm], est, neighbours=20) == pytest.approx(got2, abs=1e-12)
    assert list(most_agreeing(np.array([0.2, 0.9]), 20)) == [1, 0]


def test_neighbour_correction_takes_the_luck_a_family_shares_and_ignores_strangers():
    # a family answered the anchors as the new model did (the same luck) and the plain anchor mean misses
    # their known means by the same amount as the new model's; strangers' residuals are noise
    rng = np.random.default_rng(0)
    k = 60
    y = (rng.random(k) < 0.7).astype(float)
    family = np.where(rng.random((k, 6)) < 0.95, y[:, None], 1 - y[:, None])
    strangers = (rng.random((k, 30)) < 0.5).astype(float)

    def plain(a):
        return float(a.mean())

    fam_target = family.mean(axis=0) - 0.08   # the family is 0.08 below its anchor mean ...
    true = plain(y) - 0.08                    # ... and so is the new model
    noise = strangers.mean(axis=0) + rng.normal(0, 0.02, 30)  # the estimator's usual error
    corr = neighbour_correction(y, np.column_stack([family, strangers]), np.r_[fam_target, noise], plain)
    assert abs(plain(y) + corr - true) < 0.5 * abs(plain(y) - true)
    # strangers alone: their residuals do not predict one another, so (almost) nothing is applied
    alone = neighbour_correction(y, strangers, noise, plain)
    top_mean = abs(np.mean(noise - strangers.mean(axis=0)))
    assert abs(alone) < 0.01 and abs(alone) <= top_mean + 0.01
    z = NormalDist().inv_cdf(0.975)   # the interval is centre +- z se at the default level 0.95
    est = MeanEstimate(mean=plain(y), low=plain(y) - z * 0.05, high=plain(y) + z * 0.05, se=0.05, anchor_mean=None,
                       pirt=plain(y), lam=0.0, n_anchors=k)
    moved = est.corrected(corr)
    assert moved.mean == pytest.approx(plain(y) + corr) and moved.correction == corr
    assert moved.high - moved.low == pytest.approx(2 * z * 0.05) and moved.corrected(0.0).mean == pytest.approx(est.mean)
    # a correction past a bound: the estimate at the bound, the interval reaching inside (never a point)
    past = est.corrected(5.0)
    assert (past.low, past.mean, past.high) == pytest.approx((1 - z * 0.05, 1.0, 1.0))
    assert est.corrected(-5.0).high == pytest.approx(z * 0.05) and est.corrected(-5.0).mean == 0.0
    # the correction's own standard error widens the interval in quadrature
    wide = est.corrected(0.01, se=0.05)
    assert wide.se == pytest.approx(0.05 * np.sqrt(2)) and wide.high - wide.low == pytest.approx(2 * z * 0.05 * np.sqrt(2))
    assert wide.mean == pytest.approx(plain(y) + 0.01)
    # the references' error under the correction is a floor: where it exceeds the model-based error, it sets the width
    assert est.corrected(0.01, se=0.0, error_rms=0.02).se == pytest.approx(0.05)
    far = est.corrected(0.01, se=0.0, error_rms=0.1)
    assert far.se == pytest.approx(0.1) and far.high - far.low == pytest.approx(2 * z * 0.1)
    edge = MeanEstimate(mean=0.02, low=0.0, high=0.02 + z * 0.0255, se=0.0255, anchor_mean=None, pirt=0.02, lam=0.0,
                        n_anchors=10)
    up = edge.corrected(0.05)  # the bound clipped at 0 does not narrow the moved interval
    assert (up.low, up.mean, up.high) == pytest.approx((0.07 - z * 0.0255, 0.07, 0.07 + z * 0.0255))
    # a model-based se of 0 (every target an anchor, a degenerate posterior) is widened by the references too
    point = MeanEstimate(mean=0.5, low=0.5, high=0.5, se=0.0, anchor_mean=None, pirt=0.5, lam=0.0, n_anchors=10)
    floored = point.corrected(0.01, se=0.0, error_rms=0.03)
    assert floored.se == pytest.approx(0.03) and (floored.low, floored.high) == pytest.approx((0.51 - z * 0.03, 0.51 + z * 0.03))
    # the level is kept: a 0.5 interval is narrower around the same standard error
    half = replace(point, level=0.5).corrected(0.0, error_rms=0.03)
    assert half.high - half.low == pytest.approx(2 * NormalDist().inv_cdf(0.75) * 0.03)


def test_fisher_design_is_a_greedy_prefix_and_beats_random_anchors():
    # the A-optimal criterion the design minimises (the population's mean posterior variance of the
    # predicted mean score), computed naively for the design and for random anchor sets of the same size
    rng = np.random.default_rng(1)
    n, p, m = 400, 3, 40
    Z = np.column_stack([rng.normal(size=(n, p - 1)) * rng.uniform(0.2, 2.0, (n, 1)), np.ones(n)])
    o = rng.normal(0, 2.5, n)
    Phi = np.column_stack([rng.normal(size=(m, p - 1)), rng.normal(0, 1, m)])
    cov = np.cov(Phi, rowvar=False) + 1e-3 * np.eye(p)

    def criterion(pos):
        total = 0.0
        for phi in Phi:
            s = _sig(Z @ phi + o)
            g = (s * (1 - s)) @ Z / n
            prec = np.linalg.inv(cov) + (Z[pos] * (s[pos] * (1 - s[pos]))[:, None]).T @ Z[pos]
            total += g @ np.linalg.solve(prec, g)
        return total / m

    d20 = design_positions(Z, o, Phi, 20, np.random.default_rng(5), prior_cov=cov, population=m, share=1.0)
    d10 = design_positions(Z, o, Phi, 10, np.random.default_rng(5), prior_cov=cov, population=m, share=1.0)
    np.testing.assert_array_equal(d20[:10], d10)
    assert len(np.unique(d20)) == 20
    randoms = [criterion(rng.choice(n, 20, replace=False)) for _ in range(20)]
    assert criterion(d20) < min(randoms)
    # a seeded share of the candidates: deterministic by seed, another seed another design
    a = design_positions(Z, o, Phi, 20, np.random.default_rng(7), prior_cov=cov)
    np.testing.assert_array_equal(a, design_positions(Z, o, Phi, 20, np.random.default_rng(7), prior_cov=cov))
    assert not np.array_equal(np.sort(a), np.sort(design_positions(Z, o, Phi, 20, np.random.default_rng(8),
                                                                   prior_cov=cov)))


@pytest.fixture(scope="module")
def fitted(world_corpus):
    from routereval.pools import make_split

    bench = open_corpus(world_corpus)["mmlu"]
    split = make_split(bench)
    X = np.asarray(bench.embeddings["synth"])
    S = np.asarray(bench.scores, dtype=np.float64).T
    r = make_router("irt", dim=4, random_state=0, max_epochs=40).fit(X[split.train], S[split.train][:, 1:],
                                                                   X_val=X[split.val], Y_val=S[split.val][:, 1:])
    return bench, split, X, S, r


def test_calibrate_prompts_is_the_studys_calibration_and_improves_the_estimate(fitted):
    """The public calibration is calibrate_items / calibrate_more on the router's design; estimate_mean with it
    misses a held-out model's test mean by less than without it (README's Python recipe)."""
    from routereval.coldstart import calibrate_prompts as exported

    bench, split, X, S, r = fitted
    assert exported is calibrate_prompts
    Y = S[:, 1:]  # the router's columns: models 1..39
    cal = calibrate_prompts(r, X[split.train], Y[split.train])
    Z, o = r.model_design(X[split.train])
    naive = calibrate_items(Z, o, r.model_vectors(), Y[split.train])
    np.testing.assert_allclose(cal.delta, naive.delta, rtol=1e-12)
    assert cal.spread == naive.spread > 0
    test = calibrate_prompts(r, X[split.test], Y[split.test], like=cal)
    Zs, os_ = r.model_design(X[split.test])
    np.testing.assert_allclose(test.delta, calibrate_more(cal, Zs, os_, r.model_vectors(), Y[split.test]), rtol=1e-12)
    assert test.spread == cal.spread
    delta = np.zeros(len(X))
    delta[split.train], delta[split.test] = cal.delta, test.delta
    plain, calibrated = [], []
    truth = S[split.test, 0].mean()
    for seed in range(20):
        a = select_anchors(bench, 60, "random", candidates=split.train, random_state=seed)
        y = S[a.index, 0]
        plain.append(abs(estimate_mean(r, X[a.index], y, X[split.test], weights=a.weights).mean - truth))
        calibrated.append(abs(estimate_mean(r, X[a.index], y, X[split.test], weights=a.weights,
                                            anchor_delta=delta[a.index], target_delta=test.delta,
                                            spread=cal.spread).mean - truth))
    assert np.mean(calibrated) < np.mean(plain) - 0.002, (np.mean(calibrated), np.mean(plain))
    # bad input: one line each
    for Y_bad, msg in ((Y[split.train][:, :5], r"Y must have shape \(\d+, 39\)"),
                       (Y[split.train] * 2, r"Y must hold scores in \[0, 1\]")):
        with pytest.raises(InputError, match=msg):
            calibrate_prompts(r, X[split.train], Y_bad)
    with pytest.raises(InputError, match="X holds no prompt"):
        calibrate_prompts(r, X[:0], Y[:0])
    with pytest.raises(InputError, match="like must be the ItemCalibration of other prompts"):
        calibrate_prompts(r, X[split.test], Y[split.test], like=0.5)
    # another router's calibration (mf; or irt fitted again) is refused; this router's, after a model was added
    # (a column more), is still its own
    other = make_router("mf", dim=4, random_state=0, max_epochs=5).fit(X[split.train], Y[split.train])
    refit = make_router("irt", dim=4, random_state=1, max_epochs=5).fit(X[split.train], Y[split.train])
    for router in (other, refit):
        with pytest.raises(InputError, match="like is a calibration under other model vectors"):
            calibrate_prompts(r, X[split.test], Y[split.test], like=calibrate_prompts(router, X[split.train],
                                                                                      Y[split.train]))
    import copy

    grown = copy.deepcopy(r).add_model("new", X[split.train][:50], S[split.train][:50, 0])
    more = calibrate_prompts(grown, X[split.test], np.column_stack([Y[split.test], S[split.test, 0]]), like=cal)
    assert more.source == cal.source and np.isfinite(more.delta).all()
    from dataclasses import replace as _replace

    with pytest.raises(InputError, match="like is a calibration under other model vectors"):  # not "m:digest"
        calibrate_prompts(r, X[split.test], Y[split.test], like=_replace(cal, source="abc"))
    # a missing answer (NaN) is left out of its prompt's calibration, as the study's answers with gaps are
    Y_gap = Y[split.train].copy()
    Y_gap[0, :20] = np.nan
    gap = calibrate_prompts(r, X[split.train], Y_gap)
    assert np.isfinite(gap.delta).all() and gap.delta[0] != pytest.approx(cal.delta[0], abs=1e-6)
    knn = make_router("knn").fit(X[split.train], Y[split.train])
    with pytest.raises(CapabilityError, match="no per-model parameter vector"):
        calibrate_prompts(knn, X[split.train], Y[split.train])


@pytest.mark.parametrize("method", METHODS)
def test_anchors_are_deterministic_by_seed_and_never_test_prompts(fitted, method):
    bench, split, X, S, r = fitted
    kw = dict(X=X, candidates=split.train, subsets=bench.subset_codes(), answers=S[:, 0])
    a = select_anchors(r, 40, method, random_state=3, **kw)
    b = select_anchors(r, 40, method, random_state=3, **kw)
    c = select_anchors(r, 40, method, random_state=4, **kw)
    np.testing.assert_array_equal(a.index, b.index)
    # another seed, other anchors (adaptive: only its first pick is drawn, so at least another order)
    assert not np.array_equal(a.index if method == "adaptive" else np.sort(a.index),
                              c.index if method == "adaptive" else np.sort(c.index))
    assert len(np.unique(a.index)) == 40 and set(a.index) <= set(split.train.tolist())
    assert not set(a.index) & set(split.test.tolist()) and not set(a.index) & set(split.val.tolist())
    if method == "adaptive":
        assert a.weights is None
        np.testing.assert_array_equal(a.answers, S[a.index, 0])
    elif method == "fisher":  # a design, not a probability sample: no weights
        assert a.weights is None and a.answers is None
    else:
        assert a.weights.sum() == pytest.approx(1.0) and np.all(a.weights > 0)
    if method in ("random", "stratified"):  # a benchmark is enough; its train split is the default candidate set
        np.testing.assert_array_equal(select_anchors(bench, 40, method, random_state=3).index, a.index)


def test_stratified_anchors_from_a_router_need_the_subsets(fitted):
    """With a router as the source and no subsets= there is one stratum: random anchors under another name. It is
    refused in one line (a user trial got random anchors silently)."""
    bench, split, X, S, r = fitted
    with pytest.raises(ParameterError, match="stratified anchors need the subsets: pass the benchmark"):
        select_anchors(r, 30, "stratified", X=X, candidates=split.train)
    one = select_anchors(r, 30, "stratified", X=X, candidates=split.train, subsets=np.zeros(len(X), dtype=int))
    assert len(one.index) == 30  # one stratum asked for, explicitly: taken


def test_stratified_anchors_follow_the_subsets(fitted):
    bench, split, X, S, r = fitted
    a = select_anchors(bench, 40, "stratified", random_state=0)
    codes = bench.subset_codes()
    counts = np.bincount(codes[a.index], minlength=4)
    sizes = np.bincount(codes[split.train], minlength=4)
    assert counts.sum() == 40 and np.all(np.abs(counts - 40 * sizes / sizes.sum()) < 1)


def test_stratified_with_fewer_anchors_than_subsets_varies_the_subsets_by_seed():
    strata = np.repeat(np.arange(57), 10)  # MMLU's 57 subjects, k below that
    drawn = []
    for seed in range(4):
        pos, w = stratified_positions(strata, 25, np.random.default_rng(seed))
        assert len(pos) == 25 and len(set(strata[pos])) == 25 and w.sum() == pytest.approx(1.0)
        drawn.append(frozenset(strata[pos].tolist()))
    assert len(set(drawn)) == 4 and drawn[0] != frozenset(range(25))  # not always the first subsets
    rng = np.random.default_rng(0)
    for k in (1, 7, 33, 100):
        a = allocate(np.array([50, 30, 15, 5]), k, rng)
        assert a.sum() == k and np.all(np.abs(a - k * np.array([50, 30, 15, 5]) / 100) < 1)


def test_cluster_anchors_are_k_even_with_tied_prompts():
    rng = np.random.default_rng(0)
    for F, k in ((np.repeat(rng.normal(size=(20, 3)), 5, axis=0), 30),  # 20 distinct rows, 30 anchors
                 (np.vstack([np.zeros((50, 3)), rng.normal(size=(50, 3))]), 60)):
        pos, w = cluster_positions(F, k, np.random.default_rng(1))
        assert len(pos) == k and len(set(pos.tolist())) == k and w.sum() == pytest.approx(1.0)


def test_adaptive_one_answer_at_a_time_equals_the_simulation(fitted):
    bench, split, X, S, r = fitted
    asked = []

    def answer(i):
        asked.append(i)
        return S[i, 0]

    sim = select_anchors(r, 25, "adaptive", X=X, candidates=split.train, answers=S[:, 0], random_state=1)
    live = select_anchors(r, 25, "adaptive", X=X, candidates=split.train, answers=answer, random_state=1)
    np.testing.assert_array_equal(sim.index, live.index)
    assert asked == live.index.tolist()
    aimed = select_anchors(r, 25, "adaptive", X=X, candidates=split.train, answers=S[:, 0], target=split.test,
                           random_state=1)
    t = adaptive_test(r, X, candidates=split.train, target=split.test, random_state=1)[0]
    for _ in range(25):
        j = t.next()
        t.tell(j, S[split.train[j], 0])
    np.testing.assert_array_equal(aimed.index, split.train[np.asarray(t.asked)])
    assert not set(aimed.index.tolist()) & set(split.test.tolist())
    # no target: the candidates' mean, as fisher's default (a test of the whole vector, D-optimal, is built by hand)
    at_candidates = select_anchors(r, 25, "adaptive", X=X, candidates=split.train, answers=S[:, 0],
                                   target=split.train, random_state=1)
    np.testing.assert_array_equal(sim.index, at_candidates.index)
    whole = AdaptiveTest(*r.model_design(X[split.train]), *population_prior(r.model_vectors()), random_state=1)
    for _ in range(25):
        j = whole.next()
        whole.tell(j, S[split.train[j], 0])
    assert not np.array_equal(split.train[np.asarray(whole.asked)], sim.index)
    t = adaptive_test(r, X, candidates=split.train, random_state=1)[0]
    i = t.next()
    assert t.next() == i  # asking again before answering gives the same prompt
    t.tell(i, 1.0)
    with pytest.raises(Exception, match="already asked"):
        t.tell(i, 0.0)
    # a plan of the next 8: the next prompt first, then distinct unasked ones; the test itself unchanged
    nxt, cov = t.next(), t.cov.copy()
    plan = t.plan(8)
    assert plan[0] == nxt and len(set(plan.tolist())) == 8 and i not in plan.tolist()
    assert t.next() == nxt and np.array_equal(t.cov, cov) and t.asked == [i]
    # against a naive plan: each planned prompt's expected information p(1-p) z z' added to the precision
    import copy

    naive, want = copy.deepcopy(t), [nxt]
    for _ in range(7):
        j = want[-1]
        naive._used[j] = True
        z = naive.Z[j]
        p = 1 / (1 + np.exp(-(z @ naive.phi + naive.offset[j])))
        Sz = naive.cov @ z
        naive.cov = naive.cov - p * (1 - p) * np.outer(Sz, Sz) / (1 + p * (1 - p) * z @ Sz)
        naive._quad = np.einsum("ij,jk,ik->i", naive.Z, naive.cov, naive.Z)
        want.append(int(np.argmax(naive.information())))
    assert plan.tolist() == want
    a = adaptive_test(r, X, candidates=split.train, random_state=1)[0]
    assert len(a.plan(len(split.train) + 5)) == len(split.train)  # no more than there are
    # adaptive_test: the test select_anchors runs, to drive by hand over rows of X
    test, rows = adaptive_test(r, X, candidates=split.train, random_state=1)
    np.testing.assert_array_equal(rows, split.train)
    for _ in range(25):
        j = test.next()
        test.tell(j, S[rows[j], 0])
    np.testing.assert_array_equal(rows[np.asarray(test.asked)], sim.index)
    # replay: answers in any row order leave the test as the run that asked them, bit for bit (told in the file's
    # order, warm-started Newton steps and rank-one updates would leave it elsewhere)
    from routereval.coldstart.saved import replay

    shuffled = np.random.default_rng(0).permutation(test.asked)
    again, _ = adaptive_test(r, X, candidates=split.train, random_state=1)
    replay(again, list(shuffled), S[rows[shuffled], 0])
    assert again.asked == test.asked and np.array_equal(again.phi, test.phi) and again.next() == test.next()
    naive, _ = adaptive_test(r, X, candidates=split.train, random_state=1)
    for j in shuffled:
        naive.tell(int(j), S[rows[j], 0])
    assert not np.array_equal(naive.phi, test.phi)
    for bad, says in ((np.r_[split.train[:3], split.train[:1]], "be distinct integer indices"),
                      (np.array([0.5]), "be distinct integer indices"),
                      (np.array([len(X)]), f"index the {len(X)} prompts .*got values from {len(X)} to {len(X)}")):
        with pytest.raises(InputError, match=f"candidates must {says}"):
            adaptive_test(r, X, candidates=bad)


def test_a_hand_built_adaptive_test_checks_its_arrays():
    Z, o, mu, cov = np.ones((6, 2)), np.zeros(6), np.zeros(2), np.eye(2)
    AdaptiveTest(Z, o, mu, cov, target=(np.ones((3, 2)), np.zeros(3)), target_floor=np.full(3, 0.25))
    for args, kw, msg in (((np.ones(6), o, mu, cov), {}, r"Z must be a 2-D array; got shape \(6,\)"),
                          ((Z, np.zeros(5), mu, cov), {}, r"offset must have shape \(6,\); got \(5,\)"),
                          ((Z, o, np.zeros(3), cov), {}, r"prior_mean must have shape \(2,\)"),
                          ((Z, o, mu, np.eye(3)), {}, r"prior_cov must have shape \(2, 2\)"),
                          ((Z, o, mu, cov), dict(floor=np.zeros(2)), r"floor must have shape \(6,\)"),
                          ((Z, o, mu, cov), dict(target=np.ones((3, 2))), "target must be a pair"),
                          ((Z, o, mu, cov), dict(target=(np.ones((3, 4)), np.zeros(3))),
                           r"target\[0\] must have shape \(any, 2\)"),
                          ((Z, o, mu, cov), dict(target_floor=np.zeros(3)), "without a target"),
                          ((Z, o, mu, cov), dict(n_first=0), "n_first must be an int >= 1"),
                          ((Z, np.full(6, np.nan), mu, cov), {}, "offset must be finite"),
                          ((Z, o, "a", cov), {}, "prior_mean must be a numeric array")):
        with pytest.raises(InputError, match=msg):
            AdaptiveTest(*args, **kw)


def test_irt_and_adaptive_need_a_router_with_the_capability(fitted):
    bench, split, X, S, r = fitted
    with pytest.raises(Exception, match="needs a fitted router"):
        select_anchors(bench, 10, "irt")
    knn = make_router("knn").fit(X[split.train], S[split.train][:, 1:])
    with pytest.raises(CapabilityError, match="no per-model parameter vector"):
        select_anchors(knn, 10, "irt", X=X, candidates=split.train)
    with pytest.raises(Exception, match=r"k \(--k\) = 5000 anchors asked for, .* expected at most"):
        select_anchors(r, 5000, "random", X=X, candidates=split.train)
    # per-row arrays of the wrong length, targets out of range and a bad seed: one line each, not numpy's
    n = len(X)
    for kw, msg in ((dict(subsets=np.zeros(3)), "subsets must have one entry per row"),
                    (dict(delta=np.zeros(n + 1)), r"delta \(one entry per row, \d+\) must have shape"),
                    (dict(calibration=(np.zeros(n), np.ones(n))), "calibration must be"),
                    (dict(target=np.array([n + 5])), "target must be int indices"),
                    (dict(random_state="x"), "random_state must be"),
                    (dict(subsets="abc"), r"subsets must have one entry per row .* got shape \(\)"),
                    (dict(delta=np.full(n, np.inf)), r"delta must be finite or NaN \(not calibrated\); it holds inf")):
        with pytest.raises(InputError, match=msg):
            select_anchors(r, 10, "irt", X=X, candidates=split.train, **kw)
    # NaN: a difficulty not calibrated, the text's alone, as 0 is (estimate_mean's target_delta takes NaN too)
    some = np.where(np.arange(n) % 3 == 0, np.nan, np.linspace(-1, 1, n))
    for method in ("irt", "fisher"):
        assert select_anchors(r, 10, method, X=X, candidates=split.train, delta=some).index.tolist() == \
            select_anchors(r, 10, method, X=X, candidates=split.train, delta=np.nan_to_num(some)).index.tolist()
    # adaptive answers that are not scores: one line naming the row, not float()'s error
    for answers, msg in ((lambda i: None, r"answer on row \d+ is None; expected a score in \[0, 1\] \(from answers\(row\)\)"),
                         (lambda i: "yes", "is 'yes'; expected a score"),
                         (np.full(n, 2.0), r"is 2.0; expected a score in \[0, 1\] \(from answers\[row\]\)"),
                         ("abc", "answers must be one score per row of X .* got non-numeric str")):
        with pytest.raises(InputError, match=msg):
            select_anchors(r, 5, "adaptive", X=X, candidates=split.train, answers=answers)
    t = adaptive_test(r, X, candidates=split.train)[0]
    for i, score, msg in ((1.7, 1.0, "candidate 1.7 must be the int position"), (0, "yes", "must be a score in"),
                          (len(split.train), 1.0, "must be the int position of a candidate, 0 to")):
        with pytest.raises(InputError, match=msg):
            t.tell(i, score)
    t.tell(np.int64(3), 1.0)  # any candidate not asked yet, numpy ints included
    assert t.asked == [3]
    with pytest.raises(InputError, match="candidate 3 was already asked"):
        t.tell(3, 0.0)
    with pytest.raises(ParameterError, match="random_state must be"):
        adaptive_test(r, X, candidates=split.train, random_state="x")
    t.tell(5, True)  # a right or wrong answer as a bool
    assert t.answers[-1] == 1.0
    right = S[:, 0] >= 0.5
    by_bool = select_anchors(r, 5, "adaptive", X=X, candidates=split.train, answers=lambda i: right[i])
    by_float = select_anchors(r, 5, "adaptive", X=X, candidates=split.train, answers=right.astype(float))
    np.testing.assert_array_equal(by_bool.index, by_float.index)


def test_estimate_mean_checks_its_options(fitted):
    bench, split, X, S, r = fitted
    a = split.train[:20]
    for kw, msg in ((dict(spread=-1.0), "spread must be the calibration's variance"), (dict(spread="x"), "spread must"),
                    (dict(level="0.9"), r"level must be a number in \(0, 1\)"), (dict(level=1.0), "level must"),
                    (dict(anchor_delta=np.full(20, np.nan)), "anchor_delta .* must be finite")):
        with pytest.raises(InputError, match=msg):
            estimate_mean(r, X[a], S[a, 0], X[split.test], **kw)


# --------------------------------------------------------------------------- add_model on routers


def test_select_anchors_with_a_flat_3pl_calibration_equals_the_logistic_one(fitted):
    """calibration=(floor 0, slope 1, delta) is the logistic model with offsets delta: the same irt and fisher anchors."""
    bench, split, X, S, r = fitted
    delta = np.random.default_rng(0).normal(0, 0.5, len(X))
    flat = (np.zeros(len(X)), np.ones(len(X)), delta)
    for method, target in (("irt", None), ("fisher", split.test)):
        kw = dict(X=X, candidates=split.train, target=target, random_state=2)
        a = select_anchors(r, 30, method, delta=delta, **kw)
        np.testing.assert_array_equal(select_anchors(r, 30, method, calibration=flat, **kw).index, a.index)
    floors = (np.full(len(X), 0.25), np.ones(len(X)), delta)  # guessing floors change the design
    b = select_anchors(r, 30, "fisher", X=X, candidates=split.train, target=split.test, calibration=floors)
    assert len(b.index) == 30 and set(b.index) <= set(split.train.tolist())


def test_bad_arguments_to_the_python_api_are_input_errors(fitted):
    bench, split, X, S, r = fitted
    a = select_anchors(r, 20, "irt", X=X, candidates=split.train)
    with pytest.raises(InputError, match="weights must be 20 positive design weights"):
        estimate_mean(r, X[a.index], S[a.index, 0], X[split.test], weights=a.weights[:5])
    with pytest.raises(InputError, match=r"weights must be finite and > 0 \(the anchors' design weights; only their "
                                         r"ratios count\); got -0.0"):
        estimate_mean(r, X[a.index], S[a.index, 0], X[split.test], weights=-a.weights)
    with pytest.raises(InputError, match="X_target: X has 3 features .*expected"):
        estimate_mean(r, X[a.index], S[a.index, 0], X[split.test][:, :3])
    with pytest.raises(InputError, match="X_anchor: X has 3 features"):
        estimate_mean(r, X[a.index][:, :3], S[a.index, 0], X[split.test])
    cal = calibrate_prompts(r, X[split.train], S[split.train][:, 1:])
    with pytest.raises(InputError) as e:
        estimate_mean(r, X[a.index], S[a.index, 0], X[split.test], spread=cal)
    assert str(e.value).endswith("Got ItemCalibration (pass its .spread).") and "array" not in str(e.value)
    with pytest.raises(InputError, match=r"y_anchor must be 20 scores in \[0, 1\]"):
        estimate_mean(r, X[a.index], S[a.index, 0] * 2, X[split.test])
    y_nan = S[a.index, 0].astype(float)
    y_nan[3] = np.nan
    with pytest.raises(InputError, match="with a NaN"):
        estimate_mean(r, X[a.index], y_nan, X[split.test])
    with pytest.raises(InputError, match="X_target holds no prompt"):
        estimate_mean(r, X[a.index], S[a.index, 0], X[split.test][:0])
    with pytest.raises(InputError, match="observed must hold"):
        estimate_mean(r, X[a.index], S[a.index, 0], X[split.test], observed=np.full(len(split.test), 99))
    with pytest.raises(InputError, match="references must be a tuple"):
        estimate_mean(r, X[a.index], S[a.index, 0], X[split.test], references=[S[a.index][:, 1:]])
    with pytest.raises(InputError, match="candidates must index the"):
        select_anchors(r, 5, "irt", X=X, candidates=np.array([-1, -2, 3, 4, 5, 6]))
    with pytest.raises(InputError, match="candidates must index the"):
        select_anchors(bench, 5, "random", candidates=np.arange(bench.n_prompts - 2, bench.n_prompts + 5))
    with pytest.raises(InputError, match="answers must be one score per row of X"):
        select_anchors(r, 5, "adaptive", X=X, candidates=split.train, answers=S[:10, 0])
    # the references: finite answers of the anchors' shape, one known mean each, all in [0, 1]
    Y_ref = S[a.index][:, 1:].astype(float)
    Y_nan = Y_ref.copy()
    Y_nan[0, 0] = np.nan
    means = S[split.test][:, 1:].mean(axis=0)
    for refs, says in (((Y_nan, means), "references' answers Y_ref must be finite"),
                       ((Y_ref, np.column_stack([means, means])), r"references' known means target_ref must have shape"),
                       ((Y_ref[:5], means), r"references' answers Y_ref must have shape \(20, any\)"),
                       ((Y_ref * 3, means), r"references must hold answers and known means in \[0, 1\]")):
        with pytest.raises(InputError, match=says):
            estimate_mean(r, X[a.index], S[a.index, 0], X[split.test], references=refs)
    # a calibration's values: finite, floors in [0, 1) (slopes of any sign: a miskeyed prompt's is negative)
    n = len(X)
    for cal, says in (((np.full(n, np.nan), np.ones(n), np.zeros(n)), "calibration's floor must be finite"),
                      ((np.zeros(n), np.full(n, np.inf), np.zeros(n)), "calibration's slope must be finite"),
                      ((np.full(n, 1.2), np.ones(n), np.zeros(n)), r"guessing floors in \[0, 1\)")):
        with pytest.raises(InputError, match=says):
            select_anchors(r, 5, "fisher", X=X, candidates=split.train, calibration=cal)
    # without X or a benchmark, the subsets say how many rows the candidates index
    with pytest.raises(InputError, match="candidates must index the 10 prompts"):
        select_anchors(r, 5, "stratified", candidates=np.arange(100), subsets=np.zeros(10))


def test_append_model_vector_of_the_wrong_size_leaves_the_router_as_it_was(fitted):
    import copy

    r = copy.deepcopy(fitted[4])
    before = {k: np.array(v, copy=True) for k, v in r.state_dict().items() if isinstance(v, np.ndarray)}
    p = r.model_vectors().shape[1]
    for size in (p + 3, p - 1):
        with pytest.raises(InputError, match=f"has {p} values, got {size}"):
            r.append_model_vector(np.zeros(size), "bad")
        after = r.state_dict()
        assert all(np.array_equal(after[k], v) for k, v in before.items()) and r.n_models_ == fitted[4].n_models_


def test_add_model_then_route_equals_the_router_with_that_model(fitted):
    """Exact case: answers that are model j's own predicted probabilities, with a flat prior, give back model j."""
    bench, split, X, S, r = fitted
    for name in ("irt", "mf"):
        base = make_router(name, dim=4, random_state=0, max_epochs=30).fit(X[split.train], S[split.train][:, 1:])
        j = 3
        P = base.predict_scores(X[split.train])[:, j]
        added = make_router(name).load_state_dict(base.state_dict()).add_model("copy", X[split.train], P,
                                                                                 prior_scale=1e8)
        got = added.predict_scores(X[split.test])
        np.testing.assert_allclose(got[:, -1], got[:, j], atol=2e-4)
        sub = base.select_models(np.r_[np.arange(j), np.arange(j + 1, base.n_models_)])
        again = sub.add_model("copy", X[split.train], P, prior_scale=1e8)
        # the pool without j plus its copy routes the test prompts as the pool with j does
        want = np.asarray([*np.arange(j), *np.arange(j + 1, base.n_models_), j])[again.route(X[split.test])]
        assert np.mean(want == base.route(X[split.test])) > 0.99


def test_add_model_weights_are_relative_so_design_weights_weigh_k_answers(fitted):
    """The anchors' design weights sum to 1; passed to add_model they weigh the answers relative to one another,
    as estimate_mean takes them (they once counted 100 answers as one, leaving a population-average model)."""
    bench, split, X, S, r = fitted
    a = select_anchors(r, 100, "irt", X=X, candidates=split.train, random_state=0)
    y = S[a.index, 0]
    vec = lambda **kw: make_router("irt").load_state_dict(r.state_dict()).add_model(  # noqa: E731
        "new", X[a.index], y, **kw).model_vectors()[-1]
    np.testing.assert_allclose(vec(weights=a.weights), vec(weights=a.weights * 37.0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(vec(weights=np.full(100, 0.01)), vec(), rtol=1e-10, atol=1e-12)
    for extreme in (1e307, 5e-324):  # their sum would overflow, or their inverse: still relative weights
        np.testing.assert_allclose(vec(weights=np.full(100, extreme)), vec(), rtol=1e-10, atol=1e-12)
    mean_of = lambda v: float(np.mean(1 / (1 + np.exp(-(r.model_design(X[split.test])[0] @ v  # noqa: E731
                                                         + r.model_design(X[split.test])[1])))))
    # a model that answers every anchor right: its column is far above the population's, weighted or not; 100
    # answers weighed as one (the prior 100 times as tight: what the old weights gave) stay near the population
    y = np.ones(100)
    population = mean_of(r.model_vectors().mean(axis=0))
    as_one, weighted, plain = mean_of(vec(prior_scale=0.01)), mean_of(vec(weights=a.weights)), mean_of(vec())
    assert plain - population > 0.1 and abs(weighted - plain) < 0.25 * (plain - population)
    assert as_one - population < 0.5 * (plain - population)


def test_ten_answers_give_a_sensible_model_and_the_estimate_is_close(fitted):
    bench, split, X, S, r = fitted
    P = irt_world()[2]
    true = P[split.test, 0].mean()  # the held-out model's expected test score, from its known parameters
    errs = {}
    for k in (10, 50, 400):
        e = []
        for seed in range(6):
            a = select_anchors(r, k, "random", X=X, candidates=split.train, random_state=seed)
            est = estimate_mean(r, X[a.index], S[a.index, 0], X[split.test], weights=a.weights)
            assert 0 <= est.low <= est.mean <= est.high <= 1
            e.append(abs(est.mean - true))
        errs[k] = float(np.mean(e))
    assert errs[400] < errs[10] and errs[400] < 0.04
    r10 = make_router("irt").load_state_dict(r.state_dict()).add_model("new", X[split.train[:10]], S[split.train[:10], 0])
    p = r10.predict_scores(X[split.test])[:, -1]
    assert np.all((p > 0) & (p < 1)) and 0.05 < p.mean() < 0.95


def test_level_matched_against_a_naive_version_and_the_off_level_trap():
    """An adaptive test tuned to a weak model: every stronger reference answers it at another level and is
    overestimated alike (their residuals predict one another), so unmatched they pull the weak model's estimate
    towards 0 (a trial: 0.17 -> 0.003); matched to its level, only references that answer it as it does count."""
    from routereval.coldstart.neighbours import level_matched

    rng = np.random.default_rng(1)
    k = 100
    y = (rng.random(k) < 0.4).astype(float)                 # the new model answers 40% of its test
    strong = (rng.random((k, 9)) < rng.uniform(0.85, 1.0, 9)).astype(float)  # stronger references: 85-100%
    resid = -0.2 + 0.02 * rng.standard_normal(9)            # each overestimated by about 0.2 on this test
    ok = level_matched(y, strong)
    naive = [abs(strong[:, j].mean() - y.mean()) <= 2 * math.sqrt((np.var(y) + np.var(strong[:, j])) / k)
             for j in range(9)]
    assert ok.tolist() == naive and not ok.any()

    def plain(a):
        return float(a.mean())

    target = strong.mean(axis=0) + resid
    assert neighbour_correction(y, strong, target, plain) < -0.1  # the trap, unmatched
    assert neighbour_correction(y, strong, target, plain, level_match=True) == 0.0
    # a reference at the model's level (a sibling) passes, and its residual is the one taken
    sib = np.where(rng.random(k) < 0.9, y, 1 - y)
    both = np.column_stack([strong, sib, sib, sib])
    t = np.r_[target, [sib.mean() + 0.05] * 3]
    assert level_matched(y, both).tolist() == [False] * 9 + [True] * 3
    assert neighbour_correction(y, both, t, plain, level_match=True) == pytest.approx(
        neighbour_correction(y, both[:, 9:], t[9:], plain), abs=1e-12)


def test_estimate_mean_with_references_adds_their_correction(fitted):
    bench, split, X, S, r = fitted
    tr, te = split.train, split.test
    # (a draw whose learned weight is inside (0, 1): on this world p-IRT fits, and the weight is mostly 0)
    a = select_anchors(r, 60, "random", X=X, candidates=tr, random_state=2)
    y = S[a.index, 0]
    refs = (S[a.index][:, 1:], S[te][:, 1:].mean(axis=0))  # the fitted models: answers on the anchors, test means
    plain = estimate_mean(r, X[a.index], y, X[te], weights=a.weights)
    est = estimate_mean(r, X[a.index], y, X[te], weights=a.weights, references=refs)

    def parts(yy):  # the anchor mean and p-IRT of answers yy: neither depends on the weight that combines them
        e = estimate_mean(r, X[a.index], yy, X[te], weights=a.weights)
        return e.anchor_mean, e.pirt

    # with references, the weight is the least-squares one over the references' own anchor means and p-IRT
    A, P = np.array([parts(refs[0][:, j]) for j in range(refs[0].shape[1])]).T
    lam = float(np.clip(np.sum((P - refs[1]) * (P - A)) / np.sum((P - A) ** 2), 0, 1))
    assert 0 < lam < 1 and est.lam == pytest.approx(lam, abs=1e-12) and plain.lam != pytest.approx(lam)

    def combined(yy):
        a_mean, pirt = parts(yy)
        return lam * a_mean + (1 - lam) * pirt

    expect = neighbour_correction(y, *refs, combined)
    assert plain.correction == 0.0 and est.correction == pytest.approx(expect, abs=1e-12)
    assert est.mean == pytest.approx(float(np.clip(combined(y) + expect, 0, 1)), abs=1e-12)
    # anchors of an adaptive test: the references matched to the model's level
    ad = estimate_mean(r, X[a.index], y, X[te], references=refs, adaptive=True)
    expect = neighbour_correction(y, *refs, lambda yy: estimate_mean(r, X[a.index], yy, X[te]).mean, level_match=True)
    assert ad.correction == pytest.approx(expect, abs=1e-12)
    with pytest.raises(InputError, match="adaptive must be True"):
        estimate_mean(r, X[a.index], y, X[te], references=refs, adaptive="yes")


def test_routers_without_the_capability_say_so_in_one_line(fitted):
    bench, split, X, S, r = fitted
    from routereval.routers import available_routers

    capable = {n for n, c in available_routers().items() if c.supports_add_model}
    assert {"mf", "irt", "linear", "mlp"} <= capable and "knn" not in capable
    knn = make_router("knn").fit(X[split.train], S[split.train][:, 1:])
    with pytest.raises(CapabilityError) as e:
        knn.add_model("new", X[:5], S[:5, 0])
    assert "\n" not in str(e.value) and "knn" in str(e.value)


# --------------------------------------------------------------------------- the study and the CLI


def test_study_cli_writes_the_output_contract(world_corpus, tmp_path, cli):
    out = tmp_path / "study"
    res = cli("coldstart", world_corpus, "--benchmark", "mmlu", "--router", "irt", "--param", "dim=4",
              "--param", "max_epochs=30", "--m", "8", "--group", "random", "--anchors", "10,50",
              "--models", "3", "--seeds", "2", "--pretrain", "pool,corpus", "--out", out, "--json")
    assert res.code == 0, res.err
    doc = res.json()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["coldstart.csv", "coldstart.json", "summary.md", "error_vs_k.png", "error_vs_k.svg", "mu_vs_k.png",
         "mu_vs_k.svg"])
    with open(out / "coldstart.csv") as f:
        rows = list(csv.DictReader(f))
    # one row per pretrain x model x method x k x seed
    assert len(rows) == 2 * 3 * len(METHODS) * 2 * 2
    assert {r["pretrain"] for r in rows} == {"pool", "corpus"} and {r["method"] for r in rows} == set(METHODS)
    assert len({(r["pretrain"], r["model"], r["method"], r["k"], r["seed"]) for r in rows}) == len(rows)
    for r in rows:
        assert abs(float(r["abs_error"]) - abs(float(r["estimate"]) - float(r["true_mean"]))) < 1e-5
        assert float(r["low"]) <= float(r["estimate"]) <= float(r["high"])
        # the estimate is gp-IRT plus the neighbours' correction (no clipping at these means)
        assert float(r["estimate"]) == pytest.approx(float(r["estimate_gp"]) + float(r["correction"]), abs=1e-5)
        assert float(r["abs_error_gp"]) == pytest.approx(abs(float(r["estimate_gp"]) - float(r["true_mean"])), abs=1e-5)
    assert any(abs(float(r["correction"])) > 1e-4 for r in rows)
    # the true test mean is the held-out model's mean on the test split of the pool, computed independently
    from routereval.pools import make_pool, make_split

    bench = open_corpus(world_corpus)["mmlu"]
    split = make_split(bench)
    pool = make_pool(bench, m=8, group="random", split=split)
    S = np.asarray(bench.scores, dtype=np.float64)
    truth = {str(n): S[i, split.test].mean() for n, i in zip(pool.model_names, pool.models)}
    every = np.concatenate([split.train, split.val, split.test])  # the whole benchmark (tinyBenchmarks' figure)
    truth_all = {str(n): S[i, every].mean() for n, i in zip(pool.model_names, pool.models)}
    assert len(every) == bench.n_prompts
    for r in rows:
        assert float(r["true_mean"]) == pytest.approx(truth[r["model"]], abs=1e-6)
        assert float(r["true_mean_all"]) == pytest.approx(truth_all[r["model"]], abs=1e-6)
        assert float(r["abs_error_all"]) == pytest.approx(abs(float(r["estimate_all"]) - float(r["true_mean_all"])),
                                                          abs=1e-5)
    # the summary: model-clustered standard errors, signed bias and the whole-benchmark error
    for s in doc["summary"]:
        assert s["mae_se"] > 0 and s["mae_all"] < 0.2 and abs(s["bias"]) <= s["mae"] + 1e-12
    summary = (out / "summary.md").read_text()
    assert "What 40 models allow" in summary and "![error_vs_k](error_vs_k.png)" in summary
    # designed anchors' plain mean is marked: it estimates nothing
    table = [line.split(" | ") for line in summary.splitlines() if line.startswith("| ") and " | 10 | " in line]
    marked = {cells[0][2:]: cells[6].endswith("†") for cells in table}
    assert marked == {"random": False, "stratified": False, "irt": True, "fisher": True, "adaptive": True}
    assert summary.count("† irt, fisher and adaptive choose their anchors by design") == 2  # one per pre-training
    # the correction's references: the fitted pool models (pool), every corpus model but the held-out one (corpus)
    assert ("(`pool`: the 7 other pool models; `corpus`: every eligible corpus model but the held-out one, 39; "
            "`adaptive` rows: only those at the held-out model's level on its test)" in summary
            and doc["meta"]["n_references"] == {"pool": 7, "corpus": 39})
    assert (out / "error_vs_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from routereval.coldstart.plots import MARKERS, PALETTE

    assert list(MARKERS) == list(METHODS) and set(METHODS) <= set(PALETTE)  # every method gets its line
    svg = (out / "error_vs_k.svg").read_text()
    assert all(f"<!-- {m} -->" in svg for m in METHODS)  # matplotlib writes each legend text as a comment
    assert doc["meta"]["n_corpus_models"] == 40 and len(doc["summary"]) == 2 * len(METHODS) * 2
    with_anchors = [s for s in doc["summary"] if s["k"] == 50]
    assert all(s["mae"] < 0.15 for s in with_anchors)


@pytest.mark.parametrize("args, message", [
    (("--router", "knn"), "cannot add a model"),
    (("--method", "random,oracle"), "methods (--method): unknown value 'oracle'; expected some of random, stratified"),
    (("--method", ","), "--method names no method"),
    (("--anchors", "10,x"), "comma-separated integers"),
    (("--pretrain", "everything"), "--pretrain must be pool, corpus or pool,corpus"),
    (("--anchors", "5000"), "exceeds the"),
    (("--split", "publisher"), "has no publisher split"),
    (("--split", "mine"), "--split"),
])
def test_study_cli_bad_input(world_corpus, tmp_path, cli, args, message):
    base = ["coldstart", world_corpus, "--benchmark", "mmlu", "--m", "5", "--group", "random", "--out", tmp_path / "o"]
    res = cli(*base, *args)
    assert res.code == 2 and message in res.err and res.err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_study_output_is_strict_json_and_refuses_a_foreign_directory(world_corpus, tmp_path, cli):
    # one held-out model: the standard errors clustered by model are undefined, JSON null (never NaN) and no "± nan"
    base = ["coldstart", world_corpus, "--benchmark", "mmlu", "--m", "5", "--group", "random", "--anchors", "10",
            "--method", "random", "--models", "1", "--seeds", "1"]
    res = cli(*base, "--out", tmp_path / "o")
    assert res.code == 0, res.err
    assert "nan" not in res.out.lower()

    def no_constant(name):
        raise AssertionError(f"{name} in coldstart.json")

    doc = json.loads((tmp_path / "o" / "coldstart.json").read_text(), parse_constant=no_constant)
    assert doc["summary"][0]["mae_se"] is None
    assert "nan" not in (tmp_path / "o" / "summary.md").read_text().lower()
    assert cli(*base, "--out", tmp_path / "o").code == 0  # an earlier study's directory is replaced
    # a directory holding anything else (a corpus, say) is refused before the study runs
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("x")
    res = cli(*base, "--out", tmp_path / "mine")
    assert res.code == 2 and "not a cold-start study" in res.err and res.err.count("\n") == 1
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["keep.txt"]
    # an interrupted write leaves hidden temporaries only: the rerun may use the directory
    (tmp_path / "stopped").mkdir()
    (tmp_path / "stopped" / ".coldstart.csv.tmp-1-abc").write_text("")
    assert cli(*base, "--out", tmp_path / "stopped").code == 0 and (tmp_path / "stopped" / "coldstart.csv").is_file()


@pytest.fixture(scope="module")
def publisher_corpus(tmp_path_factory):
    """The IRT world with a publisher split: every fifth prompt is a test prompt, val carved from train."""
    from routereval.data.splits import publisher_split_from_labels

    X, S, _, topic = irt_world(n_prompts=800, n_models=12, seed=3)
    b = world_benchmark(X, S, topic, texts=[f"question {i}" for i in range(len(X))])
    labels = np.where(np.arange(len(X)) % 5 == 0, "test", "train").astype(object)
    b.saved_splits["publisher"] = publisher_split_from_labels(b, labels, source="the test")
    out = tmp_path_factory.mktemp("coldstart-pub") / "corpus"
    write_corpus(Corpus.from_benchmarks([b]), out)
    return out


def test_fit_and_eval_take_the_missing_records_policy_and_the_saved_router_keeps_it(tmp_path, cli):
    """--missing prompts on eval and fit (only scaling, pools and coldstart took it); the saved router's anchors come
    from the split of the prompts every model answered, not from prompts some pool model never saw."""
    from routereval.pools import make_split

    X, S, _, topic = irt_world(n_prompts=300, n_models=12, seed=5)
    S = S.astype(float)
    gaps = np.random.default_rng(0).random((300, 3)) < 0.3
    S[:, :3][gaps] = np.nan  # three of the twelve models miss a third of the prompts: auto keeps the other nine
    S[np.flatnonzero(gaps.any(axis=1))[0], 3] = np.nan  # a fourth misses one (under 1%): still a reference
    b = world_benchmark(X, S, topic, texts=[f"question {i}" for i in range(len(X))])
    write_corpus(Corpus.from_benchmarks([b]), tmp_path / "c")
    cell = ("mmlu", "--router", "irt", "--param", "dim=2", "--param", "max_epochs=10", "--m", "12", "--group", "random")
    res = cli("eval", tmp_path / "c", "-b", *cell)
    assert res.code == 2 and "4 of its 12 models miss records" in res.err and "missing (--missing) 'prompts' keeps" in res.err
    res = cli("eval", tmp_path / "c", "-b", *cell, "--missing", "prompts", "--json")
    assert res.code == 0, res.err
    kept = np.flatnonzero(~np.isnan(S).any(axis=1))
    assert res.json()["m"] == 12 and res.json()["n_test"] == len(make_split(b, missing="prompts").test) < 40
    assert res.json()["results"][0]["missing_note"] == f"prompts: splits keep only the {len(kept)} of 300 prompts every " \
                                                      "model was evaluated on"
    res = cli("fit", tmp_path / "c", "-b", *cell, "--missing", "prompts", "--save", tmp_path / "r0")  # says it too
    assert res.code == 0 and f"missing records: prompts: splits keep only the {len(kept)} of 300 prompts" in res.out
    res = cli("fit", tmp_path / "c", "-b", *cell, "--missing", "prompts", "--save", tmp_path / "r", "--json")
    assert res.code == 0, res.err
    assert res.json()["pool"]["missing"] == "prompts"
    res = cli("coldstart", "anchors", tmp_path / "r", "--k", "60", "--method", "random", "--json")
    assert res.code == 0, res.err
    got = {int(r["prompt_id"][1:]) for r in res.json()["anchors"]}
    assert len(got) == 60 and got <= set(make_split(b, missing="prompts").train.tolist()) and got <= set(kept.tolist())
    # an answer on a prompt the policy left out: one line in both commands (the adaptive test raised a KeyError)
    dropped = int(np.flatnonzero(np.isnan(S).any(axis=1))[0])
    (tmp_path / "out.csv").write_text(f"text,score\nquestion {dropped},1\n")
    for cmd in (("add-model", tmp_path / "r", "--name", "new", "--answers", tmp_path / "out.csv", "--out", tmp_path / "v2"),
                ("coldstart", "anchors", tmp_path / "r", "--method", "adaptive", "--answers", tmp_path / "out.csv")):
        res = cli(*cmd)
        assert res.code == 2 and res.err.count("\n") == 1, res.err
        assert "row 1: column 'text': prompt is in none of the router's train, validation and test prompts: the " \
               "missing-records policy it was fitted under (prompts) left it out" in res.err
        lacking = [str(b.models[j]) for j in np.flatnonzero(np.isnan(S[dropped]))]  # named: who has no record
        assert f"as corpus model{'s' * (len(lacking) > 1)} {', '.join(lacking[:3])}" in res.err, res.err
    assert not (tmp_path / "v2").exists()
    # the three pool models with missing records are no references of add-model's estimate: a note says so
    anchors = cli("coldstart", "anchors", tmp_path / "r", "--k", "20", "--method", "random", "--json").json()["anchors"]
    (tmp_path / "ok.csv").write_text("text,score\n" + "".join(f"{a['text']},1\n" for a in anchors))
    res = cli("add-model", tmp_path / "r", "--name", "new", "--answers", tmp_path / "ok.csv", "--out", tmp_path / "v3",
              "--json")
    assert res.code == 0, res.err
    note = next(n for n in res.json()["notes"] if "miss records" in n)
    assert note.startswith("3 corpus models miss records on more than 1% of the benchmark's prompts and are no "
                           "reference")
    assert all(str(b.models[j]) in note for j in range(3)) and str(b.models[3]) not in note
    assert res.json()["n_references"] == 9  # the fourth, with one record missing, is one


def test_routing_note_when_a_model_estimated_below_a_pool_model_takes_most_prompts():
    # a user trial's case: Llama-3.1-70B-Instruct (0.628) estimated 0.651 [0.540, 0.762], its column predicting 0.745,
    # took 90% of the held-out prompts from GPT-4o (0.721): routing µ 0.743 -> 0.659, and no note (the column's mean
    # was inside the estimate's wide interval)
    from routereval.coldstart.saved import routing_note

    est = MeanEstimate(mean=0.651, low=0.540, high=0.762, se=0.056, anchor_mean=None, pirt=0.65, lam=0.0,
                       n_anchors=100)
    routing = {"routed_share": 0.903, "column_mean": 0.745, "best_pool_model": "gpt4o", "best_pool_mean": 0.721}
    assert routing_note("L70I", routing, est) == (
        "routing sends L70I 90% of the held-out prompts, though its estimated mean 0.651 [0.540, 0.762] is below "
        "gpt4o's 0.721; its routing column predicts 0.745: some of those prompts would be better answered by pool "
        "models; route held-out prompts with load_router before serving it, or refit once its full answers exist")
    assert routing_note("x", {**routing, "routed_share": 0.4}, est) is None  # not most prompts
    assert routing_note("x", {**routing, "best_pool_mean": 0.64}, est) is None  # a new best model: routing as it should
    assert routing_note("x", {**routing, "best_pool_mean": None}, est) is None  # no pool model on record
    on_labels = routing_note("x", {**routing, "column_mean": None}, est)
    assert on_labels is not None and "column predicts" not in on_labels


def test_saved_router_anchors_come_from_the_split_it_was_fitted_on(publisher_corpus, tmp_path, cli, monkeypatch):
    """A router fitted with --split random on a benchmark with a publisher split takes its anchors from the random
    split's train prompts; its corpus is saved as an absolute path, and a corpus that moved is one clear line."""
    from routereval.evaluate import fit_router
    from routereval.pools import make_split

    monkeypatch.chdir(publisher_corpus.parent)
    fit_router(publisher_corpus.name, benchmark="mmlu", router="irt", params={"dim": 2, "max_epochs": 10}, m=4,
               group="random", split="random", save=tmp_path / "r")
    doc = json.loads((tmp_path / "r" / "router.json").read_text())
    assert doc["pool"]["split"] == "random" and doc["metadata"]["corpus"] == str(publisher_corpus.resolve())
    monkeypatch.chdir(tmp_path)  # from anywhere
    res = cli("coldstart", "anchors", tmp_path / "r", "--k", "40", "--method", "random", "--json")
    assert res.code == 0, res.err
    bench = open_corpus(publisher_corpus)["mmlu"]
    ids = {p: i for i, p in enumerate(bench.prompt_ids)}
    got = {ids[r["prompt_id"]] for r in res.json()["anchors"]}
    assert got <= set(make_split(bench, split="random").train.tolist())
    assert not got <= set(make_split(bench, split="publisher").train.tolist())
    doc["metadata"]["corpus"] = str(tmp_path / "moved")
    (tmp_path / "r" / "router.json").write_text(json.dumps(doc))
    res = cli("coldstart", "anchors", tmp_path / "r", "--k", "5", "--method", "random")
    assert res.code == 2 and res.err.count("\n") == 1 and "metadata.corpus names" in res.err and "--corpus" in res.err


def test_default_version_directory_counts_on():
    from routereval.coldstart.saved import default_version_dir

    assert default_version_dir(Path("/nowhere/r")).name == "r-v2"
    assert default_version_dir(Path("/nowhere/r-v2")).name == "r-v3"
    assert default_version_dir(Path("/nowhere/r-v9")).name == "r-v10"


def test_study_cli_split_option(publisher_corpus, tmp_path, cli):
    """--split: the publisher's split by default (said in the table, --json, coldstart.csv and summary.md), random on demand."""
    from routereval.pools import make_pool, make_split

    bench = open_corpus(publisher_corpus)["mmlu"]
    S = np.asarray(bench.scores, dtype=np.float64)
    base = ["coldstart", publisher_corpus, "--benchmark", "mmlu", "--router", "irt", "--param", "dim=2",
            "--param", "max_epochs=10", "--m", "4", "--group", "random", "--anchors", "10", "--method", "random",
            "--models", "2", "--seeds", "1"]
    for flag, name in ((None, "publisher"), ("publisher", "publisher"), ("random", "random")):
        out = tmp_path / f"study-{flag}"
        args = [*base, "--out", out] + ([] if flag is None else ["--split", flag])
        res = cli(*args, "--json")
        assert res.code == 0, res.err
        meta = res.json()["meta"]
        split = make_split(bench, split=name)
        assert meta["split"] == name and meta["n_test"] == len(split.test)
        assert json.loads((out / "coldstart.json").read_text())["meta"]["split"] == name
        with open(out / "coldstart.csv") as f:
            rows = list(csv.DictReader(f))
        assert rows and all(r["split"] == name for r in rows)
        pool = make_pool(bench, m=4, group="random", split=split)
        truth = {str(n): S[i, split.test].mean() for n, i in zip(pool.model_names, pool.models)}
        assert all(float(r["true_mean"]) == pytest.approx(truth[r["model"]], abs=1e-6) for r in rows)
        assert f"{name} split" in (out / "summary.md").read_text()
    assert len(make_split(bench, split="publisher").test) == 160  # every fifth prompt
    assert set(make_split(bench, split="publisher").test) != set(make_split(bench, split="random").test)
    res = cli(*base, "--out", tmp_path / "table")  # the table names the split
    assert res.code == 0 and "publisher split" in res.out


@pytest.fixture(scope="module")
def saved_router(world_corpus, tmp_path_factory):
    from routereval.evaluate import fit_router

    d = tmp_path_factory.mktemp("routers")
    fit_router(world_corpus, benchmark="mmlu", router="irt", params={"dim": 4, "max_epochs": 30}, m=6,
               group="all_strong", save=d / "irt")
    fit_router(world_corpus, benchmark="mmlu", router="mf", params={"dim": 4, "max_epochs": 30}, m=6,
               group="all_strong", embedding="tfidf", save=d / "mf-tfidf")
    fit_router(world_corpus, benchmark="mmlu", router="knn", m=6, group="all_strong", save=d / "knn")
    return d


def _digest(path):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def _answers(world_corpus, anchors_csv, model, path):
    bench = open_corpus(world_corpus)["mmlu"]
    row = int(np.flatnonzero(bench.models == model)[0])
    S = np.asarray(bench.scores)
    pid = {p: i for i, p in enumerate(bench.prompt_ids)}
    with open(anchors_csv) as f:
        rows = list(csv.DictReader(f))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))  # the anchors file's own columns, as a user keeps them
        w.writeheader()
        for r in rows:
            w.writerow({**r, "score": f"{S[row, pid[r['prompt_id']]]:g}"})
    return rows


def test_anchors_then_add_model_round_trip_through_the_loader(world_corpus, saved_router, tmp_path, cli):
    from routereval.pools import make_split
    from routereval.routers.persist import load_router

    src = saved_router / "irt"
    before = _digest(src)
    pool_models = json.loads((src / "router.json").read_text())["pool"]["models"]
    new = next(f"org/model-{i:02d}" for i in range(40) if f"org/model-{i:02d}" not in pool_models)
    res = cli("coldstart", "anchors", src, "--k", "60", "--method", "irt", "--seed", "1", "--out", tmp_path / "a.csv")
    assert res.code == 0, res.err
    again = cli("coldstart", "anchors", src, "--k", "60", "--method", "irt", "--seed", "1")
    assert again.out == (tmp_path / "a.csv").read_text()  # deterministic by seed
    both = cli("coldstart", "anchors", src, "--k", "60", "--method", "irt", "--seed", "1", "--json",
               "--out", tmp_path / "b.csv")  # --json and --out: the JSON on stdout, the CSV written as well
    # one object for every method: its method, seed and the rows to ask
    assert both.code == 0 and both.json()["method"] == "irt" and both.json()["seed"] == 1
    assert len(both.json()["anchors"]) == 60
    assert (tmp_path / "b.csv").read_text() == (tmp_path / "a.csv").read_text()
    n_train = len(make_split(open_corpus(world_corpus)["mmlu"]).train)  # distinct texts: every prompt here
    res = cli("coldstart", "anchors", src, "--k", str(n_train + 1), "--method", "random")
    assert res.code == 2 and res.err.count("\n") == 1 and (
        f"k (--k) = {n_train + 1} anchors asked for, but the router's train split has only {n_train} prompts to ask "
        f"(one per distinct text: benchmarks repeat some); expected at most {n_train}") in res.err, res.err
    rows = _answers(world_corpus, tmp_path / "a.csv", new, tmp_path / "answers.csv")
    bench = open_corpus(world_corpus)["mmlu"]
    split = make_split(bench)
    train_ids = set(bench.prompt_ids[split.train].tolist())
    assert len(rows) == 60 and all(r["prompt_id"] in train_ids for r in rows)
    # anchors written again over the filled-in answers would lose them: refused; over a blank anchors file, fine
    filled = (tmp_path / "answers.csv").read_bytes()
    res = cli("coldstart", "anchors", src, "--k", "60", "--method", "irt", "--out", tmp_path / "answers.csv")
    assert res.code == 2 and "not a blank anchors file" in res.err and (tmp_path / "answers.csv").read_bytes() == filled
    for other in ("prompt_id;text;score\np1;q;1\n".encode(), "text,score\nq\xe9,1\n".encode("cp1252")):
        (tmp_path / "other.csv").write_bytes(other)  # a spreadsheet's separator or encoding: kept too
        res = cli("coldstart", "anchors", src, "--k", "60", "--method", "irt", "--out", tmp_path / "other.csv")
        assert res.code == 2 and (tmp_path / "other.csv").read_bytes() == other
    assert cli("coldstart", "anchors", src, "--k", "60", "--method", "irt", "--seed", "1",
               "--out", tmp_path / "a.csv").code == 0
    res = cli("add-model", src, "--name", new, "--answers", tmp_path / "answers.csv", "--out", tmp_path / "v2", "--json")
    assert res.code == 0, res.err
    doc = res.json()
    assert doc["m"] == 7 and doc["n_answers"] == 60
    assert doc["calibration"] == "logistic"  # 6 pool models cannot pin guessing floors
    assert _digest(src) == before  # the old version is untouched
    loaded = load_router(tmp_path / "v2")  # what `routereval serve` loads
    assert loaded.pool["models"] == [*pool_models, new] and loaded.pool["m"] == 7
    assert loaded.router.n_models_ == 7 and loaded.metadata["added_models"][0]["name"] == new
    X = np.asarray(bench.embeddings["synth"])
    pred = loaded.router.predict_scores(X[split.test])
    row = int(np.flatnonzero(bench.models == new)[0])
    P = irt_world()[2]  # the models' known probabilities
    assert np.corrcoef(pred[:, 6], P[split.test, row])[0, 1] > 0.5  # the added model is that model
    true = np.asarray(bench.scores)[row].mean()
    assert abs(doc["estimate"]["mean"] - true) < 0.08
    # how the router treats it: its column's predicted mean over every prompt and its share of the held-out prompts,
    # recomputed here from the saved version
    routing = doc["routing"]
    held = np.r_[split.val, split.test]
    assert routing["n_held_out"] == len(held)
    assert routing["routed_share"] == pytest.approx(np.mean(loaded.router.route(X[held]) == 6))
    assert routing["column_mean"] == pytest.approx(loaded.router.predict_scores(X)[:, 6].mean())
    pool_means = {str(n): float(m) for n, m in zip(bench.models, np.asarray(bench.scores).mean(axis=1)) if n in pool_models}
    assert routing["best_pool_model"] == max(pool_means, key=pool_means.get)
    assert routing["best_pool_mean"] == pytest.approx(max(pool_means.values()))
    # --out the same path replaces the router in place; a model that answers every anchor is routed to
    with open(tmp_path / "perfect.csv", "w") as f:
        f.write("text,score\n" + "".join(f'"{r["text"]}",1\n' for r in rows))
    res = cli("add-model", tmp_path / "v2", "--name", "perfect", "--answers", tmp_path / "perfect.csv",
              "--out", tmp_path / "v2")
    assert res.code == 0, res.err
    v3 = load_router(tmp_path / "v2")
    assert v3.router.n_models_ == 8 and v3.pool["models"][-1] == "perfect"
    assert v3.metadata["previous_version"] == str(src.resolve())  # in place: not itself
    assert np.mean(v3.router.route(X[split.test]) == 7) > 0.5
    # the default output is a new version beside the router
    res = cli("add-model", src, "--name", new, "--answers", tmp_path / "answers.csv", "--json")
    assert res.code == 0 and res.json()["path"].endswith("irt-v2")


def test_adaptive_anchors_from_the_cli_replay_the_answers_so_far(world_corpus, saved_router, tmp_path, cli):
    """`coldstart anchors --method adaptive --answers SO_FAR.csv`, one call per answer, asks what the adaptive test
    asks in one run (select_anchors' simulation); its estimate is add-model's; --k plans a batch."""
    from routereval.coldstart.context import open_router_context, prompt_floors
    from routereval.pools import make_split

    src = saved_router / "irt"
    pool_models = json.loads((src / "router.json").read_text())["pool"]["models"]
    new = next(f"org/model-{i:02d}" for i in range(40) if f"org/model-{i:02d}" not in pool_models)
    bench = open_corpus(world_corpus)["mmlu"]
    y = np.asarray(bench.scores, dtype=np.float64)[int(np.flatnonzero(bench.models == new)[0])]
    pid = {p: i for i, p in enumerate(bench.prompt_ids)}
    answers = tmp_path / "answers.csv"
    asked = []
    res = cli("coldstart", "anchors", src, "--method", "adaptive", "--seed", "3")
    assert res.code == 0 and res.err.startswith("adaptive test: no answer yet")
    first = list(csv.DictReader(io.StringIO(res.out)))
    assert len(first) == 1 and first[0]["weight"] == "" and first[0]["score"] == ""
    for start in ("text,score\n", ""):  # an answers file with no answer yet (or nothing at all) is the start too
        answers.write_text(start)
        doc = cli("coldstart", "anchors", src, "--method", "adaptive", "--seed", "3", "--answers", answers,
                  "--json").json()
        assert doc["answered"] == 0 and doc["anchors"][0]["prompt_id"] == first[0]["prompt_id"]
    for step in range(12):
        more = () if not asked else ("--answers", answers)
        doc = cli("coldstart", "anchors", src, "--method", "adaptive", "--seed", "3", "--json", *more).json()
        assert doc["answered"] == step and len(doc["anchors"]) == 1 and (doc["n_references"] is None) == (step == 0)
        asked.append(doc["anchors"][0])
        with open(answers, "w", newline="") as f:  # the printed rows' method column kept, as the README says
            w = csv.DictWriter(f, fieldnames=["text", "score", "method"])
            w.writeheader()
            w.writerows({"text": r["text"], "score": f"{y[pid[r['prompt_id']]]:g}", "method": r["method"]}
                        for r in asked)
    assert asked[0]["prompt_id"] == first[0]["prompt_id"] and {r["method"] for r in asked} == {"adaptive"}
    ctx = open_router_context(src)
    sim = select_anchors(ctx.saved.router, 12, "adaptive", X=ctx.X, candidates=ctx.split.train,
                         delta=np.nan_to_num(ctx.delta), target=np.arange(bench.n_prompts),
                         calibration=prompt_floors(ctx), answers=y, random_state=3)
    assert [r["prompt_id"] for r in asked] == [str(bench.prompt_ids[i]) for i in sim.index]
    assert set(pid[r["prompt_id"]] for r in asked) <= set(make_split(bench).train.tolist())
    # after 12 answers: the estimate add-model gives for the same answers, and a batch of the next 5
    res = cli("coldstart", "anchors", src, "--method", "adaptive", "--seed", "3", "--answers", answers, "--k", "5")
    assert res.code == 0 and res.err.startswith("adaptive test: 12 answers, estimated mean score ")
    batch = list(csv.DictReader(io.StringIO(res.out)))
    assert len(batch) == 5 and len({r["prompt_id"] for r in batch} | {r["prompt_id"] for r in asked}) == 17
    one = cli("coldstart", "anchors", src, "--method", "adaptive", "--seed", "3", "--answers", answers, "--json",
              "--name", new).json()  # the corpus holds the model's records: no reference, as in add-model
    assert one["anchors"][0]["prompt_id"] == batch[0]["prompt_id"]
    # the answers' row order does not matter (collected in parallel): reversed, the same next prompts and estimate
    lines = answers.read_text().splitlines()
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("\n".join([lines[0], *lines[:0:-1]]) + "\n")
    rev = cli("coldstart", "anchors", src, "--method", "adaptive", "--seed", "3", "--answers", shuffled, "--json",
              "--name", new, "--k", "5").json()
    assert [r["prompt_id"] for r in rev["anchors"]] == [r["prompt_id"] for r in batch]
    assert rev["estimate"]["mean"] == pytest.approx(one["estimate"]["mean"], abs=1e-9)
    # answers to a planned batch, told in either order, leave the test in one state
    batch_answers = [{"text": r["text"], "score": f"{y[pid[r['prompt_id']]]:g}"} for r in batch]
    nexts = []
    for order in (batch_answers, batch_answers[::-1]):
        with open(shuffled, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["text", "score"])
            w.writeheader()
            w.writerows([{"text": r["text"], "score": f"{y[pid[r['prompt_id']]]:g}"} for r in asked] + order)
        nexts.append(cli("coldstart", "anchors", src, "--method", "adaptive", "--seed", "3", "--answers", shuffled,
                         "--json", "--k", "3").json())
    assert nexts[0]["answered"] == 17 and nexts[0]["anchors"] == nexts[1]["anchors"]
    added = cli("add-model", src, "--name", new, "--answers", answers, "--out", tmp_path / "v2", "--json").json()
    assert one["estimate"] == added["estimate"] and one["n_references"] == added["n_references"]
    assert added["anchors_method"] == "adaptive" and abs(one["estimate"]["mean"] - y.mean()) < 0.15
    # without the method column add-model cannot tell the test's answers from a fixed design's, and says so
    bare = tmp_path / "bare.csv"
    bare.write_text("text,score\n" + "".join(f'"{r["text"]}",{y[pid[r["prompt_id"]]]:g}\n' for r in asked))
    plain = cli("add-model", src, "--name", new, "--answers", bare, "--out", tmp_path / "v3", "--json").json()
    assert plain["anchors_method"] is None and any("no design weights and no method column" in n for n in plain["notes"])
    # bad input: --answers with a method that does not use them; a prompt the test never asks (a test prompt)
    res = cli("coldstart", "anchors", src, "--method", "irt", "--answers", answers)
    assert res.code == 2 and "only --method adaptive" in res.err and res.err.count("\n") == 1
    test_text = str(bench.texts[make_split(bench).test[0]])
    with open(answers, "a", newline="") as f:
        csv.writer(f).writerow([test_text, "1"])
    res = cli("coldstart", "anchors", src, "--method", "adaptive", "--answers", answers)
    assert res.code == 2 and "row 13" in res.err and "train prompts only" in res.err and res.out == ""


def test_prompts_sharing_a_text_are_asked_once_and_an_answer_names_the_train_one(tmp_path, cli):
    """Real benchmarks repeat prompts (MMLU-Pro: 358 texts held by 2 or more prompts). An answer names its prompt by
    text, so the anchors hold one prompt per text, and a text shared by a train and a test prompt is the train one:
    all the anchors can be answered and added (add-model refuses a text twice)."""
    from routereval.coldstart.context import open_router_context
    from routereval.evaluate import fit_router
    from routereval.pools import make_split

    X, S, _, topic = irt_world(n_prompts=400)
    texts = [f"question {i}" for i in range(len(X))]
    for i in range(0, 400, 10):  # 40 pairs share a text
        texts[i + 1] = texts[i]
    write_corpus(Corpus.from_benchmarks([world_benchmark(X, S, topic, texts=texts)]), tmp_path / "c")
    fit_router(tmp_path / "c", benchmark="mmlu", router="irt", params={"dim": 4, "max_epochs": 30}, m=6,
               group="all_strong", save=tmp_path / "r")
    ctx = open_router_context(tmp_path / "r")
    split = make_split(open_corpus(tmp_path / "c")["mmlu"])
    train, test = set(split.train.tolist()), set(split.test.tolist())
    pairs = [(i, i + 1) for i in range(0, 400, 10)]
    split_pair = next((i, j) for i, j in pairs if (i in train) != (j in train))
    shared = texts[split_pair[0]]
    assert ctx.prompt_index[shared] in train and ctx.prompt_index[shared] in split_pair
    assert len({texts[i] for i in ctx.askable}) == len(ctx.askable) and set(ctx.askable.tolist()) <= train
    assert len(ctx.askable) == len({texts[i] for i in train})  # one per text, none lost
    k = len(ctx.askable)
    res = cli("coldstart", "anchors", tmp_path / "r", "--k", k, "--method", "random", "--out", tmp_path / "a.csv")
    assert res.code == 0, res.err
    with open(tmp_path / "a.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == k and len({r["text"] for r in rows}) == k
    y = S[:, 30]
    with open(tmp_path / "answers.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "score"])
        w.writerows([r["text"], f"{y[int(r['prompt_id'][1:])]:g}"] for r in rows)
    res = cli("add-model", tmp_path / "r", "--name", "new", "--answers", tmp_path / "answers.csv", "--json")
    assert res.code == 0, res.err
    assert not test & {ctx.prompt_index[r["text"]] for r in rows}


@pytest.fixture(scope="module")
def floored_router(tmp_path_factory):
    """(router dir, corpus dir, texts): 110 pool models answering 800 prompts with guessing floors, so the pool pins
    every prompt's floor and slope (3PL); 40 pairs of prompts share a text."""
    from routereval.evaluate import fit_router

    d = tmp_path_factory.mktemp("floored")
    X, S, _, topic = irt_world(n_prompts=800, n_models=130, guess=0.25)
    texts = [f"question {i}" for i in range(len(X))]
    for i in range(0, 800, 20):
        texts[i + 1] = texts[i]
    write_corpus(Corpus.from_benchmarks([world_benchmark(X, S, topic, texts=texts, width=3)]), d / "c")
    fit_router(d / "c", benchmark="mmlu", router="irt", params={"dim": 4, "max_epochs": 30}, m=110, group="random",
               save=d / "r")
    return d / "r", d / "c", texts


def test_a_miskeyed_prompt_calibrates_to_a_negative_slope_and_the_anchor_commands_take_it(tmp_path, cli):
    """A prompt the pool's strong models get wrong and its weak ones right (a miskeyed answer key) is calibrated with
    a negative slope, as real item calibrations find; the saved router's anchor commands use it as it is (they
    refused their own calibration before)."""
    from routereval.coldstart.context import open_router_context, prompt_floors
    from routereval.evaluate import fit_router

    X, S, _, topic = irt_world(n_prompts=600, n_models=120, guess=0.25, seed=3)
    miskeyed = [3, 5, 8]
    S[miskeyed] = 1 - S[miskeyed]
    write_corpus(Corpus.from_benchmarks([world_benchmark(X, S, topic, texts=[f"q{i}" for i in range(600)],
                                                         width=3)]), tmp_path / "c")
    fit_router(tmp_path / "c", benchmark="mmlu", router="irt", params={"dim": 4, "max_epochs": 30}, m=110,
               group="random", save=tmp_path / "r")
    floor, slope, _ = prompt_floors(open_router_context(tmp_path / "r"))
    assert slope[miskeyed].min() < 0 and slope[miskeyed].max() < np.percentile(slope, 5) and np.median(slope) > 0.5
    for method in ("irt", "fisher", "adaptive"):
        res = cli("coldstart", "anchors", tmp_path / "r", "--method", method, "--k", "20", "--json")
        assert res.code == 0 and len(res.json()["anchors"]) == 20 and res.json()["method"] == method, res.err
    pool = set(json.loads((tmp_path / "r" / "router.json").read_text())["pool"]["models"])
    new = next(i for i in range(120) if f"org/model-{i:03d}" not in pool)
    asked = [int(r["prompt_id"][1:]) for r in res.json()["anchors"]]
    with open(tmp_path / "a.csv", "w", newline="") as f:
        csv.writer(f).writerows([["text", "score"], *([f"q{i}", f"{S[i, new]:g}"] for i in asked)])
    res = cli("add-model", tmp_path / "r", "--name", "org/new", "--answers", tmp_path / "a.csv", "--out",
              tmp_path / "r2", "--json")
    assert res.code == 0 and abs(res.json()["estimate"]["mean"] - S[:, new].mean()) < 0.2, res.err


def test_the_adaptive_cli_with_a_3pl_pool_and_shared_texts(floored_router, tmp_path, cli):
    """With floors pinned by the pool, the CLI's test is the 3PL one over one prompt per text, as the one-run
    simulation; the floors are cached in the corpus for the next call; a text a train and a test prompt share is
    answered as the train one."""
    from routereval.coldstart.context import FLOORS_CACHE, open_router_context, prompt_floors
    from routereval.pools import make_split

    src, corpus, texts = floored_router
    ctx = open_router_context(src)
    floors = prompt_floors(ctx)
    assert floors is not None and np.mean(floors[0] > 0) > 0.2  # 3PL: the guessing floors are seen
    cached = list((corpus / FLOORS_CACHE).iterdir())
    assert len(cached) == 1
    again = prompt_floors(open_router_context(src))  # a new context (the next CLI call) reads them back
    assert all(np.array_equal(u, v) for u, v in zip(floors, again))
    cached[0].write_bytes(b"not an array")  # a broken cache is computed again
    assert all(np.allclose(u, v) for u, v in zip(floors, prompt_floors(open_router_context(src))))
    bench = open_corpus(corpus)["mmlu"]
    pool = set(json.loads((src / "router.json").read_text())["pool"]["models"])
    new = next(i for i in range(130) if f"org/model-{i:03d}" not in pool)
    y = np.asarray(bench.scores, dtype=np.float64)[new]  # a model outside the pool
    asked = []
    for step in range(8):
        more = () if not asked else ("--answers", tmp_path / "a.csv")
        doc = cli("coldstart", "anchors", src, "--method", "adaptive", "--json", *more).json()
        asked.append(int(doc["anchors"][0]["prompt_id"][1:]))
        with open(tmp_path / "a.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "score"])
            w.writerows([texts[i], f"{y[i]:g}"] for i in asked)
    sim = select_anchors(ctx.saved.router, 8, "adaptive", X=ctx.X, candidates=ctx.askable,
                         delta=np.nan_to_num(ctx.delta), target=np.arange(bench.n_prompts), calibration=floors,
                         answers=y, random_state=0)
    assert asked == sim.index.tolist()
    logistic = select_anchors(ctx.saved.router, 8, "adaptive", X=ctx.X, candidates=ctx.askable,
                              delta=np.nan_to_num(ctx.delta), target=np.arange(bench.n_prompts), answers=y,
                              random_state=0)
    assert logistic.index.tolist() != asked  # the floors change the test
    every = cli("coldstart", "anchors", src, "--method", "adaptive", "--k", "2000", "--json").json()["anchors"]
    assert len(every) == len(ctx.askable) and len({r["text"] for r in every}) == len(every)  # one prompt per text
    # a text a train and a test prompt share (the train one first) is the train prompt's answer
    split = make_split(bench)
    train = set(split.train.tolist())
    i = next(i for i in range(0, 800, 20) if i in train and i + 1 not in train and i not in asked)
    with open(tmp_path / "a.csv", "a", newline="") as f:
        csv.writer(f).writerow([texts[i], "1"])
    res = cli("coldstart", "anchors", src, "--method", "adaptive", "--answers", tmp_path / "a.csv")
    assert res.code == 0 and res.err.startswith("adaptive test: 9 answers"), res.err


def test_the_adaptive_cli_refuses_bad_input_in_one_line(floored_router, saved_router, world_corpus, tmp_path, cli):
    import shutil

    from routereval.coldstart.context import FLOORS_CACHE

    src, corpus, texts = floored_router
    shutil.rmtree(corpus / FLOORS_CACHE, ignore_errors=True)  # a bad answers file is refused before the calibration
    (tmp_path / "bad.csv").write_text(f"text,score\n{texts[2]},7\n")  # computes and caches anything in the corpus
    res = cli("coldstart", "anchors", src, "--method", "adaptive", "--answers", tmp_path / "bad.csv")
    assert res.code == 2 and "score 7 is out of range" in res.err and not (corpus / FLOORS_CACHE).exists()
    pool = json.loads((src / "router.json").read_text())["pool"]["models"]
    for args, says in (((("--name", "")), "must be a non-empty model name"),
                       (("--name", pool[0]), "already in the router's pool"),
                       (("--k", "0"), "the number of prompts to ask next"),
                       (("--answers", tmp_path / "missing.csv"), "cannot read")):
        res = cli("coldstart", "anchors", src, "--method", "adaptive", *args)
        assert res.code == 2 and says in res.err and res.err.count("\n") == 1 and res.out == "", (args, res.err)
    (tmp_path / "a.csv").write_text("text,score\nnot a prompt of it,1\n")
    res = cli("coldstart", "anchors", src, "--method", "adaptive", "--answers", tmp_path / "a.csv")
    assert res.code == 2 and "row 1" in res.err and "--allow-new-prompts" not in res.err  # no such option here
    (tmp_path / "irt.csv").write_text(f"text,score,method\n{texts[2]},1,irt\n")  # another method's answers
    res = cli("coldstart", "anchors", src, "--method", "adaptive", "--answers", tmp_path / "irt.csv")
    assert res.code == 2 and "holds answers to irt anchors" in res.err and res.err.count("\n") == 1
    res = cli("coldstart", "anchors", src, "--method", "adaptve", "--answers", tmp_path / "a.csv")
    assert res.code == 2 and "must be one of random, stratified, irt, fisher, adaptive" in res.err
    # a benchmark without texts: answers could not name their prompts
    X, S, _, topic = irt_world(n_prompts=300)
    write_corpus(Corpus.from_benchmarks([world_benchmark(X, S)]), tmp_path / "nt")
    from routereval.evaluate import fit_router

    fit_router(tmp_path / "nt", benchmark="mmlu", router="irt", params={"dim": 4, "max_epochs": 30}, m=6,
               group="all_strong", save=tmp_path / "r")
    for method in ("adaptive", "irt", "random"):  # the fixed designs too: a text-less CSV could not be answered
        res = cli("coldstart", "anchors", tmp_path / "r", "--method", method, "--out", tmp_path / "nt.csv")
        assert res.code == 2 and "holds no prompt texts" in res.err and res.out == "", method
        assert not (tmp_path / "nt.csv").exists()


def test_fisher_anchors_have_no_weights_and_add_model_corrects_by_the_corpus(world_corpus, saved_router, tmp_path,
                                                                            cli, monkeypatch):
    src = saved_router / "irt"
    pool_models = json.loads((src / "router.json").read_text())["pool"]["models"]
    new = next(f"org/model-{i:02d}" for i in range(40) if f"org/model-{i:02d}" not in pool_models)
    res = cli("coldstart", "anchors", src, "--k", "40", "--method", "fisher", "--seed", "2", "--out", tmp_path / "f.csv")
    assert res.code == 0, res.err
    rows = _answers(world_corpus, tmp_path / "f.csv", new, tmp_path / "answers.csv")
    assert len(rows) == 40 and all(r["weight"] == "" for r in rows)  # a design: no design weights
    res = cli("add-model", src, "--name", new, "--answers", tmp_path / "answers.csv", "--out", tmp_path / "v2", "--json")
    assert res.code == 0, res.err
    est = res.json()["estimate"]
    assert est["anchor_mean"] is None and est["lam"] == 0.0  # the estimate comes from the model
    true = np.asarray(open_corpus(world_corpus)["mmlu"].scores)[int(new.split("-")[-1])].mean()
    assert abs(est["mean"] - true) < 0.08 and est["low"] <= est["mean"] <= est["high"]
    # the corpus's other 39 models are the references: with the whole correction applied (these unrelated
    # models' residuals barely predict one another, so the study's rule applies little of it) it moves the estimate
    import routereval.coldstart.neighbours as neighbours_module

    monkeypatch.setattr(neighbours_module, "neighbour_shrinkage", lambda Y, r, bandwidth: 1.0)
    res = cli("add-model", src, "--name", new, "--answers", tmp_path / "answers.csv", "--out", tmp_path / "v3", "--json")
    assert res.code == 0, res.err
    full = res.json()["estimate"]
    assert full["correction"] != 0.0 and abs(full["correction"]) > abs(est["correction"])
    assert full["mean"] - full["correction"] == pytest.approx(est["mean"] - est["correction"], abs=1e-9)


def test_add_model_references_are_every_corpus_model_but_the_new_one(world_corpus, saved_router):
    """The references of add-model's correction: every model of the corpus's benchmark that answered the
    prompts (not only the router's 6 pool models), never one named as the new model (its own records)."""
    from routereval.coldstart.context import open_router_context, references

    ctx = open_router_context(saved_router / "irt")
    bench = open_corpus(world_corpus)["mmlu"]
    idx = np.arange(0, 400, 8)
    Y, means = references(ctx, idx)
    S = np.asarray(bench.scores, dtype=np.float64)
    np.testing.assert_array_equal(Y, S[:, idx].T)  # all 40 models, the 34 outside the pool too
    np.testing.assert_allclose(means, S.mean(axis=1))
    new = "org/model-39"
    assert new not in json.loads((saved_router / "irt" / "router.json").read_text())["pool"]["models"]
    Y2, means2 = references(ctx, idx, exclude=new)
    keep = np.asarray(bench.models) != new
    np.testing.assert_array_equal(Y2, S[keep][:, idx].T)
    np.testing.assert_allclose(means2, S[keep].mean(axis=1))
    assert references(ctx, np.r_[idx, -1]) is None  # an answer that is no benchmark prompt: no references


def test_add_model_references_need_a_record_on_every_prompt():
    """A model missing records has no known mean over the whole benchmark (its mean over what it answered aims
    elsewhere): it is no reference, even where it answered every anchor."""
    from types import SimpleNamespace

    from routereval.coldstart.context import references

    S = (np.random.default_rng(0).random((5, 30)) < 0.6).astype(np.float32)
    S[2, 10] = np.nan  # model m2 missed prompt 10, not an anchor
    b = Benchmark("b", models=[f"m{i}" for i in range(5)], prompt_ids=[f"p{i}" for i in range(30)], scores=S)
    Y, means = references(SimpleNamespace(bench=b), np.array([0, 1, 2]))
    keep = [0, 1, 3, 4]
    np.testing.assert_array_equal(Y, S[keep][:, :3].T)
    np.testing.assert_allclose(means, S[keep].mean(axis=1))
    S[:, 10] = np.nan  # nobody answered prompt 10: no model has a known mean, so no references
    b = Benchmark("b", models=[f"m{i}" for i in range(5)], prompt_ids=[f"p{i}" for i in range(30)], scores=S)
    assert references(SimpleNamespace(bench=b), np.array([0, 1, 2])) is None


def test_same_answers_finds_a_renamed_copy_of_graded_records_written_to_a_file():
    """Graded float32 records written with %g (6 digits) and read back as float64 still name their model; a model
    missing records (no reference) and one that differs on one answer are not named."""
    from types import SimpleNamespace

    from routereval.coldstart.saved import same_answers

    rng = np.random.default_rng(1)
    S = rng.random((6, 40)).astype(np.float32)  # not binary fractions: float32 and the file's decimals differ
    S[4] = S[1]
    S[4, 39] = np.nan  # m4: m1's answers, but a record missing (no reference)
    S[5] = S[1]
    S[5, 7] = 0.5  # m5: one answer differs
    b = Benchmark("b", models=[f"m{i}" for i in range(6)], prompt_ids=[f"p{i}" for i in range(40)], scores=S)
    idx = np.arange(30)
    y = np.array([float(f"{v:g}") for v in S[1, idx]])
    assert not np.array_equal(y, S[1, idx].astype(np.float64))  # what the file gives back is not the record
    ctx = SimpleNamespace(bench=b)
    assert same_answers(ctx, y, idx) == ["m1"] and same_answers(ctx, y, idx, exclude="m1") == []
    assert same_answers(ctx, np.where(idx == 7, 0.5, y), idx) == ["m5"]
    assert same_answers(ctx, y[:3], idx[:3]) == []  # 3 answers: agreeing everywhere is no evidence


def test_add_model_never_takes_the_new_models_own_records_for_a_reference(world_corpus, saved_router, tmp_path,
                                                                           cli, monkeypatch):
    """A corpus model outside the pool added under its own name: its records are no reference (they would hand
    the estimate its exact mean); the same answers under another name do find them (a model outside the pool)."""
    import routereval.coldstart.neighbours as neighbours_module

    src = saved_router / "irt"
    pool_models = json.loads((src / "router.json").read_text())["pool"]["models"]
    new = next(f"org/model-{i:02d}" for i in range(40) if f"org/model-{i:02d}" not in pool_models)
    res = cli("coldstart", "anchors", src, "--k", "60", "--method", "irt", "--out", tmp_path / "a.csv")
    assert res.code == 0, res.err
    _answers(world_corpus, tmp_path / "a.csv", new, tmp_path / "answers.csv")
    true = np.asarray(open_corpus(world_corpus)["mmlu"].scores)[int(new.split("-")[-1])].mean()
    monkeypatch.setattr(neighbours_module, "neighbour_shrinkage", lambda Y, r, bandwidth: 1.0)  # apply it whole
    err = {}
    for name in (new, "someone/else"):
        res = cli("add-model", src, "--name", name, "--answers", tmp_path / "answers.csv", "--out",
                  tmp_path / name.replace("/", "_"), "--json")
        assert res.code == 0, res.err
        err[name] = abs(res.json()["estimate"]["mean"] - true)
        assert res.json()["n_references"] == (39 if name == new else 40)
        # under another name the corpus model with the same answers is noted (the same model, renamed)
        assert res.json()["same_answers"] == ([] if name == new else [new])
    assert err["someone/else"] < 1e-6 < 1e-3 < err[new]
    added = json.loads((tmp_path / new.replace("/", "_") / "router.json").read_text())["metadata"]["added_models"]
    assert added[-1]["n_references"] == 39
    res = cli("add-model", src, "--name", "third/one", "--answers", tmp_path / "answers.csv", "--out", tmp_path / "t")
    out = " ".join(res.out.split())  # however wrapped
    assert res.code == 0 and "from the 20 (more when tied) of its 40 reference models that answered most alike)" in out, res.out
    assert (f"note: corpus model '{new}' gave third/one's score on every answered prompt: if it is the same model, "
            f"its records are a reference of the estimate (--name '{new}' would leave them out)") in res.err
    from routereval.cli.coldstart import _correction_note

    assert _correction_note(0.0123, 5) == " (neighbours' correction +0.012, from its 5 reference models)"
    assert _correction_note(0.0, 0) == ""
    assert _correction_note(-0.0001, 5) == " (neighbours' correction +0.000, from its 5 reference models)"
    # an adaptive test's answers: the references at the new model's level on it
    assert _correction_note(-0.01, 40, 3) == (" (neighbours' correction -0.010, from the 3 of its 40 reference models "
                                             "at its level on the test)")
    assert _correction_note(0.0, 40, 0) == (" (no neighbours' correction: none of its 40 reference models answered "
                                            "the test at its level)")
    assert _correction_note(0.0, 400, 30).endswith("from the 20 (more when tied) of the 30 of its 400 reference "
                                                   "models at its level on the test that answered most alike)")


def test_add_model_uses_the_3pl_calibration_with_a_pool_of_100_models(tmp_path_factory, tmp_path, cli):
    # 4-choice questions (a guessing floor of 0.25) answered by 130 models, 120 of them in the router's pool:
    # enough answers to pin every prompt's floor and slope, so the estimate does not take guesses for ability
    from routereval.evaluate import fit_router

    d = tmp_path_factory.mktemp("big-world")
    corpus = _world_corpus(d / "corpus", n_models=130, guess=0.25)
    fit_router(corpus, benchmark="mmlu", router="irt", params={"dim": 4, "max_epochs": 30}, m=120,
               group="random", save=d / "irt")
    pool_models = json.loads((d / "irt" / "router.json").read_text())["pool"]["models"]
    res = cli("coldstart", "anchors", d / "irt", "--k", "100", "--method", "irt", "--out", tmp_path / "a.csv")
    assert res.code == 0, res.err
    S = np.asarray(open_corpus(corpus)["mmlu"].scores)
    errors = []
    for new in [f"org/model-{i:02d}" for i in range(130) if f"org/model-{i:02d}" not in pool_models]:
        _answers(corpus, tmp_path / "a.csv", new, tmp_path / "answers.csv")
        res = cli("add-model", d / "irt", "--name", new, "--answers", tmp_path / "answers.csv", "--out",
                  tmp_path / new.replace("/", "_"), "--json")
        assert res.code == 0, res.err
        doc = res.json()
        assert doc["calibration"] == "3pl"
        added = json.loads((tmp_path / new.replace("/", "_") / "router.json").read_text())["metadata"]["added_models"]
        assert added[-1]["calibration"] == "3pl"
        errors.append(abs(doc["estimate"]["mean"] - S[int(new.split("-")[-1])].mean()))
    assert len(errors) == 10 and np.mean(errors) < 0.04, errors  # 100 answers; measured 0.026


def test_add_model_embeds_new_texts_only_when_allowed(world_corpus, saved_router, tmp_path, cli):
    src = saved_router / "mf-tfidf"
    known = str(open_corpus(world_corpus)["mmlu"].texts[0])  # a prompt of the benchmark, then two new ones
    with open(tmp_path / "ans.csv", "w", newline="") as f:
        csv.writer(f).writerows([["text", "score"], [known, 1], ["a brand new question on poetry", 0],
                                 ["another new one about algebra", 1]])
    args = ["add-model", src, "--name", "newbie", "--answers", tmp_path / "ans.csv", "--out", tmp_path / "o", "--json"]
    res = cli(*args)  # by default a text outside the benchmark is an error (an edited prompt), even for tfidf
    assert res.code == 2 and res.err.count("\n") == 1
    assert "row 2: column 'text': prompt text not among the prompts of benchmark 'mmlu'" in res.err
    assert "--allow-new-prompts" in res.err and not (tmp_path / "o").exists()
    res = cli(*args, "--allow-new-prompts")
    assert res.code == 0, res.err
    assert res.json()["m"] == 7
    # new texts are held to the same rules: 0 or 1 on a binary benchmark, one score per text up to white space
    for rows, says in (([["a brand new question on poetry", 0.5]], "row 1: column 'score': score 0.5 on benchmark"),
                       ([["a brand new question on poetry", 0], [" a brand new question on poetry  ", 1]],
                        "row 2: column 'text': names the same prompt as row 1")):
        with open(tmp_path / "new.csv", "w", newline="") as f:
            csv.writer(f).writerows([["text", "score"], *rows])
        res = cli("add-model", src, "--name", "newbie", "--answers", tmp_path / "new.csv", "--out", tmp_path / "n",
                  "--allow-new-prompts")
        assert res.code == 2 and says in res.err and res.err.count("\n") == 1 and not (tmp_path / "n").exists()


def _bad_answers(tmp_path, body):
    p = tmp_path / "bad.csv"
    p.write_text(body)
    return p


@pytest.mark.parametrize("body, name, message", [
    ("text,score\nthis prompt is not in the benchmark,1\n", "new-x",
     "row 1: column 'text': prompt text not among the prompts of benchmark 'mmlu'"),
    ("text,score\nquestion 3 on history number 8,1\nquestion 3 on history number 8,0\n", "new-x",
     "row 2: column 'text': duplicate prompt (also at row 1)"),
    ("text,score\nquestion 3 on history number 8,1.5\n", "new-x", "row 1: column 'score': score 1.5 is out of range"),
    ("text,score\nquestion 3 on history number 8,yes\n", "new-x", "row 1: column 'score': score 'yes' is not a number"),
    ("text,score\nquestion 3 on history number 8,nan\n", "new-x",
     "row 1: column 'score': score nan is missing; expected a score in [0, 1] (an answer the model failed"),
    ("text,score\nquestion 3 on history number 8,inf\n", "new-x", "row 1: column 'score': score inf is out of range"),
    ("prompt,score\nquestion 3 on history number 8,1\n", "new-x", "has no 'text' column"),
    ("text;score\nquestion 3 on history number 8;1\n", "new-x",
     "has no 'text' column (columns: text;score); the header is one column: a file separated by ';'? expected commas"),
    ("Text,Score,text\nquestion 3 on history number 8,1,x\n", "new-x", "column 'text' appears 2 times in the header"),
    ("text,score\n", "new-x", "holds no answers, only its header; expected one row per answer under it"),
    ("", "new-x", "is empty; expected a CSV with a header text,score and one row per answer"),
    ("text,score,weight\nquestion 3 on history number 8,1,\nquestion 5 on history number 9,0,0.5\n", "new-x",
     "row 2: column 'weight': weight is empty on row 1 but not here"),
    ("text,score,weight\nquestion 3 on history number 8,1,0.5\nquestion 5 on history number 9,0,\n", "new-x",
     "row 2: column 'weight': weight '' is not a positive number"),
    ("text,score\nquestion 3 on history number 8,1,0\n", "new-x", "row 1: 3 fields, the header has 2; quote a text"),
    ("text,score\nquestion 3 on history number 8,1\n", "POOL", "is already in the router's pool"),
    ("text,score\nquestion 3 on history number 8,1\n", "POOL ", "must not start or end with white space"),
    # a pool name up to case, and the name serve routes by (served twice, the model unreachable, before)
    ("text,score\nquestion 3 on history number 8,1\n", "pool_UPPER", "only in case; choose another name (--name)"),
    ("text,score\nquestion 3 on history number 8,1\n", "router", "'router' is the name `routereval serve` routes by"),
    ("text,score\nquestion 3 on history number 8,1\n", "Router", "'Router' is the name `routereval serve` routes by"),
    ("text,score\nquestion 3 on history number 8,1\n", "new\nx", "must not hold line breaks, tabs or other control"),
    ("text,score,score\nquestion 3 on history number 8,1,0\n", "new-x",
     "bad.csv: column 'score' appears 2 times in the header; expected it once"),
    # the anchors file's method column: one method (rows left blank name none), and an anchor method
    ("text,score,method\nquestion 3 on history number 8,1,irt\nquestion 5 on history number 9,0,\n"
     "question 6 on history number 9,0,Adaptive\n", "new-x",
     "row 3: column 'method': method 'adaptive', but 'irt' on row 1; expected one method for every anchor"),
    ("text,score,method\nquestion 3 on history number 8,1,cat\n", "new-x",
     "row 1: column 'method': method 'cat' is not an anchor method; expected one of random, stratified, irt"),
])
def test_add_model_bad_input_is_one_line_and_writes_nothing(saved_router, tmp_path, cli, body, name, message):
    src = saved_router / "irt"
    before = _digest(src)
    if name in ("POOL", "POOL "):
        name = json.loads((src / "router.json").read_text())["pool"]["models"][0] + name[4:]
    if name == "pool_UPPER":
        name = json.loads((src / "router.json").read_text())["pool"]["models"][0].upper()
    res = cli("add-model", src, "--name", name, "--answers", _bad_answers(tmp_path, body), "--out", tmp_path / "out")
    assert res.code == 2, res.err
    assert message in res.err and res.err.count("\n") == 1
    assert not (tmp_path / "out").exists() and _digest(src) == before
    assert not [p for p in src.parent.iterdir() if p.name.startswith(".")]  # no temporaries left behind


def test_answers_name_train_prompts_up_to_a_spreadsheets_white_space(world_corpus, saved_router, tmp_path, cli):
    """A text whose spaces or line ends a spreadsheet changed names its prompt (the same model as the exact texts);
    an answer on a test or validation prompt of the router's split is refused by add-model and the adaptive test
    alike (the router is measured on those); --corpus is recorded in the new version."""
    from routereval.coldstart.answers import loose_text, normal_text
    from routereval.pools import make_split

    src = saved_router / "irt"
    bench = open_corpus(world_corpus)["mmlu"]
    doc = json.loads((src / "router.json").read_text())
    split = make_split(bench, seed=int(doc["pool"]["seed"]), split=str(doc["pool"]["split"]))
    texts = [str(bench.texts[i]) for i in split.train[:12]]
    scores = [i % 2 for i in range(12)]
    exact, mangled = tmp_path / "exact.csv", tmp_path / "mangled.csv"
    with open(exact, "w", newline="") as f:
        csv.writer(f).writerows([["text", "score"], *zip(texts, scores)])
    with open(mangled, "w", newline="") as f:  # a spreadsheet's header too (a CLI trial's Text,Score was refused)
        csv.writer(f).writerows([["Text", " Score"], *zip([t + "  " if i % 2 else " " + t.replace(" ", "\u00a0 ", 2)
                                                           + "\r\n" for i, t in enumerate(texts)], scores)])
    assert loose_text(" a  \r\nb \rc\n") == "a\nb\nc" and loose_text("a b") == "a b"
    # an editor's edits: runs of spaces or tabs, no-break spaces, blank lines, typographic quotes
    assert normal_text("a\u00a0 b\t c\n\n\nd \u201cx\u2019s\u201d") == 'a b c\nd "x\'s"'
    assert normal_text("a b") != normal_text("ab") and normal_text("a\nb") != normal_text("a b")
    assert loose_text("a  b") == "a  b" and normal_text(" a  b\r\n") == loose_text(" a b\r\n") == "a b"
    a = cli("add-model", src, "--name", "n1", "--answers", exact, "--out", tmp_path / "a", "--json")
    b = cli("add-model", src, "--name", "n1", "--answers", mangled, "--out", tmp_path / "b", "--corpus", world_corpus,
            "--json")
    assert a.code == 0 and b.code == 0, a.err + b.err
    assert a.json()["estimate"] == b.json()["estimate"] and a.json()["n_references"] == b.json()["n_references"] > 0
    assert json.loads((tmp_path / "b" / "router.json").read_text())["metadata"]["corpus"] == str(world_corpus.resolve())
    edited = texts[1].replace(" number ", " numbr ")
    cut = len(os.path.commonprefix([texts[1], edited]))
    for rows, says in (([[texts[0], 1], ["  " + texts[0] + " ", 0]],
                        "row 2: column 'text': names the same prompt as row 1 (the texts differ only in white space"),
                       ([[texts[0], 1], [edited, 0]],  # an edit inside the text: where it parts from the prompt
                        f"row 2: column 'text': prompt text not among the prompts of benchmark 'mmlu'; expected the "
                        f"texts `routereval coldstart anchors` printed, unchanged; after evening out white space and "
                        f"quotes, it parts from the train prompt sharing its longest start at character {cut + 1}"),
                       ([[texts[0], 1], [texts[1], 0.5]], "row 2: column 'score': score 0.5 on benchmark 'mmlu', whose "
                                                          "records are 0 or 1 (wrong or right); expected 0 or 1")):
        bad = tmp_path / "bad.csv"
        with open(bad, "w", newline="") as f:
            csv.writer(f).writerows([["text", "score"], *rows])
        res = cli("add-model", src, "--name", "n2", "--answers", bad, "--out", tmp_path / "o")
        assert res.code == 2 and res.err.count("\n") == 1 and says in res.err, res.err
    for part in ("test", "val"):
        bad = tmp_path / f"{part}.csv"
        with open(bad, "w", newline="") as f:
            csv.writer(f).writerows([["text", "score"], [texts[0], 1], [str(bench.texts[getattr(split, part)[0]]), 0]])
        want = "test" if part == "test" else "validation"
        for args in (("add-model", src, "--name", "n2", "--answers", bad, "--out", tmp_path / "o"),
                     ("coldstart", "anchors", src, "--method", "adaptive", "--answers", bad)):
            res = cli(*args)
            assert res.code == 2 and res.err.count("\n") == 1, res.err
            assert f"row 2: column 'text': prompt is a {want} prompt of the router's split" in res.err
            assert not (tmp_path / "o").exists()


def test_prompts_that_differ_only_in_white_space_still_name_themselves():
    """Answers are matched in tiers (exact, a spreadsheet's line ends and outer white space, an editor's edits):
    two prompts that differ only in a double space each keep their answers; a form that names both is refused
    with a hint saying so, not with a position past its end."""
    from types import SimpleNamespace

    from routereval.coldstart.answers import Answers
    from routereval.coldstart.context import RouterContext, answer_prompts, closest_prompt_hint

    texts = np.array(["Is 7 a prime number? Answer briefly.", "Is 7 a prime  number? Answer briefly.",
                      "What is the \u201cbest\u201d sorting algorithm for nearly sorted data?"], dtype=object)
    bench = SimpleNamespace(texts=texts, n_prompts=3)
    ctx = RouterContext(None, None, None, bench, SimpleNamespace(train=np.arange(3)), None, None, 0.0)
    ask = ["Is 7 a prime number? Answer briefly.  ", "Is 7 a prime  number? Answer briefly.\r\n",
           'What is the "best"  sorting algorithm for nearly sorted data?', "Is 7 a\u00a0prime number? Answer briefly."]
    got = answer_prompts(ctx, Answers(ask, np.ones(4), None, ""))
    assert got.tolist() == [0, 1, 2, -1]
    assert closest_prompt_hint(ctx, ask[3]) == ("; up to white space, quotes and Unicode forms it names 2 prompts that "
                                                "differ only in those: paste the text unchanged")
    hint = closest_prompt_hint(ctx, "What is the \u201cbest\u201d sortng algorithm for nearly sorted data?")
    assert hint == ("; after evening out white space and quotes, it parts from the train prompt sharing its longest "
                    "start at character 24 (...'t is the \"best\" sortng algorit')")
    assert closest_prompt_hint(ctx, "What is it?") == ""  # nothing shares 20 characters: no hint


def test_add_model_refuses_routers_and_targets_it_cannot_use(saved_router, tmp_path, cli):
    ans = _bad_answers(tmp_path, "text,score\nquestion 3 on history number 8,1\n")
    res = cli("add-model", saved_router / "knn", "--name", "n", "--answers", ans, "--out", tmp_path / "o")
    assert res.code == 2 and "knn" in res.err and "per-model parameter vector" in res.err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    res = cli("add-model", saved_router / "irt", "--name", "n", "--answers", ans, "--out", tmp_path / "busy")
    assert res.code == 2 and "not a saved router" in res.err
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    other = _digest(saved_router / "mf-tfidf")  # another saved router is never replaced
    res = cli("add-model", saved_router / "irt", "--name", "n", "--answers", ans, "--out", saved_router / "mf-tfidf")
    assert res.code == 2 and "holds another saved router" in res.err and res.err.count("\n") == 1
    assert _digest(saved_router / "mf-tfidf") == other
    before = _digest(saved_router / "irt")  # inside the source it would nest a router in it (a trial)
    res = cli("add-model", saved_router / "irt", "--name", "n", "--answers", ans, "--out", saved_router / "irt" / "sub")
    assert res.code == 2 and "is inside the router directory" in res.err and res.err.count("\n") == 1
    assert _digest(saved_router / "irt") == before
    res = cli("add-model", saved_router / "irt", "--name", "n", "--answers", ans, "--out", tmp_path / "c", "--cost", "1")
    assert res.code == 2 and "pool has no costs" in res.err and not (tmp_path / "c").exists()


def _naive_copies(y, S, cols):
    """Copies by the definition, one column at a time."""
    from routereval.coldstart.neighbours import COPY_AGREEMENT, COPY_CHANCE

    out = []
    for c in cols:
        same = np.mean(S[:, c] == y)
        fy = {v: np.mean(y == v) for v in np.unique(y)}
        chance = sum(fy.get(v, 0.0) * np.mean(S[:, c] == v) for v in np.unique(S[:, c]))
        out.append(same >= COPY_AGREEMENT and 1 - same <= COPY_CHANCE * (1 - chance))
    return np.array(out)


def test_copies_are_the_same_scores_beyond_chance():
    """A copy of a model (re-uploaded, or 0.5% of its answers re-drawn) is one; two distinct strong models that
    agree on 99% of the prompts because both get nearly everything right are not; graded scores close to a
    model's but never equal are not. The binary path, the graded path and a naive version agree."""
    from routereval.coldstart.neighbours import copies as _copies

    rng = np.random.default_rng(0)
    n = 4000
    base = (rng.random(n) < 0.6).astype(np.float32)
    flip = rng.random(n) < 0.005
    redrawn = np.where(flip, 1 - base, base).astype(np.float32)
    strong = [(rng.random(n) > 0.004).astype(np.float32) for _ in range(2)]  # 99.6% right, independently
    other = (rng.random(n) < 0.6).astype(np.float32)
    S = np.column_stack([base, redrawn, other, strong[1]])
    cols = np.arange(4)
    for y, want in ((base, [True, True, False, False]), (strong[0], [False, False, False, False])):
        assert np.mean(strong[0] == strong[1]) >= 0.99  # the agreement alone would call them copies
        got = _copies(y, S, cols, sums=S.sum(axis=0))
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(_copies(y, S, cols, sums=None), got)  # the graded path on binary data
        np.testing.assert_array_equal(_naive_copies(y, S, cols), got)
    graded = rng.random(n).astype(np.float32)
    G = np.column_stack([graded, np.clip(graded + rng.normal(0, 0.003, n), 0, 1).astype(np.float32), rng.random(n)])
    got = _copies(graded, G, np.array([0, 1, 2]), sums=None, chunk=2)
    np.testing.assert_array_equal(got, [True, False, False])
    np.testing.assert_array_equal(_naive_copies(graded, G, [0, 1, 2]), got)
    assert _copies(graded, G, np.zeros(0, dtype=int), sums=None).shape == (0,)
    # on a few prompts (add-model's anchors) agreeing everywhere is evidence only where independent models would
    # disagree on several of them: min_expected
    few = np.r_[np.ones(18), np.zeros(2)].astype(np.float32)  # 20 answers, a strong model's
    twins = np.column_stack([few, few])
    twins[:, 1] = 1.0  # right everywhere: it agrees with `few` on 18 of 20 only
    assert _copies(few, twins, np.arange(2), sums=None).tolist() == [True, False]
    strong20 = np.ones((20, 1), dtype=np.float32)  # two models right on every anchor: 0 disagreements expected
    assert _copies(np.ones(20, dtype=np.float32), strong20, np.arange(1), sums=None).tolist() == [True]
    assert _copies(np.ones(20, dtype=np.float32), strong20, np.arange(1), sums=None, min_expected=5).tolist() == [False]
    assert _copies(few, twins, np.arange(2), sums=None, min_expected=5).tolist() == [False, False]  # 3.4 expected
    mixed = np.tile([1.0, 0.0], 10).astype(np.float32)  # a 50% model: 10 disagreements expected by chance
    assert _copies(mixed, mixed[:, None], np.arange(1), sums=None, min_expected=5).tolist() == [True]


def test_corpus_folds_give_the_other_held_out_pool_models_their_full_answers(world_corpus, tmp_path):
    """With one fold the prompt side is learned without every held-out model; the pool without h still has them all."""
    from routereval.coldstart.output import write_study
    from routereval.coldstart.study import run_study, summarise

    res = run_study(world_corpus, benchmark="mmlu", router="irt", params={"dim": 4, "max_epochs": 30}, m=6,
                    group="all_strong", anchors=(50,), methods=("random",), seeds=1, pretrain=("corpus",), folds=1)
    assert res.meta["n_fits"] == 2  # the fold without all 6, and the full fit (upper)
    rows = res.rows
    assert len(rows) == 6 and all(np.isfinite(r["mu_lower"]) and 0 < r["mu_lower"] <= 1 for r in rows)
    # the pool without one model routes at least as well as its worst model and at most as the upper bound + noise
    bench = open_corpus(world_corpus)["mmlu"]
    from routereval.pools import make_pool, make_split

    split = make_split(bench)
    pool = make_pool(bench, m=6, group="all_strong", split=split)
    worst = np.asarray(bench.scores, dtype=np.float64)[pool.models][:, split.test].mean(axis=1).min()
    assert all(r["mu_lower"] >= worst - 0.02 and r["mu_lower"] <= r["mu_upper"] + 0.05 for r in rows)
    assert summarise(rows)[0]["n"] == 6
    # the summary counts the models the prompt side learned from as the fold left them: 40 - 6, not 39
    n = res.meta["n_corpus_models"]
    text = (write_study(res, tmp_path / "study") and (tmp_path / "study" / "summary.md")).read_text()
    assert f"What {n} models allow" in text
    assert f"is learned from {n - 6} of them (the study holds models out in folds)" in text
    assert f"the other {n - 1}" not in text and f"{n - 6} answers per prompt" in text


def _twin_corpus(out):
    """The irt world's 40 models plus org/twin, whose answers are org/model-00's everywhere."""
    X, S, _, topic = irt_world()
    S = np.hstack([S, S[:, :1]])
    names = [f"org/model-{i:02d}" for i in range(40)] + ["org/twin"]
    write_corpus(Corpus.from_benchmarks([world_benchmark(X, S, topic, texts=[f"q{i}" for i in range(len(X))],
                                                         names=names)]), out)
    return out


@pytest.fixture(scope="module")
def twin_corpus(tmp_path_factory):
    return _twin_corpus(tmp_path_factory.mktemp("twin") / "corpus")


def test_corpus_references_reach_beyond_the_models_the_prompt_side_learns_from(twin_corpus, monkeypatch):
    """Under corpus pre-training every corpus model but the held-out one is a reference of the neighbours'
    correction, also those outside the sample the router was fitted on: a twin of a held-out model (the same
    answers everywhere) left out of that sample still hands it its exact residual (with the guard against
    copies off: a twin is one)."""
    import routereval.coldstart.neighbours as neighbours_module
    import routereval.coldstart.study as study_module
    from routereval.coldstart.study import run_study

    monkeypatch.setattr(neighbours_module, "neighbour_shrinkage", lambda Y, r, bandwidth: 1.0)  # apply it whole
    monkeypatch.setattr(study_module, "COPY_AGREEMENT", 1.1)
    res = run_study(twin_corpus, benchmark="mmlu", router="irt", params={"dim": 4, "max_epochs": 30}, m=6,
                    group="random", seed=45, anchors=(50,), methods=("random",), seeds=1, pretrain=("pool", "corpus"),
                    folds=1, corpus_models=20)
    assert "org/model-00" in res.meta["pool_models"] and "org/twin" not in res.meta["pool_models"]
    assert res.meta["n_corpus_models"] == 20 and res.meta["n_references"] == {"pool": 5, "corpus": 40}
    row = {r["pretrain"]: r for r in res.rows if r["model"] == "org/model-00"}
    # corpus: the twin (not among the 20 fitted models) is the most agreeing reference and its residual is exact
    assert row["corpus"]["abs_error"] < 1e-4 < row["corpus"]["abs_error_gp"]
    # pool: the references are the 5 other pool models, strangers to it
    assert row["pool"]["abs_error"] > 1e-3
    others = [r for r in res.rows if r["model"] != "org/model-00" and r["pretrain"] == "corpus"]
    assert all(r["abs_error"] > 1e-4 for r in others)


def test_corpus_references_include_the_other_held_out_models_of_a_fold(twin_corpus, monkeypatch):
    """With one fold no held-out pool model is fitted, but the others are known models: a twin held out in the
    same fold is still a reference of the correction (with the guard against copies off)."""
    import routereval.coldstart.neighbours as neighbours_module
    import routereval.coldstart.study as study_module
    from routereval.coldstart.study import run_study

    monkeypatch.setattr(neighbours_module, "neighbour_shrinkage", lambda Y, r, bandwidth: 1.0)
    monkeypatch.setattr(study_module, "COPY_AGREEMENT", 1.1)
    res = run_study(twin_corpus, benchmark="mmlu", router="irt", params={"dim": 4, "max_epochs": 30}, m=6,
                    group="random", seed=34, anchors=(50,), methods=("random",), seeds=1, pretrain=("corpus",),
                    folds=1)
    assert {"org/model-00", "org/twin"} <= set(res.meta["pool_models"]) and res.meta["n_fits"] == 2
    err = {r["model"]: r["abs_error"] for r in res.rows}
    # each is the other's reference (model-00's gp-IRT error, 0.063, falls under 0.001)
    assert err["org/model-00"] < 1e-3 and err["org/twin"] < 1e-3
    assert all(e > 1e-2 for m, e in err.items() if m not in ("org/model-00", "org/twin"))


def test_a_copy_of_the_held_out_model_is_no_reference(twin_corpus, tmp_path, monkeypatch):
    """A known model with the held-out model's answers (the same model under another name, as leaderboards hold)
    would hand it its exact mean: the study leaves such copies out of the references and names them."""
    import routereval.coldstart.neighbours as neighbours_module
    from routereval.coldstart.study import run_study

    monkeypatch.setattr(neighbours_module, "neighbour_shrinkage", lambda Y, r, bandwidth: 1.0)
    res = run_study(twin_corpus, benchmark="mmlu", router="irt", params={"dim": 4, "max_epochs": 30}, m=6,
                    group="random", seed=45, anchors=(50,), methods=("random",), seeds=1, pretrain=("pool", "corpus"),
                    folds=1, corpus_models=20)
    assert res.meta["reference_copies"] == {"org/model-00": ["org/twin"]}
    row = {r["pretrain"]: r for r in res.rows if r["model"] == "org/model-00"}
    assert row["corpus"]["abs_error"] > 1e-3  # an estimate again, not the copy's known mean
    # the fold's twin, both held out: each is the other's copy
    res = run_study(twin_corpus, benchmark="mmlu", router="irt", params={"dim": 4, "max_epochs": 30}, m=6,
                    group="random", seed=34, anchors=(50,), methods=("random",), seeds=1, pretrain=("pool", "corpus"),
                    folds=1)
    assert res.meta["reference_copies"] == {"org/model-00": ["org/twin"], "org/twin": ["org/model-00"]}
    assert all(r["abs_error"] > 1e-3 for r in res.rows if r["model"] in ("org/model-00", "org/twin"))
    from routereval.coldstart.output import write_study

    write_study(res, tmp_path / "study")
    summary = " ".join((tmp_path / "study" / "summary.md").read_text().split())
    assert ("copies of held-out models left out, of the fits without them too unless no model would be left (2 pairs: "
            "the same score on at least 99% of the train prompts, "
            "beyond chance)") in summary


def test_a_copy_of_the_held_out_model_is_left_out_of_the_fits_without_it(twin_corpus, monkeypatch):
    """The fits that stand for "the router without h" leave out h's copies too (else the prompt side and the prior
    would have learned from h's own answers under another name); the full fit (the upper bound) keeps them."""
    import routereval.coldstart.study as study_module
    from routereval.coldstart.study import _plan, run_study

    fitted = []
    real_fit = study_module._fit_columns

    def recording(d, cols, **kw):
        fitted.append({str(n) for n in np.asarray(d.bench.models)[d.corpus_rows[cols]]})
        return real_fit(d, cols, **kw)

    monkeypatch.setattr(study_module, "_fit_columns", recording)
    res = run_study(twin_corpus, benchmark="mmlu", router="irt", params={"dim": 4, "max_epochs": 30}, m=6,
                    group="random", seed=54, anchors=(50,), methods=("random",), seeds=1, pretrain=("pool", "corpus"),
                    folds=1, corpus_models=20)
    assert res.meta["reference_copies"] == {"org/model-00": ["org/twin"]}
    # under corpus the twin is in the seeded sample of 20 with seed 54; the fold without the pool leaves it out
    pool = set(res.meta["pool_models"])
    without = [f for f in fitted if not f & pool]
    assert len(without) == 1 and "org/twin" not in without[0] and len(without[0]) == 13
    assert any("org/twin" in f and "org/model-00" in f for f in fitted)  # the full fit keeps both
    # pool pre-training, a pool of a model and its copy: each fit without one leaves its copy out too, unless
    # nothing would be left
    plan = _plan(["pool", "corpus"], np.array([0, 1, 2]), 3, 5, 1, copies={0: np.array([1, 4]), 1: np.array([0])})
    assert [(m, g, c.tolist()) for m, g, c in plan] == [("pool", [0], [2]), ("pool", [1], [2]), ("pool", [2], [0, 1]),
                                                       ("corpus", [0, 1, 2], [3])]
    assert _plan(["pool"], np.array([0]), 2, 2, None, copies={0: np.array([1])})[0][2].tolist() == [1]


def test_add_model_output_is_served_by_create_app_and_routed_to(rb_router, tmp_path, cli):
    """fit (MiniLM) -> coldstart anchors -> add-model -> serve's create_app routes to the new model where it is best."""
    from starlette.testclient import TestClient

    from routereval.embed import embed_texts
    from routereval.routers.persist import load_router
    from routereval.serve import create_app

    _, corpus, bench_name = rb_router  # 120 real RouterBench prompts, MiniLM embeddings cached by the fixture
    src = tmp_path / "irt"
    res = cli("fit", corpus, "--benchmark", bench_name, "--router", "irt", "--param", "dim=2",
              "--param", "max_epochs=20", "--m", "3", "--group", "strong_to_weak", "--embedding", "minilm",
              "--save", src, "--json")
    assert res.code == 0, res.err
    res = cli("coldstart", "anchors", src, "--k", "30", "--method", "irt", "--seed", "0", "--out", tmp_path / "a.csv")
    assert res.code == 0, res.err
    with open(tmp_path / "a.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30 and all(r["text"] for r in rows)
    with open(tmp_path / "answers.csv", "w", newline="") as f:  # a model that answers every anchor right
        w = csv.DictWriter(f, fieldnames=list(rows[0]))  # the anchors file with its score column filled in
        w.writeheader()
        w.writerows({**r, "score": 1} for r in rows)
    res = cli("add-model", src, "--name", "acme/new-model", "--answers", tmp_path / "answers.csv",
              "--out", tmp_path / "irt-v2", "--json")
    assert res.code == 0, res.err
    assert res.json()["anchors_method"] == "irt" and not any("method column" in n for n in res.json()["notes"])
    v2 = load_router(tmp_path / "irt-v2")
    names = v2.pool["models"]
    assert names[-1] == "acme/new-model" and len(names) == 4

    prompts = open_corpus(corpus)[bench_name].texts[-12:].tolist()
    X = embed_texts(prompts, "minilm")
    want_scores = v2.router.predict_scores(X)
    want = [names[i] for i in v2.router.route(X)]
    with TestClient(create_app(tmp_path / "irt-v2")) as client:
        assert client.get("/healthz").status_code == 200
        assert "acme/new-model" in [m["id"] for m in client.get("/v1/models").json()["data"]]
        r = client.post("/v1/route", json={"prompts": prompts})
        assert r.status_code == 200, r.text
        routes = r.json()["routes"]
        # the added model has no cost: the cost trade-off is refused, naming it
        r = client.post("/v1/route", json={"prompt": prompts[0], "cost_weight": 1})
        assert r.status_code == 422 and "no cost for 'acme/new-model'" in r.json()["error"]["message"]
    with pytest.raises(InputError, match="pool.cost has no cost for 'acme/new-model'"):
        create_app(tmp_path / "irt-v2", cost_weight=0.5)
    # with its cost (--cost), the new pool routes with the cost trade-off; a bad cost writes nothing
    res = cli("add-model", src, "--name", "acme/new-model", "--answers", tmp_path / "answers.csv",
              "--out", tmp_path / "irt-v3", "--cost", "0.0005", "--json")
    assert res.code == 0, res.err
    assert res.json()["cost"] == 0.0005 and load_router(tmp_path / "irt-v3").pool["cost"]["acme/new-model"] == 0.0005
    with TestClient(create_app(tmp_path / "irt-v3")) as client:
        r = client.post("/v1/route", json={"prompt": prompts[0], "cost_weight": 1})
        assert r.status_code == 200, r.text
    for bad in ("-1", "nan"):
        res = cli("add-model", src, "--name", "x", "--answers", tmp_path / "answers.csv", "--out", tmp_path / "bad",
                  "--cost", bad)
        assert res.code == 2 and "cost (--cost) must be" in res.err and res.err.count("\n") == 1
        assert not (tmp_path / "bad").exists()
    res = cli("add-model", src, "--name", "x", "--answers", tmp_path / "answers.csv", "--out", tmp_path / "nocost")
    assert res.code == 0 and "note: the pool has costs but x has none (--cost USD)" in res.err
    with TestClient(create_app(tmp_path / "nocost")) as client:  # the refusal names the fix
        r = client.post("/v1/route", json={"prompt": prompts[0], "cost_weight": 1})
        assert r.status_code == 422 and "add it again with --cost" in r.text
    # a cost far outside the pool's (cents, or per 1,000 prompts) is taken, with a note
    high = max(load_router(src).pool["cost"].values())
    res = cli("add-model", src, "--name", "x", "--answers", tmp_path / "answers.csv", "--out", tmp_path / "dear",
              "--cost", "5")
    assert res.code == 0 and f"note: --cost 5 is {5 / high:.3g} times the pool's highest" in res.err, res.err
    res = cli("add-model", src, "--name", "x", "--answers", tmp_path / "answers.csv", "--out", tmp_path / "free",
              "--cost", "0", "--json")  # a model run for free is no typing slip
    # (no note on the cost; one on the answers: every anchor right, above every known model's)
    assert res.code == 0 and res.json()["cost"] == 0.0
    assert [n[:39] for n in res.json()["notes"]] == ["x scored 1.000 on its 30 answers, above"]
    res = cli("add-model", src, "--name", "x", "--answers", tmp_path / "answers.csv", "--out", tmp_path / "fair",
              "--cost", f"{high / 2}")
    assert res.code == 0 and "--cost" not in res.err and res.err.count("note: ") == 1, res.err  # the answers' note
    assert [x["model"] for x in routes] == want
    got = np.array([[x["scores"][m] for m in names] for x in routes])
    np.testing.assert_allclose(got, want_scores, rtol=1e-5, atol=1e-6)
    best_new = got.argmax(axis=1) == 3
    assert best_new.sum() >= len(prompts) // 2  # it answered every anchor: best on most prompts
    assert all(x["model"] == "acme/new-model" for x, b in zip(routes, best_new) if b)
    assert all(x["model"] != "acme/new-model" for x, b in zip(routes, best_new) if not b)


def test_answers_csv_keeps_prompts_with_unicode_line_separators(tmp_path):
    """Prompt texts holding a form feed, NEL or U+2028 (csv does not quote them) read back whole."""
    from routereval.coldstart.answers import read_answers, write_anchor_csv

    texts = ["a\u2028b, c", "form\x0cfeed", 'line\nbreak "q"', "x\x85y", "gs\x1dz\r\nthen", "plain"]
    rows = [{"prompt_id": f"p{i}", "subset": "s", "weight": 1.0, "text": t, "score": ""} for i, t in enumerate(texts)]
    with open(tmp_path / "a.csv", "w", newline="", encoding="utf-8") as f:
        write_anchor_csv(rows, f)  # what `coldstart anchors --out` writes; the user fills the scores in
    filled = (tmp_path / "a.csv").read_bytes().replace(b",\n", b",0.5\n")
    (tmp_path / "ans.csv").write_bytes(filled)
    ans = read_answers(tmp_path / "ans.csv")
    assert ans.texts == texts and ans.scores.tolist() == [0.5] * len(texts) and ans.weights.tolist() == [1.0] * 6


def test_study_refuses_corpus_models_below_1_and_more_held_out_models_than_the_pool(world_corpus, tmp_path, cli):
    base = ("coldstart", world_corpus, "--benchmark", "mmlu", "--router", "irt", "--m", "5", "--group", "random",
            "--anchors", "10", "--method", "random", "--seeds", "1")
    for extra, msg in ((("--corpus-models", "0", "--pretrain", "corpus"), "corpus_models (--corpus-models)"),
                       (("--models", "9"), "models (--models): 9 models to hold out, but the pool has 5")):
        res = cli(*base, *extra, "--out", tmp_path / "s")
        assert res.code == 2 and msg in res.err and res.err.count("\n") == 1, res.err
        assert not (tmp_path / "s").exists()


def test_study_says_when_corpus_models_exceeds_the_eligible_models(world_corpus, tmp_path, cli):
    """--corpus-models is an upper bound: past the benchmark's eligible models all are taken, and the table and
    summary.md say so (with fewer asked, nothing is said)."""
    base = ("coldstart", world_corpus, "--benchmark", "mmlu", "--router", "irt", "--param", "dim=4", "--param",
            "max_epochs=30", "--m", "5", "--group", "random", "--anchors", "10", "--method", "random", "--seeds", "1",
            "--models", "1", "--pretrain", "corpus", "--folds", "1")
    res = cli(*base, "--corpus-models", "1000", "--out", tmp_path / "all")
    assert res.code == 0, res.err
    line = "--corpus-models 1000: the benchmark has 40 eligible models (--missing auto), so corpus pre-training used all"
    assert line in " ".join(res.out.split())
    doc = json.loads((tmp_path / "all" / "coldstart.json").read_text())
    assert doc["meta"]["corpus_models"] == 1000 and doc["meta"]["n_corpus_models"] == 40
    assert "`--corpus-models` 1000: the benchmark has 40 eligible models" in (tmp_path / "all" / "summary.md").read_text()
    res = cli(*base, "--corpus-models", "20", "--out", tmp_path / "some")
    assert res.code == 0, res.err
    assert "eligible" not in res.out and "eligible model" not in (tmp_path / "some" / "summary.md").read_text()
    assert json.loads((tmp_path / "some" / "coldstart.json").read_text())["meta"]["n_corpus_models"] == 20



def test_a_model_beyond_every_reference_on_its_answers_gets_a_note():
    """A new model that answers its prompts better (worse) than every known model: its estimate extrapolates
    and the population pulls it back (a trial: GPT-4 added to a pool of 10 weaker models, 0.59 for 0.86)."""
    from routereval.coldstart.saved import beyond_note

    Y = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 0, 0]], dtype=float)  # 3 pool models: 0.5, 0.25, 0.5
    up = beyond_note("new", np.array([1.0, 1, 1, 0]), Y)
    assert up.startswith("new scored 0.750 on its 4 answers, above every one of the 3 pool models on the "
                         "same prompts (best 0.500)") and "likely too low" in up
    down = beyond_note("new", np.zeros(4), Y)
    assert "below every one of the 3 pool models on the same prompts (lowest 0.250)" in down
    assert "likely too high" in down
    assert beyond_note("new", np.array([1.0, 0, 0, 0]), Y) is None  # among them
    assert "fixed anchors (irt, random" in up and "fixed anchors" not in beyond_note("new", np.ones(4), Y, "irt")
    assert beyond_note("new", np.ones(4), None) is None and beyond_note("new", np.ones(4), Y[:, :0]) is None


def test_pool_answers_are_the_pool_models_records_on_the_prompts(saved_router, world_corpus):
    """The beyond-every-model note compares with the pool's models (the prior), read from the records' bits: every
    pool model the corpus holds, against a naive read of the unpacked scores; an added model (not in the corpus)
    and a prompt outside the benchmark (-1) are handled."""
    from routereval.coldstart.context import open_router_context
    from routereval.coldstart.saved import pool_answers

    ctx = open_router_context(saved_router / "irt")
    names = json.loads((saved_router / "irt" / "router.json").read_text())["pool"]["models"]
    idx = ctx.split.train[:17]
    Y = pool_answers(ctx, idx, names + ["added-later"])
    S = np.asarray(open_corpus(world_corpus)["mmlu"].scores, dtype=np.float64)
    rows = [list(ctx.bench.models).index(n) for n in names]
    np.testing.assert_array_equal(Y, S[np.sort(rows)][:, idx].T)
    assert pool_answers(ctx, np.r_[idx, -1], names) is None
