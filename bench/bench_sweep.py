"""``routereval sweep``: the paper's grid on the small and full synthetic corpora, per-cell overhead, MLC steps.

Parts (``python bench/bench_sweep.py [small|overhead|mlc|full|hard ...]``; all when none is named):

- ``small``: ``examples/sweeps/paper.toml`` without mlc, LinearR and MLPR with batch 256 (see
  ``NO_MLC``), on ``synth --scale small`` (144 prepared
  cells x 8 routers = 1,152 rows): ``--workers 2`` (median of 2 runs) and ``--workers 1``, against
  a baseline measured in the same run: the same rows one ``evaluate()`` call each (every call
  opens the corpus and prepares its cell again, as one ``routereval eval`` per row does, minus
  the process start). Target: under 2 minutes.
- ``overhead``: per row, everything but fit and route once the cell is prepared (metrics and
  bootstrap, the results row, its share of writing the cell's file). Target: under 50 ms.
- ``mlc``: seconds per optimisation step of MLC (MiniLM, batch 10, 256 tokens) on the CPU.
- ``batch1``: CPU time per step of LinearR and MLPR under their paper settings (batch 1, the
  reference's), and the CPU hours the paper-protocol half of paper.toml needs with them.
- ``full`` / ``hard``: ``paper.toml`` / ``hard.toml`` without mlc on ``synth --scale full`` with its
  stored embedding widened to 768 dimensions (the width of the official RoBERTa embeddings),
  ``--workers 2``, one run each (minutes to hours). Targets: 15 and 45 minutes.

The machine is shared: every figure comes with the 1-minute load average before and after, and
the sweeps' CPU seconds (user + sys of the sweep and its workers) beside their wall time.
Corpora are written under ``$ROUTEREVAL_BENCH_DIR`` (default /tmp/routereval-bench).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import commit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
BENCH_DIR = Path(os.environ.get("ROUTEREVAL_BENCH_DIR", "/tmp/routereval-bench"))
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
WIDTH = 768
# mlc left out (minutes per cell on a CPU); LinearR and MLPR with batch 256 under both protocols (their
# paper settings, batch 1 as the reference trains, are hours for the grid on a CPU; see README)
NO_MLC = ["--set", "routers.mlc=false", "--set", "routers.linear.batch_size=256", "--set", "routers.mlp.batch_size=256"]


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"




def synth(scale: str) -> Path:
    """A fresh ``synth --scale SCALE`` corpus (seed 0) under the bench directory."""
    from routereval.sources.synth import synth_corpus

    out = BENCH_DIR / f"synth-{scale}"
    if not (out / "manifest.json").exists() or os.environ.get("ROUTEREVAL_BENCH_REUSE") != "1":
        synth_corpus(out, scale=scale, seed=0)
    return out


def widen(src: Path, dst: Path, *, dim: int = WIDTH, seed: int = 0) -> Path:
    """A copy of corpus ``src`` (hard links) whose stored ``synth`` embeddings are ``dim`` wide.

    Each (n, 48) embedding goes through one fixed random (48, dim) projection (column norms 1)
    plus small noise, so the neighbourhoods the routers learn from are kept and every router
    works at the width of the official embeddings.
    """
    import numpy as np

    from routereval.data.store import MANIFEST, sha256_file

    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, copy_function=os.link)
    manifest = json.loads((src / MANIFEST).read_text())
    rng = np.random.default_rng(seed)
    proj = None
    for name, meta in manifest["benchmarks"].items():
        rel = meta["embeddings"]["synth"]
        X = np.load(src / rel).astype(np.float32)
        if proj is None:
            proj = rng.standard_normal((X.shape[1], dim)).astype(np.float32)
            proj /= np.linalg.norm(proj, axis=0, keepdims=True)
        wide = X @ proj + 0.01 * rng.standard_normal((len(X), dim)).astype(np.float32)
        target = dst / rel
        target.unlink()  # a hard link to the source: replace it, never write through it
        np.save(target, wide.astype(np.float32))
        manifest["files"][rel] = {"bytes": target.stat().st_size, "sha256": sha256_file(target)}
    (dst / MANIFEST).unlink()
    (dst / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return dst


def run_sweep(config: Path, corpus: Path, *, workers: int, extra: list[str] = ()) -> dict:
    """One ``routereval sweep`` subprocess into a fresh RESULTS: wall seconds, CPU seconds, summary."""
    with tempfile.TemporaryDirectory(dir=BENCH_DIR) as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load0 = _load()
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "routereval", "sweep", str(config), "--set", f"corpus={corpus}",
                              "--out", f"{tmp}/results", "--workers", str(workers), "--json", *extra],
                             env=ENV, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if res.returncode != 0:
            raise RuntimeError(res.stderr)
        summary = json.loads(res.stdout)
        from routereval.experiments.results import read_results

        table = read_results(f"{tmp}/results", status=None)
        fit = sum(x or 0 for x in table.column("fit_s").to_pylist())
        route = sum(x or 0 for x in table.column("route_s").to_pylist())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "summary": summary, "load": f"{load0} / {_load()}", "fit": fit, "route": route}


_BASELINE = r"""
import json, sys, time
from routereval.experiments.config import load_config
from routereval.evaluate import evaluate
cfg = load_config(sys.argv[1], overrides=["routers.mlc=false", "routers.linear.batch_size=256",
                                          "routers.mlp.batch_size=256", f"corpus={sys.argv[2]}"])
from routereval.data.store import read_manifest
from routereval.experiments.grid import expand
benchmarks = list(read_manifest(cfg.corpus)["benchmarks"])
cells = expand(cfg, benchmarks=benchmarks, embeddings={b: ["synth"] for b in benchmarks}, corpus_checksum="",
               splits={b: ["random"] for b in benchmarks})
n = 0
t0 = time.perf_counter()
for c in cells:
    for r in c.runs:  # one evaluate() per row: the corpus opened and the cell prepared every time
        evaluate(str(cfg.corpus), benchmark=c.benchmark, router=r.router, params=r.params, m=c.m, group=c.group,
                 protocol=c.protocol, embedding=c.embedding, seed=c.seed, n_boot=c.n_boot, split=c.split)
        n += 1
print(json.dumps({"rows": n, "seconds": time.perf_counter() - t0}))
"""


def part_small() -> str:
    corpus = synth("small")
    paper = ROOT / "examples" / "sweeps" / "paper.toml"
    two = [run_sweep(paper, corpus, workers=2, extra=NO_MLC) for _ in range(2)]
    one = run_sweep(paper, corpus, workers=1, extra=NO_MLC)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = _load()
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _BASELINE, str(paper), str(corpus)], env=ENV, capture_output=True,
                         text=True)
    base_wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise RuntimeError(res.stderr)
    base_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rows = json.loads(res.stdout)["rows"]
    w2 = statistics.median(r["wall"] for r in two)
    c2 = statistics.median(r["cpu"] for r in two)
    s = two[0]["summary"]
    lines = [
        f"Grid: `examples/sweeps/paper.toml` without mlc, linear and mlp with batch_size 256 under both protocols "
        f"(`{' '.join(NO_MLC)}`), on `synth --scale small` (seed 0): "
        f"{s['prepared']} prepared cells, {s['cells']} rows ({rows} in the baseline).",
        "",
        "| run | wall s | CPU s (user+sys, all processes) | fit + route s (in the rows) | load avg before / after |",
        "|---|---|---|---|---|",
    ]
    for i, r in enumerate(two):
        lines.append(f"| sweep --workers 2, run {i + 1} | {r['wall']:.1f} | {r['cpu']:.1f} | "
                     f"{r['fit'] + r['route']:.1f} | {r['load']} |")
    lines.append(f"| sweep --workers 1 | {one['wall']:.1f} | {one['cpu']:.1f} | {one['fit'] + one['route']:.1f} | "
                 f"{one['load']} |")
    lines.append(f"| baseline: one evaluate() per row, serial | {base_wall:.1f} | {base_cpu:.1f} | | "
                 f"{load0} / {_load()} |")
    lines += ["", f"--workers 2: median {w2:.1f} s wall (target < 120 s: {'met' if w2 < 120 else 'NOT met'}), "
              f"{c2:.1f} CPU s; the baseline needs {base_cpu / c2:.1f}x the CPU time and "
              f"{base_wall / w2:.1f}x the wall time."]
    return "\n".join(lines)


PAPER_ROUTERS = [("oracle", {}), ("mix", {"p": 0.5}), ("random", {}), ("best_single", {}),
                 ("linear", {"batch_size": 256}), ("mlp", {"batch_size": 256}), ("kmeans", {}), ("knn", {"k": 5})]


def part_overhead() -> str:
    return _overhead(synth("small"), "small corpus, m = 5", ("mmlu", "hellaswag", "bbh", "gsm8k"), PAPER_ROUTERS)


def part_overhead_full() -> str:
    # the routers whose fit is cheap: the overhead (metrics, bootstrap, row, write) depends on the
    # number of test prompts, not on the router
    wide = BENCH_DIR / f"synth-full-{WIDTH}"
    if not (wide / "manifest.json").exists():
        widen(synth("full"), wide)
    return _overhead(wide, f"full corpus widened to {WIDTH} dims, m = 5", ("mmlu", "hellaswag"),
                     PAPER_ROUTERS[:4] + PAPER_ROUTERS[-1:])


def _overhead(corpus_dir: Path, what: str, benches: tuple, routers: list) -> str:
    """Per row: make_router + evaluate_cell + the results row + its share of the file write, minus the router's own work.

    The router's work is fit, route and the selection probabilities behind E_p (and predict_scores
    of the cost curve): what is left is the sweep's and the metrics' share.
    """
    import numpy as np

    from routereval.data.store import open_corpus
    from routereval.evaluate import evaluate_cell, make_router_from, prepare_cell
    from routereval.experiments.grid import CellSpec, RouterRun
    from routereval.experiments.results import write_rows
    from routereval.experiments.runner import _now, result_row

    corpus = open_corpus(corpus_dir, texts=False)
    wall, cpu, n_test = [], [], []

    def timed(fn, acc):
        def call(*a, **k):  # the router's own work (fit, route, its selection probabilities), to subtract
            acc[2] += 1
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **k)
            finally:
                acc[2] -= 1
                if acc[2] == 0:  # outermost call only: route() calls predict_scores() inside
                    acc[0] += time.perf_counter() - t0
                    acc[1] += time.process_time() - c0
        return call

    with tempfile.TemporaryDirectory(dir=BENCH_DIR) as out:
        cells = [(b, p, g) for b in benches for p in ("clean", "paper")
                 for g in ("all_strong", "strong_to_weak")]
        for i, (bench, protocol, group) in enumerate([cells[0]] + cells):  # the first: warm-up (imports)
            spec = CellSpec(bench, protocol, "random", 5, group, 42, 0, "synth", 1000, None,
                            tuple(RouterRun(r, p, f"h{j}") for j, (r, p) in enumerate(routers)))
            cell = prepare_cell(corpus, benchmark=bench, m=5, group=group, protocol=protocol,
                                embedding="synth", seed=42)
            rows, w, c = [], [], []
            for run in spec.runs:
                acc = [0.0, 0.0, 0]
                t0, c0 = time.perf_counter(), time.process_time()
                router = make_router_from(run.router, run.params, seed=42, protocol=protocol)
                for method in ("fit", "route", "predict_scores", "selection_probabilities"):
                    setattr(router, method, timed(getattr(router, method), acc))
                res = evaluate_cell(router, cell, router_name=run.router, n_boot=1000, seed=42,
                                    params=run.params, keep_routes=True)
                rows.append(result_row(spec, run, cell, res, _now()))
                w.append(time.perf_counter() - t0 - acc[0])
                c.append(time.process_time() - c0 - acc[1])
            t0, c0 = time.perf_counter(), time.process_time()
            write_rows(out, rows, stem=spec.stem)
            ww, wc = (time.perf_counter() - t0) / len(rows), (time.process_time() - c0) / len(rows)
            if i == 0:
                continue
            wall += [x + ww for x in w]
            cpu += [x + wc for x in c]
            n_test.append(len(cell.Y_test))
    w, c = np.array(wall) * 1e3, np.array(cpu) * 1e3
    return (f"Per row, once the cell is prepared, everything but the router's fit, route and selection probabilities "
            f"({what}, {len(w)} rows of {len(routers)} routers on {len(n_test)} cells "
            f"of {', '.join(benches)}, {min(n_test)}-{max(n_test)} test prompts, 1,000 bootstrap resamples): "
            f"CPU time median {np.median(c):.1f} ms, 90th percentile {np.percentile(c, 90):.1f} ms, max {c.max():.1f} ms; "
            f"wall time (inflated by the load of other users) median {np.median(w):.1f} ms, 90th percentile "
            f"{np.percentile(w, 90):.1f} ms. Target < 50 ms: {'met' if np.percentile(c, 90) < 50 else 'NOT met'} "
            f"(CPU, 90th percentile). Load average {_load()}.")


def part_mlc() -> str:
    from routereval.data.store import open_corpus
    from routereval.evaluate import make_router_from, prepare_cell
    from routereval.experiments.runner import _text_cell

    corpus = open_corpus(synth("small"))
    cell = _text_cell(prepare_cell(corpus, benchmark="mmlu", m=5, group="strong_to_weak", embedding="synth"))
    per_step, cpu_step = [], []
    steps = 10
    for _ in range(3):
        router = make_router_from("mlc", {"max_steps": steps}, seed=42)
        router.warm_up() if hasattr(router, "warm_up") else None
        t0, c0 = time.perf_counter(), time.process_time()
        router.fit(cell.X_train, cell.L_train)
        per_step.append((time.perf_counter() - t0) / router.n_steps_)
        cpu_step.append((time.process_time() - c0) / router.n_steps_)
    t0, c0 = time.perf_counter(), time.process_time()
    router.route(cell.X_test)
    route, route_cpu = time.perf_counter() - t0, time.process_time() - c0
    step = statistics.median(cpu_step)
    return (f"MLC on the CPU (all-MiniLM-L6-v2, batch 10, max_length 256, n_jobs 1, {steps} steps, small corpus "
            f"mmlu, {len(cell.X_train)} training prompts; median of 3 fits, each loading the encoder): "
            f"{step:.2f} CPU s per step ({statistics.median(per_step):.2f} s wall under the load of other users); "
            f"routing {len(cell.X_test)} test prompts {route_cpu:.1f} CPU s ({route:.1f} s wall). "
            f"A paper.toml cell with max_steps = 200 costs about {200 * step / 60:.1f} CPU min, the 144 cells about "
            f"{144 * 200 * step / 3600:.1f} CPU h: on a CPU-only machine mlc is left out (--set routers.mlc=false) "
            f"or run on a GPU (device = \"auto\"). Load average {_load()}.")


def part_batch1() -> str:
    """CPU time per training step of LinearR and MLPR under their paper settings (batch 1), and what the grid needs."""
    import json as _json

    from routereval.data.store import open_corpus, read_manifest
    from routereval.evaluate import make_router_from, prepare_cell

    corpus = open_corpus(synth("small"), texts=False)
    cell = prepare_cell(corpus, benchmark="mmlu", m=5, group="strong_to_weak", protocol="paper", embedding="synth")
    out = []
    full = read_manifest(synth_dir_full()) if (synth_dir_full() / "manifest.json").exists() else None
    for name in ("linear", "mlp"):
        router = make_router_from(name, {}, seed=42, protocol="paper")
        router.warm_up() if hasattr(router, "warm_up") else None
        c0 = time.process_time()
        router.fit(cell.X_train, cell.L_train)
        epochs = router.get_params()["max_epochs"]
        per_step = (time.process_time() - c0) / (epochs * len(cell.X_train))
        line = (f"{name}: {_json.dumps({k: v for k, v in router.get_params().items() if k in ('batch_size', 'max_epochs', 'lr')})}, "
                f"{per_step * 1e3:.2f} CPU ms per step (48 dims, {len(cell.X_train)} training prompts x {epochs} epochs)")
        if full is not None:  # the paper protocol's cells of paper.toml: 12 benchmarks x 2 m x 3 groups
            train = sum(int(0.8 * b["prompts"]) for b in full["benchmarks"].values())
            line += (f"; the 72 paper-protocol cells of paper.toml on the full corpus: {train * epochs * 6:,} steps, "
                     f"about {train * epochs * 6 * per_step / 3600:.1f} CPU h at this rate (more at 768 dims)")
        out.append(line)
    return "Paper settings (batch 1, no early stopping), small corpus, mmlu m = 5: " + "; ".join(out) + f". Load average {_load()}."


def synth_dir_full() -> Path:
    return BENCH_DIR / "synth-full"


def _full_part(config: str, target_min: float) -> str:
    wide = widen(synth("full"), BENCH_DIR / f"synth-full-{WIDTH}")
    r = run_sweep(ROOT / "examples" / "sweeps" / config, wide, workers=2, extra=NO_MLC)
    s = r["summary"]
    return (f"`examples/sweeps/{config}` with `{' '.join(NO_MLC)}` on `synth --scale full` with the stored embedding widened to "
            f"{WIDTH} dims, `--workers 2`: {s['prepared']} prepared cells, {s['cells']} rows ({s['ok']} ok, "
            f"{s['failed']} failed: m larger than the group's window): {r['wall'] / 60:.1f} min wall, "
            f"{r['cpu'] / 60:.1f} CPU min (fit + route {r['fit'] / 60 + r['route'] / 60:.1f} min of it); load average "
            f"before / after {r['load']}. Target < {target_min:.0f} min wall: "
            f"{'met' if r['wall'] < target_min * 60 else 'NOT met'}; on an otherwise idle 2-core machine the wall time "
            f"would be about CPU / 2 = {r['cpu'] / 120:.1f} min.")


PARTS = {"small": part_small, "overhead": part_overhead, "overhead-full": part_overhead_full, "mlc": part_mlc,
         "batch1": part_batch1,
         "full": lambda: _full_part("paper.toml", 15), "hard": lambda: _full_part("hard.toml", 45)}


def main(parts: list[str] | None = None, *, echo: bool = False) -> str:
    """The Markdown section of the named parts (all when None); ``echo`` prints each part as it ends."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = ["## Sweeps (bench_sweep.py)", "",
           f"{now}, commit {commit()}, {os.cpu_count()} cores shared with other users (load averages below)."]
    if echo:
        print("\n".join(out), flush=True)
    for name in parts or list(PARTS):
        part = ["", f"### {name}", "", PARTS[name]()]
        out += part
        if echo:
            print("\n".join(part), flush=True)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main(sys.argv[1:] or None, echo=True)
