"""Cold start against naive reference computations: small pure functions written out term by term.

Each test pins a piece of the cold-start maths (the gp-IRT combination, the floored p-IRT, the anchor designs, the
study's helpers, the saved router's floors cache and add-model's estimate) that a plausible slip would change
without breaking the end-to-end tests.
"""

from __future__ import annotations

import csv
import math
import shutil
from statistics import NormalDist

import numpy as np
import pytest

from routereval.coldstart.anchors import AdaptiveTest, allocate, design_positions, stratified_positions
from routereval.coldstart.estimate import estimate_from_posterior, estimate_mean, gp_combine
from routereval.data.model import Corpus
from routereval.data.store import write_corpus
from routereval.routers import make_router

from coldstart_worlds import irt_world as _world, sig as _sig, world_benchmark


def irt_world(n_prompts=400, n_models=16, d=6, **kw):
    """tests/coldstart_worlds.py's world, smaller: 400 prompts, 16 models, 6 dimensions by default."""
    return _world(n_prompts=n_prompts, n_models=n_models, d=d, **kw)


def _bench(S, X, topic, texts=None, width=2):
    texts = texts or [f"question {i} on topic {t}" for i, t in enumerate(topic)]
    return world_benchmark(X, S, topic, texts=texts, width=width)


# --------------------------------------------------------------------------- gp-IRT, naively


def naive_gp(y, pa, pt, grad_var, w, observed, extra_var=0.0, cross=0.0, level=0.95):
    """gp_combine written out term by term (module docstring of routereval.coldstart.estimate)."""
    n, k = len(pt), len(y)
    vals = [y[observed[j]] if observed[j] >= 0 else pt[j] for j in range(n)]
    pirt = sum(vals) / n
    unseen = [j for j in range(n) if observed[j] < 0]
    frac = len(unseen) / n
    noise = sum(pt[j] * (1 - pt[j]) for j in unseen) / n ** 2  # the unseen targets' Bernoulli noise only
    wn = [w[i] / sum(w) for i in range(k)]
    r = [y[i] - pa[i] for i in range(k)]
    rbar = sum(wn[i] * r[i] for i in range(k))
    var_rbar = sum(wn[i] ** 2 * (r[i] - rbar) ** 2 for i in range(k)) * k / (k - 1)
    mse = grad_var + max(0.0, rbar ** 2 - var_rbar) * frac ** 2 + extra_var * frac ** 2
    pbar = sum(wn[i] * pa[i] for i in range(k))
    var_a = (sum(wn[i] ** 2 * max(pa[i] * (1 - pa[i]), 1e-4) for i in range(k))
             + sum(wn[i] ** 2 * (pa[i] - pbar) ** 2 for i in range(k)) * k / (k - 1))
    lam = min(1.0, max(0.0, (mse - cross) / (var_a + mse - 2 * cross)))
    anchor = sum(wn[i] * y[i] for i in range(k))
    mean = lam * anchor + (1 - lam) * pirt
    se = math.sqrt(lam ** 2 * var_a + (1 - lam) ** 2 * mse + 2 * lam * (1 - lam) * cross + noise)
    zq = NormalDist().inv_cdf(0.5 + level / 2)
    return dict(pirt=pirt, lam=lam, mean=mean, se=se, anchor_mean=anchor, low=max(0.0, mean - zq * se),
                high=min(1.0, mean + zq * se))


def _same(est, want, rel=1e-9):
    for key, v in want.items():
        assert getattr(est, key) == pytest.approx(v, rel=rel, abs=1e-12), key


def test_gp_combine_with_observed_targets_and_a_biased_prompt_side_against_a_naive_version():
    """Targets that are anchors count with their observed answers (and add no Bernoulli noise); a clear positive
    bias of the residuals enters p-IRT's MSE, scaled by the squared share of unseen targets."""
    rng = np.random.default_rng(7)
    k, n = 12, 30
    y = np.r_[np.ones(9), np.zeros(3)]
    pa = rng.uniform(0.3, 0.6, k)  # the answers beat the predictions: residual mean about +0.3
    pt = rng.uniform(0.2, 0.8, n)
    w = rng.uniform(0.5, 1.5, k)
    observed = np.full(n, -1)
    observed[rng.choice(n, 10, replace=False)] = rng.permutation(k)[:10]
    for extra, cross in ((0.0, 0.0), (0.002, 0.001)):
        est = gp_combine(y, pa, pt, 0.004, weights=w, observed=observed, extra_var=extra, cross_cov=cross)
        want = naive_gp(y, pa, pt, 0.004, w, observed, extra, cross)
        assert 0.05 < want["lam"] < 0.95  # the MSE terms all move the weight
        _same(est, want)
    # the observed answers are used: p-IRT is not the mean of the predictions
    assert est.pirt != pytest.approx(pt.mean(), abs=1e-3)
    # all targets unseen: the bias counts whole
    none = np.full(n, -1)
    _same(gp_combine(y, pa, pt, 0.004, weights=w, observed=none), naive_gp(y, pa, pt, 0.004, w, none))


def naive_posterior_estimate(phi, cov, Za, oa, y, Zt, ot, *, w, observed, c, fa, ft, extra_var=0.0):
    """estimate_from_posterior written out: the 3PL probabilities, the delta-method gradient over the unseen
    targets (through the logit scale c and the floor), and the covariance of the two errors."""
    k, n = len(y), len(Zt)
    sa = [_sig(Za[i] @ phi + oa[i]) for i in range(k)]
    pa = [fa[i] + (1 - fa[i]) * sa[i] for i in range(k)]
    s = [_sig(c[j] * (Zt[j] @ phi + ot[j])) for j in range(n)]
    pt = [ft[j] + (1 - ft[j]) * s[j] for j in range(n)]
    g = sum(c[j] * (1 - ft[j]) * s[j] * (1 - s[j]) * Zt[j] for j in range(n) if observed[j] < 0) / n
    grad_var = float(g @ cov @ g)
    wn = w / w.sum()
    cross = sum(wn[i] * float(g @ cov @ Za[i]) * (1 - fa[i]) * sa[i] * (1 - sa[i]) for i in range(k))  # dp/deta
    return naive_gp(y, np.asarray(pa), np.asarray(pt), grad_var, w, observed, extra_var, cross)


def _posterior_problem(seed=6, k=14, n=40, p=3):
    rng = np.random.default_rng(seed)
    phi = rng.normal(size=p) * 0.7
    L = rng.normal(size=(p, p))
    cov = 0.3 * L @ L.T + 0.2 * np.eye(p)
    Za, oa = rng.normal(size=(k, p)), rng.normal(size=k) * 0.5
    Zt, ot = rng.normal(size=(n, p)), rng.normal(size=n) * 0.5
    fa, ft = rng.uniform(0.0, 0.4, k), rng.uniform(0.1, 0.5, n)
    c = rng.uniform(0.5, 0.9, n)
    w = rng.uniform(0.5, 1.5, k)
    y = (rng.random(k) < 0.5).astype(float)
    observed = np.full(n, -1)
    observed[rng.choice(n, 6, replace=False)] = rng.permutation(k)[:6]
    return phi, cov, Za, oa, y, Zt, ot, fa, ft, c, w, observed


def test_estimate_from_posterior_with_floors_and_a_logit_scale_against_a_naive_version():
    phi, cov, Za, oa, y, Zt, ot, fa, ft, c, w, observed = _posterior_problem()
    est = estimate_from_posterior(phi, cov, Za, oa, y, Zt, ot, weights=w, observed=observed, target_scale=c,
                                  extra_var=0.001, floor_anchor=fa, floor_target=ft)
    want = naive_posterior_estimate(phi, cov, Za, oa, y, Zt, ot, w=w, observed=observed, c=c, fa=fa, ft=ft,
                                    extra_var=0.001)
    assert 0.05 < want["lam"] < 0.95
    _same(est, want)
    # without floors and with scale 1 it is the logistic model's (dp/deta = p (1 - p) in the covariance)
    z0, one = np.zeros(len(y)), np.ones(len(Zt))
    est = estimate_from_posterior(phi, cov, Za, oa, y, Zt, ot, weights=w, observed=observed)
    want = naive_posterior_estimate(phi, cov, Za, oa, y, Zt, ot, w=w, observed=observed, c=one, fa=z0,
                                    ft=np.zeros(len(Zt)))
    assert 0.05 < want["lam"] < 0.95
    _same(est, want)


@pytest.fixture(scope="module")
def small_router():
    """(X, S, irt router fitted on the first 300 prompts and models 1..): model 0 is the new one."""
    X, S, _, _ = irt_world(n_prompts=400, n_models=16, seed=1)
    r = make_router("irt", dim=3, random_state=0, max_epochs=20).fit(X[:300], S[:300, 1:])
    return X, S, r


def test_estimate_mean_uses_the_anchor_deltas_and_the_calibration_spread(small_router):
    """estimate_mean is estimate_from_posterior on the router's design rows: calibrated residual difficulties added
    to the anchors' offsets (and to the targets' where known), the targets of unknown difficulty at the logit scale
    of the calibration's spread."""
    from routereval.coldstart.calibrate import expected_logit_scale

    X, S, r = small_router
    rng = np.random.default_rng(0)
    anchors, targets = rng.choice(300, 25, replace=False), np.arange(300, 400)
    y = S[anchors, 0].astype(float)
    w = rng.uniform(0.5, 1.5, 25)
    ad = rng.normal(0, 1.0, 25)
    td = np.where(rng.random(100) < 0.5, rng.normal(0, 1.0, 100), np.nan)
    spread = 2.0
    est = estimate_mean(r, X[anchors], y, X[targets], weights=w, anchor_delta=ad, target_delta=td, spread=spread)
    Za, oa = r.model_design(X[anchors])
    Zt, ot = r.model_design(X[targets])
    known = ~np.isnan(td)
    phi, cov = r.posterior_model(X[anchors], y, offsets=ad)
    scale = np.where(known, 1.0, expected_logit_scale(spread))
    assert expected_logit_scale(spread) < 0.9
    want = naive_posterior_estimate(phi, cov, Za, oa + ad, y, Zt, ot + np.where(known, td, 0.0), w=w,
                                    observed=np.full(100, -1), c=scale, fa=np.zeros(25), ft=np.zeros(100))
    _same(est, want, rel=1e-7)


# --------------------------------------------------------------------------- anchors


def test_allocate_draws_the_left_over_anchors_in_proportion_to_the_remainders():
    """The integer parts of the quotas, then the anchors left over to strata drawn by systematic sampling on their
    remainders: over many seeds (deterministic by seed), each stratum gets an extra anchor as often as its remainder
    says, so its expected count is its quota."""
    sizes = np.array([50, 30, 15, 5])
    k = 7  # quotas 3.5, 2.1, 1.05, 0.35: one anchor left over, remainders 0.5, 0.1, 0.05, 0.35
    base = np.array([3, 2, 1, 0])
    extra = np.zeros(4)
    n = 2000
    for seed in range(n):
        a = allocate(sizes, k, np.random.default_rng(seed))
        assert a.sum() == k and np.all(a >= base) and (a - base).sum() == 1
        extra += a - base
    np.testing.assert_allclose(extra / n, [0.5, 0.1, 0.05, 0.35], atol=0.04)
    # k below the number of strata: the strata drawn in proportion to their sizes
    got = np.mean([allocate(np.array([90, 10]), 1, np.random.default_rng(s))[0] for s in range(n)])
    assert abs(got - 0.9) < 0.04
    np.testing.assert_array_equal(allocate(sizes, k), [4, 2, 1, 0])  # no rng: the largest remainder
    # several anchors left over: the expected counts are the quotas (a draw without replacement with probabilities
    # proportional to the remainders misses them by up to 0.11 here)
    sizes = np.array([50, 30, 15, 5, 7, 3, 11])
    k = 9  # 3 left over
    got = np.mean([allocate(sizes, k, np.random.default_rng(s)) for s in range(4000)], axis=0)
    np.testing.assert_allclose(got, k * sizes / sizes.sum(), atol=0.03)


def test_stratified_weights_split_each_strata_share_over_its_anchors():
    rng0 = np.random.default_rng(1)
    strata = rng0.choice(["a", "b", "c", "d", "e"], p=[0.4, 0.3, 0.15, 0.1, 0.05], size=200)
    for k in (3, 11, 40):
        for seed in range(3):
            pos, w = stratified_positions(strata, k, np.random.default_rng(seed))
            assert len(pos) == k == len(set(pos.tolist()))
            got = [strata[i] for i in pos]
            share = {s: float(np.mean(strata == s)) for s in set(got)}  # the stratum's share of the candidates ...
            # ... split over its anchors where its quota k * share reaches 1; a stratum asked by chance (quota < 1,
            # with probability its quota) weighs share / quota = 1 / k
            naive = np.array([share[s] / got.count(s) if k * share[s] >= 1 else 1 / k for s in got])
            np.testing.assert_allclose(w, naive / naive.sum(), rtol=1e-12)


def test_stratified_anchors_with_fewer_anchors_than_strata_estimate_the_mean_without_bias():
    """Strata asked by chance are drawn in proportion to their size: weighting them by size too would count it twice
    (the weighted mean leaned to the large, low-scoring strata: 0.307 on average here against 0.373). With every
    stratum's quota under one anchor, as here, the weights are exactly Horvitz-Thompson's."""
    rng0 = np.random.default_rng(3)
    sizes = rng0.integers(5, 40, size=60)  # 60 strata, k = 20 below that
    strata = np.repeat(np.arange(60), sizes)
    values = np.repeat(np.where(sizes > 20, 0.2, 0.8), sizes)  # the large strata score low
    est = []
    for seed in range(600):
        pos, w = stratified_positions(strata, 20, np.random.default_rng(seed))
        est.append(float(w @ values[pos]))
    assert abs(np.mean(est) - values.mean()) < 0.02, (np.mean(est), values.mean())


def _design_problem(seed=0, n=30, p=3, m=5, nt=25):
    rng = np.random.default_rng(seed)
    Z = np.column_stack([rng.normal(size=(n, p - 1)), np.ones(n)])
    o = rng.normal(0, 1.5, n)
    Phi = rng.normal(size=(m, p))
    cov = 5 * (np.cov(Phi, rowvar=False) + 0.1 * np.eye(p))  # a broad prior: each answer's information counts
    floor = rng.uniform(0.0, 0.5, n)
    Zt = np.column_stack([rng.normal(size=(nt, p - 1)), np.ones(nt)])
    ot = rng.normal(0, 1.5, nt)
    ft = rng.choice([0.0, 0.7], size=nt)
    return Z, o, Phi, cov, floor, (Zt, ot), ft


def naive_design(Z, o, Phi, cov, k, floor, target, target_floor):
    """Greedy A-optimal design recomputed from scratch: each step the candidate with the smallest summed posterior
    variance sum_c g_c' (Sigma^-1 + sum_j v_cj z_j z_j')^-1 g_c over the population (3PL Fisher weights v)."""
    Zt, ot = target
    P0 = np.linalg.inv(cov)
    chosen = []
    for _ in range(k):
        best, best_val = None, np.inf
        for i in range(len(Z)):
            if i in chosen:
                continue
            total = 0.0
            for phi in Phi:
                st = _sig(Zt @ phi + ot)
                g = ((1 - target_floor) * st * (1 - st)) @ Zt / len(Zt)
                prec = P0.copy()
                for j in chosen + [i]:
                    s = _sig(Z[j] @ phi + o[j])
                    p = floor[j] + (1 - floor[j]) * s
                    v = ((1 - floor[j]) * s * (1 - s)) ** 2 / (p * (1 - p))
                    prec += v * np.outer(Z[j], Z[j])
                total += g @ np.linalg.solve(prec, g)
            if total < best_val:
                best, best_val = i, total
        chosen.append(best)
    return chosen


def test_fisher_design_equals_a_naive_greedy_with_floors():
    Z, o, Phi, cov, floor, target, ft = _design_problem()
    got = design_positions(Z, o, Phi, 8, np.random.default_rng(0), prior_cov=cov, floor=floor, target=target,
                           target_floor=ft, share=1.0)
    assert got.tolist() == naive_design(Z, o, Phi, cov, 8, floor, target, ft)


def naive_information(t):
    """The drop of g' Sigma g when candidate i is answered: Sigma from the precision plus its Fisher information."""
    Zt, ot = t.target
    ft = np.zeros(len(Zt)) if t.target_floor is None else t.target_floor
    s = _sig(Zt @ t.phi + ot)
    g = ((1 - ft) * s * (1 - s)) @ Zt / len(Zt)
    P = np.linalg.inv(t.cov)
    out = []
    for i, z in enumerate(t.Z):
        if t._used[i]:
            out.append(-np.inf)
            continue
        si = _sig(z @ t.phi + t.offset[i])
        f = 0.0 if t.floor is None else t.floor[i]
        p = f + (1 - f) * si
        v = ((1 - f) * si * (1 - si)) ** 2 / (p * (1 - p))
        out.append(g @ t.cov @ g - g @ np.linalg.solve(P + v * np.outer(z, z), g))
    return np.array(out)


def test_adaptive_information_towards_a_floored_target_against_a_naive_version():
    rng = np.random.default_rng(4)
    n, p, nt = 40, 3, 30
    Z, o = rng.normal(size=(n, p)), rng.normal(size=n)
    mu = rng.normal(size=p) * 0.5
    L = rng.normal(size=(p, p))
    cov = L @ L.T + 0.5 * np.eye(p)
    Zt, ot = rng.normal(size=(nt, p)), rng.normal(size=nt)
    ft = rng.choice([0.0, 0.8], size=nt)
    for floor in (None, rng.uniform(0, 0.5, n)):
        t = AdaptiveTest(Z, o, mu, cov, target=(Zt, ot), target_floor=ft, floor=floor, n_first=1)
        np.testing.assert_allclose(t.information(), naive_information(t), rtol=1e-8, atol=1e-14)
        assert t.next() == int(np.argmax(naive_information(t)))
        t._used[[3, 7]] = True  # asked prompts are never proposed again
        info = t.information()
        assert np.isneginf(info[[3, 7]]).all()
        np.testing.assert_allclose(info, naive_information(t), rtol=1e-8, atol=1e-14)


# --------------------------------------------------------------------------- the study's helpers


def test_held_out_models_spread_over_the_range_of_train_means():
    from routereval.coldstart.study import held_out_models

    means = np.random.default_rng(0).permutation(np.linspace(0.2, 0.9, 10))
    rank = np.argsort(means)  # positions from the weakest to the strongest
    for n in (2, 3, 4, 6):
        want = sorted(int(rank[round(j * 9 / (n - 1))]) for j in range(n))  # evenly spread over the ranks
        got = held_out_models(means, n)
        assert got.tolist() == want
        assert int(np.argmin(means)) in got and int(np.argmax(means)) in got
    assert held_out_models(means, None).tolist() == list(range(10)) == held_out_models(means, 12).tolist()


def test_observed_maps_each_anchor_to_its_position():
    from routereval.coldstart.study import _observed

    pos = np.array([7, 2, 11, 0])
    got = _observed(pos, 13)
    want = [-1] * 13
    for j, i in enumerate(pos):
        want[i] = j
    assert got.tolist() == want


def test_known_means_are_the_test_mean_and_the_mean_over_every_prompt():
    from routereval.coldstart.study import _known_means

    rng = np.random.default_rng(2)
    S_tr, S_va, S_te = (rng.random((n, 4)).astype(np.float32) for n in (30, 5, 10))
    got = _known_means(S_tr, S_va, S_te)
    every = np.vstack([S_tr, S_va, S_te]).astype(np.float64)
    np.testing.assert_allclose(got[:, 0], S_te.astype(np.float64).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(got[:, 1], every.mean(axis=0), rtol=1e-6)


def test_anchor_and_pirt_of_many_models_at_once_is_what_estimate_from_posterior_gives_each():
    from routereval.coldstart.estimate import anchor_and_pirt

    phi, cov, Za, oa, y, Zt, ot, fa, ft, c, w, observed = _posterior_problem()
    rng = np.random.default_rng(1)
    Phi = phi + rng.normal(size=(5, len(phi))) * 0.5
    Y = (rng.random((len(y), 5)) < 0.5).astype(float)
    for obs, floor, scale in ((observed, ft, c), (None, None, 1.0)):
        A, P = anchor_and_pirt(Phi, Y, w, Zt, ot, observed=obs, target_scale=scale, floor_target=floor)
        for j in range(5):
            e = estimate_from_posterior(Phi[j], cov, Za, oa, Y[:, j], Zt, ot, weights=w, observed=obs,
                                        target_scale=scale, floor_anchor=fa, floor_target=floor)
            assert A[j] == pytest.approx(e.anchor_mean, abs=1e-12) and P[j] == pytest.approx(e.pirt, abs=1e-12)


def test_the_study_estimator_of_every_prompt_counts_the_anchor_answers():
    """The whole-benchmark estimate (train rows first) uses the anchors' observed answers; the test one predicts."""
    from routereval.coldstart.study import _estimator, _Fitted
    from routereval.routers.newmodel import map_logistic

    rng = np.random.default_rng(5)
    p, n_tr, n_va, n_te = 3, 40, 6, 20
    Z_tr, Z_va, Z_te = (rng.normal(size=(n, p)) for n in (n_tr, n_va, n_te))
    o_tr, o_va, o_te = (rng.normal(size=n) for n in (n_tr, n_va, n_te))
    prior = (rng.normal(size=p) * 0.3, np.eye(p) * 0.8)
    scale_all = np.r_[np.ones(n_tr), np.full(n_va + n_te, 0.8)]
    F = _Fitted(router=None, models=np.arange(3), Z_train=Z_tr, o_train=o_tr, Z_test=Z_te, o_test=o_te, scale=0.8,
                prior=prior, features=np.zeros((n_tr, 1)), fit_s=0.0, gen_var=0.0,
                all_target=(np.vstack([Z_tr, Z_va, Z_te]), np.r_[o_tr, o_va, o_te], scale_all, None))
    pos = rng.choice(n_tr, 12, replace=False)
    w = np.full(12, 1 / 12)
    y = (rng.random(12) < 0.5).astype(float)
    test, every = _estimator(F, pos, w, 0.95)(y)
    phi, _ = map_logistic(Z_tr[pos], o_tr[pos], y, *prior)
    p_all = _sig(scale_all * (np.vstack([Z_tr, Z_va, Z_te]) @ phi + np.r_[o_tr, o_va, o_te]))
    vals = p_all.copy()
    for j, i in enumerate(pos):
        vals[i] = y[j]  # an anchor is a prompt of the benchmark: its answer is known
    assert every.pirt == pytest.approx(vals.mean(), rel=1e-9)
    assert every.pirt != pytest.approx(p_all.mean(), abs=1e-3)
    assert test.pirt == pytest.approx(_sig(0.8 * (Z_te @ phi + o_te)).mean(), rel=1e-9)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    X, S, _, topic = irt_world(n_prompts=500, n_models=16, seed=2)
    out = tmp_path_factory.mktemp("mut-corpus") / "corpus"
    write_corpus(Corpus.from_benchmarks([_bench(S, X, topic)]), out)
    return out


def test_study_draws_anchors_per_held_out_model_and_gives_references_their_whole_benchmark_mean(small_corpus,
                                                                                               monkeypatch):
    """Every held-out model gets its own anchor draw for a seed; the references of the correction carry their known
    mean over the test prompts and over every prompt (the two estimates' targets)."""
    import routereval.coldstart.neighbours as neighbours_module
    import routereval.coldstart.study as study_module
    from routereval.coldstart.study import run_study
    from routereval.data.store import open_corpus
    from routereval.pools import make_split

    draws, targets = [], []
    real_runs, real_corr = study_module._anchor_runs, neighbours_module.neighbour_correction

    def runs(F, method, ks, seed, y_train, subsets):
        out = real_runs(F, method, ks, seed, y_train, subsets)
        draws.append([frozenset(pos.tolist()) for _, pos, _ in out])
        return out

    def corr(y, Y_ref, target_ref, *a, **kw):
        targets.append((np.array(Y_ref), np.array(target_ref)))
        return real_corr(y, Y_ref, target_ref, *a, **kw)

    monkeypatch.setattr(study_module, "_anchor_runs", runs)
    monkeypatch.setattr(neighbours_module, "neighbour_correction", corr)
    res = run_study(small_corpus, benchmark="mmlu", router="irt", params={"dim": 2, "max_epochs": 10}, m=4,
                    group="random", anchors=(15,), methods=("random",), models=3, seeds=1, pretrain=("pool",))
    assert len(res.rows) == 3 and len(draws) == 3
    assert len({d[0] for d in draws}) == 3  # three models, seed 0: three anchor sets
    bench = open_corpus(small_corpus)["mmlu"]
    split = make_split(bench)
    S = np.asarray(bench.scores, dtype=np.float64)  # (models, prompts)
    known = np.column_stack([S[:, split.test].mean(axis=1),
                             S[:, np.r_[split.train, split.val, split.test]].mean(axis=1)])
    assert len(targets) == 3
    for _, target_ref in targets:
        assert target_ref.shape == (3, 2)
        for row in target_ref:  # each reference's pair of known means is some corpus model's
            assert np.min(np.abs(known - row).max(axis=1)) < 1e-6
    assert any(abs(t[:, 0] - t[:, 1]).max() > 1e-3 for _, t in targets)


def test_study_learns_each_anchor_sets_weight_from_the_references_and_uses_it_for_both_targets(small_corpus,
                                                                                            monkeypatch):
    """The anchor mean's weight of each anchor set with design weights is learned from the references (never the
    held-out model): the test estimate takes the weight learned against the references' test means, the
    whole-benchmark estimate the one learned against their means over every prompt."""
    import routereval.coldstart.estimate as estimate_module
    import routereval.coldstart.study as study_module
    from routereval.coldstart.study import run_study
    from routereval.data.store import open_corpus
    from routereval.pools import make_split

    calls, built = [], []
    real_weight, real_estimator = estimate_module.population_weight, study_module._estimator

    def weight(estimate, Y_ref, target_ref, **kw):
        lams = real_weight(estimate, Y_ref, target_ref, **kw)
        assert kw["parts"] is not None  # the batch of references is what estimate gives them one by one
        np.testing.assert_allclose(lams, real_weight(estimate, Y_ref, target_ref, seed=kw["seed"]), atol=1e-12)
        calls.append((np.array(Y_ref), np.array(target_ref), kw["seed"], lams))
        return lams

    def estimator(F, pos, w, level, lams=None):
        est = real_estimator(F, pos, w, level, lams)
        built.append((lams, est, len(pos)))
        return est

    monkeypatch.setattr(estimate_module, "population_weight", weight)
    monkeypatch.setattr(study_module, "_estimator", estimator)
    res = run_study(small_corpus, benchmark="mmlu", router="irt", params={"dim": 2, "max_epochs": 10}, m=6,
                    group="random", anchors=(15,), methods=("random", "fisher"), models=3, seeds=1,
                    pretrain=("pool",))
    rows = [r for r in res.rows if r["method"] == "random"]
    assert len(calls) == len(rows) == 3  # one weight per anchor set with design weights; fisher has none
    bench = open_corpus(small_corpus)["mmlu"]
    split = make_split(bench)
    S = np.asarray(bench.scores, dtype=np.float64)
    names = [str(n) for n in bench.models]
    for row, (Y_ref, target_ref, seed, lams) in zip(rows, calls):
        h = names.index(row["model"])
        others = [j for j in range(len(names)) if j != h]
        # the references' known means, columns (test, every prompt), are those of corpus models other than h
        test_means = S[:, split.test].mean(axis=1)
        all_means = S[:, np.r_[split.train, split.val, split.test]].mean(axis=1)
        for t in target_ref:
            j = int(np.argmin(np.abs(test_means - t[0]) + np.abs(all_means - t[1])))
            assert abs(test_means[j] - t[0]) < 1e-6 and abs(all_means[j] - t[1]) < 1e-6 and j in others
        assert lams is not None and len(lams) == 2 and abs(lams[0] - lams[1]) > 1e-9
        assert row["lam"] == pytest.approx(lams[0], abs=1e-12)  # the test estimate's weight is the test one's
    learned = [(lams, est, k) for lams, est, k in built if lams is not None]
    assert [tuple(lams) for lams, _, _ in learned] == [tuple(c[3]) for c in calls]
    for lams, est, k in learned:  # (test, every prompt): each estimate its own target's weight, whatever answers
        test, every = est((np.arange(k) % 3 == 0).astype(float))
        assert test.lam == pytest.approx(lams[0], abs=1e-12) and every.lam == pytest.approx(lams[1], abs=1e-12)


# --------------------------------------------------------------------------- the saved router


def test_add_model_estimate_and_vector_from_the_calibrated_offsets_and_observed_answers(small_corpus, tmp_path):
    """add-model's vector and its estimate over every prompt, from the same pieces written out: the answers' calibrated
    residual difficulties as offsets, the answered prompts counting with their answers."""
    from routereval.coldstart.calibrate import expected_logit_scale
    from routereval.coldstart.context import open_router_context
    from routereval.coldstart.saved import add_model_to_saved
    from routereval.data.store import open_corpus
    from routereval.evaluate import fit_router
    from routereval.routers.persist import load_router

    fit_router(small_corpus, benchmark="mmlu", router="irt", params={"dim": 3, "max_epochs": 20}, m=6,
               group="all_strong", save=tmp_path / "r")
    ctx = open_router_context(tmp_path / "r")
    bench = open_corpus(small_corpus)["mmlu"]
    pool = {str(ctx.saved.pool["models"][j]) for j in range(6)}
    new = next(i for i in range(16) if f"org/model-{i:02d}" not in pool)
    rng = np.random.default_rng(3)
    idx = np.sort(rng.choice(ctx.askable, 30, replace=False))
    y = np.asarray(bench.scores, dtype=np.float64)[new, idx]
    w = rng.uniform(0.5, 1.5, 30)
    with open(tmp_path / "answers.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["text", "score", "weight"])
        out.writerows([str(bench.texts[i]), f"{s:g}", repr(float(v))] for i, s, v in zip(idx, y, w))
    doc = add_model_to_saved(tmp_path / "r", name="acme/new", answers=tmp_path / "answers.csv", out=tmp_path / "v2")
    assert doc["calibration"] == "logistic"
    r = ctx.saved.router
    delta = ctx.delta
    assert np.isfinite(delta[idx]).all() and np.abs(delta[idx]).max() > 0.1
    phi, cov = r.posterior_model(ctx.X[idx], y, offsets=delta[idx])
    # the added model's routing vector is that posterior's mode
    np.testing.assert_allclose(load_router(tmp_path / "v2").router.model_vectors()[-1], phi, rtol=1e-5, atol=1e-6)
    Za, oa = r.model_design(ctx.X[idx])
    Zt, ot = r.model_design(ctx.X)
    known = ~np.isnan(delta)
    observed = np.full(bench.n_prompts, -1)
    for j, i in enumerate(idx):
        observed[i] = j
    want = naive_posterior_estimate(phi, cov, Za, oa + delta[idx], y, Zt, ot + np.where(known, delta, 0.0), w=w,
                                    observed=observed, c=np.where(known, 1.0, expected_logit_scale(ctx.spread)),
                                    fa=np.zeros(30), ft=np.zeros(bench.n_prompts), extra_var=ctx.gen_var)
    est = doc["estimate"]  # the neighbours' correction moves the mean, not p-IRT or the anchor mean
    for key in ("pirt", "anchor_mean"):
        assert est[key] == pytest.approx(want[key], rel=1e-6, abs=1e-9), key
    # the weight: the least-squares one over the reference models' own anchor means and p-IRT (every corpus
    # model, the new one's corpus record too: its name here is another), each from the same pieces
    refs = [j for j in range(bench.n_models)]
    S = np.asarray(bench.scores, dtype=np.float64)
    A, P, t = [], [], []
    for j in refs:
        phi_j, cov_j = r.posterior_model(ctx.X[idx], S[j, idx], offsets=delta[idx])
        e = naive_posterior_estimate(phi_j, cov_j, Za, oa + delta[idx], S[j, idx], Zt, ot + np.where(known, delta, 0.0),
                                     w=w, observed=observed, c=np.where(known, 1.0, expected_logit_scale(ctx.spread)),
                                     fa=np.zeros(30), ft=np.zeros(bench.n_prompts), extra_var=ctx.gen_var)
        A.append(e["anchor_mean"]), P.append(e["pirt"]), t.append(S[j].mean())
    A, P, t = map(np.asarray, (A, P, t))
    lam = float(np.clip(np.sum((P - t) * (P - A)) / np.sum((P - A) ** 2), 0, 1))
    assert est["lam"] == pytest.approx(lam, rel=1e-5, abs=1e-7) and lam != pytest.approx(want["lam"])


@pytest.fixture(scope="module")
def floored_router(tmp_path_factory):
    """(router dir, corpus dir, world): 110 binary pool models with guessing floors (3PL pinned), 600 prompts."""
    from routereval.evaluate import fit_router

    d = tmp_path_factory.mktemp("mut-floored")
    world = irt_world(n_prompts=600, n_models=120, guess=0.25, seed=4)
    X, S, _, topic = world
    write_corpus(Corpus.from_benchmarks([_bench(S, X, topic, width=3)]), d / "c")
    fit_router(d / "c", benchmark="mmlu", router="irt", params={"dim": 3, "max_epochs": 20}, m=110, group="random",
               save=d / "r")
    return d / "r", d / "c", world


def test_floors_cache_is_not_reused_when_the_pool_answers_change(floored_router, tmp_path):
    """The floors are cached in the corpus under a hash of what they are computed from: a corpus whose pool answers
    differ (the same prompts, embeddings, router and pool) gets its own floors, not the stale ones."""
    from routereval.coldstart.context import FLOORS_CACHE, open_router_context, prompt_floors

    src, corpus, (X, S, _, topic) = floored_router
    first = prompt_floors(open_router_context(src))
    assert first is not None and len(list((corpus / FLOORS_CACHE).iterdir())) == 1
    S2 = S.copy()
    rows = np.random.default_rng(0).choice(len(S), 150, replace=False)
    S2[rows] = 1 - S2[rows]  # the records of 150 prompts changed
    write_corpus(Corpus.from_benchmarks([_bench(S2, X, topic, width=3)]), tmp_path / "c2")
    shutil.copytree(corpus / FLOORS_CACHE, tmp_path / "c2" / FLOORS_CACHE)  # the old corpus's cache, now stale
    second = prompt_floors(open_router_context(src, corpus=tmp_path / "c2"))
    assert second is not None and len(list((tmp_path / "c2" / FLOORS_CACHE).iterdir())) == 2
    assert not np.allclose(first[0], second[0]) and not np.allclose(first[2], second[2])
    shutil.rmtree(tmp_path / "c2" / FLOORS_CACHE)  # computed afresh: the same
    fresh = prompt_floors(open_router_context(src, corpus=tmp_path / "c2"))
    assert all(np.allclose(u, v) for u, v in zip(second, fresh))
