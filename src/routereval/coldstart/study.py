"""The leave-one-model-out cold-start study behind ``routereval coldstart``.

For each held-out pool model h (clean protocol: everything is chosen and fitted on train
prompts, val only stops training early):

1. ``pool`` pre-training: the router is fitted on the pool without h. ``corpus``
   pre-training: it is fitted on every eligible corpus model except h (the prompt side
   learned from the whole record set, as the RouterEval paper proposes), then restricted to
   the pool without h for routing.
2. The population's train answers calibrate each train prompt's residual difficulty
   (:mod:`routereval.coldstart.calibrate`). With a population of binary answers large
   enough (:data:`~routereval.coldstart.calibrate.MIN_FLOOR_MODELS`) every prompt (train, and
   test from the population's answers) also gets a guessing floor and a slope (3PL): the
   mean estimate and the adaptive test use them; routing keeps the router's logistic model.
3. For each method, seed and k, k anchors are chosen among the train prompts, h is added
   back from its answers on them, its mean test score is estimated (gp-IRT) and the test
   prompts are routed over the whole pool. The anchor draws of seed s are seeded by
   (s, held-out model), so every model gets its own draw and the rows of a seed are
   independent (one shared draw per seed made every model's error ride on the same few anchor
   sets, and the study's standard error understate it).
   Besides the test mean (the target), the same estimator aims at the model's mean over every
   prompt of the benchmark (train, val and test: what tinyBenchmarks reports); its error is
   the ``*_all`` columns. Both estimates include the neighbours' correction
   (:func:`~routereval.coldstart.neighbours.neighbour_correction`): known models' anchor answers
   and known means, never the held-out model's, nor a copy's (a model with its score on at
   least :data:`COPY_AGREEMENT` of the train prompts, beyond chance: the same model under
   another name, whose known mean would be the answer; meta ``reference_copies`` names them).
   Such copies are also left out of the fits that stand for the router without the held-out
   model (their answers would be its own in its prompt side and prior), unless none would be left.
   Under ``pool`` pre-training the references are the fitted pool models; under ``corpus``,
   every eligible corpus model but the held-out one, also those beyond the sample the prompt
   side was learned from (a model's siblings anywhere in the record set share its luck; the
   references cost one column of answers each, not a fit). ``estimate_gp`` is the test estimate
   without the correction.
4. Bounds on the same test prompts: the router fitted with h's full training answers
   (upper) and the router without h (lower).

One row per (pretrain, model, method, k, seed); :func:`summarise` aggregates them.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from routereval.coldstart.anchors import METHODS
from routereval.coldstart.neighbours import COPY_AGREEMENT, COPY_CHANCE, copies
from routereval.errors import InputError, ParameterError
from routereval.validate import as_path, check_bool, check_choices, check_int, is_real, option

PRETRAIN = ("pool", "corpus")
ROW_KEYS = ("benchmark", "split", "pretrain", "router", "model", "method", "k", "seed", "true_mean", "estimate", "low",
            "high", "covered", "abs_error", "anchor_mean", "plain_mean", "plain_error", "pirt", "lam", "estimate_gp",
            "abs_error_gp", "correction", "true_mean_all",
            "estimate_all", "abs_error_all", "mu_added", "mu_upper", "mu_lower", "mu_full", "upper_share", "add_ms",
            "score_sd")
MIN_GAIN = 0.005  # a held-out model "matters" when the full refit beats the pool without it by this much (and
# routes to it: a model it never picks changes µ only by the noise of refitting)
# a copy of a held-out model (neighbours.copies on the train prompts: the same model under another name) is no
# reference, and not in the fits without it, or the study would measure re-uploads, not new models; the rule's
# thresholds are read here at each call (COPY_AGREEMENT, COPY_CHANCE)


@dataclass
class StudyResult:
    """Rows (dicts with :data:`ROW_KEYS`) and what the study ran on."""

    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # a notebook shows this, not thousands of rows
        m = self.meta
        need = ("benchmark", "router", "m", "group", "held_out", "methods", "anchors", "seeds", "pretrain")
        if not all(k in m for k in need):  # built by hand, or from part of a study
            return f"StudyResult({len(self.rows)} rows)"
        return (f"StudyResult({m['benchmark']!r}, router {m['router']}, m={m['m']} {m['group']}: {len(self.rows)} rows, "
                f"{len(m['held_out'])} held-out models x methods {', '.join(m['methods'])} x k "
                f"{', '.join(map(str, m['anchors']))} x {m['seeds']} seed{'s' if m['seeds'] != 1 else ''}; "
                f"pretrain {', '.join(m['pretrain'])})")


@dataclass
class _Fitted:
    """A router fitted on some models, with what every anchor run reuses."""

    router: Any
    models: np.ndarray        # corpus model rows it was fitted on, in its column order
    Z_train: np.ndarray
    o_train: np.ndarray       # offsets + calibrated residual difficulties
    Z_test: np.ndarray
    o_test: np.ndarray
    scale: float              # logit scale of an uncalibrated (test) prompt
    prior: tuple[np.ndarray, np.ndarray]
    features: np.ndarray      # item features of the train prompts (irt anchors)
    fit_s: float
    gen_var: float            # the prompt side's error on unseen prompts, measured on the population (val)
    # the 3PL calibration (guessing floor and residual difficulty per prompt) for the mean estimate; None when
    # the population cannot pin floors (graded answers, few models) or the test prompts are not calibrated
    floor_train: np.ndarray | None = None
    Z3_train: np.ndarray | None = None
    o3_train: np.ndarray | None = None
    floor_test: np.ndarray | None = None
    Z3_test: np.ndarray | None = None
    o3_test: np.ndarray | None = None
    # every prompt of the benchmark (train, val, test rows, in that order): the whole-benchmark estimate
    all_target: tuple | None = None  # (Z, offset, logit scale, floor or None), in the design the estimate uses

    def estimate_design(self, part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(design rows, offsets, floors or None) of the ``train`` or ``test`` prompts in the design the mean
        estimate, the adaptive test and the fisher design use: 3PL where calibrated, else logistic."""
        if self.floor_train is not None:
            return ((self.Z3_train, self.o3_train, self.floor_train) if part == "train"
                    else (self.Z3_test, self.o3_test, self.floor_test))
        return (self.Z_train, self.o_train, None) if part == "train" else (self.Z_test, self.o_test, None)


def held_out_models(train_means: np.ndarray, n: int | None) -> np.ndarray:
    """Pool positions of ``n`` held-out models spread evenly over the pool's range of train means (all when None)."""
    m = len(train_means)
    if n is None or n >= m:
        return np.arange(m)
    order = np.argsort(train_means, kind="stable")
    return np.sort(order[np.unique(np.round(np.linspace(0, m - 1, n)).astype(int))])


def _fit(spec: str, params: dict, seed: int, X_tr, Y_tr, X_va, Y_va):
    from routereval.evaluate import make_router_from

    r = make_router_from(spec, params, seed=seed)
    kw = {"X_val": X_va, "Y_val": Y_va} if len(X_va) else {}
    t0 = time.perf_counter()
    r.fit(X_tr, Y_tr, **kw)
    return r, time.perf_counter() - t0


def _prepare(router, models, fit_s, X_train, X_test, Y_train_models, X_val, Y_val_models,
             Y_test_models: np.ndarray | None) -> _Fitted:
    """Design rows, calibration, prior and item features of a fitted router.

    ``Y_test_models``: the fitted models' answers on the test prompts, to calibrate them too
    (the held-out model's answers are never among them); None leaves the test prompts'
    difficulty unknown (integrated over, with the prompt side's error measured on val).
    """
    from routereval.coldstart.anchors import response_features
    from routereval.coldstart.calibrate import calibrate_floors, calibrate_items, calibrate_more
    from routereval.coldstart.estimate import generalisation_var
    from routereval.routers.newmodel import population_prior

    Phi = router.model_vectors()
    Zt, ot = router.model_design(X_train)
    cal = calibrate_items(Zt, ot, Phi, Y_train_models)
    o_cal = ot + cal.delta
    Zs, os_ = router.model_design(X_test)
    if Y_test_models is not None:
        os_ = os_ + calibrate_more(cal, Zs, os_, Phi, Y_test_models)
        scale, gen = 1.0, 0.0
    else:
        scale = cal.shrink
        gen = generalisation_var(*router.model_design(X_val), Phi, Y_val_models, scale=scale) if len(X_val) else 0.0
    out = _Fitted(router, np.asarray(models), Zt, o_cal, Zs, os_, scale, population_prior(Phi),
                  response_features(Zt, o_cal, Phi), fit_s, gen)
    Zv, ov = router.model_design(X_val)
    calib_val = Y_test_models is not None and len(X_val) > 0
    ov_cal = ov + calibrate_more(cal, Zv, ov, Phi, Y_val_models) if calib_val else ov
    sv = 1.0 if calib_val else scale
    out.all_target = (np.vstack([Zt, Zv, Zs]), np.concatenate([o_cal, ov_cal, os_]),
                      np.concatenate([np.ones(len(Zt)), np.full(len(Zv), sv), np.full(len(Zs), scale)]), None)
    if Y_test_models is not None:
        os_raw = router.model_design(X_test)[1]
        tr = calibrate_floors(cal, Zt, ot, Phi, Y_train_models)
        te = None if tr is None else calibrate_floors(cal, Zs, os_raw, Phi, Y_test_models, slope_var=tr[3])
        va = None if te is None or not len(X_val) else calibrate_floors(cal, Zv, ov, Phi, Y_val_models, slope_var=tr[3])
        if te is not None:  # logit a (z . phi + o) + delta under a floor c
            out.floor_train, out.Z3_train, out.o3_train = tr[0], tr[1][:, None] * Zt, tr[1] * ot + tr[2]
            out.floor_test, out.Z3_test, out.o3_test = te[0], te[1][:, None] * Zs, te[1] * os_raw + te[2]
            out.features = response_features(out.Z3_train, out.o3_train, Phi, floor=out.floor_train)
            v = va if va is not None else (np.zeros(0), np.ones(0), np.zeros(0))
            out.all_target = (np.vstack([out.Z3_train, v[1][:, None] * Zv, out.Z3_test]),
                              np.concatenate([out.o3_train, v[1] * ov + v[2], out.o3_test]),
                              np.ones(len(Zt) + len(v[0]) + len(Zs)), np.concatenate([tr[0], v[0], te[0]]))
    return out


def _pool_without(F: _Fitted, h: int, n_pool: int, S_tr: np.ndarray, names: list[str]):
    """The fitted router restricted to the pool without ``h``, and the pool positions of its columns.

    Pool models the fit left out (the other members of ``h``'s fold under ``corpus``
    pre-training, and copies of ``h``) are known models: they get their vectors from all their train answers
    with the same prompt side, appended after the fitted ones.
    """
    from routereval.routers.newmodel import map_logistic

    others = [o for o in range(n_pool) if o != h]
    cols = list(map(int, F.models))
    in_fit = [o for o in others if o in set(cols)]
    missing = [o for o in others if o not in set(cols)]
    if in_fit == cols:
        base = F.router
    else:
        base = F.router.select_models(np.asarray([cols.index(o) for o in in_fit]))
    for o in missing:
        phi, _ = map_logistic(F.Z_train, F.o_train, S_tr[:, o].astype(np.float64), *F.prior)
        base = copy.copy(base).append_model_vector(phi, names[o])
    return base, np.asarray(in_fit + missing, dtype=np.int64)


def _anchor_runs(F: _Fitted, method: str, ks: list[int], seed: Any, y_train: np.ndarray, subsets: np.ndarray
                 ) -> list[tuple[int, np.ndarray, np.ndarray | None]]:
    """(k, train positions, weights) for each k: what select_anchors returns for the same seed
    (an int, or a sequence of ints such as (seed, model) that ``np.random.default_rng`` takes).

    ``fisher`` and ``adaptive`` run once to the largest k and give each smaller k its prefix. For
    ``adaptive`` that is exactly select_anchors' test; for ``fisher`` it is select_anchors' design
    for that k while k is at most half the candidates and at most the design's shortlist (2,000):
    beyond, the design draws a larger share of candidates for a larger k, so a prefix of it is not
    the design select_anchors would make for the smaller k."""
    from routereval.coldstart.anchors import (AdaptiveTest, cluster_positions, design_positions, random_positions,
                                              stratified_positions)

    n = len(y_train)
    out = []
    Za, oa, fa = F.estimate_design("train")
    Zt, ot, ft = F.estimate_design("test")
    if method == "adaptive":  # one test to the largest k; a smaller k is its prefix (greedy, same seed)
        test = AdaptiveTest(Za, oa, *F.prior, random_state=seed, floor=fa, target=(Zt, ot), target_floor=ft)
        for _ in range(max(ks)):
            i = test.next()
            test.tell(i, y_train[i])
        asked = np.asarray(test.asked)
        return [(k, asked[:k], None) for k in ks]
    if method == "fisher":  # one design to the largest k; a smaller k is its prefix (greedy)
        pos = design_positions(Za, oa, F.router.model_vectors(), max(ks), np.random.default_rng(seed),
                               prior_cov=F.prior[1], floor=fa, target=(Zt, ot), target_floor=ft)
        return [(k, pos[:k], None) for k in ks]
    for k in ks:
        rng = np.random.default_rng(seed)
        if method == "random":
            out.append((k, random_positions(n, k, rng), np.full(k, 1.0 / k)))
        elif method == "stratified":
            pos, w = stratified_positions(subsets, k, rng)
            out.append((k, pos, w))
        else:
            pos, w = cluster_positions(F.features, k, rng)
            out.append((k, pos, w))
    return out


def _estimator(F: _Fitted, pos: np.ndarray, w: np.ndarray | None, level: float, lams: Any = None) -> Callable:
    """The gp-IRT estimator of one anchor set: answers (k,) -> (test, every prompt) MeanEstimates.

    ``test`` aims at the test prompts' mean, ``every`` at the mean over every prompt of the
    benchmark (anchors observed); both from one posterior. With a 3PL calibration the
    posterior is under the guessing floors (guesses are not taken for ability). ``lams``: the anchor mean's
    weights (test, every) learned from the references (:func:`~routereval.coldstart.estimate.population_weight`).
    """
    from routereval.coldstart.estimate import estimate_from_posterior
    from routereval.routers.newmodel import map_logistic

    Za, oa, fa = F.estimate_design("train")
    Za, oa, fa = Za[pos], oa[pos], None if fa is None else fa[pos]
    Zt, ot, ft = F.estimate_design("test")
    Zall, oall, sall, fall = F.all_target
    observed = _observed(pos, len(Zall))

    def estimate(y: np.ndarray):
        phi, cov = map_logistic(Za, oa, y, *F.prior, floor=fa)
        lt, la = (None, None) if lams is None else lams
        test = estimate_from_posterior(phi, cov, Za, oa, y, Zt, ot, weights=w, target_scale=F.scale,
                                       extra_var=F.gen_var, level=level, floor_anchor=fa, floor_target=ft,
                                       lam_fixed=lt)
        every = estimate_from_posterior(phi, cov, Za, oa, y, Zall, oall, weights=w, observed=observed,
                                        target_scale=sall, level=level, floor_anchor=fa, floor_target=fall,
                                        lam_fixed=la)
        return test, every

    def parts(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(A, P), each (r, 2) (test, every prompt): what ``estimate`` gives r references one by one, at once."""
        from routereval.coldstart.estimate import anchor_and_pirt

        Phi = np.array([map_logistic(Za, oa, Y[:, j], *F.prior, floor=fa)[0] for j in range(Y.shape[1])])
        a, p_test = anchor_and_pirt(Phi, Y, w, Zt, ot, target_scale=F.scale, floor_target=ft)
        _, p_all = anchor_and_pirt(Phi, Y, w, Zall, oall, observed=observed, target_scale=sall, floor_target=fall)
        return np.column_stack([a, a]), np.column_stack([p_test, p_all])

    estimate.parts = parts  # population_weight's batch of references
    return estimate


def _observed(pos: np.ndarray, n: int) -> np.ndarray:
    """(n,) position among the anchors of each target row (train rows first), -1 where not an anchor."""
    obs = np.full(n, -1, dtype=np.int64)
    obs[np.asarray(pos)] = np.arange(len(pos))
    return obs


@dataclass
class _StudyData:
    """The benchmark, split, pool and scores a study runs on.

    ``S_tr``, ``S_va``, ``S_te`` are (n_prompts of the split, n_corpus) float32 scores of the
    corpus rows ``corpus_rows`` (the pool's models first, in pool order), the models a prompt
    side may be learned from. ``R_tr`` (n_train, n_extra) holds the train scores of the
    further references ``extra_rows`` (eligible corpus models beyond that sample; none without
    ``corpus`` pre-training), and ``ref_means`` (n_corpus + n_extra, 2) every one's known mean
    over the test prompts and over every prompt.
    """

    bench: Any
    split: Any
    pool: Any
    embedding: str
    X_tr: np.ndarray
    X_va: np.ndarray
    X_te: np.ndarray
    subsets: np.ndarray       # (n_train,) subset codes of the train prompts (stratified anchors)
    corpus_rows: np.ndarray
    S_tr: np.ndarray
    S_va: np.ndarray
    S_te: np.ndarray
    names: list[str]          # the pool's model names
    extra_rows: np.ndarray
    R_tr: np.ndarray
    ref_means: np.ndarray
    _copies_cache: dict = field(default_factory=dict, repr=False)

    def copies_of(self, h: int) -> tuple[np.ndarray, np.ndarray]:
        """The copies of pool model ``h`` (:func:`_copies`, on the train answers): (corpus columns, positions
        among the further references); computed once per model."""
        if h not in self._copies_cache:
            cols = np.delete(np.arange(len(self.corpus_rows)), h)
            extra = np.arange(len(self.extra_rows))
            sums = self.column_sums if self.bench.binary else (None, None)
            y = self.S_tr[:, h]
            self._copies_cache[h] = (cols[copies(y, self.S_tr, cols, sums=sums[0], agreement=COPY_AGREEMENT,
                                                  chance=COPY_CHANCE)],
                                     extra[copies(y, self.R_tr, extra, sums=sums[1], agreement=COPY_AGREEMENT,
                                                  chance=COPY_CHANCE)])
        return self._copies_cache[h]

    def copy_names(self, h: int) -> list[str]:
        """Names of the copies of pool model ``h``."""
        cols, extra = self.copies_of(h)
        return sorted(str(n) for n in np.asarray(self.bench.models)[np.r_[self.corpus_rows[cols], self.extra_rows[extra]]])

    def reference_set(self, h: int, fitted: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """The references of held-out pool model ``h``: (corpus columns, positions among the further references).

        ``pool``: the ``fitted`` columns; ``corpus``: every corpus column but ``h`` and every further
        reference. Either way without the copies of ``h`` (:meth:`copies_of`).
        """
        cols = np.asarray(fitted) if mode == "pool" else np.delete(np.arange(len(self.corpus_rows)), h)
        extra = np.arange(len(self.extra_rows) if mode == "corpus" else 0)
        copy_c, copy_e = self.copies_of(h)
        return cols[~np.isin(cols, copy_c)], extra[~np.isin(extra, copy_e)]

    @functools.cached_property
    def column_sums(self) -> tuple[np.ndarray, np.ndarray]:
        """Train-score sums of every corpus column and every further reference (the binary copy test's, once)."""
        return self.S_tr.sum(axis=0, dtype=np.float64), self.R_tr.sum(axis=0, dtype=np.float64)

    def references(self, pos: np.ndarray, cols: np.ndarray, extra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """((k, n_ref) answers on the train prompts ``pos``, (n_ref, 2) known means) of the corpus columns
        ``cols`` and the further references at positions ``extra``."""
        Y = self.S_tr[pos][:, cols]
        if not len(extra):
            return Y, self.ref_means[cols]
        return (np.hstack([Y, self.R_tr[pos][:, extra]]),
                np.vstack([self.ref_means[cols], self.ref_means[len(self.corpus_rows) + extra]]))

    @property
    def n_pool(self) -> int:
        return len(self.names)

    def mu_of(self, router: Any, pool_cols: np.ndarray) -> float:
        """Mean test score of routing with ``router``, whose columns are the pool positions ``pool_cols``."""
        return self.routed(router, pool_cols)[0]

    def routed(self, router: Any, pool_cols: np.ndarray) -> tuple[float, np.ndarray]:
        """:meth:`mu_of`, and the pool position (n_test,) each test prompt is routed to."""
        routes = np.asarray(pool_cols)[router.route(self.X_te)]
        return float(self.S_te[np.arange(len(self.X_te)), routes].astype(np.float64).mean()), routes


def _load_data(corpus: Any, benchmark: str, *, m: int, group: str, protocol: str, seed: int, missing: str,
               split: str, embedding: str | None, pretrain: list[str], corpus_models: int | None, k_max: int,
               progress: Callable | None) -> _StudyData:
    """Open the benchmark, make the split and the pool, embed the prompts, gather the scores."""
    from routereval.data.model import Corpus
    from routereval.data.store import open_corpus
    from routereval.embed import embed_prompts
    from routereval.evaluate import default_embedding
    from routereval.pools import make_pool, make_split, missing_policy

    c = (corpus if isinstance(corpus, Corpus)
         else open_corpus(as_path(corpus, "corpus (a directory or an open Corpus)"), benchmarks=[benchmark]))
    bench = c[benchmark]
    sp = make_split(bench, protocol=protocol, seed=seed, missing=missing, split=split)
    pool = make_pool(bench, m=m, group=group, protocol=protocol, split=sp, seed=seed, missing=missing)
    if pool.m < 2:
        raise ParameterError("the pool needs at least 2 models: one is held out, the router is fitted on the rest")
    if k_max > len(sp.train):
        raise ParameterError(f"{option('anchors')}: k = {k_max} exceeds the {len(sp.train)} train prompts")
    emb = embedding or default_embedding(bench)
    X = embed_prompts(bench, emb, corpus_path=getattr(c, "path", None), fit_prompts=sp.train, progress=progress)

    pool_models = np.asarray(pool.models)
    corpus_rows, extra_rows = pool_models, np.zeros(0, dtype=np.int64)
    if "corpus" in pretrain:
        elig = np.asarray(missing_policy(bench, missing).models)
        rest = np.setdiff1d(elig, pool_models)
        if corpus_models is not None and len(rest) > corpus_models - len(pool_models):
            pick = np.zeros(len(rest), dtype=bool)
            pick[np.random.default_rng(seed).choice(len(rest), max(corpus_models - len(pool_models), 0),
                                                    replace=False)] = True
            rest, extra_rows = rest[pick], rest[~pick]
        corpus_rows = np.concatenate([pool_models, rest])
    S_tr, S_va, S_te = _scores(bench, pool, corpus_rows)
    R_tr, R_means = _reference_scores(bench, pool, extra_rows)
    if any(np.isnan(a).any() for a in (S_tr, S_va, S_te[:, :pool.m], R_tr, R_means)):
        raise InputError(f"benchmark {bench.name!r}: some models miss records on the split's prompts; "
                         f"try missing='prompts'")
    ref_means = np.vstack([_known_means(S_tr, S_va, S_te), R_means])
    return _StudyData(bench, sp, pool, emb, X[sp.train], X[sp.val], X[sp.test], bench.subset_codes()[sp.train],
                      corpus_rows, S_tr, S_va, S_te, [str(x) for x in pool.model_names], extra_rows, R_tr, ref_means)


def _scores(bench: Any, pool: Any, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) float32 scores, each (n_prompts of the split, len(rows)), of the benchmark rows ``rows``."""
    from routereval.pools import pool_scores

    return tuple(a.astype(np.float32) for a in pool_scores(bench, dataclasses.replace(pool, models=rows)))


def _known_means(S_tr: np.ndarray, S_va: np.ndarray, S_te: np.ndarray) -> np.ndarray:
    """(n, 2) each column's mean over the test prompts and over every prompt of the split (per-split sums: no
    stacked copy)."""
    n_all = len(S_tr) + len(S_va) + len(S_te)
    every = sum(a.sum(axis=0, dtype=np.float64) for a in (S_tr, S_va, S_te)) / n_all
    return np.column_stack([S_te.mean(axis=0, dtype=np.float64), every])


def _reference_scores(bench: Any, pool: Any, rows: np.ndarray, *, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(n_train, len(rows)) float32 train scores and (len(rows), 2) known means (:func:`_known_means`) of the
    benchmark rows ``rows``, unpacked ``chunk`` rows at a time: thousands of references are not unpacked whole,
    and their val and test scores are only summed."""
    train = np.empty((len(pool.split.train), len(rows)), dtype=np.float32)
    means = np.empty((len(rows), 2))
    for i in range(0, len(rows), chunk):
        tr, va, te = _scores(bench, pool, rows[i:i + chunk])
        train[:, i:i + chunk], means[i:i + chunk] = tr, _known_means(tr, va, te)
    return train, means


def _fit_columns(d: _StudyData, cols: np.ndarray, *, router: str, params: dict, seed: int,
                 calibrate_test: bool) -> _Fitted:
    """``router`` fitted on the corpus columns ``cols``, prepared for anchor runs."""
    r, fit_s = _fit(router, params, seed, d.X_tr, d.S_tr[:, cols], d.X_va, d.S_va[:, cols])
    return _prepare(r, cols, fit_s, d.X_tr, d.X_te, d.S_tr[:, cols], d.X_va, d.S_va[:, cols],
                    d.S_te[:, cols] if calibrate_test else None)


class _FitCache:
    """Fitted routers by their columns: each set of columns is fitted once; counts fits and seconds."""

    def __init__(self, fit: Callable[[np.ndarray], _Fitted]) -> None:
        self._fit = fit
        self._cache: dict[tuple, _Fitted] = {}
        self.n = 0
        self.seconds = 0.0

    def __call__(self, cols: np.ndarray) -> _Fitted:
        key = tuple(int(x) for x in cols)
        if key not in self._cache:
            self._cache[key] = self._fit(cols)
            self.n += 1
            self.seconds += self._cache[key].fit_s
        return self._cache[key]


def _plan(pretrain: list[str], held: np.ndarray, n_pool: int, n_corpus: int, folds: int | None, *,
          copies: dict[int, np.ndarray] | None = None) -> list[tuple[str, list[int], np.ndarray]]:
    """(pre-training, held-out pool positions, fitted columns) of every fit the study needs.

    ``pool``: one fit per held-out model, on the rest of the pool. ``corpus``: the held-out
    models split round-robin into ``folds`` folds (one per model when None), each fitted on
    every corpus column but its own models. Either way without the ``copies`` (corpus columns)
    of its held-out models, unless that leaves no column (a pool of a model and its copy).
    """
    copies = copies or {}

    def without(cols: np.ndarray, grp: list[int]) -> np.ndarray:
        rest = np.setdiff1d(cols, np.concatenate([np.asarray(copies.get(h, []), dtype=np.int64) for h in grp]))
        return rest if len(rest) else cols

    plan = []
    if "pool" in pretrain:
        plan += [("pool", [int(h)], without(np.setdiff1d(np.arange(n_pool), [h]), [int(h)])) for h in held]
    if "corpus" in pretrain:
        nf = len(held) if folds is None else min(int(folds), len(held))
        for f in range(nf):
            grp = [int(h) for h in held[f::nf]]
            plan.append(("corpus", grp, without(np.setdiff1d(np.arange(n_corpus), grp), grp)))
    return plan


def _upper(d: _StudyData, fits: _FitCache, mode: str) -> tuple[float, np.ndarray]:
    """Routing µ of the router fitted with every pool model's full training answers (the upper bound), and the
    pool position (n_test,) it routes each test prompt to."""
    pool_cols = np.arange(d.n_pool)
    if mode == "pool" or len(d.corpus_rows) == d.n_pool:  # corpus == pool: the two pre-trainings are one fit
        return d.routed(fits(pool_cols).router, pool_cols)
    return d.routed(fits(np.arange(len(d.corpus_rows))).router.select_models(pool_cols), pool_cols)


def _model_rows(d: _StudyData, F: _Fitted, h: int, *, mode: str, router: str, methods: list[str], ks: list[int],
                seeds: int, level: float, upper: tuple[float, np.ndarray], add_ms: list[float]
                ) -> list[dict[str, Any]]:
    """The rows of held-out pool model ``h`` (one per method, seed and k) on the fit ``F`` made without it."""
    from routereval.coldstart.estimate import population_weight
    from routereval.coldstart.neighbours import neighbour_correction
    from routereval.routers.newmodel import map_logistic

    base, others = _pool_without(F, h, d.n_pool, d.S_tr, d.names)
    with_h = np.r_[others, h]
    mu_lower = d.mu_of(base, others)
    y_tr = d.S_tr[:, h].astype(np.float64)
    true = float(d.S_te[:, h].astype(np.float64).mean())
    # the spread of its answers over the train prompts (where anchors are drawn): the plain mean's standard error
    score_sd = float(y_tr.std(ddof=1)) if len(y_tr) > 1 else 0.0
    true_all = float(np.concatenate([d.S_tr[:, h], d.S_va[:, h], d.S_te[:, h]]).astype(np.float64).mean())
    # the neighbours' correction's references: the fitted models (pool), every eligible corpus model but h (corpus)
    ref_cols, ref_extra = d.reference_set(h, F.models, mode)
    # the same prompt side with the model fitted on all its train answers: what anchors approximate
    phi_all, _ = map_logistic(F.Z_train, F.o_train, y_tr, *F.prior)
    mu_full = d.mu_of(copy.copy(base).append_model_vector(phi_all, d.names[h]), with_h)
    rows = []
    for method in methods:
        for s in range(seeds):
            for k, pos, w in _anchor_runs(F, method, ks, [s, int(h)], y_tr, d.subsets):
                t0 = time.perf_counter()
                phi, _ = map_logistic(F.Z_train[pos], F.o_train[pos], y_tr[pos], *F.prior)
                added = copy.copy(base).append_model_vector(phi, d.names[h])
                add_ms.append(1000 * (time.perf_counter() - t0))
                estimate = _estimator(F, pos, w, level)
                refs = d.references(pos, ref_cols, ref_extra)  # their answers on the anchors, their known means
                if w is not None:  # the anchor mean's weight learned from the references, per anchor set
                    lams = population_weight(estimate, *refs, seed=[int(h), 99], parts=estimate.parts)
                    if lams is not None:
                        estimate = _estimator(F, pos, w, level, tuple(float(v) for v in lams))
                y_a = y_tr[pos]
                gp, gp_all = estimate(y_a)
                c = neighbour_correction(y_a, *refs,
                                         lambda yy: [e.mean for e in estimate(yy)],
                                         level_match=method == "adaptive", full_output=True)
                est, est_all = (e.corrected(c.value[q], c.se[q], c.error_rms[q]) for q, e in enumerate((gp, gp_all)))
                plain = float(y_a.mean())
                rows.append({
                    "benchmark": d.bench.name, "split": d.split.name, "pretrain": mode, "router": router,
                    "model": d.names[h], "method": method, "k": int(k), "seed": int(s), "true_mean": true,
                    "estimate": est.mean, "low": est.low, "high": est.high,
                    "covered": bool(est.low <= true <= est.high), "abs_error": abs(est.mean - true),
                    "anchor_mean": est.anchor_mean, "plain_mean": plain, "plain_error": abs(plain - true),
                    "pirt": est.pirt, "lam": est.lam, "estimate_gp": gp.mean,
                    "abs_error_gp": abs(gp.mean - true), "correction": est.correction,
                    "true_mean_all": true_all,
                    "estimate_all": est_all.mean, "abs_error_all": abs(est_all.mean - true_all),
                    "mu_added": d.mu_of(added, with_h),
                    "mu_upper": upper[0], "mu_lower": mu_lower, "mu_full": mu_full,
                    "upper_share": float(np.mean(upper[1] == h)),
                    "add_ms": add_ms[-1], "score_sd": score_sd})
    return rows


def run_study(corpus: str | os.PathLike | Any, *, benchmark: str, router: str = "irt", params: dict | None = None,
              m: int, group: str, anchors: Sequence[int] = (10, 25, 50, 100, 200),
              methods: Sequence[str] = METHODS, models: int | None = None,
              seeds: int = 5, pretrain: Sequence[str] = ("pool",), embedding: str | None = None,
              protocol: str = "clean", seed: int = 42, missing: str = "auto", folds: int | None = None,
              corpus_models: int | None = None, calibrate_test: bool = True, level: float = 0.95,
              split: str = "auto", progress: Callable[[str, int, int], None] | None = None) -> StudyResult:
    """Leave-one-model-out cold start of ``router`` on one pool of one benchmark.

    Parameters
    ----------
    corpus
        Corpus directory or an open :class:`~routereval.data.model.Corpus`.
    benchmark, m, group, protocol, seed, missing
        The pool and split (:func:`routereval.pools.make_split`, :func:`~routereval.pools.make_pool`).
    split
        ``auto`` (the publisher's split when the benchmark has one, else the seeded random
        one), ``publisher`` or ``random`` (see :func:`routereval.pools.make_split`).
    router, params
        A router that supports ``add_model`` and its hyperparameters (``random_state``
        defaults to ``seed``).
    anchors
        The k values.
    methods
        Anchor methods (:data:`~routereval.coldstart.anchors.METHODS`).
    models
        How many pool models to hold out in turn (spread over the pool's range); all when None.
    seeds
        Anchor seeds 0 .. seeds-1.
    pretrain
        ``pool`` and/or ``corpus`` (see the module docstring).
    embedding
        Encoder (default: the benchmark's stored ``synth``, else MiniLM).
    folds
        ``corpus`` pre-training: held-out models are split round-robin into this many folds and
        each fold's prompt side is learned without any of its models (None: one fold per
        model, exact leave-one-out; fewer folds for corpora of thousands of models). At most the
        number of held-out models; refused without ``corpus`` pre-training.
    corpus_models
        ``corpus`` pre-training on at most this many eligible corpus models (a seeded sample
        that always includes the pool, so at least ``m``); all when None. Refused without
        ``corpus`` pre-training.
    calibrate_test
        Calibrate the test prompts' difficulty from the fitted population's answers on them (as
        tinyBenchmarks fits every item from the training models, and as ``add-model`` does
        with the corpus); the held-out model's test answers are never used, and routers are
        fitted on train prompts only. False: the test prompts' difficulty stays unknown.
    level
        Coverage of the estimate's interval.
    progress
        ``progress(task, done, total)``.
    """
    from threadpoolctl import threadpool_limits

    from routereval.evaluate import make_router_from

    calibrate_test = check_bool(calibrate_test, option("calibrate_test", "--no-calibrate-test"))
    ks = sorted({check_int(k, f"{option('anchors')}: every k", low=1)
                 for k in check_choices(anchors, f"{option('anchors')} (k values)")})
    methods = check_choices(methods, option("methods", "--method"), METHODS)
    pretrain = check_choices(pretrain, option("pretrain"), PRETRAIN)
    seeds = check_int(seeds, option("seeds"), low=1)
    if not (is_real(level) and 0 < level < 1):  # before any fit
        raise ParameterError(f"level (the intervals' coverage) must be a number in (0, 1). Got {level!r}.")
    m = check_int(m, option("m"), low=1)
    models = None if models is None else check_int(models, f"{option('models')} (pool models held out)", low=1)
    if models is not None and models > m:  # checked before any slow work
        raise ParameterError(f"{option('models')}: {models} models to hold out, but the pool has {m}; give at "
                             f"most {m}, or leave it out for all of them")
    # --folds and --corpus-models shape corpus pre-training only: without it they would be ignored, so refused
    for name, value in (("folds", folds), ("corpus_models", corpus_models)):
        if value is not None and "corpus" not in pretrain:
            raise ParameterError(f"{option(name)}: applies only to corpus pre-training; add corpus to "
                                 f"{option('pretrain')}, or leave it out")
    n_held = m if models is None else models
    if folds is not None:
        folds = check_int(folds, f"{option('folds')} (folds of the {n_held} held-out model{'s' * (n_held != 1)})",
                          low=1, high=n_held)
    if corpus_models is not None:  # the sample always includes the pool: fewer than m would still be the pool
        corpus_models = check_int(corpus_models, f"{option('corpus_models')} (corpus models the prompt side learns "
                                                 f"from, the pool's {m} always among them)", low=m)
    probe = make_router_from(router, params, seed=seed)
    if not getattr(probe, "supports_add_model", False):
        probe.add_model("probe", np.zeros((1, 1)), np.zeros(1))  # raises the router's one-line refusal
    d = _load_data(corpus, benchmark, m=m, group=group, protocol=protocol, seed=seed, missing=missing, split=split,
                   embedding=embedding, pretrain=pretrain, corpus_models=corpus_models, k_max=ks[-1],
                   progress=progress)
    skipped = None
    if "pool" in pretrain and d.n_pool < 3:  # measured: a fit on one model gives 0.1-0.4 errors, 50% coverage
        if pretrain == ["pool"]:
            raise ParameterError(f"{option('pretrain')} pool: the router would be fitted on 1 model (the pool of "
                                 f"{d.n_pool} without the held-out one), no population to add a model against; give "
                                 f"{option('m')} 3 or more, or add corpus to {option('pretrain')} (a corpus of more "
                                 "models)")
        pretrain = [p for p in pretrain if p != "pool"]
        skipped = (f"`pool` pre-training was skipped: the pool of {d.n_pool} without the held-out model leaves one "
                   "model to fit, no population to add a model against")
    held = held_out_models(d.S_tr[:, :d.n_pool].mean(axis=0), models)
    # copies of a held-out model (the same model under another name) are left out of its references and of the
    # fits that stand for "without it"
    copies = {d.names[h]: names for h in held if (names := d.copy_names(h))}
    plan = _plan(pretrain, held, d.n_pool, len(d.corpus_rows), folds, copies={h: d.copies_of(h)[0] for h in held})
    thin = min((len(cols) for mode, _, cols in plan if mode == "corpus"), default=2)
    if thin < 2:  # a corpus of (nearly) the pool alone, or one fold holding out every model: the same trap as above
        why = (f"the router would be fitted on {thin} model{'s' * (thin != 1)} (the corpus's "
               f"{len(d.corpus_rows)} eligible models without a fold's held-out ones), no population to add a model "
               "against")
        if pretrain == ["corpus"]:
            raise ParameterError(f"{option('pretrain')} corpus: {why}; give a corpus of more models, or more "
                                 f"{option('folds')}" + (f", or add pool to {option('pretrain')}" if d.n_pool >= 3
                                                         else ""))
        pretrain = [p for p in pretrain if p != "corpus"]
        plan = [step for step in plan if step[0] != "corpus"]
        skipped = f"`corpus` pre-training was skipped: {why}"

    rows: list[dict[str, Any]] = []
    add_ms: list[float] = []
    t_start = time.perf_counter()
    with threadpool_limits(1):  # small dense algebra: threads only spin against each other on a shared box
        fits = _FitCache(lambda cols: _fit_columns(d, cols, router=router, params=params or {}, seed=seed,
                                                   calibrate_test=calibrate_test))
        upper: dict[str, tuple[float, np.ndarray]] = {}  # by pre-training: the full refit's µ and routes
        for step, (mode, group_h, cols) in enumerate(plan):
            if mode not in upper:
                upper[mode] = _upper(d, fits, mode)
            F = fits(cols)
            for h in group_h:
                rows += _model_rows(d, F, h, mode=mode, router=router, methods=methods, ks=ks, seeds=seeds,
                                    level=level, upper=upper[mode], add_ms=add_ms)
            if progress is not None:
                progress("coldstart", step + 1, len(plan))
    add = np.asarray(add_ms) if add_ms else np.zeros(1)
    sp, pool = d.split, d.pool
    meta = {"benchmark": d.bench.name, "router": router, "params": dict(params or {}), "m": int(pool.m),
            "group": pool.group, "protocol": pool.protocol, "split": sp.name, "split_note": sp.note,
            "embedding": d.embedding, "missing": missing, "seed": seed,
            "anchors": ks, "methods": methods, "seeds": int(seeds), "pretrain": pretrain, "skipped": skipped,
            "pool_models": d.names, "held_out": [d.names[h] for h in held], "n_corpus_models": int(len(d.corpus_rows)),
            "corpus_models": corpus_models,  # as asked: more than the eligible models takes them all
            # subsets among the train prompts: with one, stratified anchors are random ones (the same draws)
            "n_subsets": int(len(np.unique(d.subsets))),
            # references of the neighbours' correction per held-out model, by pre-training (before copies): the
            # other fitted pool models, or every eligible corpus model but the held-out one
            "n_references": {mode: int(d.n_pool - 1 if mode == "pool" else len(d.corpus_rows) + len(d.extra_rows) - 1)
                             for mode in pretrain},
            "reference_copies": copies, "copy_agreement": COPY_AGREEMENT, "copy_chance": COPY_CHANCE,
            "n_train": int(len(sp.train)), "n_val": int(len(sp.val)), "n_test": int(len(sp.test)),
            # the whole-benchmark columns cover the split's prompts: fewer than the benchmark's when the
            # missing-records policy left some out
            "n_benchmark_prompts": int(d.bench.n_prompts), "missing_note": pool.missing_note,
            "folds": None if folds is None else int(folds), "level": level, "calibrate_test": bool(calibrate_test),
            "n_fits": fits.n, "fit_s": round(fits.seconds, 3),
            "add_ms_median": float(np.median(add)), "add_ms_p95": float(np.percentile(add, 95)),
            "total_s": round(time.perf_counter() - t_start, 3)}
    return StudyResult(rows, meta)


def _recovered(rs: list[dict[str, Any]], upper: str, min_gain: float) -> tuple[float | None, int]:
    """sum(mu_added - mu_lower) / sum(mu_upper - mu_lower) over the rows of models whose removal costs at least
    ``min_gain`` (below it the difference is refit noise); None when no model matters. Also the number of such models."""
    keep = [r for r in rs if _matters(r, upper, min_gain)]
    gain = sum(r[upper] - r["mu_lower"] for r in keep)
    got = sum(r["mu_added"] - r["mu_lower"] for r in keep)
    return (got / gain if keep else None), len({r["model"] for r in keep})


def _matters(r: dict[str, Any], upper: str, min_gain: float) -> bool:
    """Whether held-out model ``r["model"]`` matters for routing: the bound ``upper`` beats the pool without it by
    at least ``min_gain`` and, for the full refit, routes some test prompt to it (a study written before
    ``upper_share`` was kept: the gain alone)."""
    if r[upper] - r["mu_lower"] < min_gain:
        return False
    return upper != "mu_upper" or r.get("upper_share") in (None, "") or float(r["upper_share"]) > 0


def clustered_se(values: Sequence[float], clusters: Sequence[Any]) -> float:
    """Standard error of the mean of ``values`` with rows of one cluster (a held-out model) correlated.

    The rows of a model share its test prompts' noise and its misfit, so they are not
    independent: ``sqrt(sum_c (sum_{i in c} (v_i - mean))^2) / n`` (the cluster-robust sandwich,
    scaled by ``C / (C - 1)`` for C clusters); NaN with one cluster.
    """
    v = np.asarray(values, dtype=np.float64)
    _, inv = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    n_c = int(inv.max()) + 1 if len(v) else 0
    if n_c < 2:
        return float("nan")
    sums = np.bincount(inv, weights=v - v.mean(), minlength=n_c)
    return float(np.sqrt(np.sum(sums ** 2) * n_c / (n_c - 1)) / len(v))


def _mean_or_none(vals: list) -> float | None:
    vals = [v for v in vals if v is not None and v == v]
    return float(np.mean(vals)) if vals else None


def summarise(rows: list[dict[str, Any]], *, min_gain: float = MIN_GAIN) -> list[dict[str, Any]]:
    """One line per (benchmark, pretrain, method, k): errors, coverage, routing µ and the share of the gain recovered.

    ``recovered`` is ``sum(mu_added - mu_lower) / sum(mu_upper - mu_lower)`` over the held-out
    models whose full refit gains at least ``min_gain`` over the pool without them and routes
    some test prompt to them (removing a model the router never picks changes µ only by the
    noise of refitting; those models are left out) and their seeds; ``n_matter`` counts them. ``recovered_full`` is the same against
    ``mu_full`` (the same prompt side, the model fitted on all its train answers). ``mae_se``
    and ``bias_se`` are standard errors clustered by held-out model (:func:`clustered_se`);
    ``bias`` is the mean signed error; ``mae_gp`` that of gp-IRT without the neighbours'
    correction; ``mae_all`` the error of the whole-benchmark estimate
    against the model's mean over every prompt (train, val and test).
    """
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["benchmark"], r["pretrain"], r["method"], r["k"]), []).append(r)
    out = []
    for (b, pre, method, k), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], kv[0][3])):
        rec, n_matter = _recovered(rs, "mu_upper", min_gain)
        rec_full, n_full = _recovered(rs, "mu_full", min_gain)
        matter = [r for r in rs if _matters(r, "mu_upper", min_gain)] or rs
        err = [r["estimate"] - r["true_mean"] for r in rs]
        out.append({
            "benchmark": b, "pretrain": pre, "method": method, "k": k, "n": len(rs),
            "mae": float(np.mean([r["abs_error"] for r in rs])),
            "mae_se": clustered_se([r["abs_error"] for r in rs], [r["model"] for r in rs]),
            "bias": float(np.mean(err)), "bias_se": clustered_se(err, [r["model"] for r in rs]),
            "mae_all": _mean_or_none([r.get("abs_error_all") for r in rs]),
            "mae_gp": _mean_or_none([r.get("abs_error_gp") for r in rs]),
            "mae_plain": float(np.mean([r["plain_error"] for r in rs])),
            "coverage": float(np.mean([r["covered"] for r in rs])),
            "mu_added": float(np.mean([r["mu_added"] for r in rs])),
            "mu_upper": float(np.mean([r["mu_upper"] for r in rs])),
            "mu_lower": float(np.mean([r["mu_lower"] for r in rs])),
            "mu_full": float(np.mean([r["mu_full"] for r in rs])),
            "half_width": float(np.mean([(r["high"] - r["low"]) / 2 for r in rs])),  # of the intervals, for coverage
            "recovered": rec, "n_matter": n_matter, "recovered_full": rec_full, "n_matter_full": n_full,
            # µ over the models that matter (all when none does): where the bounds differ
            "mu_added_matter": float(np.mean([r["mu_added"] for r in matter])),
            "mu_upper_matter": float(np.mean([r["mu_upper"] for r in matter])),
            "mu_lower_matter": float(np.mean([r["mu_lower"] for r in matter])),
            "mu_full_matter": float(np.mean([r["mu_full"] for r in matter])),
            "matter_models": sorted({r["model"] for r in matter}),  # the models the *_matter means average over
            "add_ms": float(np.median([r["add_ms"] for r in rs])),
        })
    return out


def random_mean_se(rows: list[dict[str, Any]], k: int) -> float:
    """Standard error of the plain mean of k random answers, ``sd / sqrt(k)`` averaged over held-out models.

    ``sd`` is the row's ``score_sd``: the sample standard deviation of the held-out model's scores over the
    train prompts the answers are drawn from. For 0/1 scores it is ``sqrt(p(1-p) n/(n-1))``, the binomial
    formula up to the factor ``n/(n-1)``; for graded scores (AlpacaEval) the answers' actual spread, which
    the binomial formula overstates.
    """
    sds = {r["model"]: r["score_sd"] for r in rows}
    return float(np.mean([sd / math.sqrt(k) for sd in sds.values()])) if sds else float("nan")
