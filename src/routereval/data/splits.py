"""Train/val/test splits of a benchmark's prompts, and which prompts and models a split may use.

The floor under both the corpus store (which stores each benchmark's default split) and
:mod:`routereval.pools` (which builds pools on a split): it depends only on the data model.

Two named splits: ``random``, seeded, and ``publisher``, the split a dataset's publisher
shipped (stored with the benchmark; a seed never changes it). :func:`make_split` is the
one entry point every command uses; ``split="auto"`` takes the publisher's when there is one.

The seeded split reproduces MilkThink-Lab/RouterEval ``get_router_dataset.py``:
``RandomState(seed)``, one ``shuffle`` of each subset's prompt indices (subsets in the
catalog's official order), cut at ``int(0.8 n)`` and ``int(0.9 n)``. The random stream
right after the shuffles is what the reference's pool draws continue with
(:func:`split_stream`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from routereval.data import bits as _bits
from routereval.data.model import Benchmark, check_benchmark
from routereval.errors import CorpusError, InputError
from routereval.validate import check_int, option

PROTOCOLS = ("clean", "paper")
MISSING_POLICIES = ("auto", "models", "prompts")
SPLITS = ("publisher", "random")  # the named splits a benchmark can have
SPLIT_CHOICES = ("auto",) + SPLITS  # auto: publisher when the benchmark has one, else random
SPLIT_LABELS = ("train", "val", "test")  # a publisher's label of each prompt, in precedence order
DEFAULT_SPLIT_SEED = 42  # the paper's seed; its split is stored with each benchmark
DEFAULT_VAL_FRACTION = 0.1  # share of each subset's train prompts carved into val when a publisher gives none


@dataclass(frozen=True)
class Split:
    """A train/val/test split of a benchmark's prompts.

    Attributes
    ----------
    train, val, test
        Prompt (column) indices into the benchmark, disjoint.
    seed
        The seed the split was drawn with (``random``), or that carved the validation
        prompts out of the publisher's train prompts (``publisher``; None when the
        publisher gave its own validation prompts).
    name
        ``random`` (the seeded stratified 80/10/10) or ``publisher`` (the split the
        dataset's publisher shipped, stored with the benchmark).
    note
        One line for the user on how the split was made (empty for ``random``).
    benchmark, n_prompts
        Name and size of the benchmark the split was made for (set by :func:`make_split` and
        :func:`make_kfold`; None when unknown); :func:`check_split_of` compares them.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int | None = 42
    name: str = "random"
    note: str = ""
    benchmark: str | None = None
    n_prompts: int | None = None

    def __repr__(self) -> str:
        of = "" if self.benchmark is None else f" of {self.benchmark!r}"
        seed = "" if self.seed is None else f", seed {self.seed}"
        return f"Split({self.name}{of}: train {len(self.train)}, val {len(self.val)}, test {len(self.test)} prompts{seed})"

    @property
    def fit_prompts(self) -> np.ndarray:
        """Train and val prompts: all that the ``clean`` protocol may look at while choosing."""
        return np.concatenate([self.train, self.val])

    @property
    def all_prompts(self) -> np.ndarray:
        """Train, val and test prompts: all that the ``paper`` protocol looks at while choosing."""
        return np.concatenate([self.train, self.val, self.test])


def check_split_of(split: Split, bench: Benchmark) -> Split:
    """``split`` if it is a :class:`Split` of ``bench``: made for it (when recorded) and indexing its prompts;
    else an :class:`InputError`."""
    if not isinstance(split, Split):
        raise InputError(f"split must be a Split (make_split(bench)) or one of: {', '.join(SPLIT_CHOICES)}; "
                         f"got {type(split).__name__}")
    redo = "make it with make_split(bench) for this benchmark"
    if split.benchmark not in (None, bench.name) or split.n_prompts not in (None, bench.n_prompts):
        raise InputError(f"the split was made for benchmark {split.benchmark!r} ({split.n_prompts} prompts), not for "
                         f"{bench.name!r} ({bench.n_prompts} prompts); {redo}")
    idx = split.all_prompts
    if idx.size and (idx.min() < 0 or idx.max() >= bench.n_prompts):
        raise InputError(f"the split's prompt indices ({idx.min()} to {idx.max()}) do not fit benchmark {bench.name!r} "
                         f"({bench.n_prompts} prompts): it belongs to another benchmark; {redo}")
    return split


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r} (--protocol); expected one of: {', '.join(PROTOCOLS)}")
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
    check_benchmark(bench)
    if missing not in MISSING_POLICIES:
        raise InputError(f"unknown missing-records policy {missing!r} (--missing); expected one of: {', '.join(MISSING_POLICIES)}")
    n_models, n_prompts = bench.shape
    all_models, all_prompts = np.arange(n_models), np.arange(n_prompts)
    if bench.binary and bench.observed is None:
        return MissingPolicy("complete", all_models, all_prompts, "complete: every model evaluated on every prompt")
    full_rows = bench.complete_models()
    if bench.binary:
        full_cols = _bits.unpack(np.bitwise_and.reduce(bench.observed, axis=0)[None, :], n_prompts, dtype=bool)[0]
    else:
        full_cols = ~np.isnan(np.asarray(bench.scores)).any(axis=0)
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


def check_seed(seed) -> int:
    # numpy's RandomState, which the reference's splits use, takes seeds below 2**32
    return check_int(seed, option("seed"), low=0, high=2**32 - 1, high_text="2**32 - 1")


def check_split(split: str) -> str:
    """``split`` if it is one of :data:`SPLIT_CHOICES`, else an :class:`InputError`."""
    if split not in SPLIT_CHOICES:
        raise InputError(f"unknown split {split!r} (--split); expected one of: {', '.join(SPLIT_CHOICES)}")
    return split


def make_split(bench: Benchmark, *, protocol: str = "clean", seed: int = 42, missing: str = "auto",
               split: str = "auto") -> Split:
    """The train/val/test prompt split of ``bench``: the publisher's or the seeded random one.

    The one entry point for every command that splits. ``random`` is the reference's
    split: ``RandomState(seed)``, one shuffle per subset in the official subset order,
    cut at ``int(0.8 n)`` and ``int(0.9 n)``. ``publisher`` is the split stored with the
    benchmark (a source spec's split column or per-file labels, a router dataset's
    ``split_index``); the seed never changes it.

    Parameters
    ----------
    bench
        The benchmark.
    protocol
        ``clean`` or ``paper`` (the split is the same; checked for symmetry with pools).
    seed
        Seed of the random split's shuffles (ignored by the publisher split).
    missing
        Missing-records policy (see :func:`missing_policy`); ``prompts`` drops prompts
        (from either split).
    split
        ``auto`` (the publisher's when the benchmark has one, else random), ``publisher``
        (an :class:`InputError` when it has none) or ``random``.

    Returns
    -------
    Split
        ``train``, ``val``, ``test``: prompt column indices; ``name`` says which split it is;
        ``benchmark`` and ``n_prompts`` record ``bench``.
    """
    check_protocol(protocol)
    check_seed(seed)
    check_split(split)
    pol = missing_policy(bench, missing)
    pub = publisher_split(bench)  # also settles what a corpus from before named splits stored
    if split == "random":
        pub = None
    elif split == "publisher" and pub is None:
        raise InputError(f"benchmark {bench.name!r} has no publisher split (its source shipped none); use "
                         "--split random, or give its source spec a split column or per-file split labels")
    if pub is not None:
        out = _restrict(pub, pol, bench.n_prompts)
    else:
        saved = load_saved_split(bench, seed)
        if saved is not None and saved[3] in (pol.name, None):
            # the split stored with the corpus is the record: every router sees the same one
            out = Split(*(a.astype(np.int64) for a in saved[:3]), seed=seed)
        else:
            out, _ = split_stream(bench, pol.prompts, seed)
    if len(out.test) == 0 or len(out.train) == 0:
        raise InputError(f"benchmark {bench.name!r}: too few prompts ({len(pol.prompts)}) for a train/val/test "
                         f"split ({out.name} split: {len(out.train)} train, {len(out.test)} test)")
    return replace(out, benchmark=bench.name, n_prompts=bench.n_prompts)


def _restrict(split: Split, pol: MissingPolicy, n_prompts: int) -> Split:
    """``split`` without the prompts the missing-records policy leaves out."""
    if pol.name != "prompts":
        return split
    keep = np.zeros(n_prompts, dtype=bool)
    keep[pol.prompts] = True
    parts = [a[keep[a]] for a in (split.train, split.val, split.test)]
    dropped = sum(len(a) for a in (split.train, split.val, split.test)) - sum(len(a) for a in parts)
    note = split.note + (f"; {dropped} prompts not evaluated by every model left out (missing-records policy "
                         "'prompts')" if dropped else "")
    return Split(*parts, seed=split.seed, name=split.name, note=note)


def make_kfold(bench: Benchmark, *, k: int = 5, seed: int = 42, missing: str = "auto") -> list[Split]:
    """Stratified k-fold splits for small benchmarks: fold i is the test set of split i.

    Within each subset the prompts are shuffled once and dealt round-robin into k folds;
    of the other k-1 folds, one (the next) is the validation set and the rest train.

    Returns
    -------
    list[Split]
        k splits whose test sets partition the kept prompts.
    """
    k = check_int(k, "k", low=3)
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
        out.append(Split(train, val, test, seed=seed, benchmark=bench.name, n_prompts=bench.n_prompts))
    return out


# ----------------------------------------------------------------------------- publisher splits
def carve_val(bench: Benchmark, train: np.ndarray, *, fraction: float = DEFAULT_VAL_FRACTION,
              seed: int = DEFAULT_SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Carve validation prompts out of ``train``, stratified by subset and seeded.

    Per subset (official order), ``RandomState(seed)`` shuffles the subset's train prompts
    and the first ``round(fraction * n)`` of them become validation prompts.

    Parameters
    ----------
    bench
        The benchmark (its subsets are the strata).
    train
        (n,) prompt indices the publisher marked as train.
    fraction
        Share of each subset's train prompts to move to val, in [0, 1).
    seed
        Seed of the shuffles.

    Returns
    -------
    train, val
        Sorted prompt indices; together the input ``train``.
    """
    if not 0 <= fraction < 1:
        raise InputError(f"val_fraction must be a number in [0, 1). Got {fraction!r}.")
    check_seed(seed)
    rs = np.random.RandomState(seed)
    codes = bench.subset_codes()
    names = bench.subset_names
    train = np.asarray(train, dtype=np.int64)
    val = []
    for sub in subset_order(bench):
        idx = np.sort(train[codes[train] == names.index(sub)])
        rs.shuffle(idx)
        val.append(idx[:int(np.floor(fraction * len(idx) + 0.5))])
    v = np.sort(np.concatenate(val)) if val else np.empty(0, np.int64)
    return np.setdiff1d(train, v), v


def publisher_split_from_labels(bench: Benchmark, labels: np.ndarray, *, val_fraction: float = DEFAULT_VAL_FRACTION,
                                seed: int = DEFAULT_SPLIT_SEED, conflicts: int = 0, source: str = "",
                                file: str | None = None) -> Split:
    """The publisher split of ``bench`` from one label per prompt.

    Parameters
    ----------
    bench
        The benchmark.
    labels
        (n_prompts,) ``"train"``, ``"val"`` or ``"test"``.
    val_fraction, seed
        When no prompt is labelled ``val``: the share of each subset's train prompts
        carved into val and the seed of that carving (see :func:`carve_val`).
    conflicts
        How many prompts had records under several labels (kept in the latest of
        train < val < test by the reader); said in the note.
    source
        Where the labels came from (a column, the files), for the note.
    file
        The data file(s) the labels were read from, named by an error.

    Returns
    -------
    Split
        ``name="publisher"``, sorted indices, and a note saying how it was made.
    """
    labels = np.asarray(labels, dtype=object)
    parts = {lab: np.flatnonzero(labels == lab).astype(np.int64) for lab in SPLIT_LABELS}
    bad = np.flatnonzero(~np.isin(labels, np.array(SPLIT_LABELS, dtype=object)))
    if bad.size:
        raise InputError(f"benchmark {bench.name!r}: prompt {bench.prompt_ids[bad[0]]!r} has split label "
                         f"{labels[bad[0]]!r}; expected one of: {', '.join(SPLIT_LABELS)}", file=file)
    for lab in ("train", "test"):
        if not len(parts[lab]):
            raise InputError(f"benchmark {bench.name!r}: the publisher split ({source or 'labels'}) has no {lab} "
                             "prompts; expected train and test prompts (val is optional)", file=file)
    note = f"the publisher's split ({source})" if source else "the publisher's split"
    carved_seed = None
    if not len(parts["val"]) and val_fraction > 0:
        parts["train"], parts["val"] = carve_val(bench, parts["train"], fraction=val_fraction, seed=seed)
        carved_seed = seed
        note += (f"; no validation prompts given: val carved from train ({val_fraction:g} of each subset's "
                 f"train prompts, seed {seed})")
    if conflicts:
        note += f"; {conflicts} prompts had records under several split labels and are kept in the latest " \
                "of train < val < test"
    return Split(parts["train"], parts["val"], parts["test"], seed=carved_seed, name="publisher", note=note)


def publisher_split(bench: Benchmark) -> Split | None:
    """The publisher split stored with ``bench`` (every prompt; see :func:`make_split`), or None.

    ``bench.saved_splits["publisher"]`` is a :class:`Split` (set by a reader) or a stored
    ``.npz`` file (a corpus opened from disk). A corpus written before named splits existed
    kept an imported split (a router dataset's ``split_index``) as its seed-42 split: when
    that differs from the seeded split it is recognised as the publisher's.
    """
    saved = getattr(bench, "saved_splits", {})
    f = saved.get("publisher")
    if isinstance(f, Split):
        return f
    if f is not None:
        z = _read_split_file(f, ("train", "val", "test", "seed", "note"))
        seed = int(z["seed"]) if int(z["seed"]) >= 0 else None
        return Split(*(z[k].astype(np.int64) for k in ("train", "val", "test")), seed=seed,
                     name="publisher", note=str(z["note"]))
    if getattr(bench, "legacy_splits", False):
        bench.legacy_splits = False  # decided once per opened benchmark
        stored = load_saved_split(bench, DEFAULT_SPLIT_SEED)
        if stored is not None:
            drawn, _ = split_stream(bench, missing_policy(bench).prompts, DEFAULT_SPLIT_SEED)
            if any(not np.array_equal(a, b) for a, b in zip(stored[:3], (drawn.train, drawn.val, drawn.test))):
                pub = Split(*(a.astype(np.int64) for a in stored[:3]), seed=None, name="publisher",
                            note="the split stored with a corpus written before named splits (e.g. an imported "
                                 "router dataset's split_index)")
                saved["publisher"] = pub
                del saved[DEFAULT_SPLIT_SEED]  # it is not the seeded split
                return pub
    return None


def split_names(bench: Benchmark) -> list[str]:
    """The named splits ``bench`` has: ``["publisher", "random"]`` or ``["random"]``."""
    return (["publisher"] if publisher_split(bench) is not None else []) + ["random"]


def load_saved_split(bench: Benchmark, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str | None] | None:
    """The seeded split stored with ``bench`` for ``seed`` as (train, val, test, policy), or None.

    ``bench.saved_splits[seed]`` is a stored ``.npz`` file (a corpus opened from disk) or a
    (train, val, test) tuple (policy None: decided when it is stored).
    """
    f = getattr(bench, "saved_splits", {}).get(int(seed))
    if f is None:
        return None
    if isinstance(f, tuple):
        return (*(np.asarray(a, dtype=np.int64) for a in f[:3]), None)
    z = _read_split_file(f, ("train", "val", "test", "policy"))
    return z["train"], z["val"], z["test"], str(z["policy"])


def _read_split_file(f, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of a stored split file; a damaged file is a :class:`CorpusError`, not a traceback."""
    import zipfile

    try:
        with np.load(f, allow_pickle=False) as z:
            return {k: z[k] for k in keys}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise CorpusError(f"{f}: cannot read this stored split ({type(e).__name__}); the corpus is damaged "
                          "(run 'routereval data verify')") from None
