"""Splits and candidate pools as the RouterEval paper builds them, fast at full scale.

The ``paper`` protocol reproduces MilkThink-Lab/RouterEval ``get_router_dataset.py``:

- the random stream is ``RandomState(seed)``: first one ``shuffle`` of each subset's
  prompt indices (subsets in the catalog's official order), then the ``strong_to_weak``
  draws of m = 3, 5, 10, 100, 1000 in that order (``all_strong`` / ``all_weak`` draw
  nothing). A pool of one m replays the draws of the paper's smaller m first, so any
  single pool equals the reference's.
- models are ranked by mean score over all prompts (``np.argsort``, default kind, as the
  reference); ``first``/``last`` are the first ranks above 0.1 / 0.9 and the windows are
  ``order[first:first+w]`` and ``order[last-w:last]`` with ``w = max(n_models // 5, m)``
  (n_models counts every eligible model, those under 0.1 included).
- each window of m consecutive ranks, and each of the 1,000 draws, is scored by its
  oracle (mean over prompts of the best model's score); the first maximum wins.

The ``clean`` protocol runs the same algorithm on train+val prompts only (ranking with a
stable sort), so a test score is never read while choosing, and picks the best single
model behind V_B on train+val.

Speed: binary scores stay bit-packed; a pool's oracle on a prompt set is a popcount of
(OR of its rows) & column mask. All windows of one m are scored at once with the
van Herk / Gil-Werman prefix/suffix scan (3 ORs per window whatever m is), and the
1,000 draws are OR-reduced group by group over all draws at once.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from routereval.data import bits as _bits
from routereval.data.model import Benchmark, as_numeric, check_benchmark
from routereval.data.splits import (  # noqa: F401 - re-exported: the split lives on the floor below pools
    MissingPolicy,
    check_split_of,
    make_kfold,
    make_split,
    missing_policy,
)
from routereval.data.splits import check_protocol as _check_protocol
from routereval.data.splits import check_seed as _check_seed
from routereval.data.splits import split_stream as _split_stream
from routereval.errors import InputError, ParameterError
from routereval.pools.types import GROUPS, PAPER_GROUPS, PAPER_MS, Pool, Split
from routereval.validate import as_list, check_bool, check_int, option

N_DRAWS = 1000  # strong_to_weak: best of this many draws (the reference's constant)
LOW, HIGH = 0.1, 0.9  # models with a mean at or under LOW / over HIGH leave the ranking's ends
_CHUNK_BYTES = 32 << 20  # working-set cap of one batched reduction


# ----------------------------------------------------------------------------- checks
def _check_group(group: str, flag: str = "--group") -> str:
    """``group`` if it is a pool group; ``flag``: the option that gave it (``--groups`` for a list)."""
    if group not in GROUPS:
        raise InputError(f"unknown group {group!r} ({flag}); expected one of: {', '.join(GROUPS)}")
    return group


def _check_m(m) -> int:
    return check_int(m, option("m"), low=1)


def _some(values, name: str, what: str, check) -> list:
    """``values`` (one or several) checked one by one; none at all is a :class:`ParameterError`."""
    out = [check(v) for v in as_list(values, name) or ()]
    if not out:
        raise ParameterError(f"{name} must name at least one {what}; got {values!r}")
    return out


# ----------------------------------------------------------------------------- scoring
class _Scorer:
    """Oracle scores of sets of eligible models on one prompt set.

    Binary: rows are packed bits; reducing ORs them and the value is a popcount of the
    selected columns (an exact integer, so ties compare exactly as the reference's floats).
    Graded: rows are the selected columns' scores; reducing takes the max and the value
    is the float64 mean over prompts, summed like the reference's ``np.mean``.
    """

    def __init__(self, bench: Benchmark, rows: np.ndarray, prompts: np.ndarray) -> None:
        self.n = len(prompts)
        self.binary = bench.binary
        if self.binary:
            self.data = np.ascontiguousarray(np.asarray(bench.bits)[rows])
            self.mask = _bits.column_mask(bench.n_prompts, prompts)
            self.op, self.identity = np.bitwise_or, 0
            self.counts = _bits.popcount(self.data & self.mask, axis=1)
            self.means = self.counts / max(self.n, 1)
        else:
            s = np.asarray(bench.scores)[rows][:, prompts]
            # max is exact in the stored precision; means are taken in float64 like the reference
            self.data = np.ascontiguousarray(s if s.dtype == np.float32 else s.astype(np.float64))
            self.op, self.identity = np.maximum, -np.inf
            self.means = self.data.astype(np.float64).mean(axis=1)

    def value(self, reduced: np.ndarray) -> np.ndarray:
        """(k,) comparable oracle values of (k, width) reduced rows (counts or means)."""
        if self.binary:
            return _bits.popcount(reduced & self.mask, axis=-1)
        return reduced.astype(np.float64).mean(axis=-1)

    def to_mean(self, value) -> float:
        return float(value) / max(self.n, 1) if self.binary else float(value)

    def _chunk(self, rows_per_item: int = 1) -> int:
        return max(1, _CHUNK_BYTES // max(1, self.data.shape[1] * self.data.itemsize * rows_per_item))

    def windows(self, region: np.ndarray, m: int) -> np.ndarray:
        """(len(region) - m + 1,) oracle values of every window of m consecutive region rows.

        van Herk / Gil-Werman: cut the region into blocks of m; a window starting at s
        is suffix-OR(s .. end of its block) | prefix-OR(start of next block .. s+m-1).
        """
        R = self.data[region]
        L, w = R.shape
        nb = -(-L // m)
        if nb * m > L:
            R = np.concatenate([R, np.full((nb * m - L, w), self.identity, dtype=R.dtype)])
        B = R.reshape(nb, m, w)
        pre = self.op.accumulate(B, axis=1).reshape(-1, w)
        suf = self.op.accumulate(B[:, ::-1], axis=1)[:, ::-1].reshape(-1, w)
        n_win = L - m + 1
        out = np.empty(n_win, dtype=np.int64 if self.binary else np.float64)
        step = self._chunk(2)
        for a in range(0, n_win, step):  # chunks of windows, not prompts
            s = np.arange(a, min(a + step, n_win))
            out[a:a + len(s)] = self.value(self.op(suf[s], pre[s + m - 1]))
        return out

    def draws(self, picks: np.ndarray) -> np.ndarray:
        """(n_draws,) oracle values of the row sets ``picks`` (n_draws, m)."""
        n_draws, m = picks.shape
        out = np.empty(n_draws, dtype=np.int64 if self.binary else np.float64)
        step = self._chunk(2)
        for a in range(0, n_draws, step):
            p = picks[a:a + step]
            acc = self.data[p[:, 0]]
            for j in range(1, m):  # one batched OR per quantile group, over all draws at once
                self.op(acc, self.data[p[:, j]], out=acc)
            out[a:a + len(p)] = self.value(acc)
        return out


class PoolBuilder:
    """Everything one (benchmark, protocol, split, missing policy) shares between pools.

    Ranks the eligible models once; :meth:`pool` then builds any (m, group). ``split`` is a
    :class:`Split` of ``bench`` (a split of another benchmark is an :class:`InputError`) or a
    name for :func:`make_split` (``auto``, the default, ``publisher``, ``random``).
    """

    def __init__(self, bench: Benchmark, *, protocol: str = "clean", split: Split | str | None = None,
                 seed: int = 42, missing: str = "auto") -> None:
        self.bench = bench
        self.protocol = _check_protocol(protocol)
        _check_seed(seed)
        self.seed = int(seed)
        self.policy = missing_policy(bench, missing)
        # the draws continue the seeded stream whatever split is used: a seed changes the pools
        own_split, self._rs_after_split = _split_stream(bench, self.policy.prompts, self.seed)
        if split is None or isinstance(split, str):  # a name: auto (publisher if any), publisher, random
            split = make_split(bench, protocol=protocol, seed=self.seed, missing=missing, split=split or "auto")
        self.split = check_split_of(split, bench)
        if len(self.split.test) == 0 or len(self.split.train) == 0:
            raise InputError(f"benchmark {bench.name!r}: too few prompts ({len(self.policy.prompts)}) for a train/val/test split")
        # clean: train+val only; paper: every kept prompt, in benchmark order like the reference
        self.choice_prompts = np.sort(self.split.fit_prompts) if protocol == "clean" else self.policy.prompts
        self.scorer = _Scorer(bench, self.policy.models, self.choice_prompts)
        means = self.scorer.means
        # the reference's argsort (default kind) for paper; stable (machine-independent ties) for clean
        self.order = np.argsort(means) if protocol == "paper" else np.argsort(means, kind="stable")
        sm = means[self.order]
        above = np.flatnonzero(sm > LOW)
        self.first = int(above[0]) if len(above) else None
        top = np.flatnonzero(sm > HIGH)
        self.last = int(top[0]) if len(top) else len(sm)
        self._test_means: np.ndarray | None = None
        self._fit_means: np.ndarray | None = None

    @property
    def n_eligible(self) -> int:
        return len(self.policy.models)

    # ------------------------------------------------------------------ candidate sets
    def _need_first(self) -> int:
        if self.first is None:
            raise InputError(f"benchmark {self.bench.name!r}: no eligible model has a mean score above {LOW}; "
                             "all_strong/all_weak/strong_to_weak pools need some")
        return self.first

    def region(self, group: str, m: int) -> np.ndarray:
        """Positions (into the eligible models) that a pool of ``group`` and ``m`` is chosen among."""
        if group == "random":
            return np.arange(self.n_eligible)
        first = self._need_first()
        w = max(self.n_eligible // 5, m)
        if group == "all_weak":
            return self.order[first:first + w]
        if group == "all_strong":
            # the reference slices from last - w, which wraps past the weakest model when negative: an empty window
            # (paper keeps that); clean starts at the weakest model instead (and is the same wherever it did not wrap)
            start = self.last - w if self.protocol == "paper" else max(self.last - w, 0)
            return self.order[start:self.last]
        return self.order[first:self.last]

    def eligible(self, group: str, m: int) -> int:
        """How many models a pool of ``group`` and ``m`` can be drawn from (m must not exceed it)."""
        return len(self.region(_check_group(group), m))

    def _check_room(self, group: str, m: int) -> np.ndarray:
        region = self.region(group, m)
        if m > len(region):
            what = {"random": "eligible", "all_weak": "in the bottom window", "all_strong": "in the top window",
                    "strong_to_weak": f"scoring in ({LOW}, {HIGH}]"}[group]
            dropped = self.bench.n_models - self.n_eligible
            why = (f"; {dropped} of its {self.bench.n_models} models miss records and are left out "
                   f"({option('missing')} {self.policy.name!r}): {option('missing')} 'prompts' keeps every model, on "
                   "the prompts all of them answered" if self.policy.name == "models" and dropped else "")
            w = max(self.n_eligible // 5, m)
            if group == "all_strong" and not len(region) and self.last - w < 0:
                why += (f"; the reference's window of {w} models ending at the strongest one scoring at most {HIGH} "
                        f"(the {self.last}th weakest) starts before the weakest and wraps to an empty slice: the clean "
                        "protocol starts it at the weakest")
            raise InputError(f"m={m} is larger than the {len(region)} models {what} of benchmark {self.bench.name!r} "
                             f"({group}, {self.protocol} protocol){why}")
        return region

    def _group_sizes(self, n_valid: int, m: int) -> np.ndarray:
        # m groups, the remainder going one each to the first groups (as the reference)
        return n_valid // m + (np.arange(m) < n_valid % m)

    def draw_picks(self, m: int) -> np.ndarray:
        """(N_DRAWS, m) positions of the strong_to_weak draws for ``m``, from the reference's stream.

        ``rs.randint(0, sizes, size=(N_DRAWS, m))`` consumes the legacy stream exactly as the
        reference's loop of ``np.random.choice(group)`` (draws outer, groups inner).
        """
        valid = self.order[self._need_first():self.last]
        rs = np.random.RandomState()
        rs.set_state(self._rs_after_split.get_state())
        for mm in sorted({p for p in PAPER_MS if p < m}):  # replay the paper's smaller m
            if mm <= len(valid):
                rs.randint(0, self._group_sizes(len(valid), mm), size=(N_DRAWS, mm))
        sizes = self._group_sizes(len(valid), m)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        return valid[offsets + rs.randint(0, sizes, size=(N_DRAWS, m))]

    # ------------------------------------------------------------------ pools
    def pool(self, m: int, group: str, *, draw: int = 0) -> Pool:
        """The pool of ``m`` models of ``group`` (``draw``: which seeded draw, ``random`` only)."""
        m, group = _check_m(m), _check_group(group)
        region = self._check_room(group, m)
        choice_value = np.nan
        if group in ("all_weak", "all_strong"):
            vals = self.scorer.windows(region, m)
            start = int(np.argmax(vals))  # first maximum wins (the reference's strict >)
            pos = region[start:start + m]
            choice_value = self.scorer.to_mean(vals[start])
        elif group == "strong_to_weak":
            picks = self.draw_picks(m)
            vals = self.scorer.draws(picks)
            best = int(np.argmax(vals))
            pos = picks[best]
            choice_value = self.scorer.to_mean(vals[best])
        else:
            draw = check_int(draw, "draw", low=0)
            rng = np.random.default_rng([self.seed, m, draw])
            pos = np.sort(rng.choice(self.n_eligible, size=m, replace=False))
        rows = self.policy.models[pos]
        if self.protocol == "paper":
            best_single = int(np.argmax(self.test_means()[pos]))
        else:
            best_single = int(np.argmax(self.fit_means()[pos]))
        return Pool(benchmark=self.bench.name, group=group, m=m, protocol=self.protocol,
                    models=rows.astype(np.int64), model_names=self.bench.models[rows], split=self.split,
                    best_single=best_single, draw=int(draw) if group == "random" else 0,
                    missing=self.policy.name, choice_oracle=choice_value,
                    missing_note="" if self.policy.name == "complete" else self.policy.note)

    def test_means(self) -> np.ndarray:
        """(n_eligible,) mean test score of each eligible model."""
        if self._test_means is None:
            self._test_means = _means(self.bench, self.policy.models, self.split.test)
        return self._test_means

    def fit_means(self) -> np.ndarray:
        """(n_eligible,) mean train+val score of each eligible model."""
        if self._fit_means is None:
            self._fit_means = _means(self.bench, self.policy.models, self.split.fit_prompts)
        return self._fit_means


def _means(bench: Benchmark, rows: np.ndarray, prompts: np.ndarray) -> np.ndarray:
    if bench.binary:
        return _bits.popcount(np.asarray(bench.bits)[rows] & _bits.column_mask(bench.n_prompts, prompts), axis=1) / max(len(prompts), 1)
    return np.asarray(bench.scores)[rows][:, prompts].astype(np.float64).mean(axis=1)


# ----------------------------------------------------------------------------- public API
def make_pool(bench: Benchmark, *, m: int, group: str, protocol: str = "clean", split: Split | str | None = None,
              seed: int = 42, draw: int = 0, missing: str = "auto") -> Pool:
    """One candidate pool of ``bench``.

    Parameters
    ----------
    bench
        The benchmark.
    m
        Pool size (>= 1 and at most the models eligible for ``group``).
    group
        ``all_strong``, ``all_weak``, ``strong_to_weak`` or ``random``.
    protocol
        ``clean`` (choose on train+val) or ``paper`` (the reference: all prompts).
    split
        The split to evaluate on (a :class:`Split` of ``bench``), or its name for :func:`make_split`
        (default ``auto``: the publisher's when the benchmark has one, else the seeded random
        split). The random stream of the draws is always the reference's (seed, then the split
        shuffles).
    seed
        Seed of the split and the draws.
    draw
        Which seeded draw of a ``random`` pool.
    missing
        Missing-records policy, see :func:`missing_policy`.

    Returns
    -------
    Pool
        ``models`` (m,) benchmark rows, ``best_single`` a position in the pool.
    """
    _check_group(group)
    _check_m(m)
    return PoolBuilder(bench, protocol=protocol, split=split, seed=seed, missing=missing).pool(m, group, draw=draw)


def make_pools(bench: Benchmark, *, ms: Sequence[int] = PAPER_MS, groups: Iterable[str] = PAPER_GROUPS,
               protocol: str = "clean", seed: int = 42, missing: str = "auto", skip_too_large: bool = False,
               split: Split | str | None = None) -> list[Pool]:
    """Every pool of ``bench`` for ``ms`` x ``groups``, in that (the reference's) order.

    Each strong_to_weak pool uses the reference's stream position for its m (see
    :meth:`PoolBuilder.draw_picks`), so the paper protocol's pools equal the reference's.

    Parameters
    ----------
    bench
        The benchmark.
    ms
        Pool sizes (one int or several, at least one; default the paper's 3, 5, 10, 100, 1000).
    groups
        ``all_strong``, ``all_weak``, ``strong_to_weak``, ``random`` (one name or several, at least one).
    protocol
        ``clean`` (pools and best single model chosen on train+val) or ``paper`` (the reference).
    seed
        Seed of the random split (never of a publisher split) and of the draws.
    missing
        Missing-records policy: ``auto``, ``models`` or ``prompts`` (see :func:`missing_policy`).
    skip_too_large
        True: leave out (m, group) pairs with too few eligible models instead of raising.
    split
        As in :func:`make_pool`.

    Returns
    -------
    list of Pool
    """
    groups = _some(groups, "groups", "group", lambda g: _check_group(g, "--groups"))
    ms = _some(ms, "ms", "pool size", _check_m)
    skip_too_large = check_bool(skip_too_large, "skip_too_large")
    b = PoolBuilder(bench, protocol=protocol, seed=seed, missing=missing, split=split)
    out = []
    for m in ms:
        for g in groups:
            if skip_too_large and m > b.eligible(g, m):
                continue
            out.append(b.pool(m, g))
    return out


def pool_scores(bench: Benchmark, pool: Pool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores of the pool's models on its split, prompt-major like the reference's ``train_score``.

    Parameters
    ----------
    bench
        The benchmark the pool was built on (another one is an :class:`InputError`).
    pool
        A pool of :func:`make_pool` / :func:`make_pools`.

    Returns
    -------
    train, val, test
        float64 arrays of shape (n_train, m), (n_val, m), (n_test, m); NaN where missing.
    """
    check_benchmark(bench)
    if not isinstance(pool, Pool):
        raise InputError(f"pool must be a Pool (make_pool / make_pools); got {type(pool).__name__}")
    if pool.benchmark != bench.name:
        raise InputError(f"the pool was built on benchmark {pool.benchmark!r}, not {bench.name!r}: its model rows and "
                         "split index another benchmark")
    rows = np.asarray(pool.models)
    if len(rows) and (rows.min() < 0 or rows.max() >= bench.n_models):
        raise InputError(f"the pool's models do not fit benchmark {bench.name!r} ({bench.n_models} models): it was "
                         "built on another version of it")
    check_split_of(pool.split, bench)
    if bench.binary:
        s = _bits.unpack(np.asarray(bench.bits)[rows], bench.n_prompts, dtype=np.float64)
        if bench.observed is not None:
            s[_bits.unpack(np.asarray(bench.observed)[rows], bench.n_prompts, dtype=bool) == 0] = np.nan
    else:
        s = np.asarray(bench.scores)[rows].astype(np.float64)
    sp = pool.split
    return tuple(np.ascontiguousarray(s[:, idx].T) for idx in (sp.train, sp.val, sp.test))  # type: ignore[return-value]


def training_labels(bench: Benchmark, Y_train: np.ndarray) -> np.ndarray:
    """Training labels from train scores, as the reference's ``process_label``.

    Graded benchmarks: 1.0 where a model scores at least 0.95 of the prompt's best, else
    0.0. Binary benchmarks: the scores themselves.

    Parameters
    ----------
    bench
        The benchmark the scores come from.
    Y_train
        (n_prompts, m) scores of a pool's m models (1 <= m <= ``bench.n_models``), finite and in
        [0, 1] (a pool's scores miss no record); anything else is an :class:`InputError`.

    Returns
    -------
    np.ndarray
        (n_prompts, m) float64 labels.
    """
    check_benchmark(bench)
    Y = as_numeric(Y_train, "Y_train", "scores in [0, 1]").astype(np.float64)
    if Y.ndim != 2 or not 1 <= Y.shape[1] <= bench.n_models:
        raise InputError(f"Y_train must be (n_prompts, m) with 1 <= m <= {bench.n_models} (the models of benchmark "
                         f"{bench.name!r}); got shape {Y.shape}")
    bad = ~np.isfinite(Y) | (Y < 0) | (Y > 1)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise InputError(f"Y_train must hold finite scores in [0, 1] (a pool's scores miss no record); "
                         f"got {float(Y[i, j])!r} at row {i}, column {j}")
    if bench.binary:
        return Y
    return (Y >= 0.95 * Y.max(axis=1, keepdims=True)).astype(Y.dtype)


def oracle_score(scores: np.ndarray) -> float:
    """Oracle of a pool: mean over prompts of the best model's score; ``scores`` (n_prompts, m)."""
    s = np.asarray(scores, dtype=np.float64)
    return float(np.max(s, axis=1).mean()) if s.size else float("nan")


def best_single(scores_test: np.ndarray, pool: Pool) -> tuple[float, str]:
    """Test score and name of the pool's best single model (as the protocol chose it)."""
    s = np.asarray(scores_test, dtype=np.float64)
    return float(s[:, pool.best_single].mean()), str(pool.model_names[pool.best_single])
