"""The on-disk corpus store: Parquet tables, a memory-mapped dense cache, a manifest.

Layout of a corpus directory::

    manifest.json                       schema version, per-benchmark summary, checksums
    models.parquet                      model_id int32, model str, params, price_in, price_out, family
    prompts.parquet                     benchmark, prompt_id int32 (corpus-wide), prompt str, subset, text, gold;
                                        one row group per benchmark (opening one reads only its rows)
    records/benchmark=<name>/part-0.parquet   model_id int32, prompt_id int32, score float32[, cost float64]
    cache/<name>/models.npy             (n_models,) int32 model_id of each matrix row
    cache/<name>/bits.npy               binary: (n_models, ceil(n_prompts/8)) uint8, bit-packed
    cache/<name>/observed.npy           binary with missing cells: packed mask of evaluated cells
    cache/<name>/scores.npy             graded: (n_models, n_prompts) float32 or float64, NaN = missing
    cache/<name>/cost.npy               optional (n_models, n_prompts) float64 USD
    embeddings/<name>/<encoder>.npy     optional (n_prompts, dim) float32 prompt embeddings
    splits/<name>/seed-42.npz           the default train/val/test split (prompt indices), so every
                                        router sees the same split whatever numpy draws later
    splits/<name>/publisher.npz         optional: the split the dataset's publisher shipped
                                        (train, val, test, seed of a carved val or -1, note)

The Parquet tables are the interchange format (DuckDB reads them as they are); the
cache is what every hot path uses. Every write goes to a sibling temporary
directory that is renamed into place only when complete, so an interrupted write
leaves the old corpus (or none), never half of one.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from routereval.atomic import swap_directory, temporary_dir
from routereval.data.model import Benchmark, Corpus, ModelTable, as_benchmarks, check_benchmark
from routereval.data.splits import (  # noqa: F401 - load_saved_split: re-exported
    DEFAULT_SPLIT_SEED,
    load_saved_split,
    make_split,
    missing_policy,
    publisher_split,
)
from routereval.errors import CorpusError, InputError
from routereval.validate import as_list, as_path, check_bool

SCHEMA_VERSION = 1
FORMAT = "routereval-corpus"
MANIFEST = "manifest.json"
EMBEDDINGS_CACHE = "embeddings-cache"  # a corpus's embedding cache (routereval.embed.cache); no file of the manifest
_CELLS_PER_ROW_GROUP = 4_000_000
_PROMPT_COLUMNS = ("benchmark", "prompt_id", "prompt", "subset", "text", "gold")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _safe_name(name: str) -> str:
    """A file-name-safe form of an encoder name ("official/RoBERTa" -> "official__RoBERTa")."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name.replace("/", "__"))


class CorpusWriter:
    """Streams benchmarks into a new corpus directory, atomically.

    Benchmarks are written one at a time, so a corpus larger than memory can be
    built benchmark by benchmark. Nothing appears at ``path`` until :meth:`close`.

    Parameters
    ----------
    path
        The corpus directory to create (an existing corpus there is replaced).
    models
        Optional model metadata (sizes, prices, families); models that only appear
        in benchmarks are appended with unknown metadata.
    progress
        Optional callback ``progress(benchmark_name, done_cells, total_cells)``.

    Examples
    --------
    >>> with CorpusWriter(path) as w:          # doctest: +SKIP
    ...     for bench in benchmarks:
    ...         w.add(bench)
    """

    def __init__(self, path: str | os.PathLike, *, models: ModelTable | None = None,
                 progress: Callable[[str, int, int], None] | None = None) -> None:
        self.path = as_path(path, "path")
        self._info = models
        self._progress = progress
        self._model_ids: dict[str, int] = {} if models is None else models.index()
        self._prompt_rows: list[dict] = []
        self._benchmarks: dict[str, dict] = {}
        self._next_prompt = 0
        self._tmp: Path | None = None
        self._closed = False

    # -------------------------------------------------------------- lifecycle
    def __enter__(self) -> "CorpusWriter":
        self._open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _open(self) -> None:
        if self._tmp is not None:
            return
        if self.path.exists() and not self.path.is_dir():
            raise CorpusError(f"{self.path}: exists and is a file, not a corpus directory; choose another directory "
                              "(--out)")
        if self.path.exists() and not (self.path / MANIFEST).exists() and any(self.path.iterdir()):
            raise CorpusError(f"{self.path}: exists and is not a routereval corpus; refusing to overwrite it")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = tmp = temporary_dir(self.path)  # the temporaries of killed writes go first
        (tmp / "cache").mkdir()
        (tmp / "records").mkdir()

    def abort(self) -> None:
        """Throw away everything written so far; ``path`` is left as it was."""
        if self._tmp is not None and self._tmp.exists():
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._closed = True

    # -------------------------------------------------------------- writing
    def add(self, bench: Benchmark) -> None:
        """Write one benchmark: its records, its dense cache and its prompts."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        check_benchmark(bench)
        self._open()
        if bench.name in self._benchmarks:
            raise CorpusError(f"benchmark {bench.name!r} written twice")
        tmp = self._tmp
        assert tmp is not None
        row_ids = np.empty(bench.n_models, dtype=np.int32)
        for i, m in enumerate(bench.models.tolist()):
            row_ids[i] = self._model_ids.setdefault(m, len(self._model_ids))
        offset = self._next_prompt
        self._next_prompt += bench.n_prompts

        # dense cache
        cdir = tmp / "cache" / bench.name
        cdir.mkdir()  # never parents=True under tmp: a temporary that vanished must fail the write, not be remade
        np.save(cdir / "models.npy", row_ids)
        if bench.binary:
            np.save(cdir / "bits.npy", np.ascontiguousarray(bench.bits))
            if bench.observed is not None:
                np.save(cdir / "observed.npy", np.ascontiguousarray(bench.observed))
        else:
            # graded scores keep float64 when they come as float64 (official files): no rounding
            dtype = np.float64 if np.asarray(bench.scores).dtype == np.float64 else np.float32
            np.save(cdir / "scores.npy", np.ascontiguousarray(bench.scores, dtype=dtype))
        if bench.cost is not None:
            np.save(cdir / "cost.npy", np.ascontiguousarray(bench.cost, dtype=np.float64))

        if bench.embeddings:
            edir = tmp / "embeddings" / bench.name
            edir.parent.mkdir(exist_ok=True)
            edir.mkdir()
            for enc, emb in bench.embeddings.items():
                np.save(edir / f"{_safe_name(enc)}.npy", np.ascontiguousarray(emb, dtype=np.float32))

        splits, publisher = self._save_splits(bench, tmp)

        # long-format records, streamed in chunks of model rows
        rdir = tmp / "records" / f"benchmark={bench.name}"
        rdir.mkdir()
        fields = [("model_id", pa.int32()), ("prompt_id", pa.int32()), ("score", pa.float32())]
        if bench.cost is not None:
            fields.append(("cost", pa.float64()))
        schema = pa.schema(fields)
        rows_per_chunk = max(1, _CELLS_PER_ROW_GROUP // max(bench.n_prompts, 1))
        total = bench.n_models * bench.n_prompts
        n_records = 0
        prompt_ids = np.arange(offset, offset + bench.n_prompts, dtype=np.int32)
        with pq.ParquetWriter(rdir / "part-0.parquet", schema, compression="zstd", compression_level=1) as pw:
            for start in range(0, bench.n_models, rows_per_chunk):
                stop = min(start + rows_per_chunk, bench.n_models)
                block = self._score_block(bench, start, stop)
                seen = ~np.isnan(block)
                if seen.all():
                    mi = np.repeat(row_ids[start:stop], bench.n_prompts)
                    pi = np.tile(prompt_ids, stop - start)
                    sc = block.ravel()
                    cst = None if bench.cost is None else np.asarray(bench.cost[start:stop], dtype=np.float64).ravel()
                else:
                    r, c = np.nonzero(seen)
                    mi, pi, sc = row_ids[start:stop][r], prompt_ids[c], block[r, c]
                    cst = None if bench.cost is None else np.asarray(bench.cost[start:stop], dtype=np.float64)[r, c]
                cols = [pa.array(mi), pa.array(pi), pa.array(sc.astype(np.float32, copy=False))]
                if bench.cost is not None:
                    cols.append(pa.array(cst))
                pw.write_table(pa.Table.from_arrays(cols, schema=schema))
                n_records += len(sc)
                if self._progress is not None:
                    self._progress(bench.name, stop * bench.n_prompts, total)

        gold = None if bench.gold is None else [None if g is None else str(g) for g in bench.gold.tolist()]
        self._prompt_rows.append({
            "benchmark": bench.name,
            "prompt_id": prompt_ids,
            "prompt": bench.prompt_ids.tolist(),
            "subset": bench.subsets.tolist(),
            "text": None if bench.texts is None else bench.texts.tolist(),
            "gold": gold,
        })
        observed_share = n_records / total if total else 1.0
        with np.errstate(invalid="ignore"):
            means = bench.model_means()
        self._benchmarks[bench.name] = {
            "models": bench.n_models,
            "prompts": bench.n_prompts,
            "records": n_records,
            "binary": bench.binary,
            "missing": round(1.0 - observed_share, 6),
            "cost": bench.cost is not None,
            "texts": bench.has_texts,
            "subsets": bench.subset_names,
            "prompt_offset": offset,
            "embeddings": {enc: f"embeddings/{bench.name}/{_safe_name(enc)}.npy" for enc in bench.embeddings},
            "splits": splits,
            "publisher_split": publisher,  # always written: its absence marks a corpus from before named splits
            "mean_score": {
                "min": float(np.nanmin(means)), "median": float(np.nanmedian(means)), "max": float(np.nanmax(means))},
        }

    @staticmethod
    def _save_splits(bench: Benchmark, tmp: Path) -> tuple[dict[str, str], dict | None]:
        """Store the paper's seed-42 split and the publisher's split, if any, with the benchmark.

        Returns the manifest's ``splits`` ({"42": file, "publisher": file}) and a summary of the
        publisher split (None without one).
        """
        files: dict[str, str] = {}
        pub = publisher_split(bench)
        try:
            policy = missing_policy(bench).name
            split = make_split(bench, seed=DEFAULT_SPLIT_SEED, split="random")
        except InputError:  # too few prompts for an 80/10/10 split
            split = None
        if split is not None:
            rel = f"splits/{bench.name}/seed-{DEFAULT_SPLIT_SEED}.npz"
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            np.savez(tmp / rel, train=split.train, val=split.val, test=split.test, policy=np.array(policy))
            files[str(DEFAULT_SPLIT_SEED)] = rel
        if pub is None:
            return files, None
        rel = f"splits/{bench.name}/publisher.npz"
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp / rel, train=pub.train, val=pub.val, test=pub.test,
                 seed=np.array(-1 if pub.seed is None else pub.seed), note=np.array(pub.note))
        files["publisher"] = rel
        return files, {"train": len(pub.train), "val": len(pub.val), "test": len(pub.test), "note": pub.note}

    @staticmethod
    def _score_block(bench: Benchmark, start: int, stop: int) -> np.ndarray:
        if bench._scores is not None:  # noqa: SLF001 - avoid unpacking the whole matrix
            return np.asarray(bench._scores[start:stop], dtype=np.float32)
        from routereval.data import bits as _bits

        block = _bits.unpack(bench._bits[start:stop], bench.n_prompts)  # noqa: SLF001
        if bench._observed is not None:  # noqa: SLF001
            block[_bits.unpack(bench._observed[start:stop], bench.n_prompts, dtype=bool) == 0] = np.nan  # noqa: SLF001
        return block

    def close(self) -> Path:
        """Write the tables and the manifest, then move the corpus into place."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._closed:
            return self.path
        self._open()
        tmp = self._tmp
        assert tmp is not None
        try:
            ids = list(self._model_ids)
            info = self._info
            n = len(ids)
            params = np.full(n, np.nan)
            price_in = np.full(n, np.nan)
            price_out = np.full(n, np.nan)
            family = np.array([""] * n, dtype=object)
            if info is not None:
                k = len(info)
                params[:k], price_in[:k], price_out[:k], family[:k] = info.params, info.price_in, info.price_out, info.family
            pq.write_table(pa.table({
                "model_id": pa.array(np.arange(n, dtype=np.int32)),
                "model": pa.array(ids, type=pa.string()),
                "params": pa.array(params),
                "price_in": pa.array(price_in),
                "price_out": pa.array(price_out),
                "family": pa.array(family.tolist(), type=pa.string()),
            }), tmp / "models.parquet")
            self._write_prompts(tmp / "prompts.parquet")
            files = {}
            for f in sorted(p for p in tmp.rglob("*") if p.is_file()):
                rel = f.relative_to(tmp).as_posix()
                files[rel] = {"bytes": f.stat().st_size, "sha256": sha256_file(f)}
            manifest = {
                "format": FORMAT,
                "schema_version": SCHEMA_VERSION,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "models": n,
                "benchmarks": self._benchmarks,
                "files": files,
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
            self._commit()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return self.path

    def _write_prompts(self, file: Path) -> None:
        """prompts.parquet with one row group per benchmark, so opening one reads only its rows."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([(k, pa.int32() if k == "prompt_id" else pa.string()) for k in _PROMPT_COLUMNS])
        with pq.ParquetWriter(file, schema, compression="zstd") as pw:
            for rows in self._prompt_rows:
                n = len(rows["prompt"])
                if n == 0:
                    continue
                cols = {"benchmark": pa.array([rows["benchmark"]] * n, type=pa.string()),
                        "prompt_id": pa.array(rows["prompt_id"], type=pa.int32())}
                for k in ("prompt", "subset", "text", "gold"):
                    v = rows[k]
                    cols[k] = pa.array([None] * n if v is None else v, type=pa.string())
                pw.write_table(pa.table(cols, schema=schema), row_group_size=n)

    def _commit(self) -> None:
        assert self._tmp is not None
        # a corpus written again (an import rerun) keeps its embedding cache: it is keyed by the encoder and the
        # texts' checksum, so unchanged prompts need no new embedding (MiniLM: minutes) and changed ones get new
        # entries; it is no file of the manifest
        cache, carried = self.path / EMBEDDINGS_CACHE, self._tmp / EMBEDDINGS_CACHE
        keep = (self.path / MANIFEST).is_file() and cache.is_dir() and not carried.exists()
        if keep:
            os.replace(cache, carried)
        try:
            swap_directory(self._tmp, self.path)
        except BaseException:
            if keep and carried.exists() and self.path.is_dir() and not cache.exists():
                try:
                    os.replace(carried, cache)  # the old corpus stays whole
                except OSError:
                    pass
            raise


def write_corpus(corpus: Corpus | Iterable[Benchmark], path: str | os.PathLike, *,
                 models: ModelTable | None = None,
                 progress: Callable[[str, int, int], None] | None = None) -> Path:
    """Write a corpus (or benchmarks) to the directory ``path`` atomically.

    Parameters
    ----------
    corpus
        A :class:`Corpus`, one :class:`Benchmark` or an iterable of them.
    path
        The corpus directory (a str or Path): missing, empty, or a corpus to replace (anything
        else is refused with :class:`CorpusError`). Nothing appears there until every benchmark
        is written.
    models
        Model metadata (sizes, prices); default the corpus's, else unknown.
    progress
        ``progress(task, done, total)``.

    Returns
    -------
    Path
        ``path``.
    """
    if isinstance(corpus, Corpus):
        benchmarks, models = list(corpus.benchmarks.values()), corpus.models if models is None else models
    else:
        benchmarks = as_benchmarks(corpus, "write_corpus takes a Corpus or Benchmarks")
    with CorpusWriter(path, models=models, progress=progress) as w:
        for b in benchmarks:
            w.add(b)
    return w.path


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest of the corpus at ``path``; a :class:`CorpusError` if it is not one."""
    path = Path(path)
    mf = path / MANIFEST
    if path.exists() and not path.is_dir():
        raise CorpusError(f"{path}: is a file, not a corpus directory")
    if not path.is_dir():
        raise CorpusError(f"{path}: no such corpus directory (create one with 'routereval data import' or 'routereval data synth')")
    if not mf.is_file():
        raise CorpusError(f"{path}: not a routereval corpus (no {MANIFEST})")
    try:
        manifest = json.loads(mf.read_text())
    except json.JSONDecodeError as e:
        raise CorpusError(f"{mf}: damaged manifest ({e})") from None
    if manifest.get("format") != FORMAT or manifest.get("schema_version") != SCHEMA_VERSION:
        raise CorpusError(
            f"{mf}: schema {manifest.get('format')!r} v{manifest.get('schema_version')!r}, "
            f"expected {FORMAT!r} v{SCHEMA_VERSION}"
        )
    return manifest


def open_corpus(path: str | os.PathLike, *, benchmarks: Iterable[str] | None = None,
                texts: bool = True) -> Corpus:
    """Open a stored corpus, memory-mapping its dense cache (fast, nothing is copied).

    Parameters
    ----------
    path
        The corpus directory (a str or Path).
    benchmarks
        Only these benchmarks: one name or a list of names (all when None).
    texts
        Whether the benchmarks get their prompt texts (True or False). They are read lazily in
        any case: only the opened benchmark's rows of ``prompts.parquet``, and texts only when
        ``Benchmark.texts`` is first read (an encoder or a text router); False: none.

    Raises
    ------
    InputError
        When an argument is of the wrong type (checked before the corpus is read).
    CorpusError
        When the directory is not a corpus, or a file is missing, unreadable or of the wrong
        shape for the manifest (checked cheaply; ``routereval data verify`` checks every byte).

    Returns
    -------
    Corpus
        ``corpus[name]`` is a :class:`Benchmark`; ``corpus.models`` the model table.
    """
    import pyarrow as pa

    path, texts, names = as_path(path, "path"), check_bool(texts, "texts"), as_list(benchmarks, "benchmarks")
    if not all(isinstance(b, str) for b in names or ()):
        raise InputError(f"benchmarks must be a benchmark name or a list of names; got {benchmarks!r}")
    manifest = read_manifest(path)
    if names is not None:  # a name the corpus lacks is the caller's mistake, not a damaged corpus
        stored = list(manifest.get("benchmarks", {}))
        for b in names:
            if b not in stored:
                raise InputError(f"unknown benchmark {b!r}; expected one of: {', '.join(stored)}", file=path)
    try:
        return _open_corpus(path, manifest, names, texts)
    except CorpusError:
        raise
    except (OSError, ValueError, KeyError, IndexError, TypeError, pa.ArrowException) as e:
        raise CorpusError(f"{path}: damaged corpus ({type(e).__name__}: {e}); "
                          "run 'routereval data verify' or rebuild it") from None


def _expect_shape(arr: np.ndarray, shape: tuple, what: Path) -> np.ndarray:
    if tuple(arr.shape) != tuple(shape):
        raise CorpusError(f"{what}: shape {tuple(arr.shape)}, the manifest says {tuple(shape)}; "
                          "the corpus is damaged (run 'routereval data verify')")
    return arr


def _open_corpus(path: Path, manifest: dict, benchmarks: Iterable[str] | None, texts: bool) -> Corpus:
    import pyarrow.parquet as pq

    with pq.ParquetFile(path / "models.parquet", pre_buffer=False) as pf:  # not read_table: its dataset
        mt = pf.read(use_threads=False)  # machinery costs ~12 MB of peak memory for a 0.5 MB table
    models = ModelTable(
        ids=np.array(mt.column("model").to_pylist(), dtype=object),
        params=mt.column("params").to_numpy(zero_copy_only=False),
        price_in=mt.column("price_in").to_numpy(zero_copy_only=False),
        price_out=mt.column("price_out").to_numpy(zero_copy_only=False),
        family=np.array(mt.column("family").to_pylist(), dtype=object),
    )
    names = list(manifest["benchmarks"]) if benchmarks is None else list(benchmarks)  # checked by open_corpus
    out: dict[str, Benchmark] = {}
    for name in names:
        meta = manifest["benchmarks"][name]
        lo, n = meta["prompt_offset"], meta["prompts"]
        # only this benchmark's rows (its row group), and no texts: they are read on first use
        rows = read_prompt_rows(path, lo, n, ["benchmark", "prompt", "subset", "gold"])
        if rows.num_rows != n or (n and rows.column("benchmark")[0].as_py() != name):
            raise CorpusError(f"{path / 'prompts.parquet'}: the rows of benchmark {name!r} are not where the "
                              "manifest says; the corpus is damaged (run 'routereval data verify')")
        cdir = path / "cache" / name
        n_models = meta["models"]
        model_rows = _expect_shape(np.load(cdir / "models.npy"), (n_models,), cdir / "models.npy")
        if n_models and (model_rows.min() < 0 or model_rows.max() >= len(models)):
            raise CorpusError(f"{cdir / 'models.npy'}: model ids outside models.parquet; the corpus is damaged")
        packed, dense = (n_models, (n + 7) // 8), (n_models, n)
        common = dict(
            models=models.ids[model_rows],
            prompt_ids=np.array(rows.column("prompt").to_pylist(), dtype=object),
            subsets=np.array(rows.column("subset").to_pylist(), dtype=object),
            gold=np.array(rows.column("gold").to_pylist(), dtype=object) if rows.column("gold").null_count < n else None,
            cost=(_expect_shape(np.load(cdir / "cost.npy", mmap_mode="r"), dense, cdir / "cost.npy")
                  if meta["cost"] else None),
            embeddings={enc: np.load(path / rel, mmap_mode="r") for enc, rel in meta.get("embeddings", {}).items()},
            source=str(path),
            validate=False,
        )
        splits = {int(k) if k.isdigit() else k: path / rel for k, rel in meta.get("splits", {}).items()}
        if meta["binary"]:
            obs = cdir / "observed.npy"
            out[name] = Benchmark(
                name, bits=_expect_shape(np.load(cdir / "bits.npy", mmap_mode="r"), packed, cdir / "bits.npy"),
                observed=_expect_shape(np.load(obs, mmap_mode="r"), packed, obs) if obs.exists() else None, **common)
        else:
            out[name] = Benchmark(
                name, scores=_expect_shape(np.load(cdir / "scores.npy", mmap_mode="r"), dense, cdir / "scores.npy"),
                binary=False, **common)
        out[name].saved_splits = splits
        out[name].legacy_splits = "publisher_split" not in meta  # written before named splits
        if texts and meta.get("texts", True):
            out[name].defer_texts(StoredTexts(path, name, lo, n, _prompts_stamp(manifest)))
    return Corpus(models=models, benchmarks=out, path=path)


def read_prompt_rows(path: Path, lo: int, n: int, columns: list[str]):
    """Rows ``lo`` to ``lo + n`` of ``path/prompts.parquet`` as a pyarrow Table (``columns`` only).

    Only the row groups holding those rows are decoded: one per benchmark in corpora written
    by this version, so a benchmark costs its own rows; a corpus written before holds all
    prompts in one row group, which is then read whole (still only ``columns``).
    """
    import pyarrow.parquet as pq

    with pq.ParquetFile(path / "prompts.parquet", pre_buffer=False) as pf:
        md = pf.metadata
        starts = np.concatenate([[0], np.cumsum([md.row_group(i).num_rows for i in range(md.num_row_groups)])])
        groups = [i for i in range(md.num_row_groups) if starts[i] < lo + n and starts[i + 1] > lo]
        if not groups:
            return pf.schema_arrow.empty_table().select(columns)
        table = pf.read_row_groups(groups, columns=columns, use_threads=False)  # small reads: threads only cost
    return table.slice(lo - int(starts[groups[0]]), n)


class StoredTexts:
    """The prompt texts of one stored benchmark, read from ``prompts.parquet`` when called.

    :func:`open_corpus` hands one to :meth:`Benchmark.defer_texts`, so texts cost nothing
    until an encoder or a text router reads ``Benchmark.texts``. Picklable (a path and
    two ints), unlike a closure.
    """

    def __init__(self, path: Path, name: str, lo: int, n: int, stamp: str | None = None) -> None:
        self.path, self.name, self.lo, self.n = Path(path), name, int(lo), int(n)
        self.stamp = stamp  # the manifest's checksum of prompts.parquet when the benchmark was opened

    def __call__(self) -> np.ndarray:
        """(n,) object array of the benchmark's prompt texts."""
        import pyarrow as pa

        file = self.path / "prompts.parquet"
        stamp = getattr(self, "stamp", None)  # None: pickled by a version without stamps, or no checksum
        if stamp is not None:
            try:
                now = _prompts_stamp(read_manifest(self.path))
            except CorpusError as e:
                raise CorpusError(f"{file}: cannot read the prompt texts of benchmark {self.name!r} ({e}); run "
                                  "'routereval data verify' or rebuild it") from None
            if now != stamp:
                # the directory holds another corpus now: its rows would be another benchmark's, or other texts
                raise CorpusError(f"{self.path}: the corpus was written again after benchmark {self.name!r} was "
                                  "opened from it; open it again (open_corpus) to read its prompt texts")
        try:
            rows = read_prompt_rows(self.path, self.lo, self.n, ["benchmark", "text"])
        except (OSError, ValueError, KeyError, IndexError, pa.ArrowException) as e:
            raise CorpusError(f"{file}: cannot read the prompt texts of benchmark {self.name!r} "
                              f"({type(e).__name__}: {e}); run 'routereval data verify' or rebuild it") from None
        if rows.num_rows != self.n or (self.n and rows.column("benchmark")[0].as_py() != self.name):
            raise CorpusError(f"{file}: the rows of benchmark {self.name!r} are not where the manifest says; "
                              "the corpus is damaged (run 'routereval data verify')")
        return np.array(rows.column("text").to_pylist(), dtype=object)

    def __repr__(self) -> str:
        return f"StoredTexts({str(self.path)!r}, {self.name!r}, {self.lo}, {self.n})"


def _prompts_stamp(manifest: dict) -> str | None:
    return manifest.get("files", {}).get("prompts.parquet", {}).get("sha256")


def verify_corpus(path: str | os.PathLike) -> list[str]:
    """Recompute every checksum of the manifest; returns the files that do not match."""
    path = Path(path)
    manifest = read_manifest(path)
    bad = []
    for rel, meta in manifest["files"].items():
        f = path / rel
        if not f.is_file() or f.stat().st_size != meta["bytes"] or sha256_file(f) != meta["sha256"]:
            bad.append(rel)
    return bad
