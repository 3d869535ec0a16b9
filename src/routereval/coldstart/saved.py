"""Cold start for a saved router directory: anchors to ask a new model, and adding it from its answers.

The router directory (``routereval fit --save``) names its corpus, benchmark, split seed,
protocol and encoder; the train prompts of that split are the candidate anchors, embedded
with the router's encoder (from the corpus's embedding cache), and the pool models' train
answers calibrate each prompt's residual difficulty. ``add_model_to_saved`` writes a new
version of the directory in the same format (``router.json`` + ``state.safetensors``).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import math
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from routereval.errors import InputError, ParameterError
from routereval.validate import as_path, check_bool, check_int, is_real, option


# prompt_floors' results, under the corpus directory
FLOORS_CACHE = "coldstart-cache"


@dataclass
class RouterContext:
    """A saved router with its benchmark, split, embeddings and calibration."""

    path: Path
    saved: Any                 # routereval.routers.persist.SavedRouter
    corpus_path: Path
    bench: Any
    split: Any
    X: np.ndarray              # (n_prompts, d) embeddings of every prompt of the benchmark
    delta: np.ndarray          # (n_prompts,) calibrated residual difficulty; NaN where not calibrated
    spread: float
    gen_var: float = 0.0       # the prompt side's error on unseen prompts, measured on the pool (val)
    ref_rows: np.ndarray | None = None  # benchmark rows of the pool models the corpus holds (the calibration's)
    ref_cols: np.ndarray | None = None  # their columns in the router
    calibration: Any = None             # the train prompts' ItemCalibration (None without pool models)
    # a router fitted on the 0.95-of-best labels of a graded benchmark (`fit`'s rule): a new model's routing
    # vector is fitted on its answers' labels, ranked against the pool's best score on each prompt
    on_labels: bool = False

    @functools.cached_property
    def prompt_index(self) -> dict[str, int]:
        """The benchmark prompt each text names. A text several prompts share (MMLU-Pro holds 358 such) names
        its first train prompt, else its first prompt: the one the anchors ask."""
        texts = self.bench.texts
        if texts is None:
            return {}
        train = np.zeros(self.bench.n_prompts, dtype=bool)
        train[self.split.train] = True
        index: dict[str, int] = {}
        for i in np.r_[np.flatnonzero(train), np.flatnonzero(~train)]:
            index.setdefault(str(texts[i]), int(i))
        return index

    @functools.cached_property
    def loose_index(self) -> dict[str, int]:
        """:attr:`prompt_index` under :func:`loose_text` (texts that only a spreadsheet's white space or line ends
        would tell apart), where that names one prompt."""
        index: dict[str, int] = {}
        clash: set[str] = set()
        for t, i in self.prompt_index.items():
            key = loose_text(t)
            if key in index and index[key] != i:
                clash.add(key)
            index.setdefault(key, i)
        return {t: i for t, i in index.items() if t not in clash}

    @functools.cached_property
    def loose_sorted(self) -> list[str]:
        """The askable prompts' texts under :func:`loose_text`, sorted: where a text that names no prompt would
        sort, its nearest prompts by their start (:func:`closest_prompt_hint`)."""
        texts = self.bench.texts
        return [] if texts is None else sorted(loose_text(str(texts[i])) for i in self.askable)

    @functools.cached_property
    def askable(self) -> np.ndarray:
        """(n,) the train prompts anchors are chosen among: one per text (a model's answer names its prompt by text)."""
        texts = self.bench.texts
        train = np.asarray(self.split.train)
        if texts is None:
            return train
        return np.asarray([i for i in train if self.prompt_index[str(texts[i])] == i], dtype=np.int64)

    @functools.cached_property
    def label_ranking(self) -> "LabelRanking":
        """What ranks a new model's answers against the pool (:attr:`on_labels` routers; add-model only)."""
        return _label_ranking(self)

    @functools.cached_property
    def floors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """:func:`prompt_floors`, computed once per context: the adaptive test and its estimate both need it."""
        return None if self.calibration is None else _calibrate_every_prompt(self)


@dataclass(frozen=True)
class LabelRanking:
    """The pool's side of a new model's labels on a router fitted on labels."""

    pool_best: np.ndarray | None  # (n_prompts,) the pool's best score; NaN off the train prompts; None: see gap
    delta: np.ndarray | None      # (n_prompts,) residual difficulty of the labels, as RouterContext.delta of the scores
    gap: str = ""                 # what the corpus lacks to rank answers, when pool_best is None


def _corpus_pool_scores(bench: Any, split: Any, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) scores of the corpus models ``rows`` on ``split``'s prompts (n, len(rows)) each."""
    from routereval.pools import pool_scores
    from routereval.pools.types import Pool

    pool = Pool(benchmark=bench.name, group="coldstart", m=len(rows), protocol="clean", models=rows,
                model_names=np.asarray([str(bench.models[i]) for i in rows]), split=split, best_single=0)
    return pool_scores(bench, pool)


def _label_ranking(ctx: RouterContext) -> LabelRanking:
    """The pool's best train score per prompt and the labels' calibrated offsets, or what the corpus lacks for them."""
    from routereval.coldstart.calibrate import calibrate_items
    from routereval.pools.build import training_labels

    saved, bench = ctx.saved, ctx.bench
    index = {str(n) for n in bench.models}
    # models add-model added are not in the corpus: the best of the pool is that of the models fitted on
    added = {str(a.get("name")) for a in saved.metadata.get("added_models", []) if isinstance(a, dict)}
    absent = [n for n in map(str, saved.pool.get("models", [])) if n not in index and n not in added]
    if absent:
        return LabelRanking(None, None, f"pool model {absent[0]!r}" +
                            (f" and {len(absent) - 1} more" if len(absent) > 1 else ""))
    if not len(ctx.ref_rows):
        return LabelRanking(None, None, "the pool's models")
    Y_tr = _corpus_pool_scores(bench, ctx.split, ctx.ref_rows)[0]
    if np.isnan(Y_tr).any():
        return LabelRanking(None, None, "some train scores of the pool's models")
    r = saved.router
    Z, o = r.model_design(ctx.X[ctx.split.train])
    best, delta = np.full(bench.n_prompts, np.nan), np.full(bench.n_prompts, np.nan)
    best[ctx.split.train] = Y_tr.max(axis=1)
    delta[ctx.split.train] = calibrate_items(Z, o, r.model_vectors()[ctx.ref_cols], training_labels(bench, Y_tr)).delta
    return LabelRanking(best, delta)


# typographic characters an editor or a spreadsheet substitutes (after NFKC, which maps no-break spaces and the
# like to plain ones)
_TYPOGRAPHIC = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                              "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"'})


def loose_text(text: str) -> str:
    """``text`` as a spreadsheet or an editor may hand it back, normalised: Unicode NFKC (no-break and other
    spaces, full-width forms), typographic quotes as ASCII ones, each run of spaces and tabs as one space, line
    ends as ``\\n``, no blank lines, no white space around a line."""
    text = unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHIC)
    lines = (" ".join(line.split()) for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return "\n".join(line for line in lines if line)


def closest_prompt_hint(ctx: RouterContext, text: str) -> str:
    """Where ``text`` (which names no prompt) parts from the askable prompt that shares its longest start, as a
    clause for an error message ("" when none shares more than a few characters): the edit to look for."""
    import bisect

    key, keys = loose_text(text), ctx.loose_sorted
    at = bisect.bisect_left(keys, key)
    best = 0
    for other in keys[max(at - 1, 0):at + 1]:
        n = len(os.path.commonprefix([key, other]))
        best = max(best, n)
    if best < 20:
        return ""
    return (f"; the train prompt sharing its longest start parts from it at character {best + 1} "
            f"(...{key[max(best - 20, 0):best + 10]!r} in the file)")


def open_router_context(router_dir: str | os.PathLike, *, corpus: str | os.PathLike | None = None) -> RouterContext:
    """Load ``router_dir`` and what cold start needs from its corpus (``corpus`` overrides the saved path)."""
    from routereval.routers.base import require_add_model
    from routereval.coldstart.calibrate import calibrate_items
    from routereval.coldstart.estimate import generalisation_var
    from routereval.data.store import open_corpus
    from routereval.embed import embed_prompts
    from routereval.pools import make_split
    from routereval.routers.persist import load_router

    path = Path(router_dir)
    saved = load_router(path)
    require_add_model(saved.router)
    meta_file = path / "router.json"
    bname = saved.pool.get("benchmark")
    cpath = corpus if corpus is not None else saved.metadata.get("corpus")
    if not isinstance(bname, str) or not cpath:
        raise InputError("names no benchmark or corpus (pool.benchmark, metadata.corpus); save the router with "
                         f"`routereval fit` or pass {option('corpus')}", file=meta_file)
    if saved.encoder in (None, "text"):
        raise InputError(f"router encoder {saved.encoder!r} has no prompt embeddings", file=meta_file)
    if corpus is None and not Path(cpath).is_dir():
        raise InputError(f"metadata.corpus names {str(cpath)!r}, which is not a directory (from here); pass "
                         f"{option('corpus')} with the corpus the router was fitted on", file=meta_file)
    c = open_corpus(cpath, benchmarks=[bname])
    bench = c[bname]
    # the split the router was fitted on (a router fitted with --split random on a benchmark with a publisher
    # split must not take its anchors, or its calibration, from the publisher's train prompts)
    split = make_split(bench, protocol=str(saved.pool.get("protocol", "clean")), seed=int(saved.pool.get("seed", 42)),
                       split=str(saved.pool.get("split", "auto")))
    X = embed_prompts(bench, saved.encoder, corpus_path=cpath, fit_prompts=split.train)
    r = saved.router
    if X.shape[1] != r.n_features_in_:
        raise InputError(f"the encoder {saved.encoder!r} gives {X.shape[1]} dimensions, the router expects "
                         f"{r.n_features_in_}", file=meta_file)
    names = [str(x) for x in saved.pool.get("models", [])]
    if len(names) != r.n_models_:  # add-model extends this list: it must name the router's columns
        raise InputError(f"pool.models lists {len(names)} models, the router scores {r.n_models_}; save the router "
                         "with `routereval fit --save` (it records the pool)", file=meta_file)
    # calibrate with the pool models the corpus holds (models added by add-model are not in it)
    index = {str(n): i for i, n in enumerate(bench.models)}
    pos = [j for j, n in enumerate(names) if n in index and j < r.n_models_]
    delta = np.full(bench.n_prompts, np.nan)
    spread, gen_var = 0.0, 0.0
    rows = np.zeros(0, dtype=np.int64)
    cal = None
    if pos:
        rows = np.asarray([index[names[j]] for j in pos])
        Y_tr, Y_va, _ = _corpus_pool_scores(bench, split, rows)
        Z, o = r.model_design(X[split.train])
        Phi = r.model_vectors()[pos]
        cal = calibrate_items(Z, o, Phi, Y_tr)
        delta[split.train] = cal.delta
        spread = cal.spread
        if len(split.val) and not np.isnan(Y_va).any():
            gen_var = generalisation_var(*r.model_design(X[split.val]), Phi, Y_va, scale=cal.shrink)
    return RouterContext(path, saved, Path(cpath), bench, split, X, delta, spread, gen_var, rows,
                         np.asarray(pos, dtype=np.int64), cal, trained_on_labels(saved, bench))


def trained_on_labels(saved: Any, bench: Any) -> bool:
    """Whether the saved router was fitted on the 0.95-of-best labels of a graded benchmark, not on its scores.

    ``metadata.fit_target`` says so where `fit` recorded it; a router saved before it was
    recorded followed the same rule: labels on a graded benchmark unless the router's class
    fits raw scores (``fit_target = "scores"``, best_single).
    """
    from routereval.evaluate import fit_target

    if bench.binary:  # labels are the scores
        return False
    target = saved.metadata.get("fit_target")
    if target not in ("labels", "scores"):
        target = fit_target(saved.router, bench)
    return target == "labels"


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


def prompt_floors(ctx: RouterContext) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(floor, slope, 3PL residual difficulty), each (n_prompts,), of every prompt from the pool's answers.

    The train prompts set the slopes' prior, every prompt is then calibrated under it, as the
    study does. None when floors cannot be pinned (graded or missing answers, fewer than
    :data:`~routereval.coldstart.calibrate.MIN_FLOOR_MODELS` pool models in the corpus).
    """
    return ctx.floors


def _calibrate_every_prompt(ctx: RouterContext) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """:func:`prompt_floors`' work, cached in the corpus (``coldstart-cache/``) under a hash of everything it
    reads: seconds on thousands of prompts and hundreds of pool models, and the adaptive test's every call
    (a process per answer) needs it."""
    from routereval.coldstart.calibrate import calibrate_floors
    from routereval.embed.cache import save_atomic

    r = ctx.saved.router
    Phi = r.model_vectors()[ctx.ref_cols]
    Y = ctx.bench.scores[ctx.ref_rows].T  # (n_prompts, m)
    # the router's state (its checksum, verified when it was loaded), the pool's answers, the embeddings, the split
    h = hashlib.sha256(str(json.loads((ctx.path / "router.json").read_text()).get("sha256")).encode())
    for part in (np.asarray(ctx.ref_cols), Y, ctx.X, np.asarray(ctx.split.train), ctx.calibration.delta):
        a = np.ascontiguousarray(part)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    cache = Path(ctx.corpus_path) / FLOORS_CACHE / f"floors-{h.hexdigest()[:40]}.npy"
    try:
        got = np.load(cache, allow_pickle=False)
        if got.shape == (3, ctx.bench.n_prompts) and np.isfinite(got).all():
            return got[0], got[1], got[2]
    except (OSError, ValueError, EOFError):  # none yet, or not to be trusted: computed again
        pass
    tr = calibrate_floors(ctx.calibration, *r.model_design(ctx.X[ctx.split.train]), Phi, Y[ctx.split.train])
    if tr is None:
        return None
    every = calibrate_floors(ctx.calibration, *r.model_design(ctx.X), Phi, Y, slope_var=tr[3])
    if every is None:
        return None
    try:
        save_atomic(cache, np.stack([np.asarray(v, dtype=np.float64) for v in every[:3]]))
    except OSError:  # a read-only corpus: computed each time
        pass
    return every[0], every[1], every[2]


def references(ctx: RouterContext, idx: np.ndarray, *, exclude: str | None = None
               ) -> tuple[np.ndarray, np.ndarray] | None:
    """Known models' answers on the answered prompts ``idx`` (k,) and their means over every prompt.

    Every model of the corpus's benchmark with a record on every prompt is a reference, not
    only the router's pool: a new model's siblings anywhere in the record set share its luck
    (:func:`~routereval.coldstart.neighbours.neighbour_correction`). A model missing records has
    no known mean over the whole benchmark (its mean over what it answered aims elsewhere), so
    it is not one; nor is a model named ``exclude`` (the new model, should the corpus hold its
    records). None when an answer is not a benchmark prompt (-1) or no model qualifies.
    """
    idx = np.asarray(idx, dtype=np.int64)
    if (idx < 0).any():
        return None
    b = ctx.bench
    means = b.model_means()  # before any unpacking: popcounts of the packed scores
    if b.binary:  # the anchors' bits, and complete rows by popcount: the matrix is never unpacked here
        from routereval.data import bits

        Y = bits.take_columns(b.bits, idx, dtype=np.float64)
        ok = (np.ones(b.n_models, dtype=bool) if b.observed is None
              else bits.popcount(b.observed, axis=1) == b.n_prompts)
    else:
        S = np.asarray(b.scores)
        Y, ok = S[:, idx].astype(np.float64), ~np.isnan(S).any(axis=1)
    if exclude is not None:
        ok &= np.asarray([str(n) for n in b.models]) != exclude
    if not ok.any():
        return None
    return Y[ok].T, means[ok]


def anchor_table(ctx: RouterContext, k: int, method: str, *, seed: int = 0) -> list[dict[str, Any]]:
    """The k anchors (train prompts) a new model should answer: prompt id, subset, weight, text."""
    from routereval.coldstart.anchors import select_anchors

    seed = check_int(seed, option("seed"), low=0)
    if method == "adaptive":
        raise ParameterError("method 'adaptive' asks one prompt at a time, depending on each answer: use "
                             "adaptive_next (the CLI's --method adaptive --answers), or random, stratified, irt or "
                             "fisher here")
    k = check_int(k, f"{option('k')} (the number of anchors)", low=1)
    n = len(ctx.askable)
    if k > n:
        raise ParameterError(f"{option('k')} = {k} anchors asked for, but the router's train split has only {n} "
                             f"prompts to ask (one per distinct text: benchmarks repeat some); expected at most {n}")
    # irt and fisher use the pool's 3PL calibration of every prompt when it can be pinned, as the study does
    calib = prompt_floors(ctx) if method in ("irt", "fisher") else None
    a = select_anchors(ctx.saved.router, k, method, X=ctx.X, candidates=ctx.askable,
                       subsets=ctx.bench.subset_codes(), delta=np.nan_to_num(ctx.delta), random_state=seed,
                       target=np.arange(ctx.bench.n_prompts) if method == "fisher" else None, calibration=calib)
    return _prompt_rows(ctx, a.index, a.weights)


def _prompt_rows(ctx: RouterContext, index: np.ndarray, weights: np.ndarray | None) -> list[dict[str, Any]]:
    """Rows of an anchors CSV (prompt id, subset, weight, text, a blank score) of the benchmark prompts ``index``."""
    weights = [None] * len(index) if weights is None else np.asarray(weights).tolist()
    texts = ctx.bench.texts
    subs = ctx.bench.subset_names
    codes = ctx.bench.subset_codes()
    return [{"prompt_id": str(ctx.bench.prompt_ids[i]), "subset": subs[codes[i]] if subs else "",
             "weight": None if w is None else float(w), "text": "" if texts is None else str(texts[i]), "score": ""}
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
        ``answered`` (answers replayed), ``estimate`` (the new model's estimated mean over the
        benchmark, as ``add-model`` reports it; None before any answer), ``n_references`` and
        ``next`` (the rows of an anchors CSV; fewer than k when the train prompts, one per text, run out).
    """
    from routereval.coldstart.anchors import adaptive_test

    k = check_int(k, f"{option('k')} (the number of prompts to ask next)", low=1)
    seed = check_int(seed, option("seed"), low=0)
    if name is not None:
        _check_name(name)
        _check_new(ctx, name)
    if ctx.bench.texts is None:
        raise InputError(f"benchmark {ctx.bench.name!r} holds no prompt texts: a model's answers could not name "
                         "their prompts (import the benchmark with its texts)", file=ctx.path / "router.json")
    # the answers are checked before anything is computed (the calibration writes its cache into the corpus)
    ans = None if answers is None else read_answers(answers, allow_empty=True)
    if ans is not None and not ans.texts:  # a file with the header only: the test's start, as no file
        ans = None
    if ans is not None:
        X, offsets, idx = _embed_answers(ctx, ans, Path(answers), allow_new_prompts=None)
        _check_answered(ctx, ans, idx, Path(answers), "the adaptive test asks train prompts only (expected the texts "
                        "this command printed)")
    test, rows = adaptive_test(ctx.saved.router, ctx.X, candidates=ctx.askable, delta=np.nan_to_num(ctx.delta),
                               target=np.arange(ctx.bench.n_prompts), calibration=prompt_floors(ctx),
                               random_state=seed)
    doc: dict[str, Any] = {"answered": 0, "estimate": None, "n_references": 0}
    if ans is not None:
        position = {int(r): i for i, r in enumerate(rows)}
        replay(test, [position[int(i)] for i in idx], ans.scores)
        est, n_refs, _ = estimate_from_answers(ctx, ans, X, offsets, idx, exclude=name)
        doc.update(answered=len(ans.texts), estimate=est.to_dict(), n_references=n_refs)
    left = len(rows) - len(test.asked)
    doc["next"] = _prompt_rows(ctx, rows[test.plan(min(k, left))], None) if left else []
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


def write_anchor_csv(rows: list[dict[str, Any]], out) -> None:
    w = csv.DictWriter(out, fieldnames=["prompt_id", "subset", "weight", "text", "score"], lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "weight": "" if r["weight"] is None else f"{r['weight']:.6g}"})


@dataclass
class Answers:
    texts: list[str]
    scores: np.ndarray
    weights: np.ndarray | None
    sha256: str


def read_answers(path: str | os.PathLike, *, allow_empty: bool = False) -> Answers:
    """Read ANSWERS.csv: columns ``text`` and ``score`` (in [0, 1]), optional ``weight``; one line per prompt.

    ``allow_empty``: an empty file, or one with the header and no answer, is no error (an adaptive
    test's start).

    The weights are the anchors' design weights: a ``weight`` column left empty on every row
    (``fisher`` anchors have none) means no weights; empty on some rows only is an error.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", file=path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", file=path) from None
    if not text.strip():
        if allow_empty:  # no answer yet
            return Answers([], np.zeros(0), None, hashlib.sha256(raw).hexdigest())
        raise InputError("is empty; expected a CSV with a header text,score and one row per answer", file=path)
    # newline="": csv splits records itself; str.splitlines would also split prompts at \x0c, \x85, \u2028...
    reader = csv.DictReader(io.StringIO(text, newline=""))
    cols = reader.fieldnames or []
    twice = sorted({c for c in cols if cols.count(c) > 1})
    if twice:  # csv would keep the last of them silently
        raise InputError(f"column {twice[0]!r} appears {cols.count(twice[0])} times in the header; expected it once",
                         file=path)
    for need in ("text", "score"):
        if need not in cols:
            raise InputError(f"has no {need!r} column (columns: {', '.join(cols) or 'none'}); expected a CSV with "
                             f"columns text,score", file=path)
    texts, scores, weights, seen, blank_w = [], [], [], {}, []
    has_w = "weight" in cols
    for row_no, row in enumerate(reader, start=1):
        if None in row:  # more fields than the header: most often a text with an unquoted comma
            raise InputError(f"{len(cols) + len(row[None])} fields, the header has {len(cols)}; quote a text that "
                             "holds a comma", file=path, row=row_no)
        t = row.get("text")
        if t is None or not t.strip():
            raise InputError("empty prompt text", file=path, row=row_no, column="text")
        s_raw = (row.get("score") or "").strip()
        try:
            s = float(s_raw)
        except ValueError:
            raise InputError(f"score {s_raw!r} is not a number; expected a score in [0, 1]", file=path, row=row_no,
                             column="score") from None
        if math.isnan(s):  # leaving the anchor out would unbalance the design weights of the others
            raise InputError(f"score {s_raw} is missing; expected a score in [0, 1] (an answer the model failed to "
                             "give usually scores 0)", file=path, row=row_no, column="score")
        if not math.isfinite(s) or not 0 <= s <= 1:
            raise InputError(f"score {s_raw} is out of range; expected a score in [0, 1], on the scale of the "
                             "corpus's records (a score on another scale, e.g. a preference in [1, 2], mapped as the "
                             "corpus's import mapped it)", file=path, row=row_no, column="score")
        if t in seen:
            raise InputError(f"duplicate prompt (also at row {seen[t]}); expected one score per prompt", file=path,
                             row=row_no, column="text")
        seen[t] = row_no
        if has_w:
            w_raw = (row.get("weight") or "").strip()
            if not w_raw and not weights:
                blank_w.append(row_no)
            elif blank_w:
                raise InputError(f"weight is empty on row {blank_w[0]} but not here; give every anchor its weight "
                                 f"or leave the column empty on every row", file=path, row=row_no, column="weight")
            else:
                try:
                    w = float(w_raw)
                except ValueError:
                    w = float("nan")
                if not (math.isfinite(w) and w > 0):
                    raise InputError(f"weight {w_raw!r} is not a positive number", file=path, row=row_no,
                                     column="weight")
                weights.append(w)
        texts.append(t)
        scores.append(s)
    if not texts and not allow_empty:
        raise InputError("holds no answers, only its header; expected one row per answer under it", file=path)
    return Answers(texts, np.asarray(scores), np.asarray(weights) if has_w and weights else None,
                   hashlib.sha256(raw).hexdigest())


def answer_prompts(ctx: RouterContext, ans: Answers) -> np.ndarray:
    """(k,) the benchmark prompt each answer's text names, -1 for none: the exact text, else the one prompt it
    names up to white space and line ends (a spreadsheet's edits)."""
    return np.asarray([ctx.prompt_index.get(t, ctx.loose_index.get(loose_text(t), -1)) for t in ans.texts],
                      dtype=np.int64)


def _embed_answers(ctx: RouterContext, ans: Answers, answers_file: Path, *, allow_new_prompts: bool | None = False
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings (k, d), calibrated offsets (k,) and benchmark prompt index (-1: not a benchmark prompt) per answer.

    A text that is not one of the benchmark's prompts is an error (most often a prompt edited on
    its way through a spreadsheet) unless ``allow_new_prompts``: then it is embedded with the
    router's encoder, when the encoder can embed new text (None: the caller has no such option).
    """
    from routereval.embed import embed_texts
    from routereval.embed.stored import stored_embedding

    texts = ctx.bench.texts
    idx = answer_prompts(ctx, ans)
    X = np.zeros((len(idx), ctx.X.shape[1]), dtype=np.float64)
    X[idx >= 0] = ctx.X[idx[idx >= 0]]
    unknown = np.flatnonzero(idx < 0)
    if len(unknown):
        enc = ctx.saved.encoder
        where = dict(file=answers_file, row=int(unknown[0]) + 1, column="text")
        if not allow_new_prompts:  # None: no such option (the adaptive test asks the benchmark's prompts only)
            # the flag is suggested only where it would take the text: not on labels, not with a stored embedding
            can = allow_new_prompts is not None and not ctx.on_labels and stored_embedding(ctx.bench, enc) is None
            hint = " (allow_new_prompts, --allow-new-prompts, embeds other texts)" if can else ""
            raise InputError(f"prompt text not among the prompts of benchmark {ctx.bench.name!r}; expected the texts "
                             f"`routereval coldstart anchors` printed, unchanged"
                             f"{closest_prompt_hint(ctx, ans.texts[unknown[0]])}{hint}", **where)
        if stored_embedding(ctx.bench, enc) is not None:
            raise InputError(f"prompt text not among the prompts of benchmark {ctx.bench.name!r}, and the router's "
                             f"encoder {enc!r} is a stored embedding that cannot embed new text; expected the texts "
                             "`routereval coldstart anchors` printed", **where)
        fit = None if texts is None else [str(t) for t in texts[ctx.split.train]]
        X[unknown] = embed_texts([ans.texts[i] for i in unknown], enc, fit_texts=fit)
    offsets = np.where(idx >= 0, np.nan_to_num(ctx.delta[np.maximum(idx, 0)]), 0.0)
    return X, offsets, idx


def _check_answered(ctx: RouterContext, ans: Answers, idx: np.ndarray, file: Path, train_only: str) -> None:
    """Answers name train prompts (not test or validation ones of the router's split: the router is measured
    on those), at most once each (new texts too, up to white space), and score 0 or 1 on a benchmark of binary
    records."""
    split_of = np.full(ctx.bench.n_prompts, "", dtype=object)
    split_of[ctx.split.test], split_of[ctx.split.val] = "test", "validation"
    first: dict[Any, int] = {}
    for row_no, (i, text, score) in enumerate(zip(idx, ans.texts, ans.scores), start=1):
        if ctx.bench.binary and score not in (0.0, 1.0):
            raise InputError(f"score {score:g} on benchmark {ctx.bench.name!r}, whose records are 0 or 1 (wrong or "
                             "right); expected 0 or 1", file=file, row=row_no, column="score")
        where = dict(file=file, row=row_no, column="text")
        if i >= 0 and split_of[i]:
            raise InputError(f"prompt is a {split_of[i]} prompt of the router's split; {train_only}", **where)
        key = int(i) if i >= 0 else loose_text(text)  # a new text (allow_new_prompts): by its loose form
        if key in first:  # texts that differ only in spaces or line ends name one prompt
            raise InputError(f"names the same prompt as row {first[key]} (the texts differ only in white space or "
                             "line ends); expected one score per prompt", **where)
        first[key] = row_no


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
        benchmark prompt, else ``logistic``.
    """
    from routereval.routers.persist import check_save_target, save_router

    router_dir = as_path(router_dir, "router_dir")
    allow_new_prompts = check_bool(allow_new_prompts, option("allow_new_prompts"))
    target = check_save_target(default_version_dir(router_dir) if out is None else as_path(out, option("out")))
    in_place = target == router_dir.expanduser().resolve()
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
    X, offsets, idx = _embed_answers(ctx, ans, Path(answers), allow_new_prompts=allow_new_prompts)
    check_label_ranking(ctx, idx, file=Path(answers))
    _check_answered(ctx, ans, idx, Path(answers), "add-model takes answers on the router's train prompts")
    r = ctx.saved.router
    y_route, o_route = routing_answers(ctx, ans.scores, idx, offsets, file=Path(answers))
    phi, _ = r.posterior_model(X, y_route, offsets=o_route)
    est, n_refs, calibration = estimate_from_answers(ctx, ans, X, offsets, idx, exclude=name)
    r.append_model_vector(phi, name)
    added = {"name": name, "n_answers": len(ans.texts), "answers_sha256": ans.sha256,
             "estimated_mean": est.mean, "interval": [est.low, est.high], "n_references": n_refs,
             "calibration": calibration, "routing_target": "labels" if ctx.on_labels else "scores",
             "added": datetime.now(timezone.utc).isoformat(timespec="seconds")}
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
           "estimate": est.to_dict(), "calibration": calibration, "n_references": n_refs,
           "routing_target": added["routing_target"]}
    if (twins := same_answers(ctx, ans.scores, idx, exclude=name)):
        doc["same_answers"] = twins
    if pool.get("cost"):
        doc["cost"] = None if cost is None else float(cost)
        if (note := cost_range_note(cost, ctx.saved.pool["cost"])) is not None:
            doc["cost_note"] = note
    return doc


def same_answers(ctx: RouterContext, scores: np.ndarray, idx: np.ndarray, *, exclude: str | None = None,
                 min_expected: float = 5.0) -> list[str]:
    """Corpus models with the new model's score on every answered prompt, where two independent models with
    those score distributions would disagree on at least ``min_expected`` of them: most likely the same model
    under another name, whose records then serve as a reference of its estimate (the study leaves such copies
    out; add-model cannot tell a copy from a close sibling on a few answers, and says so instead)."""
    idx = np.asarray(idx, dtype=np.int64)
    if (idx < 0).any() or not len(idx):
        return []
    S = np.asarray(ctx.bench.scores)[:, idx].astype(np.float64)  # (n_models, k)
    y = np.asarray(scores, dtype=np.float64)
    vals, counts = np.unique(y, return_counts=True)
    freq = dict(zip(vals.tolist(), (counts / len(y)).tolist()))
    out = []
    for j in np.flatnonzero((S == y).all(axis=1)):
        name = str(ctx.bench.models[j])
        chance = np.mean([freq.get(v, 0.0) for v in S[j]])  # their scores coincide by chance on this share
        if name != exclude and len(y) * (1.0 - chance) >= min_expected:
            out.append(name)
    return out


def cost_range_note(cost: float | None, pool_cost: dict[str, float]) -> str | None:
    """A note when a new model's cost is more than 10 times above the pool's highest or below its lowest (a cost
    per 1,000 prompts, or in cents, typed as USD per prompt); None when it is within that range or not given."""
    known = [float(v) for v in pool_cost.values() if is_real(v) and v > 0]
    if cost is None or not known:
        return None
    low, high = min(known), max(known)
    if cost > 10 * high:
        where = f"{cost / high:,.0f} times the pool's highest ({high:.3g} USD per prompt)"
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
    """The new model's name is not one of the router's pool."""
    if name in [str(x) for x in ctx.saved.pool.get("models", [])]:
        raise InputError(f"model {name!r} is already in the router's pool; choose another {option('name')}",
                         file=ctx.path / "router.json")


def estimate_from_answers(ctx: RouterContext, ans: Answers, X: np.ndarray, offsets: np.ndarray, idx: np.ndarray, *,
                          exclude: str | None = None) -> tuple[Any, int, str]:
    """A new model's estimated mean score over every prompt of the benchmark, from its answers.

    gp-IRT (answers where given, the model's predictions elsewhere; 3PL when the pool pins every
    prompt's floor and slope and every answer is a benchmark prompt) with the neighbours'
    correction from the corpus's models (:func:`references`; ``exclude``: the new model's name).
    ``X`` (k, d), ``offsets`` (k,) and ``idx`` (k,) as :func:`_embed_answers` gives them.

    Returns
    -------
    (MeanEstimate, number of reference models, ``"3pl"`` or ``"logistic"``)
    """
    from routereval.coldstart.calibrate import expected_logit_scale
    from routereval.coldstart.estimate import estimate_from_posterior
    from routereval.coldstart.neighbours import neighbour_correction
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

    def gp(y: np.ndarray):
        if floors is not None:
            phi3, cov3 = map_logistic(Z3[idx], o3[idx], y, *prior, floor=c[idx])
            return estimate_from_posterior(phi3, cov3, Z3[idx], o3[idx], y, Z3, o3, weights=ans.weights,
                                           observed=observed, floor_anchor=c[idx], floor_target=c)
        phi_y, cov_y = r.posterior_model(X, y, offsets=offsets)
        return estimate_from_posterior(phi_y, cov_y, Za, oa + offsets, y, Zt, ot, weights=ans.weights,
                                       observed=observed, target_scale=scale, extra_var=ctx.gen_var)

    est = gp(ans.scores)
    ref = references(ctx, idx, exclude=exclude)
    if ref is not None:  # the corpus models that answered the same prompts most alike correct the estimate
        corr = neighbour_correction(ans.scores, *ref, lambda y: gp(y).mean, full_output=True)
        est = est.corrected(corr.value, corr.se, corr.error_rms)
    return est, 0 if ref is None else int(ref[0].shape[1]), "logistic" if floors is None else "3pl"
