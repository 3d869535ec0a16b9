"""Cold start for a saved router directory: anchors to ask a new model, and adding it from its answers.

The router directory (``routereval fit --save``) names its corpus, benchmark, split seed,
protocol and encoder; the train prompts of that split are the candidate anchors, embedded
with the router's encoder (from the corpus's embedding cache), and the pool models' train
answers calibrate each prompt's residual difficulty (:mod:`routereval.coldstart.context`);
the answers come back as a CSV (:mod:`routereval.coldstart.answers`). ``anchor_table`` and
``adaptive_next`` say what to ask; ``add_model_to_saved`` writes a new version of the directory
in the same format (``router.json`` + ``state.safetensors``).
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from routereval.coldstart.answers import Answers, read_answers
from routereval.coldstart.context import (REFERENCE_MAX_MISSING, RouterContext, answer_prompts, check_answered,
                                          embed_answers, incomplete_models, open_router_context, prompt_floors,
                                          reference_answers, references)
from routereval.errors import InputError, ParameterError
from routereval.validate import as_path, check_bool, check_int, is_real, option


def check_label_ranking(ctx: RouterContext, idx: np.ndarray, *, file: Path) -> None:
    """On a router fitted on labels: one line when the corpus cannot rank a new model's answers against the pool.

    ``idx`` (k,): the benchmark prompt of each answer, -1 for a text the benchmark does not hold.
    """
    if not ctx.on_labels:
        return
    if ctx.label_ranking.pool_best is None:
        raise InputError(f"the router was fitted on the 0.95-of-best labels of a graded benchmark, and its corpus "
                         f"{str(ctx.corpus_path)!r} lacks {ctx.label_ranking.gap} to rank a new model's answers against the "
                         "pool's best; expected the corpus the router was fitted on", file=ctx.path / "router.json")
    new = np.flatnonzero(np.asarray(idx) < 0)
    if len(new):
        raise InputError(f"prompt text not among the train prompts of benchmark {ctx.bench.name!r}; the router was "
                         "fitted on the 0.95-of-best labels of a graded benchmark, so an answer is ranked against the "
                         "pool's scores on its prompt, which exist for the benchmark's prompts only; expected the "
                         "texts `routereval coldstart anchors` printed", file=file, row=int(new[0]) + 1, column="text")


def routing_answers(ctx: RouterContext, scores: np.ndarray, idx: np.ndarray, offsets: np.ndarray, *,
                    file: Path) -> tuple[np.ndarray, np.ndarray]:
    """The answers (k,) and offsets (k,) a new model's routing vector is fitted on: its scores, or their labels.

    A router fitted on labels (:func:`trained_on_labels`) compares its models' chances of scoring
    at least 0.95 of a prompt's best: the new model's answer is labelled 1 where it reaches 0.95 of
    the best of the pool's scores and its own, with the labels' calibrated offsets. Its estimated
    mean score is still fitted on the scores themselves.
    """
    from routereval.pools.build import training_labels

    if not ctx.on_labels:
        return scores, offsets
    check_label_ranking(ctx, idx, file=file)
    ranking = ctx.label_ranking
    # fit's own rule, on the pool's best and the new model's score side by side
    labels = training_labels(ctx.bench, np.column_stack([ranking.pool_best[idx], scores]))[:, 1]
    return labels, np.nan_to_num(ranking.delta[idx])


def anchor_table(ctx: RouterContext, k: int, method: str, *, seed: int = 0) -> list[dict[str, Any]]:
    """The k anchors (train prompts) a new model should answer: prompt id, subset, weight, text."""
    from routereval.coldstart.anchors import select_anchors

    seed = check_int(seed, option("seed"), low=0)
    if method == "adaptive":
        raise ParameterError("method 'adaptive' asks one prompt at a time, depending on each answer: use "
                             "adaptive_next (the CLI's --method adaptive --answers), or random, stratified, irt or "
                             "fisher here")
    k = check_int(k, f"{option('k')} (the number of anchors)", low=1)
    _require_texts(ctx)
    n = len(ctx.askable)
    if k > n:
        raise ParameterError(f"{option('k')} = {k} anchors asked for, but the router's train split has only {n} "
                             f"prompts to ask (one per distinct text: benchmarks repeat some); expected at most {n}")
    # irt and fisher use the pool's 3PL calibration of every prompt when it can be pinned, as the study does
    calib = prompt_floors(ctx) if method in ("irt", "fisher") else None
    a = select_anchors(ctx.saved.router, k, method, X=ctx.X, candidates=ctx.askable,
                       subsets=ctx.bench.subset_codes(), delta=np.nan_to_num(ctx.delta), random_state=seed,
                       target=np.arange(ctx.bench.n_prompts) if method == "fisher" else None, calibration=calib)
    return _prompt_rows(ctx, a.index, a.weights, method)


def _require_texts(ctx: RouterContext) -> None:
    """Refuse a benchmark without prompt texts: a model's answers could not name their prompts."""
    if ctx.bench.texts is None:
        raise InputError(f"benchmark {ctx.bench.name!r} holds no prompt texts: a model's answers could not name "
                         "their prompts (import the benchmark with its texts)", file=ctx.path / "router.json")


def _prompt_rows(ctx: RouterContext, index: np.ndarray, weights: np.ndarray | None, method: str
                 ) -> list[dict[str, Any]]:
    """Rows of an anchors CSV (prompt id, subset, the method, weight, text, a blank score) of the benchmark prompts
    ``index``."""
    weights = [None] * len(index) if weights is None else np.asarray(weights).tolist()
    texts = ctx.bench.texts
    subs = ctx.bench.subset_names
    codes = ctx.bench.subset_codes()
    return [{"prompt_id": str(ctx.bench.prompt_ids[i]), "subset": subs[codes[i]] if subs else "", "method": method,
             "weight": None if w is None else float(w), "text": str(texts[i]), "score": ""}
            for i, w in zip(index, weights)]


def adaptive_next(ctx: RouterContext, k: int = 1, *, answers: str | os.PathLike | None = None, seed: int = 0,
                  name: str | None = None) -> dict[str, Any]:
    """The next ``k`` prompts of the adaptive test a new model takes, given its answers so far.

    The test (:func:`~routereval.coldstart.anchors.adaptive_test`) runs over the train prompts,
    aims at the mean over every prompt of the benchmark and uses the pool's 3PL calibration
    where it can be pinned, as ``anchor_table`` does for ``fisher``. ANSWERS.csv (``text,score``,
    as ``add-model`` reads it; None: the test's start) is replayed in the order the test asks
    (:func:`replay`; the file's row order does not matter): the same answers give the same next
    prompts, so one call per answer (``k = 1``) asks what the test would. With
    ``k > 1``, the next k are chosen before any of their answers (:meth:`AdaptiveTest.plan`).
    ``name``: the new model's, should the corpus hold its records (they are then no reference of
    the estimate, as in ``add-model``).

    Returns
    -------
    dict
        ``method`` (adaptive), ``seed``, ``answered`` (answers replayed), ``estimate`` (the new model's
        estimated mean over the benchmark, as ``add-model`` reports it; None before any answer),
        ``n_references`` (None before any answer) and
        ``anchors`` (the rows of an anchors CSV to ask next; fewer than k when the train prompts, one per text,
        run out).
    """
    from routereval.coldstart.anchors import adaptive_test

    k = check_int(k, f"{option('k')} (the number of prompts to ask next)", low=1)
    seed = check_int(seed, option("seed"), low=0)
    if name is not None:
        _check_name(name)
        _check_new(ctx, name)
    _require_texts(ctx)
    # the answers are checked before anything is computed (the calibration writes its cache into the corpus)
    ans = None if answers is None else read_answers(answers, allow_empty=True)
    if ans is not None and not ans.texts:  # a file with the header only: the test's start, as no file
        ans = None
    if ans is not None and ans.method not in (None, "adaptive"):
        raise InputError(f"holds answers to {ans.method} anchors (its method column); expected the adaptive test's "
                         "answers so far (method adaptive, or no method column)", file=Path(answers))
    if ans is not None:
        X, offsets, idx = embed_answers(ctx, ans, Path(answers), allow_new_prompts=None)
        check_answered(ctx, ans, idx, Path(answers), "the adaptive test asks train prompts only (expected the texts "
                        "this command printed)")
    test, rows = adaptive_test(ctx.saved.router, ctx.X, candidates=ctx.askable, delta=np.nan_to_num(ctx.delta),
                               target=np.arange(ctx.bench.n_prompts), calibration=prompt_floors(ctx),
                               random_state=seed)
    # no reference is used before an answer
    doc: dict[str, Any] = {"method": "adaptive", "seed": seed, "answered": 0, "estimate": None,
                           "n_references": None, "n_references_at_level": None}
    if ans is not None:
        position = {int(r): i for i, r in enumerate(rows)}
        replay(test, [position[int(i)] for i in idx], ans.scores)
        est, n_refs, _ = estimate_from_answers(ctx, ans, X, offsets, idx, exclude=name, adaptive=True)
        doc.update(answered=len(ans.texts), estimate=est.to_dict(), **n_refs)
    left = len(rows) - len(test.asked)
    doc["anchors"] = _prompt_rows(ctx, rows[test.plan(min(k, left))], None, "adaptive") if left else []
    return doc


def replay(test: Any, positions: list[int], scores: np.ndarray) -> None:
    """Tell the adaptive ``test`` the answers ``scores`` (k,) to its candidates ``positions`` (k,), in the order
    the test asks them, whatever the order of the rows that hold them.

    At each step the answer to the prompt the test asks next is told if there is one; otherwise (a batch
    planned before its answers, answers gathered another way) the answer to the most informative prompt
    at the current posterior. The test's state is then a function of the set of answers alone: answers
    collected in parallel and written in any order ask the same next prompts as those written in turn.
    """
    untold = {int(p): float(y) for p, y in zip(positions, scores)}
    while untold:
        i = test.next()
        if i not in untold:
            cand = np.sort(np.fromiter(untold, dtype=np.int64))
            i = int(cand[np.argmax(test.information()[cand])])  # ties: the first candidate
        test.tell(i, untold.pop(i))


def pool_answers(ctx: RouterContext, idx: np.ndarray, names: list[str]) -> np.ndarray | None:
    """(k, n) the answers on the benchmark prompts ``idx`` (k,) of the corpus models named ``names`` that answered
    all of them (pool models added by add-model are not in the corpus); None when an answer is not a benchmark
    prompt (-1)."""
    idx = np.asarray(idx, dtype=np.int64)
    if (idx < 0).any():
        return None
    b = ctx.bench
    rows = np.flatnonzero(np.isin(np.asarray([str(n) for n in b.models]), list(names)))
    Y = b.scores_on(idx)[rows]
    return Y[~np.isnan(Y).any(axis=1)].T


def beyond_note(name: str, y: np.ndarray, Y_pool: np.ndarray | None, method: str | None = None) -> str | None:
    """A note when the new model's answers ``y`` (k,) score above (below) every pool model's on the same prompts
    (``Y_pool`` (k, n): the answers of the pool models the corpus holds): its estimate then extrapolates beyond the
    population its prior is made of, which pulls it back (a trial: GPT-4 beyond a pool of 10 weaker models, its
    model-based estimate 0.69 for 0.86). ``method``: the anchors' (the answers file's method column), so the advice
    does not suggest what was done."""
    if Y_pool is None or Y_pool.shape[1] == 0:
        return None
    mine, theirs = float(np.mean(y)), np.asarray(Y_pool, dtype=np.float64).mean(axis=0)
    n = theirs.size
    if mine > theirs.max():
        side, what, bound, low = "above", "best", theirs.max(), "low"
    elif mine < theirs.min():
        side, what, bound, low = "below", "lowest", theirs.min(), "high"
    else:
        return None
    return (f"{name} scored {mine:.3f} on its {len(y)} answers, {side} every one of the {n} pool model"
            f"{'s' * (n != 1)} on the same prompts ({what} {bound:.3f}): the estimate extrapolates beyond the "
            f"population its prior is made of, which pulls it back, so it is likely too {low}; more answers"
            + ("" if method in ("random", "stratified", "irt") else
               ", or fixed anchors (irt, random: their design weights let the answers' own mean into the estimate)")
            + " can help")


def default_version_dir(path: Path) -> Path:
    """``<dir>-v2``, ``<dir>-v3``, ...: the first that does not exist (a version ``<dir>-vN`` counts on from N)."""
    path = Path(path).resolve()
    base, start = path.name, 2
    numbered = re.fullmatch(r"(.+)-v(\d+)", base)
    if numbered:
        base, start = numbered.group(1), int(numbered.group(2)) + 1
    for v in range(start, start + 10_000):
        cand = path.with_name(f"{base}-v{v}")
        if not cand.exists():
            return cand
    raise InputError("no free version directory name beside it", file=path)  # pragma: no cover


def add_model_to_saved(router_dir: str | os.PathLike, *, name: str, answers: str | os.PathLike,
                       out: str | os.PathLike | None = None, corpus: str | os.PathLike | None = None,
                       allow_new_prompts: bool = False, cost: float | None = None) -> dict[str, Any]:
    """Add model ``name`` to the saved router from ANSWERS.csv and save the new version to ``out``.

    Every input is checked before anything is written: a bad file, row, score or name raises
    :class:`InputError` and leaves every directory as it was. ``out`` defaults to
    ``<router_dir>-vN``; ``out == router_dir`` replaces the router in place; another saved
    router is never replaced. Texts must be prompts of the router's benchmark unless
    ``allow_new_prompts`` (then they are embedded, when the encoder can). ``cost``: the new
    model's mean cost per prompt in USD, for a router whose pool has costs (``pool.cost``, as
    ``fit`` saves from a corpus with costs); without it cost-aware routing refuses the new pool.

    Returns
    -------
    dict
        ``path``, ``model``, ``m`` (the new pool size), ``n_answers``, ``cost`` (the pool
        has costs: the new model's, or None when not given), ``estimate`` (the new
        model's estimated mean over the benchmark's prompts, with its interval) and
        ``calibration``: ``3pl`` when the pool's answers pinned every prompt's guessing floor and
        slope (binary answers from at least ``MIN_FLOOR_MODELS`` pool models) and every answer is a
        benchmark prompt, else ``logistic``; ``routing`` (:func:`routing_check`: the share of
        held-out prompts routed to the new model, the mean score its column predicts, the best pool
        model's mean); ``same_answers`` (:func:`same_answers`) and ``notes`` (what the CLI prints as
        notes: such a copy, a missing cost, a cost far outside the pool's, most prompts routed to a
        model estimated below a pool model).
    """
    from routereval.routers.persist import check_save_target, save_router

    router_dir = as_path(router_dir, "router_dir")
    allow_new_prompts = check_bool(allow_new_prompts, option("allow_new_prompts"))
    target = check_save_target(default_version_dir(router_dir) if out is None else as_path(out, option("out")))
    in_place = target == router_dir.expanduser().resolve()
    if not in_place and router_dir.expanduser().resolve() in target.parents:  # it would become part of the source
        raise InputError(f"is inside the router directory {router_dir}; expected a directory beside it (the default "
                         f"{default_version_dir(router_dir).name}), or ROUTER_DIR itself to replace it in place",
                         file=target)
    if not in_place and (target / "router.json").exists():
        raise InputError(f"holds another saved router; refusing to replace it with this one ({option('out')}: a new "
                         "or empty directory, or ROUTER_DIR itself to replace it in place)", file=target)
    _check_name(name)
    if cost is not None and not (is_real(cost) and cost >= 0):
        raise ParameterError(f"{option('cost')} must be the new model's mean cost per prompt in USD, a number >= 0. "
                             f"Got {cost!r}.")
    ctx = open_router_context(router_dir, corpus=corpus)
    pool = dict(ctx.saved.pool)
    models = [str(x) for x in pool.get("models", [])]
    _check_new(ctx, name)
    if cost is not None and not pool.get("cost"):
        raise ParameterError(f"{option('cost')}: the router's pool has no costs (its corpus had none), so one model's "
                             "cost cannot weigh routing; leave it out")
    ans = read_answers(answers)
    if allow_new_prompts:  # a router on labels refuses new texts before any is embedded
        check_label_ranking(ctx, answer_prompts(ctx, ans), file=Path(answers))
    X, offsets, idx = embed_answers(ctx, ans, Path(answers), allow_new_prompts=allow_new_prompts)
    check_label_ranking(ctx, idx, file=Path(answers))
    check_answered(ctx, ans, idx, Path(answers), "add-model takes answers on the router's train prompts")
    r = ctx.saved.router
    y_route, o_route = routing_answers(ctx, ans.scores, idx, offsets, file=Path(answers))
    phi, _ = r.posterior_model(X, y_route, offsets=o_route)
    est, n_refs, calibration = estimate_from_answers(ctx, ans, X, offsets, idx, exclude=name)
    # what the user should know, found before anything is written
    twins = same_answers(ctx, ans.scores, idx, exclude=name)
    notes = [] if not twins else [_same_answers_note(twins, name, models)]
    if ans.weights is None and ans.method is None:  # the anchors file's columns dropped (or a file made by hand)
        notes.append("the answers carry no design weights and no method column: the estimate is the model's alone "
                     "(as for fisher anchors), and an adaptive test's answers are not known for one (the method "
                     "column, adaptive, matches the estimate's reference models to the new model's level on the "
                     "test); fill in the score column of the anchors file and keep the others")
    if pool.get("cost") and cost is None:
        notes.append(f"the pool has costs but {name} has none (--cost USD): serving with a cost weight above 0 "
                     "refuses this router until it has one")
    elif pool.get("cost") and (note := cost_range_note(cost, pool["cost"])) is not None:
        notes.append(note)
    r.append_model_vector(phi, name)
    routing = routing_check(ctx, r, est)
    if (note := routing_note(name, routing, est)) is not None:
        notes.append(note)
    # against the pool's models, whose vectors make the estimate's prior
    if (note := beyond_note(name, ans.scores, pool_answers(ctx, idx, models), ans.method)) is not None:
        notes.append(note)
    incomplete = [m for m in incomplete_models(ctx) if m != name]
    if n_refs["n_references"] and (in_pool := [m for m in incomplete if m in models]):
        one = len(incomplete) == 1
        notes.append(f"{len(incomplete)} corpus model{'s' * (not one)} miss{'es' * one} records on more than "
                     f"{REFERENCE_MAX_MISSING:.0%} of the benchmark's prompts and {'is' if one else 'are'} no "
                     f"reference of the estimate (their mean over every prompt is unknown), among them pool "
                     f"model{'s' * (len(in_pool) != 1)} {', '.join(in_pool)}")
    added = {"name": name, "n_answers": len(ans.texts), "answers_sha256": ans.sha256,
             "estimated_mean": est.mean, "interval": [est.low, est.high], **n_refs,
             "calibration": calibration, "routing_target": "labels" if ctx.on_labels else "scores",
             "anchors_method": ans.method, "added": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    pool["models"] = models + [name]
    pool["m"] = int(r.n_models_)
    if cost is not None:
        pool["cost"] = {**pool["cost"], name: float(cost)}
    meta = dict(ctx.saved.metadata)
    meta["added_models"] = [*meta.get("added_models", []), added]
    if corpus is not None:  # the corpus moved: the new version names where it is now
        meta["corpus"] = str(Path(ctx.corpus_path).resolve())
    if not in_place:  # in place, the previous version is gone: keep what it named
        meta["previous_version"] = str(router_dir.resolve())
    path = save_router(r, target, pool=pool, encoder=ctx.saved.encoder, metadata=meta, spec=ctx.saved.spec)
    doc = {"path": str(path), "model": name, "m": int(r.n_models_), "n_answers": len(ans.texts),
           "anchors_method": ans.method,  # the answers file's method column: adaptive matches the references
           "estimate": est.to_dict(), "calibration": calibration, **n_refs,
           "routing_target": added["routing_target"], "routing": routing}
    if pool.get("cost"):
        doc["cost"] = None if cost is None else float(cost)
    doc.update(same_answers=twins, notes=notes)
    return doc


def routing_check(ctx: RouterContext, router: Any, est: Any) -> dict[str, Any]:
    """How the router treats the model it just added (its last column).

    ``routed_share``: the share of the split's held-out prompts (val and test: none trained the
    router) that routing sends to it; ``column_mean``: the mean score its column predicts over
    every prompt of the benchmark (None for a router fitted on labels, whose columns predict
    labels), beside the estimate of the same mean; ``best_pool_model`` and ``best_pool_mean``:
    the pool model of the highest mean over the benchmark's prompts on record (None when the
    corpus holds no pool model's records).
    """
    held = np.r_[ctx.split.val, ctx.split.test].astype(np.int64)
    new = router.n_models_ - 1
    share = float(np.mean(np.asarray(router.route(ctx.X[held])) == new)) if len(held) else None
    column = None if ctx.on_labels else float(np.asarray(router.predict_scores(ctx.X))[:, new].mean())
    best, best_mean = None, None
    rows = np.asarray(ctx.ref_rows if ctx.ref_rows is not None else [], dtype=np.int64)
    if len(rows):
        means = ctx.bench.model_means()[rows]
        j = int(np.nanargmax(means))
        best, best_mean = str(ctx.bench.models[rows[j]]), float(means[j])
    return {"routed_share": share, "column_mean": column, "best_pool_model": best, "best_pool_mean": best_mean,
            "n_held_out": int(len(held))}


def routing_note(name: str, routing: dict[str, Any], est: Any) -> str | None:
    """A note when routing sends the new model most held-out prompts though its estimated mean is below a pool
    model's known mean, else None.

    The new column is fitted with each prompt's calibrated difficulty and routed without it, so it
    can predict a model above its scores: a model worse on average than a pool model then takes
    prompts the better one would answer (the README recipe's model of 0.642 took 71% of the test
    prompts, routing µ 0.747 -> 0.679; README: what adding a model does to routing). A new best
    model taking most prompts is what routing should do, and no note is given.
    """
    share, best, best_mean = routing.get("routed_share"), routing.get("best_pool_model"), routing.get("best_pool_mean")
    if share is None or best_mean is None or share <= 0.5 or est.mean >= best_mean:
        return None
    column = routing.get("column_mean")
    predicts = "" if column is None else f"; its routing column predicts {column:.3f}"
    return (f"routing sends {name} {share:.0%} of the held-out prompts, though its estimated mean {est.mean:.3f} "
            f"[{est.low:.3f}, {est.high:.3f}] is below {best}'s {best_mean:.3f}{predicts}: some of those prompts "
            "would be better answered by pool models; route held-out prompts with load_router before serving it, "
            "or refit once its full answers exist")


def same_answers(ctx: RouterContext, scores: np.ndarray, idx: np.ndarray, *, exclude: str | None = None,
                 min_expected: float = 5.0) -> list[str]:
    """The reference models (:func:`~routereval.coldstart.context.reference_answers`) that are copies of the new
    model on its answers (:func:`~routereval.coldstart.neighbours.copies`: the same score on every answer, where
    two independent models would disagree on at least ``min_expected`` of them): most likely the same model
    under another name, whose records then serve as a reference of its estimate. The study leaves such copies
    out; add-model cannot tell a copy from a close sibling on a few answers, so it says so instead. An answer
    within 1e-6 of a record is that record (a file's decimals written from float32 records, ``%g``'s six
    digits)."""
    from routereval.coldstart.neighbours import copies

    got = reference_answers(ctx, idx, exclude=exclude)
    if got is None:
        return []
    Y, rows = got  # (k, n_ref)
    y = np.asarray(scores, dtype=np.float64)
    near = np.abs(Y - y[:, None]).argmin(axis=1)
    closest = Y[np.arange(len(y)), near]
    y = np.where(np.abs(closest - y) <= 1e-6, closest, y)
    hit = copies(y, Y, np.arange(Y.shape[1]), sums=None, min_expected=min_expected)
    return [str(ctx.bench.models[r]) for r in rows[hit]]


def _same_answers_note(twins: list[str], name: str, pool: list[str]) -> str:
    """The note on :func:`same_answers`' models (the first named, the others counted)."""
    more = f" (and {len(twins) - 1} more)" if len(twins) > 1 else ""
    first = twins[0]
    if first in pool:
        return (f"pool model {first!r}{more} gave {name}'s score on every answered prompt: if it is the same "
                "model, the pool already holds it")
    return (f"corpus model {first!r}{more} gave {name}'s score on every answered prompt: if it is the same model, "
            f"its records are a reference of the estimate (--name {first!r} would leave them out)")


def cost_range_note(cost: float | None, pool_cost: dict[str, float]) -> str | None:
    """A note when a new model's cost is more than 10 times above the pool's highest or below its lowest (a cost
    per 1,000 prompts, or in cents, typed as USD per prompt); None when it is within that range or not given."""
    known = [float(v) for v in pool_cost.values() if is_real(v) and v > 0]
    if cost is None or cost == 0 or not known:  # 0: a model run for free (self-hosted), as a pool may hold
        return None
    low, high = min(known), max(known)
    if cost > 10 * high:
        where = f"{cost / high:.3g} times the pool's highest ({high:.3g} USD per prompt)"
    elif cost < low / 10:
        where = f"below a tenth of the pool's lowest ({low:.3g} USD per prompt)"
    else:
        return None
    return f"--cost {cost:g} is {where}; costs are mean USD per prompt, as the pool's"


def _check_name(name: Any) -> None:
    """A new model's name: a non-empty string without surrounding white space."""
    if not isinstance(name, str) or not name.strip():
        raise ParameterError(f"{option('name')} must be a non-empty model name. Got {name!r}.")
    if name != name.strip():  # 'gpt-4 ' would sit in the pool beside 'gpt-4', indistinguishable in a listing
        raise ParameterError(f"{option('name')} must not start or end with white space. Got {name!r}.")
    if any(not ch.isprintable() for ch in name):  # a line break or a tab would split every listing and log line
        raise ParameterError(f"{option('name')} must not hold line breaks, tabs or other control characters. "
                             f"Got {name!r}.")


def _check_new(ctx: RouterContext, name: str) -> None:
    """The new model's name is not one of the router's pool, nor one up to case, nor the name serve routes by."""
    from routereval.serve import ROUTER_MODEL

    pool = [str(x) for x in ctx.saved.pool.get("models", [])]
    if name in pool:
        raise InputError(f"model {name!r} is already in the router's pool; choose another {option('name')} (to "
                         "give it a cost, add it again, with --cost, to the router it was added to)",
                         file=ctx.path / "router.json")
    same = [p for p in pool if p.casefold() == name.casefold()]
    if same:  # two entries a listing or a client tells apart by case alone
        raise InputError(f"model {name!r} differs from pool model {same[0]!r} only in case; choose another "
                         f"{option('name')}, or the pool model's name if it is that model", file=ctx.path / "router.json")
    if name.casefold() == ROUTER_MODEL:
        raise ParameterError(f"{option('name')} {name!r} is the name `routereval serve` routes by (model "
                             f"{ROUTER_MODEL!r} asks the router to choose); choose another")


def estimate_from_answers(ctx: RouterContext, ans: Answers, X: np.ndarray, offsets: np.ndarray, idx: np.ndarray, *,
                          exclude: str | None = None, adaptive: bool | None = None
                          ) -> tuple[Any, dict[str, int | None], str]:
    """A new model's estimated mean score over every prompt of the benchmark, from its answers.

    gp-IRT (answers where given, the model's predictions elsewhere; 3PL when the pool pins every
    prompt's floor and slope and every answer is a benchmark prompt) with the neighbours'
    correction from the corpus's models (:func:`references`; ``exclude``: the new model's name).
    ``X`` (k, d), ``offsets`` (k,) and ``idx`` (k,) as :func:`embed_answers` gives them. ``adaptive``: the
    answers are an adaptive test's (the references are then matched to the model's level on its prompts);
    None: as the answers file's ``method`` column says.

    Returns
    -------
    (MeanEstimate, {"n_references": reference models, "n_references_at_level": those the correction drew on for an
    adaptive test's answers, else None}, ``"3pl"`` or ``"logistic"``)
    """
    from routereval.coldstart.calibrate import expected_logit_scale
    from routereval.coldstart.estimate import estimate_from_posterior, population_weight
    from routereval.coldstart.neighbours import level_matched, neighbour_correction
    from routereval.routers.newmodel import map_logistic, population_prior

    r = ctx.saved.router
    # the estimate over every prompt of the benchmark: answers where given, calibrated train prompts, the rest
    Zt, ot_raw = r.model_design(ctx.X)
    known = ~np.isnan(ctx.delta)
    ot = ot_raw + np.where(known, ctx.delta, 0.0)
    scale = np.where(known, 1.0, expected_logit_scale(ctx.spread))
    observed = np.full(ctx.bench.n_prompts, -1)
    observed[idx[idx >= 0]] = np.flatnonzero(idx >= 0)
    Za, oa = r.model_design(X)
    # with every answer a benchmark prompt and floors pinned by the pool: the 3PL posterior, so lucky guesses
    # are not taken for ability (routing keeps the logistic phi)
    floors = prompt_floors(ctx) if (idx >= 0).all() else None
    if floors is not None:
        c, a, d = floors
        Z3, o3 = a[:, None] * Zt, a * ot_raw + d
        prior = population_prior(r.model_vectors())

    def gp(y: np.ndarray, lam: float | None = None):
        if floors is not None:
            phi3, cov3 = map_logistic(Z3[idx], o3[idx], y, *prior, floor=c[idx])
            return estimate_from_posterior(phi3, cov3, Z3[idx], o3[idx], y, Z3, o3, weights=ans.weights,
                                           observed=observed, floor_anchor=c[idx], floor_target=c, lam_fixed=lam)
        phi_y, cov_y = r.posterior_model(X, y, offsets=offsets)
        return estimate_from_posterior(phi_y, cov_y, Za, oa + offsets, y, Zt, ot, weights=ans.weights,
                                       observed=observed, target_scale=scale, extra_var=ctx.gen_var, lam_fixed=lam)

    est = gp(ans.scores)
    ref = references(ctx, idx, exclude=exclude)
    adaptive = ans.method == "adaptive" if adaptive is None else adaptive
    at_level = None
    if ref is not None:  # the corpus models that answered the same prompts most alike correct the estimate
        # with design weights, the anchor mean's weight learned from the references (estimate.population_weight)
        lam = population_weight(gp, *ref) if ans.weights is not None else None
        if lam is not None:
            est = gp(ans.scores, lam)
        corr = neighbour_correction(ans.scores, *ref, lambda y: gp(y, lam).mean, level_match=adaptive,
                                    full_output=True)
        est = est.corrected(corr.value, corr.se, corr.error_rms)
        at_level = int(level_matched(ans.scores, ref[0]).sum()) if adaptive else None
    return (est, {"n_references": 0 if ref is None else int(ref[0].shape[1]), "n_references_at_level": at_level},
            "logistic" if floors is None else "3pl")
