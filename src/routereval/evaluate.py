"""Fit a router on train, tune on val, route test, and measure it: one (benchmark, router, pool) cell.

:func:`evaluate` is what ``routereval eval`` runs; :func:`fit_router` what ``routereval fit``
runs. Both build the split and pool with :mod:`routereval.pools` (protocol ``clean`` by
default: pools and the best single model are chosen on train + val) and the prompt
embeddings with :mod:`routereval.embed`.

Default embedding: the benchmark's stored ``"synth"`` embeddings when it has them (the
synthetic corpus carries embeddings that encode its latent prompt traits; no text encoder
would see them), else ``"minilm"``. Routers with ``input_kind = "text"`` (MLC) read the
prompt texts instead.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from routereval import metrics as M
from routereval.data.splits import check_seed
from routereval.errors import InputError, ParameterError
from routereval.jsonsafe import json_safe
from routereval.validate import as_path, check_bool, check_int, is_real, option

RESULT_KEYS = ("router", "benchmark", "m", "group", "protocol", "split", "mu", "mu_ci", "v_r", "v_b", "e_p", "e_sel",
               "oracle", "best_single", "oracle_recall", "selection", "n_test", "fit_s", "route_s")


@dataclass
class Cell:
    """Everything one (benchmark, pool, split, embedding) cell hands to a router.

    ``X_*`` are (n, d) embeddings (or (n,) texts for text routers), ``Y_*`` (n, m) raw
    scores, ``L_*`` (n, m) training labels (the 0.95-of-best rule on graded benchmarks),
    ``C_*`` (n, m) costs or None.
    """

    bench: Any
    pool: Any
    embedding: str
    X_train: np.ndarray
    X_val: np.ndarray
    X_test: np.ndarray
    Y_train: np.ndarray
    Y_val: np.ndarray
    Y_test: np.ndarray
    L_train: np.ndarray
    L_val: np.ndarray
    C_train: np.ndarray | None
    C_test: np.ndarray | None


def default_embedding(bench) -> str:
    """``"synth"`` when the benchmark stores it, else ``"minilm"``."""
    return "synth" if "synth" in bench.embeddings else "minilm"


def _open_bench(corpus, benchmark: str):
    from routereval.data.model import Corpus

    if not isinstance(benchmark, str):
        raise InputError(f"benchmark must be one benchmark's name; got {benchmark!r}")
    if isinstance(corpus, Corpus):
        return corpus[benchmark], corpus.path
    from routereval.data.store import open_corpus

    c = open_corpus(as_path(corpus, "corpus (a directory or an open Corpus)"), benchmarks=[benchmark])
    return c[benchmark], Path(corpus)


def _check_params(params: Any) -> dict[str, Any]:
    """``params`` (a mapping of hyperparameters, or None) as a dict; a string such as ``"k=7"`` is refused."""
    if params is None:
        return {}
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise ParameterError(f"params must be a dict of the router's hyperparameters, e.g. {{'k': 7}}; got {params!r}")
    return dict(params)


def make_router_from(spec: str, params: dict[str, Any] | None, *, seed: int, protocol: str = "clean"):
    """The router ``spec`` with ``params``, validated now (before any slow work).

    ``random_state`` defaults to ``seed`` when the router has one and it was not given; under
    ``protocol="paper"`` the router's ``paper_defaults`` (the reference scripts' settings: knn
    ``tie_break="first"``, kmeans ``n_init=1, random_state=0``, linear/mlp batch 1 without early
    stopping, ...) replace its defaults for parameters not given.
    """
    from routereval.routers.base import get_router_class, make_router

    params = _check_params(params)
    check_seed(seed)
    if protocol == "paper":
        params = {**getattr(get_router_class(spec), "paper_defaults", {}), **params}
    router = make_router(spec, **params)
    if "random_state" not in params and hasattr(router, "get_params") and "random_state" in router.get_params():
        router.set_params(random_state=seed)
    if hasattr(router, "validate_params"):
        router.validate_params()
    return router


def prepare_cell(corpus, *, benchmark: str, m: int, group: str, protocol: str = "clean",
                 embedding: str | None = None, seed: int = 42, draw: int = 0, input_kind: str = "embedding",
                 split: str = "auto", progress: Callable[[str, int, int], None] | None = None,
                 missing: str = "auto") -> Cell:
    """Split, pool, scores, labels, costs and embeddings of one cell.

    ``corpus`` is a corpus directory or an open :class:`~routereval.data.model.Corpus`.
    ``split`` names the prompt split (:func:`routereval.pools.make_split`): ``auto`` (the
    publisher's when the benchmark has one, else the seeded random split), ``publisher``
    or ``random``; ``cell.pool.split.name`` says which was used. ``missing`` is the
    missing-records policy of the split and pool (see :func:`routereval.pools.missing_policy`).
    """
    from routereval.pools import make_pool, make_split, pool_scores, training_labels

    m = check_int(m, option("m"), low=1)
    if not isinstance(split, str):  # a Split object belongs to make_pools(split=); here the split is named
        raise InputError(f"split must be a split name: auto, publisher or random; got {type(split).__name__}")
    if progress is not None and not callable(progress):
        raise InputError(f"progress must be a function progress(task, done, total) or None; got {progress!r}")
    if input_kind not in ("embedding", "text"):
        raise InputError(f"input_kind must be 'embedding' or 'text'; got {input_kind!r}")
    bench, corpus_path = _open_bench(corpus, benchmark)
    split = make_split(bench, protocol=protocol, seed=seed, split=split, missing=missing)
    pool = make_pool(bench, m=m, group=group, protocol=protocol, split=split, seed=seed, draw=draw,
                     missing=missing)
    split = pool.split
    Y_train, Y_val, Y_test = pool_scores(bench, pool)
    for what, Y in (("train", Y_train), ("val", Y_val), ("test", Y_test)):
        if np.isnan(Y).any():
            raise InputError(f"benchmark {bench.name!r}: the pool's models miss records on {what} prompts")
    L_train = training_labels(bench, Y_train)
    L_val = training_labels(bench, Y_val) if len(Y_val) else Y_val
    C_train = C_test = None
    if bench.cost is not None:
        C = np.asarray(bench.cost)[np.asarray(pool.models)].astype(np.float64)
        C_train, C_test = np.ascontiguousarray(C[:, split.train].T), np.ascontiguousarray(C[:, split.test].T)
        if np.isnan(C_train).any() or np.isnan(C_test).any():
            C_train = C_test = None  # costs unknown for some routed cells: no cost metrics
    if input_kind == "text":
        if bench.texts is None:
            raise InputError(f"benchmark {bench.name!r} has no prompt texts; this router reads texts")
        X, embedding = bench.texts, "text"
    else:
        from routereval.embed import embed_prompts

        embedding = embedding or default_embedding(bench)
        X = embed_prompts(bench, embedding, corpus_path=corpus_path, fit_prompts=split.train, progress=progress)
    return Cell(bench, pool, embedding, X[split.train], X[split.val], X[split.test], Y_train, Y_val, Y_test,
                L_train, L_val, C_train, C_test)


def fit_target(router: Any, bench: Any) -> str:
    """What :func:`fit_router` trains ``router`` on for ``bench``: ``"scores"`` on a binary benchmark (its
    labels are its scores) or for a router that fits raw scores (``best_single``: raw means, as the pool
    chose it), else the paper's 0.95-of-best ``"labels"``."""
    return "scores" if bench.binary or getattr(router, "fit_target", "labels") == "scores" else "labels"


def _fit(router, cell: Cell) -> float:
    """Fit on train (val for tuning); returns the seconds the fit took."""
    raw = fit_target(router, cell.bench) == "scores"
    Y_train, Y_val = (cell.Y_train, cell.Y_val) if raw else (cell.L_train, cell.L_val)
    kw: dict[str, Any] = {}
    if len(cell.Y_val):
        kw.update(X_val=cell.X_val, Y_val=Y_val)
    if cell.C_train is not None:
        kw["cost"] = cell.C_train
    warm_up = getattr(type(router), "warm_up", None)
    if callable(warm_up):
        warm_up()  # one-time imports (torch, scikit-learn) are not the router's fit time
    t0 = time.perf_counter()
    router.fit(cell.X_train, Y_train, **kw)
    return time.perf_counter() - t0


def cost_curve(pred: np.ndarray, Y: np.ndarray, C: np.ndarray, unit_cost: np.ndarray, *,
               n_points: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """RouterBench-style quality-cost curve of a router: route by ``pred - lam * unit_cost``.

    ``lam`` sweeps 0 and a geometric grid; returns (L,) mean cost per prompt and (L,) µ.
    """
    u = unit_cost / unit_cost.max() if unit_cost.max() > 0 else unit_cost
    lambdas = np.r_[0.0, np.geomspace(1e-3, 1e2, n_points - 1)]
    routes = M.tradeoff_routes(pred, u, lambdas)
    n = np.arange(Y.shape[0])
    return C[n[None, :], routes].mean(axis=1), Y[n[None, :], routes].mean(axis=1)


def check_reference_score(reference_score: float | None) -> float | None:
    """``reference_score`` if it is None or a finite float in (0, 1], else :class:`ParameterError`."""
    from routereval.errors import ParameterError

    if reference_score is None:
        return None
    if not (is_real(reference_score) and 0 < reference_score <= 1):
        raise ParameterError(f"{option('reference_score')} must be a float in (0, 1] (the reference model's "
                             f"score). Got {reference_score!r}.")
    return float(reference_score)


def evaluate_cell(router, cell: Cell, *, router_name: str | None = None, n_boot: int = 1000, seed: int = 42,
                  params: dict[str, Any] | None = None, reference_score: float | None = None,
                  keep_routes: bool = False) -> dict[str, Any]:
    """Fit ``router`` on the cell's train (labels; val for tuning), route test, compute every metric.

    ``reference_score`` overrides the catalog's reference-model score behind V_R (needed for
    benchmarks outside the catalog, whose V_R is None otherwise). ``keep_routes`` adds
    ``routes``: the (n_test,) model index chosen per test prompt (the sweep stores them).
    """
    from routereval.catalog import REFERENCE_SCORES

    n_boot = check_int(n_boot, f"{option('n_boot')} (bootstrap resamples)", low=1)
    reference_score = check_reference_score(reference_score)
    keep_routes = check_bool(keep_routes, "keep_routes")
    pool, bench = cell.pool, cell.bench
    fit_s = _fit(router, cell)
    oracle_type = bool(getattr(router, "requires_scores", False))
    kw = {"scores": cell.Y_test} if oracle_type else {}
    t0 = time.perf_counter()
    routes = np.asarray(router.route(cell.X_test, **kw))
    route_s = time.perf_counter() - t0
    probs = np.asarray(router.selection_probabilities(cell.X_test, **kw))
    Y = cell.Y_test
    m = Y.shape[1]
    routed = M.routed_scores(Y, routes)
    best = Y[:, pool.best_single]
    mu = float(routed.mean())
    best_score = float(best.mean())
    ref = reference_score if reference_score is not None else REFERENCE_SCORES.get(bench.name)
    names = [str(x) for x in pool.model_names]
    shares = M.selection_shares(routes, m)
    out: dict[str, Any] = {
        "router": router_name or getattr(router, "name", type(router).__name__),
        "benchmark": bench.name, "m": m, "group": pool.group, "protocol": pool.protocol, "split": pool.split.name,
        "mu": mu, "mu_ci": list(M.bootstrap_ci(routed, n_boot=n_boot, random_state=seed)),
        "v_r": M.v_r(mu, ref) if ref else None,
        "v_b": M.v_b(mu, best_score),
        "e_p": M.e_p(probs, threshold=getattr(router, "ep_threshold", 1e-10)),
        "e_sel": M.selection_entropy(routes, m),
        "oracle": M.oracle(Y), "best_single": best_score, "oracle_recall": M.oracle_recall(Y, routes),
        "selection": {names[j]: float(shares[j]) for j in range(m)},
        "n_test": int(Y.shape[0]), "fit_s": fit_s, "route_s": route_s,
        # beyond the keys
        "v_b_ci": list(M.v_b_ci(routed, best, n_boot=n_boot, random_state=seed)),
        "p_beats_best_single": M.paired_bootstrap_p(routed, best, n_boot=n_boot, random_state=seed),
        "oracle_gap": M.oracle(Y) - mu, "best_single_model": names[pool.best_single],
        "models": names, "embedding": cell.embedding, "params": dict(params or {}), "seed": seed,
        "n_train": int(cell.Y_train.shape[0]), "n_val": int(cell.Y_val.shape[0]), "cost": None,
        "split_note": pool.split.note, "missing_note": pool.missing_note,
    }
    if cell.C_test is not None:
        C = cell.C_test
        cost: dict[str, Any] = {"mean_cost": M.mean_cost(C, routes), "best_single_cost": float(C[:, pool.best_single].mean())}
        if not oracle_type:
            pred = np.asarray(router.predict_scores(cell.X_test))
            cc, qq = cost_curve(pred, Y, C, cell.C_train.mean(axis=0))
            model_cost = C.mean(axis=0)  # (m,) mean test cost of each pool model
            # AIQ over the pool's cost range, the same for every router on this cell (comparable)
            aiq = M.aiq(cc, qq, cost_range=(float(model_cost.min()), float(model_cost.max())))
            # APGR (RouteLLM): weak = the cheapest model, strong = the best single; the x-axis is the
            # cost normalised between theirs (the share of calls to the strong model, for two models)
            weak = int(np.argmin(cell.C_train.mean(axis=0)))
            c_weak, c_strong = float(model_cost[weak]), float(model_cost[pool.best_single])
            apgr = None
            if c_strong > c_weak and len(cc) > 1:
                share = np.clip((cc - c_weak) / (c_strong - c_weak), 0.0, 1.0)
                apgr = M.apgr(share, qq, weak=float(Y[:, weak].mean()), strong=best_score)
            cost.update(curve={"cost": cc.tolist(), "mu": qq.tolist()}, aiq=aiq, apgr=apgr)
        out["cost"] = cost
    if keep_routes:
        out["routes"] = routes
    return out


def evaluate(corpus: str | os.PathLike | Any, *, benchmark: str, router: str, params: dict[str, Any] | None = None,
             m: int, group: str, protocol: str = "clean", embedding: str | None = None, seed: int = 42,
             draw: int = 0, n_boot: int = 1000, reference_score: float | None = None, split: str = "auto",
             missing: str = "auto", progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Fit on train (tune on val), route test and measure one (benchmark, router, params, m, group) cell.

    Parameters
    ----------
    corpus
        Corpus directory or an open :class:`~routereval.data.model.Corpus`.
    router
        Registry name or ``module:Class``; ``params`` its hyperparameters.
    m, group, protocol, seed, draw
        The pool (see :func:`routereval.pools.make_pool`); ``seed`` also seeds the split, the
        router's ``random_state`` (unless given in ``params``) and the bootstrap. Under
        ``protocol="paper"`` a router's ``paper_defaults`` apply to parameters not given
        (the reference scripts' settings: knn ``tie_break="first"``, kmeans ``n_init=1,
        random_state=0``, linear/mlp batch 1 without early stopping, ...).
    split
        ``auto`` (the publisher's split when the benchmark has one, else the seeded random
        split), ``publisher`` or ``random``; a seed never changes the publisher split.
    missing
        Missing records: ``auto``, ``models`` (only the models evaluated on every prompt) or
        ``prompts`` (every model, on the prompts all of them answered); see
        :func:`routereval.pools.missing_policy`.
    embedding
        Encoder (see :mod:`routereval.embed`); default :func:`default_embedding`.
    n_boot
        Bootstrap resamples for the CIs and the p-value.
    reference_score
        The reference model's score behind V_R, overriding the catalog's (a benchmark outside
        the catalog has ``v_r`` None without it).
    progress
        Optional ``progress(task, done, total)`` callback (embedding prompts can take minutes).

    Returns
    -------
    dict
        The keys of :data:`RESULT_KEYS` (``split``: the split used) plus ``split_note``, ``v_b_ci``, ``p_beats_best_single``,
        ``oracle_gap``, ``best_single_model``, ``models``, ``embedding``, ``params``,
        ``seed``, ``n_train``, ``n_val`` and ``cost`` (None without a cost matrix, else
        mean cost per prompt, and for non-oracle routers the quality-cost curve, AIQ, APGR).
    """
    r = make_router_from(router, params, seed=seed, protocol=protocol)
    seed, params = int(seed), json_safe(_check_params(params))  # numpy scalars as Python values in the result
    cell = prepare_cell(corpus, benchmark=benchmark, m=m, group=group, protocol=protocol, embedding=embedding,
                        seed=seed, draw=draw, input_kind=getattr(r, "input_kind", "embedding"), split=split,
                        progress=progress, missing=missing)
    return evaluate_cell(r, cell, router_name=router, n_boot=n_boot, seed=seed, params=params,
                         reference_score=reference_score)


CELL_KEYS = ("benchmark", "m", "group", "protocol", "split", "split_note", "seed", "n_train", "n_val", "n_test",
             "models", "oracle", "best_single", "best_single_model")


def results_document(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The one JSON shape of ``routereval eval --json``, for one router or several.

    Parameters
    ----------
    results
        Per-router dicts of :func:`evaluate` on the same cell (benchmark, pool, split, seed).

    Returns
    -------
    dict
        The cell's context (:data:`CELL_KEYS`, taken from the first result) and ``results``:
        the per-router dicts, unchanged (each stays complete on its own).
    """
    if (isinstance(results, dict) or not isinstance(results, (list, tuple)) or not results
            or not all(isinstance(r, dict) and {"router", "mu", *CELL_KEYS} <= set(r) for r in results)):
        raise InputError("results: expected a non-empty list of evaluate() results (one per router)")
    first = results[0]
    for r in results[1:]:
        differ = [k for k in CELL_KEYS if r.get(k) != first.get(k) and not (r.get(k) != r.get(k))]  # NaN == NaN
        if differ:
            raise InputError(f"results of different cells ({differ[0]}: {first.get(differ[0])!r} vs "
                             f"{r.get(differ[0])!r}); one document holds the routers of one cell")
    return {**{k: results[0].get(k) for k in CELL_KEYS}, "results": list(results)}


def fit_router(corpus: str | os.PathLike | Any, *, benchmark: str, router: str, params: dict[str, Any] | None = None,
               m: int, group: str, protocol: str = "clean", embedding: str | None = None, seed: int = 42,
               draw: int = 0, save: str | os.PathLike, split: str = "auto", missing: str = "auto",
               progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Fit on train (tune on val) and save the router with its pool, encoder and metadata to ``save``.

    Parameters
    ----------
    corpus, benchmark, router, params, m, group, protocol, embedding, seed, draw, split, missing
        As in :func:`evaluate`.
    save
        The router directory: missing, empty, or a router saved earlier (replaced); anything
        else is refused before any work (:class:`InputError`).
    progress
        ``progress(task, done, total)``.

    Returns
    -------
    dict
        The JSON description that was saved: ``path``, ``router``, ``split``, ``split_note``,
        ``pool`` (benchmark, group, m, protocol, models, best_single, seed, draw, split, and
        ``cost`` when the corpus has costs), ``encoder`` and ``metadata``. Load it back with
        :func:`routereval.routers.load_router`.
    """
    from routereval.routers.persist import check_save_target, router_spec, save_router

    check_save_target(as_path(save, option("save")))  # refuse a target that is not ours to replace before any slow work
    r = make_router_from(router, params, seed=seed, protocol=protocol)
    seed, params = int(seed), json_safe(_check_params(params))  # saved as JSON
    cell = prepare_cell(corpus, benchmark=benchmark, m=m, group=group, protocol=protocol, embedding=embedding,
                        seed=seed, draw=draw, input_kind=getattr(r, "input_kind", "embedding"), split=split,
                        progress=progress, missing=missing)
    fit_s = _fit(r, cell)
    pool = cell.pool
    pool_doc = {"benchmark": cell.bench.name, "group": pool.group, "m": int(pool.m), "protocol": pool.protocol,
                "models": [str(x) for x in pool.model_names], "best_single": int(pool.best_single),
                "seed": seed, "draw": int(pool.draw), "split": pool.split.name, "missing": pool.missing}
    if cell.C_train is not None:
        # mean train cost (USD) of each pool model: what `serve --cost-weight` trades scores against
        pool_doc["cost"] = {str(name): float(c) for name, c in zip(pool.model_names, cell.C_train.mean(axis=0))}
    dim = None if cell.embedding == "text" else int(np.asarray(cell.X_train).shape[1])
    # absolute: coldstart and add-model open the corpus from wherever they are run
    where = corpus if not hasattr(corpus, "benchmarks") else getattr(corpus, "path", None)
    meta = {"corpus": str(Path(where).resolve()) if where else "",
            "fit_s": fit_s, "embedding_dim": dim, "n_train": int(len(cell.Y_train)), "n_val": int(len(cell.Y_val)),
            "n_test": int(len(cell.Y_test)), "params": dict(params or {}),
            # what the router learned to predict (_fit's rule): add-model fits a new model's vector on the same
            "fit_target": fit_target(r, cell.bench)}
    save = save_router(r, save, pool=pool_doc, encoder=cell.embedding, metadata=meta,
                spec=router if ":" in router else router_spec(r))
    return {"path": str(save), "router": router, "split": pool.split.name, "split_note": pool.split.note,
            "missing_note": pool.missing_note,
            "pool": pool_doc, "encoder": cell.embedding, "metadata": meta}
