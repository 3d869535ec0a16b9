"""``routereval sweep``: plan a config's grid (validating everything first), then run it, resumably.

:func:`plan_sweep` reads and validates the config against the corpus and the results directory
and writes nothing; :func:`run_sweep` takes the results lock, skips the cells already finished
(by ``cell_hash``), runs the others on a backend and writes each cell's rows as it finishes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from routereval.errors import InputError, ParameterError
from routereval.experiments.config import SweepConfig, load_config
from routereval.experiments.grid import CellSpec, expand
from routereval.validate import check_bool

Progress = Callable[[dict[str, Any]], None]
_NO_WARM_UP = ("tfidf",)  # encoders fitted per split (on its train prompts) and cheap: not embedded ahead


@dataclass
class SweepPlan:
    """A validated sweep: the config, the corpus and its checksum, the prepared cells, the output."""

    config: SweepConfig
    corpus: Path
    corpus_checksum: str
    cells: list[CellSpec]
    out: Path
    encode: list[tuple[str, str]]  # (benchmark, encoder) embedded once before the cells
    n_prompts: dict[str, int]  # benchmark -> prompts
    force: bool = False

    @property
    def n_rows(self) -> int:
        return sum(len(c.runs) for c in self.cells)

    def __repr__(self) -> str:
        return (f"SweepPlan({len(self.cells)} cells, {self.n_rows} rows over {', '.join(self.n_prompts)}; "
                f"corpus {str(self.corpus)!r}, out {str(self.out)!r}{', force' if self.force else ''})")


def _stored_key(meta: dict, encoder: str) -> bool:
    stored = meta.get("embeddings", {})
    return any(k in stored for k in (encoder, encoder.removeprefix("official/"), f"official/{encoder}"))


def corpus_checksum(manifest: dict) -> str:
    """SHA-256 of a corpus manifest without its ``created`` time.

    The manifest lists every file's checksum, so this names the corpus's content; leaving the
    time out lets a corpus rebuilt identically (``synth`` with the same seed) keep its results.
    """
    import hashlib

    from routereval.experiments.results import canonical_json

    return hashlib.sha256(canonical_json({k: v for k, v in manifest.items() if k != "created"}).encode()).hexdigest()


def plan_sweep(config: str | os.PathLike, *, out: str | os.PathLike, overrides: list[str] | None = None,
               trust_code: bool = False, force: bool = False) -> SweepPlan:
    """Read and validate everything a sweep needs; nothing is written.

    Raises a :class:`~routereval.errors.RouterEvalError` (one line) on a bad config, a corpus
    that is not one, an unknown benchmark or encoder, an output that is not a results directory,
    or results made from another corpus (unless ``force``).
    """
    from routereval.data.store import read_manifest
    from routereval.experiments.results import check_metadata

    force = check_bool(force, "force")
    cfg = load_config(config, overrides=overrides, trust_code=trust_code)
    manifest = read_manifest(cfg.corpus)
    checksum = corpus_checksum(manifest)
    names = list(manifest["benchmarks"])
    for b in cfg.benchmarks:
        if b not in names:
            raise ParameterError(f"{cfg.source}: 'benchmarks' has {b!r}, which corpus {cfg.corpus} does not hold; "
                                 f"expected 'all' or some of: {', '.join(names)}")
    benchmarks = cfg.benchmarks or names
    embeddings, encode = _resolve_embeddings(cfg, manifest, benchmarks)
    splits = _resolve_splits(cfg, manifest, benchmarks)
    cells = expand(cfg, benchmarks=benchmarks, embeddings=embeddings, corpus_checksum=checksum, splits=splits)
    out = Path(out)
    _check_out(out)
    check_metadata(out, corpus_checksum=checksum, force=force)
    return SweepPlan(config=cfg, corpus=cfg.corpus, corpus_checksum=checksum, cells=cells, out=out,
                     encode=encode, n_prompts={b: int(manifest["benchmarks"][b]["prompts"]) for b in benchmarks},
                     force=force)


def _resolve_embeddings(cfg: SweepConfig, manifest: dict,
                        benchmarks: list[str]) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """Benchmark -> its encoders (None: the stored "synth", else minilm), and the (benchmark, encoder) to embed first."""
    from routereval.embed import parse_encoder

    embeddings: dict[str, list[str]] = {}
    encode: list[tuple[str, str]] = []
    for b in benchmarks:
        meta = manifest["benchmarks"][b]
        embeddings[b] = []
        for e in cfg.embeddings:
            if e is None:
                e = "synth" if "synth" in meta.get("embeddings", {}) else "minilm"
            if not _stored_key(meta, e):
                try:
                    parse_encoder(e)
                except InputError as err:
                    raise ParameterError(f"{cfg.source}: 'embedding' {e!r} for benchmark {b!r}: {err}") from None
                if not meta.get("texts", True):
                    raise ParameterError(f"{cfg.source}: 'embedding' {e!r}: benchmark {b!r} has no prompt texts to "
                                         f"embed; stored embeddings: {', '.join(meta.get('embeddings', {})) or 'none'}")
                if e not in _NO_WARM_UP and (b, e) not in encode:
                    encode.append((b, e))
            embeddings[b].append(e)
    return embeddings, encode


def _resolve_splits(cfg: SweepConfig, manifest: dict, benchmarks: list[str]) -> dict[str, list[str]]:
    """Benchmark -> its named splits: "auto" becomes "publisher" where the corpus stores one, else "random"."""
    splits: dict[str, list[str]] = {}
    for b in benchmarks:
        has_publisher = bool(manifest["benchmarks"][b].get("publisher_split"))
        splits[b] = []
        for sp in cfg.splits:
            if sp == "auto":  # resolved now, so that the results name the split each cell used
                sp = "publisher" if has_publisher else "random"
            elif sp == "publisher" and not has_publisher:
                raise ParameterError(f"{cfg.source}: 'split' is 'publisher', but benchmark {b!r} of corpus "
                                     f"{cfg.corpus} has no publisher split; use 'auto' or 'random'")
            if sp not in splits[b]:
                splits[b].append(sp)
    return splits


def _check_out(out: Path) -> None:
    """Refuse an --out that is a file, or a directory holding something other than a sweep's results."""
    from routereval.experiments.results import read_metadata

    if out.exists() and not out.is_dir():
        raise InputError("--out is a file; expected a results directory (new or of an earlier sweep)", file=out)
    if out.is_dir() and read_metadata(out) is None and any(not p.name.startswith((".", "_")) for p in out.iterdir()):
        raise InputError("--out is a directory that holds other files, not the results of a sweep; "
                         "use a new or empty directory", file=out)


def run_sweep(plan: SweepPlan, *, backend, retry_failed: bool = False,
              progress: Progress | None = None) -> dict[str, Any]:
    """Run the cells of ``plan`` not finished yet on ``backend``; returns the summary.

    Rows are written as cells finish (one atomic file per cell). Cells whose rows are stored
    ``ok`` are skipped; failed ones too unless ``retry_failed`` (their new rows replace the old).

    Returns
    -------
    dict
        ``cells`` (rows of the grid), ``ok``, ``failed`` (this run), ``skipped`` (already done),
        ``skipped_failed`` (failed earlier, not retried), ``prepared`` (cells prepared this run),
        ``seconds``, ``results`` (the directory), ``backend``.
    """
    from routereval.experiments.results import (ResultsLock, check_metadata, drop_rows, finished_cells,
                                                remove_temporaries, write_metadata, write_rows)
    from routereval.experiments.runner import Task, assemble_embeddings, embed_tasks, run_embed_task, run_task

    retry_failed = check_bool(retry_failed, "retry_failed")
    t0 = time.perf_counter()
    out = plan.out
    with backend:  # a cluster is reached first: one that cannot be reached fails before RESULTS is made
        backend.start()
        out.mkdir(parents=True, exist_ok=True)
        with ResultsLock(out):
            check_metadata(out, corpus_checksum=plan.corpus_checksum, force=plan.force)  # again, now that we hold it
            remove_temporaries(out)
            write_metadata(out, corpus=str(plan.corpus), corpus_checksum=plan.corpus_checksum,
                           config={k: v for k, v in plan.config.raw.items()})
            done = finished_cells(out)
            skipped = skipped_failed = 0
            tasks: list[Task] = []
            for cell in plan.cells:
                todo = []
                for run in cell.runs:
                    status = done.get(run.cell_hash, (None, None))[0]
                    if status == "ok":
                        skipped += 1
                    elif status is not None and not retry_failed:
                        skipped_failed += 1
                    else:
                        todo.append(run)
                if todo:
                    tasks.append(Task(str(plan.corpus), replace(cell, runs=tuple(todo)), backend.threads))
            summary = {"cells": plan.n_rows, "ok": 0, "failed": 0, "skipped": skipped, "skipped_failed": skipped_failed,
                       "prepared": len(tasks), "seconds": 0.0, "results": str(out), "backend": backend.description}
            total = sum(len(t.cell.runs) for t in tasks)

            def report(phase: str) -> None:
                if progress is not None:
                    progress({**summary, "phase": phase, "total": total, "running": backend.running,
                              "done": summary["ok"] + summary["failed"]})

            with backend:
                needed = {t.cell.benchmark for t in tasks}
                encode = [(b, e) for b, e in plan.encode if b in needed]
                chunks = [t for b, e in encode for t in embed_tasks(str(plan.corpus), b, e, plan.n_prompts[b], backend.threads)]
                report("embedding")
                for _ in backend.run(run_embed_task, chunks):  # big benchmarks are shared by all workers
                    report("embedding")
                for b, e in encode:
                    try:
                        assemble_embeddings(str(plan.corpus), b, e)
                    except Exception:  # noqa: BLE001 - the cells of b then fail with the reason, one by one
                        pass
                report("cells")
                for task, rows, error in backend.run(run_task, tasks):
                    if error is not None:
                        from routereval.experiments.runner import _now, failed_row

                        rows = [failed_row(task.cell, run, error, _now()) for run in task.cell.runs]
                    write_rows(out, rows, stem=task.cell.stem)
                    stale: dict[Path, set[str]] = {}
                    for r in rows:
                        prev = done.get(r["cell_hash"])
                        if prev is not None:  # a retried failed row: the new one replaces it
                            stale.setdefault(prev[1], set()).add(r["cell_hash"])
                        summary["ok" if r["status"] == "ok" else "failed"] += 1
                    if stale:
                        drop_rows(out, stale)
                    report("cells")
    summary["seconds"] = time.perf_counter() - t0
    return summary
