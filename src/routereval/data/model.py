"""The canonical data model: benchmarks, models and corpora (see ARCHITECTURE.md).

A :class:`Benchmark` holds prompts and a score matrix ``S`` of shape
(n_models, n_prompts), float in [0, 1], NaN where a model was not evaluated.
Binary benchmarks can be held bit-packed (``bits`` plus an optional ``observed``
mask) so that 200M binary records take 25 MB; ``scores`` unpacks on demand.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from routereval.data import bits as _bits
from routereval.errors import InputError
from routereval.validate import as_list, check_bool


def _as_1d(values: Any, what: str) -> np.ndarray:
    """``values`` (a list or array, one entry each) as a 1-d object array; a str is refused: never its characters."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise InputError(f"{what} must be a list or array (one entry each); got {reprlib.repr(values)}")
    if isinstance(values, np.ndarray):
        arr = values.astype(object, copy=False)
    else:  # element by element: an entry that is itself a list (several gold answers) stays one entry
        items = list(values)
        arr = np.fromiter(items, dtype=object, count=len(items))
    if arr.ndim != 1:
        raise InputError(f"{what} must be one-dimensional, got shape {arr.shape}")
    return arr


def _as_str_array(values: Iterable, what: str) -> np.ndarray:
    return np.array([str(v) for v in _as_1d(values, what)], dtype=object)


def as_numeric(value: Any, what: str, expected: str, *, file: str | None = None) -> np.ndarray:
    """``value`` as a numeric (bool, int or float) array, else an :class:`InputError`: ``what`` must be
    numeric (``expected``)."""
    arr = np.asanyarray(value)
    if arr.dtype == object:  # e.g. lists with None for unknown (JSON's null): None becomes NaN
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            pass
    if arr.dtype.kind not in "biuf":
        got = f"dtype {arr.dtype}" if isinstance(value, np.ndarray) else reprlib.repr(value)
        raise InputError(f"{what} must be numeric ({expected}); got {got}", file=file)
    return arr


def check_benchmark(value: Any, name: str = "bench") -> "Benchmark":
    """``value`` if it is a :class:`Benchmark`, else an :class:`InputError` naming the parameter ``name``."""
    if not isinstance(value, Benchmark):
        how = f"corpus[{value!r}]" if isinstance(value, str) else "corpus['<name>']"
        raise InputError(f"{name} must be a routereval Benchmark ({how}); got {type(value).__name__}")
    return value


def as_benchmarks(value: Any, takes: str) -> list["Benchmark"]:
    """``value`` (one :class:`Benchmark` or an iterable of them) as a list, else an :class:`InputError`
    saying what the caller ``takes``: "write_corpus takes a Corpus or Benchmarks; got a str"."""
    if isinstance(value, Benchmark):
        return [value]
    one = isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable)  # not a list of them
    items = [value] if one else list(value)
    bad = [type(b).__name__ for b in items if not isinstance(b, Benchmark)]
    if bad:
        raise InputError(f"{takes}; got a {bad[0]}")
    return items


def _check_unique(arr: np.ndarray, what: str, source: str | None) -> None:
    if len(set(arr.tolist())) != len(arr):
        seen: set = set()
        for v in arr.tolist():
            if v in seen:
                raise InputError(f"duplicate {what} {v!r}; each must appear once", file=source)
            seen.add(v)


class Benchmark:
    """Prompts of one benchmark and the scores of its models on them.

    Parameters
    ----------
    name
        Benchmark name, e.g. ``"mmlu_pro"``.
    models
        (n_models,) model ids, unique.
    prompt_ids
        (n_prompts,) prompt ids, unique.
    subsets
        (n_prompts,) subset of each prompt (the strata of splits); one subset named
        after the benchmark when omitted.
    texts, gold
        (n_prompts,) prompt text and reference answer, optional.
    scores
        (n_models, n_prompts) float in [0, 1], NaN where not evaluated. Give either
        ``scores`` or ``bits``.
    bits, observed
        Bit-packed binary scores and the packed mask of evaluated cells (None: all
        evaluated), each (n_models, ceil(n_prompts / 8)) uint8.
    binary
        Whether every score is 0 or 1 (True or False); inferred from ``scores`` when None.
        True with a score that is neither 0 nor 1 (NaN aside) is an :class:`InputError`.
    cost
        (n_models, n_prompts) USD per query (>= 0, finite), NaN where unknown; optional.
    embeddings
        Precomputed prompt embeddings by encoder name, each (n_prompts, dim) finite float
        (e.g. the official RoBERTa embeddings, or a synthetic corpus's own).
    source
        Where the data came from, for error messages.

    ``models``, ``prompt_ids``, ``subsets``, ``texts`` and ``gold`` are lists or arrays; one
    str is refused (it would be read as one entry per character).
    """

    def __init__(
        self,
        name: str,
        *,
        models: Sequence[str] | np.ndarray,
        prompt_ids: Sequence | np.ndarray,
        subsets: Sequence[str] | np.ndarray | None = None,
        texts: Sequence[str] | np.ndarray | None = None,
        gold: Sequence | np.ndarray | None = None,
        scores: np.ndarray | None = None,
        bits: np.ndarray | None = None,
        observed: np.ndarray | None = None,
        binary: bool | None = None,
        cost: np.ndarray | None = None,
        embeddings: dict[str, np.ndarray] | None = None,
        source: str | None = None,
        validate: bool = True,
    ) -> None:
        self.name = str(name)
        self.source = source
        self.models = models if isinstance(models, np.ndarray) and models.dtype == object else _as_str_array(models, "models")
        self.prompt_ids = prompt_ids if isinstance(prompt_ids, np.ndarray) and prompt_ids.dtype == object else _as_str_array(prompt_ids, "prompt_ids")
        n_models, n_prompts = len(self.models), len(self.prompt_ids)
        if subsets is None:
            self.subsets = np.full(n_prompts, self.name, dtype=object)
        else:
            self.subsets = subsets if isinstance(subsets, np.ndarray) and subsets.dtype == object else _as_str_array(subsets, "subsets")
        self._texts_loader: Callable[[], np.ndarray] | None = None
        self.texts = texts
        self.gold = None if gold is None else _as_1d(gold, "gold")
        if (scores is None) == (bits is None):
            raise InputError(f"benchmark {self.name!r}: give exactly one of scores or bits", file=source)
        if validate and scores is not None:
            scores = self._numeric(scores, "scores", "floats in [0, 1], NaN where not evaluated")
        self._scores = None if scores is None else np.asanyarray(scores)
        self._bits = None if bits is None else np.asanyarray(bits, dtype=np.uint8)
        self._observed = None if observed is None else np.asanyarray(observed, dtype=np.uint8)
        self._observed_checked = bits is not None  # with bits given, observed=None means complete
        self.cost = None if cost is None else np.asanyarray(cost)
        self.embeddings: dict[str, np.ndarray] = {k: np.asanyarray(v) for k, v in dict(embeddings or {}).items()}
        # seed or "publisher" -> stored split file (set by open_corpus) or a reader's Split
        self.saved_splits: dict[int | str, object] = {}
        self.legacy_splits = False  # opened from a corpus written before named splits (see data.splits)
        if bits is not None:
            self.binary = True
        elif binary is None:
            finite = self._scores[~np.isnan(self._scores)] if validate else np.array([])
            self.binary = bool(np.all((finite == 0) | (finite == 1)))
        else:
            self.binary = check_bool(binary, "binary")
        if validate:
            self._validate(n_models, n_prompts, declared_binary=binary is not None)

    # ------------------------------------------------------------------ checks
    def _validate(self, n_models: int, n_prompts: int, *, declared_binary: bool = False) -> None:
        src = self.source
        if n_models == 0 or n_prompts == 0:
            raise InputError(
                f"benchmark {self.name!r} is empty ({n_models} models x {n_prompts} prompts); "
                "expected at least one model and one prompt",
                file=src,
            )
        _check_unique(self.models, f"model in benchmark {self.name!r}:", src)
        _check_unique(self.prompt_ids, f"prompt id in benchmark {self.name!r}:", src)
        for what, arr in (("subsets", self.subsets), ("texts", self._texts), ("gold", self.gold)):
            if arr is not None and len(arr) != n_prompts:
                raise InputError(
                    f"benchmark {self.name!r}: {what} has {len(arr)} entries, expected one per prompt ({n_prompts})",
                    file=src,
                )
        shape = (n_models, n_prompts)
        if self._scores is not None:
            if self._scores.shape != shape:
                raise InputError(f"benchmark {self.name!r}: scores have shape {self._scores.shape}, expected {shape}", file=src)
            s = self._scores
            self._refuse_cells(~np.isnan(s) & ((s < 0) | (s > 1)), s, "score", "is outside [0, 1]")
            if self.binary and declared_binary:  # an inferred True was computed from these very scores
                self._refuse_cells((s != 0) & (s != 1) & ~np.isnan(s), s, "score",
                                   "is neither 0 nor 1, but binary=True; give binary=False (graded) or None (inferred)")
        else:
            packed = (n_models, (n_prompts + 7) // 8)
            if self._bits.shape != packed:
                raise InputError(f"benchmark {self.name!r}: bits have shape {self._bits.shape}, expected {packed}", file=src)
            if self._observed is not None and self._observed.shape != packed:
                raise InputError(f"benchmark {self.name!r}: observed mask has shape {self._observed.shape}, expected {packed}", file=src)
        if self.cost is not None:
            c = self.cost = self._numeric(self.cost, "cost", "USD >= 0, NaN where unknown")
            if c.shape != shape:
                raise InputError(f"benchmark {self.name!r}: cost has shape {c.shape}, expected {shape}", file=src)
            if c.size and not (np.fmin.reduce(c, axis=None) >= 0 and np.isfinite(np.fmax.reduce(c, axis=None))):
                # NaN-ignoring min and max first: the cell-by-cell mask only when one is wrong
                self._refuse_cells((c < 0) | np.isinf(c), c, "cost",
                                   "is not a price; expected USD >= 0 (NaN where unknown)")
        for enc, emb in self.embeddings.items():
            emb = self._numeric(emb, f"embeddings {enc!r}", "finite floats")
            if emb.ndim != 2 or emb.shape[0] != n_prompts:
                raise InputError(
                    f"benchmark {self.name!r}: embeddings {enc!r} have shape {emb.shape}, expected ({n_prompts}, dim)",
                    file=src)
            bad = np.flatnonzero(~np.isfinite(emb).all(axis=1))
            if bad.size:
                raise InputError(f"benchmark {self.name!r}: embeddings {enc!r} hold NaN or inf for {bad.size} of "
                                 f"{n_prompts} prompts (first: {self.prompt_ids[bad[0]]!r}); expected finite floats",
                                 file=src)

    def _numeric(self, value: Any, what: str, expected: str) -> np.ndarray:
        return as_numeric(value, f"benchmark {self.name!r}: {what}", expected, file=self.source)

    def _refuse_cells(self, bad: np.ndarray, values: np.ndarray, what: str, problem: str) -> None:
        """An :class:`InputError` naming the first (model, prompt) cell where ``bad`` is True, if any."""
        if bad.any():
            i, j = map(int, np.argwhere(bad)[0])
            raise InputError(f"benchmark {self.name!r}: {what} {float(values[i, j])!r} of model {self.models[i]!r} "
                             f"on prompt {self.prompt_ids[j]!r} {problem}", file=self.source)

    # ------------------------------------------------------------------ texts
    @property
    def texts(self) -> np.ndarray | None:
        """(n_prompts,) prompt texts, or None; deferred texts (:meth:`defer_texts`) are read now."""
        if self._texts_loader is not None:
            texts = np.asarray(self._texts_loader(), dtype=object)
            if texts.shape != (self.n_prompts,):
                raise InputError(f"benchmark {self.name!r}: {texts.shape[0] if texts.ndim else 0} prompt texts read, "
                                 f"expected one per prompt ({self.n_prompts})", file=self.source)
            self._texts, self._texts_loader = texts, None
        return self._texts

    @texts.setter
    def texts(self, value: Sequence[str] | np.ndarray | None) -> None:
        self._texts_loader = None
        if value is None or (isinstance(value, np.ndarray) and value.dtype == object):
            self._texts = value
        else:
            self._texts = _as_str_array(value, "texts")

    def defer_texts(self, loader: Callable[[], np.ndarray]) -> None:
        """Read the prompt texts with ``loader()`` (returning (n_prompts,) str) on first use of :attr:`texts`.

        A corpus opened from disk defers its texts: most work (pools, stored embeddings,
        embedding routers) never reads them, and they can be the largest part of a corpus.
        """
        self._texts, self._texts_loader = None, loader

    @property
    def has_texts(self) -> bool:
        """Whether the benchmark has prompt texts, without reading deferred ones."""
        return self._texts is not None or self._texts_loader is not None

    @property
    def texts_loaded(self) -> bool:
        """Whether the texts are in memory (False while deferred, or when there are none)."""
        return self._texts is not None

    # ------------------------------------------------------------------ shape
    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def n_prompts(self) -> int:
        return len(self.prompt_ids)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_models, self.n_prompts)

    @property
    def has_cost(self) -> bool:
        return self.cost is not None

    # ------------------------------------------------------------------ scores
    @property
    def scores(self) -> np.ndarray:
        """(n_models, n_prompts) float32 scores, NaN where not evaluated."""
        if self._scores is None:
            s = _bits.unpack(self._bits, self.n_prompts)
            if self._observed is not None:
                s[_bits.unpack(self._observed, self.n_prompts, dtype=bool) == 0] = np.nan
            self._scores = s
        return self._scores

    @property
    def bits(self) -> np.ndarray:
        """(n_models, ceil(n_prompts / 8)) uint8 packed scores; binary benchmarks only."""
        if not self.binary:
            raise InputError(f"benchmark {self.name!r} has graded scores; it has no bit-packed form")
        if self._bits is None:
            s = self._scores
            self._bits = _bits.pack(np.nan_to_num(s, nan=0.0) >= 0.5)
        return self._bits

    @property
    def observed(self) -> np.ndarray | None:
        """Packed mask of evaluated cells for binary benchmarks, None when all are evaluated."""
        if self._observed is None and self._scores is not None and not self._observed_checked:
            miss = np.isnan(self._scores)
            if miss.any():
                self._observed = _bits.pack(~miss)
            self._observed_checked = True
        return self._observed

    def observed_matrix(self) -> np.ndarray:
        """(n_models, n_prompts) bool: True where a model was evaluated."""
        if self._scores is None:
            if self._observed is None:
                return np.ones(self.shape, dtype=bool)
            return _bits.unpack(self._observed, self.n_prompts, dtype=bool)
        return ~np.isnan(self._scores)

    def record_counts(self) -> np.ndarray:
        """(n_models,) int64: how many prompts each model was evaluated on (binary: by popcount, nothing unpacked)."""
        if self._scores is None:
            if self._observed is None:
                return np.full(self.n_models, self.n_prompts, dtype=np.int64)
            return _bits.popcount(self._observed, axis=1).astype(np.int64)
        return np.count_nonzero(~np.isnan(self._scores), axis=1).astype(np.int64)

    def complete_models(self, *, max_missing: float = 0.0) -> np.ndarray:
        """(n_models,) bool: the models evaluated on every prompt, or on all but at most a share ``max_missing``
        (in [0, 1)) of them (binary: by popcount, nothing unpacked)."""
        if not 0 <= max_missing < 1:
            raise InputError(f"max_missing must be a share in [0, 1); got {max_missing!r}")
        return self.n_prompts - self.record_counts() <= max_missing * self.n_prompts

    def scores_on(self, prompts: np.ndarray) -> np.ndarray:
        """(n_models, k) float64 scores on the prompts ``prompts`` (k,), NaN where a model was not evaluated
        (binary: only those columns' bits are read)."""
        idx = np.asarray(prompts, dtype=np.int64)
        if self._scores is not None:
            return self._scores[:, idx].astype(np.float64)
        out = _bits.take_columns(self.bits, idx, dtype=np.float64)
        if self._observed is not None:
            out[~_bits.take_columns(self._observed, idx, dtype=bool)] = np.nan
        return out

    @property
    def n_records(self) -> int:
        if self._scores is None:
            if self._observed is None:
                return self.n_models * self.n_prompts
            return int(_bits.popcount(self._observed, axis=None))
        return int(np.count_nonzero(~np.isnan(self._scores)))

    @property
    def missing_share(self) -> float:
        total = self.n_models * self.n_prompts
        return 1.0 - self.n_records / total if total else 0.0

    @property
    def is_complete(self) -> bool:
        return self.n_records == self.n_models * self.n_prompts

    def _positions(self, index: Any, axis: str) -> np.ndarray:
        """(k,) int64 positions along ``axis`` ("prompts" or "models") from int indices or a boolean mask."""
        n = self.n_prompts if axis == "prompts" else self.n_models
        a = np.asarray(index)
        if a.dtype == bool:
            if a.shape != (n,):
                raise InputError(f"{axis}: a boolean mask must have one entry per {axis[:-1]} ({n}); got shape {a.shape}")
            return np.flatnonzero(a)
        if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
            raise InputError(f"{axis}: expected a 1-d array of int positions or a boolean mask; got "
                             f"{a.dtype} of shape {a.shape}")
        a = a.astype(np.int64)
        if a.size and (a.min() < -n or a.max() >= n):
            raise InputError(f"{axis}: positions must lie in [0, {n}) for benchmark {self.name!r}; got values from "
                             f"{a.min()} to {a.max()}")
        return a % n if a.size else a

    def model_means(self, prompts: np.ndarray | None = None) -> np.ndarray:
        """(n_models,) mean score of each model over ``prompts`` (int positions, repeats counted, or a
        boolean mask; all when None), NaN ignored; NaN where no prompt is given."""
        if prompts is not None:
            prompts = self._positions(prompts, "prompts")
            if not len(prompts):
                return np.full(self.n_models, np.nan)
        if self._scores is None and (prompts is None or len(np.unique(prompts)) == len(prompts)):
            # popcount fast path: no unpacking of the full matrix
            mask = _bits.column_mask(self.n_prompts, prompts)
            if self._observed is None:
                n = len(prompts) if prompts is not None else self.n_prompts
                return _bits.popcount(self._bits & mask, axis=1) / max(n, 1)
            seen = self._observed & mask  # the mean over what each model was evaluated on
            n = _bits.popcount(seen, axis=1)
            return np.where(n > 0, _bits.popcount(self._bits & seen, axis=1) / np.maximum(n, 1), np.nan)
        s = self.scores if prompts is None else self.scores[:, prompts]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nanmean(s, axis=1, dtype=np.float64) if np.isnan(s).any() else s.mean(axis=1, dtype=np.float64)

    # ------------------------------------------------------------------ subsets
    @property
    def subset_names(self) -> list[str]:
        """Subset names in order of first appearance."""
        return list(dict.fromkeys(self.subsets.tolist()))

    def subset_codes(self) -> np.ndarray:
        """(n_prompts,) int index of each prompt's subset into :attr:`subset_names`."""
        lookup = {s: i for i, s in enumerate(self.subset_names)}
        return np.fromiter((lookup[s] for s in self.subsets.tolist()), dtype=np.int64, count=self.n_prompts)

    def model_index(self, names: str | Iterable[str]) -> np.ndarray:
        """(k,) row indices of the given model ids: one id (a str) or several; unknown ids are an
        :class:`InputError`."""
        if names is None:
            raise InputError("names must be a model id or a list of them; got None")
        lookup = {m: i for i, m in enumerate(self.models.tolist())}
        out = []
        for n in as_list(names, "names"):
            if n not in lookup:
                raise InputError(f"model {n!r} is not in benchmark {self.name!r}")
            out.append(lookup[n])
        return np.asarray(out, dtype=np.int64)

    def select(self, *, models: np.ndarray | None = None, prompts: np.ndarray | None = None) -> "Benchmark":
        """A new benchmark restricted to the given model rows and prompt columns."""
        mi = slice(None) if models is None else self._positions(models, "models")
        pi = slice(None) if prompts is None else self._positions(prompts, "prompts")
        take = lambda a: None if a is None else a[pi]  # noqa: E731
        return Benchmark(
            self.name,
            models=self.models[mi],
            prompt_ids=self.prompt_ids[pi],
            subsets=self.subsets[pi],
            texts=take(self.texts),
            gold=take(self.gold),
            scores=self.scores[mi][:, pi],
            binary=self.binary,
            cost=None if self.cost is None else self.cost[mi][:, pi],
            embeddings={k: v[pi] for k, v in self.embeddings.items()},
            source=self.source,
            validate=False,
        )

    def __repr__(self) -> str:
        kind = "binary" if self.binary else "graded"
        return f"Benchmark({self.name!r}, {self.n_models} models x {self.n_prompts} prompts, {kind}{', cost' if self.has_cost else ''})"


@dataclass
class ModelTable:
    """The models of a corpus.

    Attributes
    ----------
    ids
        (n,) model ids (names), unique.
    params
        (n,) parameter counts, NaN where unknown.
    price_in, price_out
        (n,) USD per input / output token, NaN where unknown.
    family
        (n,) family name ("" where unknown).
    """

    ids: np.ndarray
    params: np.ndarray = field(default=None)  # type: ignore[assignment]
    price_in: np.ndarray = field(default=None)  # type: ignore[assignment]
    price_out: np.ndarray = field(default=None)  # type: ignore[assignment]
    family: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.ids = _as_str_array(self.ids, "model ids")
        n = len(self.ids)
        _check_unique(self.ids, "model id", None)
        for name in ("params", "price_in", "price_out"):
            v = getattr(self, name)
            setattr(self, name, np.full(n, np.nan) if v is None else np.asarray(v, dtype=np.float64))
        self.family = np.full(n, "", dtype=object) if self.family is None else _as_str_array(self.family, "family")
        for name in ("params", "price_in", "price_out", "family"):
            if len(getattr(self, name)) != n:
                raise InputError(f"models table: column {name!r} has {len(getattr(self, name))} entries, expected {n}")

    def __repr__(self) -> str:
        names = ", ".join(map(str, self.ids[:4])) + (f", ... ({len(self.ids)} in all)" if len(self.ids) > 4 else "")
        known = [f"{what} of {int(np.sum(~np.isnan(v)))}" for what, v in
                 (("sizes", self.params), ("prices", self.price_in))] + [f"families of {int(np.sum(self.family != ''))}"]
        return f"ModelTable({len(self.ids)} models: {names}; known: {', '.join(known)})"

    def __len__(self) -> int:
        return len(self.ids)

    def index(self) -> dict[str, int]:
        return {m: i for i, m in enumerate(self.ids.tolist())}

    @classmethod
    def union(cls, benchmarks: Iterable[Benchmark], info: "ModelTable | None" = None) -> "ModelTable":
        """Models of ``benchmarks`` in order of first appearance, with ``info`` merged in."""
        ids: dict[str, None] = {}
        if info is not None:
            ids.update(dict.fromkeys(info.ids.tolist()))
        for b in benchmarks:
            ids.update(dict.fromkeys(b.models.tolist()))
        table = cls(np.array(list(ids), dtype=object))
        if info is not None:
            k = len(info)
            table.params[:k], table.price_in[:k], table.price_out[:k], table.family[:k] = (
                info.params, info.price_in, info.price_out, info.family)
        return table


@dataclass
class Corpus:
    """A set of benchmarks plus the table of their models.

    Attributes
    ----------
    models
        Every model that appears in some benchmark (and maybe more).
    benchmarks
        Benchmark name -> :class:`Benchmark`, in a stable order.
    path
        The corpus directory it was opened from, if any.
    """

    models: ModelTable
    benchmarks: dict[str, Benchmark]
    path: object = None

    @classmethod
    def from_benchmarks(cls, benchmarks: Iterable[Benchmark], *, models: ModelTable | None = None) -> "Corpus":
        """A corpus of ``benchmarks`` (one :class:`Benchmark` or several, unique names) and their models."""
        benchmarks = as_benchmarks(benchmarks, "Corpus.from_benchmarks takes a Benchmark or a list of Benchmarks")
        out: dict[str, Benchmark] = {}
        for b in benchmarks:
            if b.name in out:
                raise InputError(f"benchmark {b.name!r} is given twice; benchmark names must be unique", file=b.source)
            out[b.name] = b
        return cls(models=ModelTable.union(benchmarks, models), benchmarks=out)

    def __getitem__(self, name: str) -> Benchmark:
        try:
            return self.benchmarks[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name, e.g. a list
            raise InputError(
                f"unknown benchmark {name!r}; expected one of: {', '.join(self.benchmarks) or '(none)'}"
            ) from None

    def __iter__(self):
        return iter(self.benchmarks.values())

    def __repr__(self) -> str:
        names = list(self.benchmarks)
        shown = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
        return f"Corpus({len(self.models.ids)} models; benchmarks: {shown})"

    def __contains__(self, name: object) -> bool:
        """Whether a benchmark of that name is here (as ``corpus[name]`` finds it)."""
        return name in self.benchmarks

    def __len__(self) -> int:
        return len(self.benchmarks)

    @property
    def n_records(self) -> int:
        return sum(b.n_records for b in self.benchmarks.values())


def benchmarks_by_name(benchmarks: Mapping[str, Benchmark] | Iterable[Benchmark]) -> dict[str, Benchmark]:
    if isinstance(benchmarks, Mapping):
        return dict(benchmarks)
    return {b.name: b for b in benchmarks}
