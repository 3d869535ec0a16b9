"""Run one prepared cell (worker side): prepare it once, evaluate every router on it, return the rows.

:func:`run_task` is what a worker process (local or Dask) executes. It opens the corpus from
its path, memory-mapped, once per process (the corpus is never pickled into a task), limits the
BLAS/OpenMP/torch threads of the process once, and returns plain rows (dicts with the columns
of :func:`routereval.experiments.results.schema`); the parent writes them.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
import traceback
from dataclasses import dataclass, replace
from typing import Any

from routereval.experiments.grid import CellSpec
from routereval.experiments.results import canonical_json

_CORPORA: dict[str, Any] = {}  # path -> the open corpus of this process (prompt texts load lazily)
_THREADS_SET: list[int | None] = []  # the thread limit applied in this process (once)
_LIMITS: list[Any] = []  # keeps threadpoolctl's limiter alive


@dataclass(frozen=True)
class Task:
    """What a worker needs for one cell: the corpus path (never the corpus) and the cell spec."""

    corpus: str
    cell: CellSpec
    threads: int | None  # BLAS/OpenMP/torch threads of the worker process (None: leave as is)


def limit_threads(n: int | None) -> None:
    """Limit this process's BLAS, OpenMP and torch threads to ``n`` (once per process; None: no limit)."""
    if _THREADS_SET or n is None:
        return
    _THREADS_SET.append(n)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)  # for libraries loaded later (torch reads OMP_NUM_THREADS at import)
    from threadpoolctl import threadpool_limits

    _LIMITS.append(threadpool_limits(limits=n))
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def _corpus(path: str):
    if path not in _CORPORA:
        from routereval.data.store import open_corpus

        _CORPORA.clear()  # one corpus per process at a time: a worker serves one sweep
        _CORPORA[path] = open_corpus(path)  # memory-mapped; texts are read only if an encoder needs them
    return _CORPORA[path]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _error_text(e: BaseException) -> str:
    from routereval.errors import RouterEvalError

    if isinstance(e, RouterEvalError):
        return str(e)
    # an unexpected error: keep where it happened (the last frame), one line
    tb = traceback.extract_tb(e.__traceback__)
    where = f" at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno}" if tb else ""
    return f"{type(e).__name__}: {e}{where}"


def _base_row(cell: CellSpec, run, started: _dt.datetime) -> dict[str, Any]:
    from routereval import __version__

    return {**cell.config(), "router": run.router, "params": run.params_json, "cell_hash": run.cell_hash,
            "version": __version__, "started": started, "worker": worker_name()}


def failed_row(cell: CellSpec, run, error: str, started: _dt.datetime) -> dict[str, Any]:
    """The row of a (cell, router) that did not finish: its configuration, status and error."""
    return {**_base_row(cell, run, started), "status": "failed", "error": error, "ended": _now()}


def result_row(cell: CellSpec, run, prepared, res: dict[str, Any], started: _dt.datetime) -> dict[str, Any]:
    """The results row of one evaluated (cell, router): ``evaluate_cell``'s figures plus per-prompt data."""
    import numpy as np

    Y = prepared.Y_test
    routes = np.asarray(res["routes"], dtype=np.int64)
    n = np.arange(len(routes))
    cost = res.get("cost") or {}
    row = {
        **_base_row(cell, run, started),
        "mu": res["mu"], "mu_lo": res["mu_ci"][0], "mu_hi": res["mu_ci"][1], "v_r": res["v_r"], "v_b": res["v_b"],
        "v_b_lo": res["v_b_ci"][0], "v_b_hi": res["v_b_ci"][1], "e_p": res["e_p"], "e_sel": res["e_sel"],
        "oracle": res["oracle"], "best_single": res["best_single"], "oracle_recall": res["oracle_recall"],
        "p_beats_best_single": res["p_beats_best_single"], "fit_s": res["fit_s"], "route_s": res["route_s"],
        "n_train": res["n_train"], "n_val": res["n_val"], "n_test": res["n_test"],
        "mean_cost": cost.get("mean_cost"), "best_single_cost": cost.get("best_single_cost"),
        "aiq": cost.get("aiq"), "apgr": cost.get("apgr"),
        "selection": canonical_json(res["selection"]), "models": list(res["models"]),
        "best_single_model": res["best_single_model"],
        "test_prompts": np.asarray(prepared.pool.split.test, dtype=np.int64).tolist(),
        "routes": routes.tolist(),
        "routed_scores": Y[n, routes].astype(np.float64).tolist(),
        "best_single_scores": Y[:, prepared.pool.best_single].astype(np.float64).tolist(),
        "oracle_scores": Y.max(axis=1).astype(np.float64).tolist(),
        "status": "ok", "error": None, "ended": _now(),
    }
    return row


def _text_cell(prepared):
    """The same cell with the prompt texts as inputs (for text routers such as MLC)."""
    from routereval.errors import InputError

    bench, split = prepared.bench, prepared.pool.split
    if bench.texts is None:
        raise InputError(f"benchmark {bench.name!r} has no prompt texts; this router reads texts")
    T = bench.texts
    return replace(prepared, X_train=T[split.train], X_val=T[split.val], X_test=T[split.test])


def run_task(task: Task) -> list[dict[str, Any]]:
    """Prepare the task's cell once and evaluate each of its routers on it; one row per router.

    A cell that cannot be prepared (e.g. m larger than the benchmark's window) gives a failed
    row per router; a router that fails gives its failed row and the others still run.
    """
    from routereval.evaluate import evaluate_cell, make_router_from, prepare_cell

    limit_threads(task.threads)
    cell = task.cell
    started = _now()
    try:
        corpus = _corpus(task.corpus)
        prepared = prepare_cell(corpus, benchmark=cell.benchmark, m=cell.m, group=cell.group,
                                protocol=cell.protocol, embedding=cell.embedding, seed=cell.seed, draw=cell.draw,
                                split=cell.split)
    except Exception as e:  # noqa: BLE001 - recorded in the results, the sweep goes on
        err = f"preparing the cell: {_error_text(e)}"
        return [failed_row(cell, run, err, started) for run in cell.runs]
    rows = []
    text_cell = None
    for run in cell.runs:
        t0 = _now()
        try:
            router = make_router_from(run.router, run.params, seed=cell.seed, protocol=cell.protocol)
            on = prepared
            if getattr(router, "input_kind", "embedding") == "text":
                text_cell = text_cell or _text_cell(prepared)
                on = text_cell
            res = evaluate_cell(router, on, router_name=run.router, n_boot=cell.n_boot, seed=cell.seed,
                                params=run.params, reference_score=cell.reference_score, keep_routes=True)
            rows.append(result_row(cell, run, on, res, t0))
        except Exception as e:  # noqa: BLE001 - recorded in the results, the other routers still run
            rows.append(failed_row(cell, run, _error_text(e), t0))
    return rows



EMBED_CHUNK = 1024  # prompts per warm-up task: a big benchmark's embedding is shared by every worker


@dataclass(frozen=True)
class EmbedTask:
    """Embed prompts ``start:stop`` of one benchmark with one encoder, before its cells run."""

    corpus: str
    benchmark: str
    encoder: str
    start: int
    stop: int
    threads: int | None


def embed_tasks(corpus: str, benchmark: str, encoder: str, n_prompts: int, threads: int | None) -> list[EmbedTask]:
    """The warm-up tasks of one (benchmark, encoder): chunks of :data:`EMBED_CHUNK` prompts."""
    return [EmbedTask(corpus, benchmark, encoder, a, min(a + EMBED_CHUNK, n_prompts), threads)
            for a in range(0, n_prompts, EMBED_CHUNK)]


def _chunk_dir(corpus: str, benchmark: str) -> str:
    from routereval.embed.cache import CACHE_DIR

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in benchmark)
    return os.path.join(corpus, CACHE_DIR, "_sweep-chunks", safe)


def run_embed_task(task: EmbedTask) -> str:
    """Embed one chunk of a benchmark's prompts into a chunk cache (N workers share a big benchmark)."""
    from routereval.embed import embed_texts

    limit_threads(task.threads)
    bench = _corpus(task.corpus)[task.benchmark]
    embed_texts(bench.texts[task.start:task.stop], task.encoder, cache_dir=_chunk_dir(task.corpus, task.benchmark))
    return task.benchmark


def assemble_embeddings(corpus: str, benchmark: str, encoder: str) -> None:
    """Put a benchmark's embedded chunks together into the corpus's embedding cache, where cells read it.

    The result is the file :func:`routereval.embed.embed_prompts` reads (same key, same texts
    hash), so a cell finds it and ``routereval eval`` on the same corpus uses the same vectors.
    """
    import shutil
    from pathlib import Path

    import numpy as np

    from routereval.embed import embed_prompts, embed_texts, parse_encoder
    from routereval.embed.cache import CACHE_DIR, save_atomic, texts_hash

    bench = _corpus(corpus)[benchmark]
    texts = [str(t) for t in bench.texts.tolist()]
    target = Path(corpus) / CACHE_DIR / parse_encoder(encoder).key / f"{texts_hash(texts)}.npy"
    chunks = _chunk_dir(corpus, benchmark)
    if not target.exists():
        n = len(texts)  # each chunk read from its file (computed here if its task failed)
        parts = [embed_texts(texts[a:min(a + EMBED_CHUNK, n)], encoder, cache_dir=chunks)
                 for a in range(0, n, EMBED_CHUNK)]
        save_atomic(target, np.concatenate(parts).astype(np.float32))
    embed_prompts(bench, encoder, corpus_path=corpus)  # reads the file back as cells will (recomputed if bad)
    shutil.rmtree(chunks, ignore_errors=True)
