"""The results store of a sweep: a directory of Parquet files, one per finished cell.

Layout of ``RESULTS/`` (the contract the reports read; DuckDB's
``read_parquet('RESULTS/*.parquet')`` and ``pyarrow.dataset.dataset(RESULTS)`` read it as it is):

- ``<cell>-<unique>.parquet``: the rows of one prepared cell (every router run on it), written
  atomically: a hidden temporary ``.<name>.tmp-<pid>-…`` (:mod:`routereval.atomic`) is renamed into place, so a file is
  either whole or absent, whatever kills the writer;
- ``_sweep.json``: metadata (the corpus, its manifest checksum, the config), written atomically;
- ``_lock``: held (``flock``) by the sweep writing into the directory. The kernel releases the
  lock when its process dies, so a killed sweep never blocks the next one.

Names starting with ``.`` or ``_`` are not data (pyarrow and DuckDB's ``*.parquet`` skip them).
One row per (cell, router, params); :func:`schema` lists the columns.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

from routereval.atomic import remove, replacing
from routereval.errors import InputError, RouterEvalError
from routereval.validate import as_path

__all__ = ["LOCK", "SWEEP_META", "ResultsLock", "ResultsLockedError", "canonical_json", "check_metadata",
           "drop_rows", "finished_cells", "read_metadata", "read_results", "remove_temporaries", "schema",
           "write_metadata", "write_rows"]

SWEEP_META = "_sweep.json"
LOCK = "_lock"
META_FORMAT = "routereval-sweep"
META_VERSION = 1

FLOAT_FIGURES = ("mu", "mu_lo", "mu_hi", "v_r", "v_b", "v_b_lo", "v_b_hi", "e_p", "e_sel", "oracle",
                 "best_single", "oracle_recall", "p_beats_best_single", "fit_s", "route_s")
COST_FIGURES = ("mean_cost", "best_single_cost", "aiq", "apgr")
#: columns every results file has (a cell's identity and outcome)
IDENTITY = ("benchmark", "protocol", "m", "group", "seed", "router", "params", "cell_hash", "status")


class ResultsLockedError(RouterEvalError):
    """Another sweep is writing into the same results directory."""


def canonical_json(obj: Any) -> str:
    """The one JSON spelling of ``obj`` (sorted keys, no spaces): equal configurations hash equal."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def schema():
    """The pyarrow schema of a results row (see /work/results-schema.md in the team's notes)."""
    import pyarrow as pa

    s, i64, f64 = pa.string(), pa.int64(), pa.float64()
    fields = [
        ("benchmark", s), ("protocol", s), ("split", s), ("m", i64), ("group", s), ("seed", i64),
        ("draw", i64), ("embedding", s), ("router", s), ("params", s),
        *[(name, f64) for name in FLOAT_FIGURES],
        ("n_train", i64), ("n_val", i64), ("n_test", i64),
        *[(name, f64) for name in COST_FIGURES],
        ("selection", s), ("models", pa.list_(s)), ("best_single_model", s),
        ("test_prompts", pa.list_(i64)), ("routes", pa.list_(pa.int32())),
        ("routed_scores", pa.list_(f64)), ("best_single_scores", pa.list_(f64)), ("oracle_scores", pa.list_(f64)),
        ("cell_hash", s), ("status", s), ("error", s), ("version", s),
        ("started", pa.timestamp("us", tz="UTC")), ("ended", pa.timestamp("us", tz="UTC")), ("worker", s),
    ]
    return pa.schema(fields)


# --------------------------------------------------------------------------- writing


def _write_table_atomic(table, final: Path) -> None:
    import pyarrow.parquet as pq

    with replacing(final, fsync=True) as tmp:
        pq.write_table(table, tmp)


def write_rows(results: str | os.PathLike, rows: list[dict[str, Any]], *, stem: str) -> Path:
    """Write the rows of one finished cell as a new data file (atomically); returns its path.

    ``rows`` are dicts with the keys of :func:`schema` (missing keys are null); ``stem`` names
    the cell (a unique suffix is added, so a file is never overwritten).
    """
    import pyarrow as pa

    sch = schema()
    table = pa.Table.from_pylist([{f: r.get(f) for f in sch.names} for r in rows], schema=sch)
    final = Path(results) / f"{stem}-{uuid.uuid4().hex[:12]}.parquet"
    _write_table_atomic(table, final)
    return final


def remove_temporaries(results: str | os.PathLike) -> list[Path]:
    """Delete the hidden temporaries a killed sweep left: of its data files and its metadata.

    Call while holding the lock: only the sweep holding it writes these files. Other files in
    the directory (a report written there, say) are not the sweep's and are left alone.
    """
    gone = []
    for pattern in (".*.parquet.tmp-*", f".{SWEEP_META}.tmp-*"):
        for p in Path(results).glob(pattern):
            remove(p)
            gone.append(p)
    return sorted(gone)


def drop_rows(results: str | os.PathLike, files_hashes: dict[Path, set[str]]) -> None:
    """Rewrite each file without the rows whose ``cell_hash`` is listed for it (superseded rows).

    A file left without rows is deleted. Each rewrite is atomic; a crash in between leaves
    both the old and the new row of a cell, which :func:`read_results` resolves.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    for path, hashes in files_hashes.items():
        if not path.exists():  # already emptied and removed
            continue
        table = pq.read_table(path, schema=schema())
        keep = pc.invert(pc.is_in(table.column("cell_hash"), value_set=pa.array(sorted(hashes), pa.string())))
        kept = table.filter(keep)
        if kept.num_rows == table.num_rows:
            continue
        if kept.num_rows == 0:
            path.unlink(missing_ok=True)
        else:
            _write_table_atomic(kept, path)


# --------------------------------------------------------------------------- reading


def _data_files(results: Path) -> list[Path]:
    return sorted(p for p in results.glob("*.parquet") if not p.name.startswith((".", "_")))


def _read_all(results: Path, columns: list[str] | None = None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    sch = schema()
    files = _data_files(results)
    if not files:
        return sch.empty_table() if columns is None else pa.schema([sch.field(c) for c in columns]).empty_table()
    tables = []
    for f in files:
        try:
            # reading with the schema fills absent columns with nulls: a Parquet file that is not a
            # results file (e.g. a corpus's models.parquet) must be refused, not read as null rows
            missing = [c for c in IDENTITY if c not in pq.read_schema(f).names]
            if missing:
                raise InputError(f"not a results file of `routereval sweep` (no column {', '.join(missing)})", file=f)
            tables.append(pq.read_table(f, columns=columns, schema=sch))
        except (OSError, pa.ArrowException) as e:
            raise InputError(f"unreadable results file ({type(e).__name__}: {e})", file=f) from None
    return pa.concat_tables(tables)


def _latest_per_cell(table):
    """Row indices keeping one row per ``cell_hash``: an ``ok`` row before a failed one, then the latest."""
    import numpy as np

    n = table.num_rows
    if n == 0:
        return np.arange(0)
    hashes = np.asarray(table.column("cell_hash").to_pylist(), dtype=object)
    failed = np.asarray([s != "ok" for s in table.column("status").to_pylist()])
    ended = table.column("ended").cast("int64").fill_null(0).to_numpy()
    # sort by hash, then ok first, then latest first; the first row of each hash wins
    order = np.lexsort((-ended, failed, hashes))
    h = hashes[order]
    first = np.ones(n, dtype=bool)
    first[1:] = h[1:] != h[:-1]
    return np.sort(order[first])


def read_results(path: str | os.PathLike, *, status: str | None = "ok"):
    """The results of a sweep as one ``pyarrow.Table`` (columns of :func:`schema`).

    Parameters
    ----------
    path
        The ``RESULTS`` directory of ``routereval sweep``.
    status
        ``"ok"`` (default) or ``"failed"`` keeps those rows; None keeps every row.

    Returns
    -------
    pyarrow.Table
        One row per (cell, router, params): where a cell was run again (``--retry-failed``)
        and a crash left both rows, the ok one (else the latest) is kept.
    """
    import pyarrow.compute as pc

    results = as_path(path, "path")
    if not results.is_dir() or not (results / SWEEP_META).is_file() and not _data_files(results):
        raise InputError(f"not a results directory (no {SWEEP_META}; expected the RESULTS of `routereval sweep`)",
                         file=results)
    if status not in (None, "ok", "failed"):
        raise InputError(f"status must be 'ok', 'failed' or None. Got {status!r}.")
    table = _read_all(results)
    table = table.take(_latest_per_cell(table))
    if status is not None:
        table = table.filter(pc.equal(table.column("status"), status))
    return table


def finished_cells(results: str | os.PathLike) -> dict[str, tuple[str, Path]]:
    """``cell_hash -> (status, file)`` of every row stored (an ok row wins over a failed one)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out: dict[str, tuple[str, Path]] = {}
    for f in _data_files(Path(results)):
        try:
            t = pq.read_table(f, columns=["cell_hash", "status"])
        except (OSError, pa.ArrowException) as e:
            raise InputError(f"unreadable results file ({type(e).__name__}: {e})", file=f) from None
        for h, s in zip(t.column("cell_hash").to_pylist(), t.column("status").to_pylist()):
            if h not in out or (s == "ok" and out[h][0] != "ok"):
                out[h] = (s, f)
    return out


# --------------------------------------------------------------------------- metadata


def read_metadata(results: str | os.PathLike) -> dict | None:
    """The ``_sweep.json`` of a results directory, or None when there is none."""
    f = Path(results) / SWEEP_META
    if not f.exists():
        return None
    try:
        doc = json.loads(f.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"damaged sweep metadata ({e})", file=f) from None
    if not isinstance(doc, dict) or doc.get("format") != META_FORMAT:
        raise InputError(f"not a routereval sweep's metadata (format {doc.get('format') if isinstance(doc, dict) else None!r}, "
                         f"expected {META_FORMAT!r})", file=f)
    return doc


def check_metadata(results: str | os.PathLike, *, corpus_checksum: str, force: bool = False) -> None:
    """Refuse a results directory made from another corpus (unless ``force``)."""
    doc = read_metadata(results)
    if doc is None or force or doc.get("corpus_checksum") == corpus_checksum:
        return
    raise InputError(f"these results were made from another corpus ({doc.get('corpus')!r}, manifest checksum "
                     f"{str(doc.get('corpus_checksum'))[:12]}..., this corpus {corpus_checksum[:12]}...); "
                     "use another --out, or --force to add to them", file=Path(results) / SWEEP_META)


def write_metadata(results: str | os.PathLike, *, corpus: str, corpus_checksum: str, config: dict) -> None:
    """Write ``_sweep.json`` atomically (keeping ``created`` of an earlier run)."""
    from routereval import __version__

    f = Path(results) / SWEEP_META
    old = read_metadata(results) or {}
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    doc = {"format": META_FORMAT, "format_version": META_VERSION, "version": __version__,
           "corpus": corpus, "corpus_checksum": corpus_checksum, "config": config,
           "created": old.get("created", now), "updated": now}
    with replacing(f) as tmp:
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))


# --------------------------------------------------------------------------- lock


class ResultsLock:
    """An exclusive lock on a results directory: ``with ResultsLock(RESULTS): ...``.

    ``flock`` on ``RESULTS/_lock``: held until released or until the process dies (the kernel
    drops it), so a stale lock of a killed sweep never blocks. The file records who holds it,
    for the error message of the sweep that is refused.
    """

    def __init__(self, results: str | os.PathLike) -> None:
        self.path = Path(results) / LOCK
        self._fd: int | None = None

    def acquire(self) -> "ResultsLock":
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
            except ValueError:
                holder = {}
            os.close(fd)
            who = (f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')}"
                   if holder else "another process")
            raise ResultsLockedError(f"{self.path.parent}: another sweep is writing these results ({who}); "
                                     "wait for it to finish or use another --out") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        import fcntl

        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "ResultsLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

