"""A saved router's cold-start context: its benchmark, split, embeddings and the pool's calibration of every prompt.

What the anchor commands and ``add-model`` share: which prompt an answer's text names, the
prompts' residual difficulties (and 3PL floors, cached in the corpus), the reference models.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from routereval.coldstart.answers import Answers, loose_text, normal_text
from routereval.errors import InputError
from routereval.validate import option


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
    # reference_answers per (answered prompts, excluded name): add-model's estimate and its copy check read them alike
    _references: dict = field(default_factory=dict, repr=False)

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
        """:attr:`prompt_index` under :func:`~routereval.coldstart.answers.loose_text` (texts that only a
        spreadsheet's line ends or white space around lines would tell apart), where that names one prompt."""
        return _unique_keys(self.prompt_index, loose_text)[0]

    @functools.cached_property
    def normal_index(self) -> tuple[dict[str, int], dict[str, int]]:
        """:attr:`prompt_index` under :func:`~routereval.coldstart.answers.normal_text` (an editor's edits too:
        runs of white space, blank lines, quotes, Unicode forms) where that names one prompt, and the number of
        prompts each form names where it names several (answers in that form are ambiguous)."""
        return _unique_keys(self.prompt_index, normal_text)

    @functools.cached_property
    def normal_sorted(self) -> list[str]:
        """The askable prompts' texts under :func:`~routereval.coldstart.answers.normal_text`, sorted: where a text
        that names no prompt would sort, its nearest prompts by their start (:func:`closest_prompt_hint`)."""
        texts = self.bench.texts
        return [] if texts is None else sorted(normal_text(str(texts[i])) for i in self.askable)

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


def _unique_keys(index: dict[str, int], key: Callable[[str], str]) -> tuple[dict[str, int], dict[str, int]]:
    """``index`` re-keyed by ``key``: the keys that name one prompt, and how many prompts each other key names."""
    out: dict[str, int] = {}
    names: dict[str, set[int]] = {}
    for t, i in index.items():
        k = key(t)
        names.setdefault(k, set()).add(i)
        out.setdefault(k, i)
    clash = {k: len(v) for k, v in names.items() if len(v) > 1}
    return {k: i for k, i in out.items() if k not in clash}, clash


def closest_prompt_hint(ctx: RouterContext, text: str) -> str:
    """Why ``text`` names no prompt, as a clause for an error message: it names several prompts that differ only
    in what :func:`~routereval.coldstart.answers.normal_text` evens out, or where (after that normalisation) it
    parts from the askable prompt that shares its longest start ("" when none shares 20 characters)."""
    import bisect

    key = normal_text(text)
    if (n := ctx.normal_index[1].get(key)):
        return (f"; up to white space, quotes and Unicode forms it names {n} prompts that differ only in those: "
                "paste the text unchanged")
    keys = ctx.normal_sorted
    at = bisect.bisect_left(keys, key)
    best = max((len(os.path.commonprefix([key, other])) for other in keys[max(at - 1, 0):at + 1]), default=0)
    if best < 20:
        return ""
    return (f"; after evening out white space and quotes, it parts from the train prompt sharing its longest start "
            f"at character {best + 1} (...{key[max(best - 20, 0):best + 10]!r})")


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
    # under the missing-records policy it was fitted with (routers saved before it was recorded: auto)
    missing = str(saved.pool.get("missing", "auto"))
    split = make_split(bench, protocol=str(saved.pool.get("protocol", "clean")), seed=int(saved.pool.get("seed", 42)),
                       split=str(saved.pool.get("split", "auto")), missing="auto" if missing == "complete" else missing)
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


def reference_answers(ctx: RouterContext, idx: np.ndarray, *, exclude: str | None = None
                      ) -> tuple[np.ndarray, np.ndarray] | None:
    """The reference models' answers (k, n_ref) on the answered prompts ``idx`` (k,), and their benchmark rows
    (n_ref,): every model with a record on every answered prompt and on all but at most
    :data:`REFERENCE_MAX_MISSING` of the benchmark's, but one named ``exclude`` (:func:`references`). None when
    an answer is not a benchmark prompt (-1) or no model qualifies. Binary records are read from their bits: the
    matrix is never unpacked."""
    idx = np.asarray(idx, dtype=np.int64)
    if (idx < 0).any():
        return None
    memo = getattr(ctx, "_references", None)  # None: a context built by hand
    if memo is None:
        return _read_reference_answers(ctx, idx, exclude)
    key = (idx.tobytes(), exclude)
    if key not in memo:
        memo[key] = _read_reference_answers(ctx, idx, exclude)
    return memo[key]


# A reference's known mean is over the prompts it answered, the estimate's over every prompt: with at most this
# share missing the two targets differ by at most it (by ~0.001 for MMLU-Pro's Geminis, 12-35 of 12,032 missing),
# far below the residuals the correction learns from, and the strongest models of a leaderboard stay references
REFERENCE_MAX_MISSING = 0.01


def _read_reference_answers(ctx: RouterContext, idx: np.ndarray, exclude: str | None
                            ) -> tuple[np.ndarray, np.ndarray] | None:
    b = ctx.bench
    ok = b.complete_models(max_missing=REFERENCE_MAX_MISSING)  # binary: by popcount
    if exclude is not None:
        ok &= np.asarray([str(n) for n in b.models]) != exclude
    Y = b.scores_on(idx)  # the answered prompts' bits only
    ok &= ~np.isnan(Y).any(axis=1)  # and a record on every answered prompt
    if not ok.any():
        return None
    return Y[ok].T, np.flatnonzero(ok)


def incomplete_models(ctx: RouterContext) -> list[str]:
    """The corpus models that miss records on more than :data:`REFERENCE_MAX_MISSING` of the benchmark's prompts:
    no reference of the estimate (their mean over every prompt is unknown), however many of the router's prompts
    they answered."""
    ok = ctx.bench.complete_models(max_missing=REFERENCE_MAX_MISSING)
    return [str(n) for n in np.asarray(ctx.bench.models)[~ok]]


def references(ctx: RouterContext, idx: np.ndarray, *, exclude: str | None = None
               ) -> tuple[np.ndarray, np.ndarray] | None:
    """Known models' answers (k, n_ref) on the answered prompts ``idx`` (k,) and their means (n_ref,) over the
    prompts they answered.

    Every model of the corpus's benchmark with a record on every answered prompt and on all but
    at most :data:`REFERENCE_MAX_MISSING` of the benchmark's prompts is a reference, not only the
    router's pool: a new model's siblings anywhere in the record set share its luck
    (:func:`~routereval.coldstart.neighbours.neighbour_correction`). A model missing more has no
    known mean over the whole benchmark (its mean over what it answered aims elsewhere), so it is
    not one; nor is a model named ``exclude`` (the new model, should the corpus hold its
    records). None when an answer is not a benchmark prompt (-1) or no model qualifies.
    """
    means = ctx.bench.model_means()  # before any unpacking: popcounts of the packed scores
    got = reference_answers(ctx, idx, exclude=exclude)
    return None if got is None else (got[0], means[got[1]])


def answer_prompts(ctx: RouterContext, ans: Answers) -> np.ndarray:
    """(k,) the benchmark prompt each answer's text names, -1 for none: the exact text, else the one prompt it
    names up to a spreadsheet's line ends and white space around lines
    (:func:`~routereval.coldstart.answers.loose_text`), else up to an editor's edits too
    (:func:`~routereval.coldstart.answers.normal_text`). Each step is taken only where the text names one
    prompt, so prompts that differ only in such details still name themselves exactly."""
    def one(t: str) -> int:
        if (i := ctx.prompt_index.get(t)) is not None:
            return i
        if (i := ctx.loose_index.get(loose_text(t))) is not None:
            return i
        return ctx.normal_index[0].get(normal_text(t), -1)

    return np.asarray([one(t) for t in ans.texts], dtype=np.int64)


def embed_answers(ctx: RouterContext, ans: Answers, answers_file: Path, *, allow_new_prompts: bool | None = False
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


def _without_record(bench: Any, i: int) -> str:
    """Who has no record of prompt ``i``, in words: the corpus models (a few named), or 'some model' if none do."""
    names = [str(n) for n in np.asarray(bench.models)[np.isnan(bench.scores_on(np.array([i]))[:, 0])]]
    if not names:  # a policy that drops prompts for other reasons
        return "some corpus model has no record of it"
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"corpus model{'s' * (len(names) > 1)} {shown} {'have' if len(names) > 1 else 'has'} no record of it"


def check_answered(ctx: RouterContext, ans: Answers, idx: np.ndarray, file: Path, train_only: str) -> None:
    """Answers name train prompts (not test or validation ones of the router's split: the router is measured
    on those), at most once each (new texts too, up to white space), and score 0 or 1 on a benchmark of binary
    records."""
    split_of = np.full(ctx.bench.n_prompts, "out", dtype=object)  # out: in no part (the missing-records policy)
    split_of[ctx.split.train] = ""
    split_of[ctx.split.test], split_of[ctx.split.val] = "test", "validation"
    first: dict[Any, int] = {}
    for row_no, (i, text, score) in enumerate(zip(idx, ans.texts, ans.scores), start=1):
        if ctx.bench.binary and score not in (0.0, 1.0):
            raise InputError(f"score {score:g} on benchmark {ctx.bench.name!r}, whose records are 0 or 1 (wrong or "
                             "right); expected 0 or 1", file=file, row=row_no, column="score")
        where = dict(file=file, row=row_no, column="text")
        if i >= 0 and split_of[i] == "out":
            raise InputError(f"prompt is in none of the router's train, validation and test prompts: the missing-records "
                             f"policy it was fitted under ({ctx.saved.pool.get('missing', 'auto')}) left it out, as "
                             f"{_without_record(ctx.bench, int(i))}; {train_only}", **where)
        if i >= 0 and split_of[i]:
            raise InputError(f"prompt is a {split_of[i]} prompt of the router's split; {train_only}", **where)
        key = int(i) if i >= 0 else normal_text(text)  # a new text (allow_new_prompts): by its normal form
        if key in first:  # texts that differ only in an editor's edits name one prompt
            raise InputError(f"names the same prompt as row {first[key]} (the texts differ only in white space, "
                             "line ends or quotes); expected one score per prompt", **where)
        first[key] = row_no
