"""Train/val/test splits of a benchmark's prompts, and which prompts and models a split may use.

The floor under both the corpus store (which stores each benchmark's default split) and
:mod:`routereval.pools` (which builds pools on a split): it depends only on the data model.

The seeded split reproduces MilkThink-Lab/RouterEval ``get_router_dataset.py``:
``RandomState(seed)``, one ``shuffle`` of each subset's prompt indices (subsets in the
catalog's official order), cut at ``int(0.8 n)`` and ``int(0.9 n)``. The random stream
right after the shuffles is what the reference's pool draws continue with
(:func:`split_stream`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routereval.data import bits as _bits
from routereval.data.model import Benchmark
from routereval.errors import InputError

PROTOCOLS = ("clean", "paper")
MISSING_POLICIES = ("auto", "models", "prompts")
DEFAULT_SPLIT_SEED = 42  # the paper's seed; its split is stored with each benchmark


@dataclass(frozen=True)
class Split:
    """A train/val/test split of a benchmark's prompts.

    Attributes
    ----------
    train, val, test
        Prompt (column) indices into the benchmark, disjoint.
    seed
        The seed the split was drawn with.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int = 42

    @property
    def fit_prompts(self) -> np.ndarray:
        """Train and val prompts: all that the ``clean`` protocol may look at while choosing."""
        return np.concatenate([self.train, self.val])

    @property
    def all_prompts(self) -> np.ndarray:
        """Train, val and test prompts: all that the ``paper`` protocol looks at while choosing."""
        return np.concatenate([self.train, self.val, self.test])


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; expected one of: {', '.join(PROTOCOLS)}")
    return protocol


# ----------------------------------------------------------------------------- missing records
@dataclass(frozen=True)
class MissingPolicy:
    """Which models and prompts a benchmark's pools use when records are missing.

    Attributes
    ----------
    name
        ``complete`` (nothing missing), ``models`` (only models evaluated on every prompt
        are eligible; all prompts kept) or ``prompts`` (every model eligible; only the
        prompts that every model was evaluated on are kept).
    models
        (n_eligible,) row indices of the eligible models, ascending.
    prompts
        (n_kept,) column indices of the kept prompts, ascending.
    note
        One line for the user saying what was dropped.
    """

    name: str
    models: np.ndarray
    prompts: np.ndarray
    note: str


def missing_policy(bench: Benchmark, missing: str = "auto") -> MissingPolicy:
    """Decide how ``bench``'s missing records are handled.

    ``auto``: ``models`` when at least half of the models were evaluated on every
    prompt (the reference's corpus is complete, so dropping a few partial models keeps
    its prompt set), otherwise ``prompts``. After either policy the eligible models x
    kept prompts block has no missing record.

    Parameters
    ----------
    bench
        The benchmark.
    missing
        ``auto``, ``models`` or ``prompts``.
    """
    if missing not in MISSING_POLICIES:
        raise InputError(f"unknown missing-records policy {missing!r}; expected one of: {', '.join(MISSING_POLICIES)}")
    n_models, n_prompts = bench.shape
    all_models, all_prompts = np.arange(n_models), np.arange(n_prompts)
    if bench.binary and bench.observed is None:
        return MissingPolicy("complete", all_models, all_prompts, "complete: every model evaluated on every prompt")
    if bench.binary:
        obs = bench.observed
        full_rows = _bits.popcount(obs, axis=1) == n_prompts
        full_cols = _bits.unpack(np.bitwise_and.reduce(obs, axis=0)[None, :], n_prompts, dtype=bool)[0]
    else:
        seen = ~np.isnan(np.asarray(bench.scores))
        full_rows, full_cols = seen.all(axis=1), seen.all(axis=0)
    if full_rows.all():
        return MissingPolicy("complete", all_models, all_prompts, "complete: every model evaluated on every prompt")
    n_full = int(full_rows.sum())
    if missing == "auto":
        missing = "models" if 2 * n_full >= n_models else "prompts"
    if missing == "models":
        if n_full == 0:
            raise InputError(f"benchmark {bench.name!r}: no model was evaluated on every prompt; use the 'prompts' missing-records policy")
        return MissingPolicy("models", np.flatnonzero(full_rows), all_prompts,
                             f"models: pools draw only the {n_full} of {n_models} models evaluated on every prompt")
    kept = np.flatnonzero(full_cols)
    if len(kept) < 3:
        raise InputError(f"benchmark {bench.name!r}: only {len(kept)} prompts were evaluated by every model; "
                         "use the 'models' missing-records policy")
    return MissingPolicy("prompts", all_models, kept,
                         f"prompts: splits keep only the {len(kept)} of {n_prompts} prompts every model was evaluated on")


# ----------------------------------------------------------------------------- splits
def subset_order(bench: Benchmark) -> list[str]:
    """Subsets in the catalog's official order when the benchmark is a catalog one, else as they appear."""
    from routereval.catalog import BENCHMARKS

    present = bench.subset_names
    info = BENCHMARKS.get(bench.name)
    if info is not None:
        for attr in ("name", "official"):
            order = [getattr(s, attr) for s in info.subsets]
            if set(present) <= set(order):
                return [s for s in order if s in set(present)]
    return present


def split_stream(bench: Benchmark, prompts: np.ndarray, seed: int) -> tuple[Split, np.random.RandomState]:
    """The reference's stratified split and the random stream right after it."""
    rs = np.random.RandomState(seed)
    codes = bench.subset_codes()
    names = bench.subset_names
    keep = np.zeros(bench.n_prompts, dtype=bool)
    keep[prompts] = True
    parts: list[list[np.ndarray]] = [[], [], []]
    for sub in subset_order(bench):
        idx = np.flatnonzero((codes == names.index(sub)) & keep)
        rs.shuffle(idx)
        a, b = int(0.8 * len(idx)), int(0.9 * len(idx))
        for part, chunk in zip(parts, (idx[:a], idx[a:b], idx[b:])):
            part.append(chunk)
    train, val, test = (np.concatenate(p).astype(np.int64) if p else np.empty(0, np.int64) for p in parts)
    return Split(train, val, test, seed=seed), rs


def check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise InputError(f"seed must be an int in [0, 2**32 - 1] (numpy's RandomState). Got {seed!r}.")


def make_split(bench: Benchmark, *, protocol: str = "clean", seed: int = 42, missing: str = "auto") -> Split:
    """The stratified 80/10/10 prompt split of ``bench`` (per subset, seeded).

    Both protocols use the reference's split: ``RandomState(seed)``, one shuffle per
    subset in the official subset order, cut at ``int(0.8 n)`` and ``int(0.9 n)``.

    Parameters
    ----------
    bench
        The benchmark.
    protocol
        ``clean`` or ``paper`` (the split is the same; checked for symmetry with pools).
    seed
        Seed of the shuffles.
    missing
        Missing-records policy (see :func:`missing_policy`); ``prompts`` drops prompts.

    Returns
    -------
    Split
        ``train``, ``val``, ``test``: prompt column indices, in the reference's order.
    """
    check_protocol(protocol)
    check_seed(seed)
    pol = missing_policy(bench, missing)
    saved = load_saved_split(bench, seed)
    if saved is not None and saved[3] in (pol.name, None):
        # the split stored with the corpus is the record: every router sees the same one
        return Split(*(a.astype(np.int64) for a in saved[:3]), seed=seed)
    split, _ = split_stream(bench, pol.prompts, seed)
    if len(split.test) == 0 or len(split.train) == 0:
        raise InputError(f"benchmark {bench.name!r}: too few prompts ({len(pol.prompts)}) for a train/val/test split")
    return split


def make_kfold(bench: Benchmark, *, k: int = 5, seed: int = 42, missing: str = "auto") -> list[Split]:
    """Stratified k-fold splits for small benchmarks: fold i is the test set of split i.

    Within each subset the prompts are shuffled once and dealt round-robin into k folds;
    of the other k-1 folds, one (the next) is the validation set and the rest train.

    Returns
    -------
    list[Split]
        k splits whose test sets partition the kept prompts.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 3:
        raise InputError(f"k must be an integer >= 3, got {k!r}")
    pol = missing_policy(bench, missing)
    if len(pol.prompts) < k:
        raise InputError(f"benchmark {bench.name!r}: {len(pol.prompts)} prompts cannot fill k={k} folds")
    rs = np.random.RandomState(seed)
    codes = bench.subset_codes()
    names = bench.subset_names
    fold = np.full(bench.n_prompts, -1)
    offset = 0
    for sub in subset_order(bench):
        idx = pol.prompts[codes[pol.prompts] == names.index(sub)]
        rs.shuffle(idx)
        fold[idx] = (offset + np.arange(len(idx))) % k  # continue the deal so folds stay balanced
        offset += len(idx)
    out = []
    for i in range(k):
        v = (i + 1) % k
        test, val = np.flatnonzero(fold == i), np.flatnonzero(fold == v)
        train = np.flatnonzero((fold >= 0) & (fold != i) & (fold != v))
        out.append(Split(train, val, test, seed=seed))
    return out



def load_saved_split(bench: Benchmark, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str] | None:
    """The split stored with ``bench`` for ``seed`` as (train, val, test, policy), or None.

    ``bench.saved_splits[seed]`` is a stored ``.npz`` file (a corpus opened from disk) or a
    (train, val, test) tuple given by a reader (policy None: decided when it is stored).
    """
    f = getattr(bench, "saved_splits", {}).get(int(seed))
    if f is None:
        return None
    if isinstance(f, tuple):
        return (*(np.asarray(a, dtype=np.int64) for a in f[:3]), None)
    with np.load(f, allow_pickle=False) as z:
        return z["train"], z["val"], z["test"], str(z["policy"])
