"""The scaling-up study at full RouterEval scale: every curve of 12 benchmarks, both protocols.

Corpus: ``routereval data synth --scale full`` (8,567 models, ~201.7M records) at
``$ROUTEREVAL_SCALING_CORPUS`` when set (an existing corpus, reused), else generated into
``$ROUTEREVAL_BENCH_DIR/synth-full-scaling`` (default /tmp/routereval-bench; ~15 s).

Measured, each run in a fresh process: oracle, r_o(0.25/0.5/0.75), random and best-single curves
(plus the weak-models analysis and the price frontier, which the synthetic models' prices
enable) for all 12 benchmarks, the four groups, 20 draws per random pool, m log-spaced up to
1,000, both protocols. Baseline in the same run: the naive per-pool dense computation (float
score rows, one ``max``/``mean`` per pool, as the reference scores a pool) on the same random
pools of one benchmark. Also the learned routers' cost per point (fit + route + metrics).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import PEAK_KIB_SOURCE, commit

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 3

_CHILD = r"""
import json, sys, time
""" + PEAK_KIB_SOURCE + r"""t0 = time.perf_counter()
from routereval.data.store import open_corpus
from routereval.experiments.scaling.study import run_scaling
corpus = open_corpus(sys.argv[1], texts=False)
t1 = time.perf_counter()
r = run_scaling(corpus, benchmarks="all", protocols=("clean", "paper"), draws=20, m_max=1000)
t2 = time.perf_counter()
n_pools = sum(1 for p in r.frontier if p["curve"] == "oracle") or None
print(json.dumps({"open": t1 - t0, "study": t2 - t1, "rows": len(r.curves), "pools": n_pools,
                  "skipped": len(r.skipped), "rss_gib": _peak_kib() / 2**20, "models": len(corpus.models),
                  "records": corpus.n_records}))
"""


def _corpus() -> tuple[Path, float | None]:
    given = os.environ.get("ROUTEREVAL_SCALING_CORPUS")
    if given:
        return Path(given), None
    from routereval.sources.synth import synth_corpus

    path = Path(os.environ.get("ROUTEREVAL_BENCH_DIR", "/tmp/routereval-bench")) / "synth-full-scaling"
    t = time.perf_counter()
    synth_corpus(path, scale="full", seed=0)
    return path, time.perf_counter() - t


def _child(path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _baseline(path: Path) -> tuple[int, list[str]]:
    """Naive dense per-pool scoring vs the batched bit-packed one, on the same random pools of hellaswag."""
    import numpy as np

    from routereval.data.store import open_corpus
    from routereval.experiments.scaling import maths
    from routereval.experiments.scaling.curves import group_pools, protocol_state

    bench = open_corpus(path, benchmarks=["hellaswag"], texts=False)["hellaswag"]
    st = protocol_state(bench, protocol="clean", seed=42, missing="prompts", costs=None)
    test = st.builder.split.test
    dense = np.asarray(bench.scores, dtype=np.float64)[st.builder.policy.models]  # the naive float matrix
    rows = []
    for m in (5, 50, 500):
        picks, best = group_pools(st, "random", m, 20)
        t = time.perf_counter()
        naive = []
        for i, p in enumerate(picks):  # one pool at a time: gather its rows, max, mean, means
            S = dense[p][:, test]
            naive.append((S.max(axis=0).mean(), S.mean(), S[np.argmax(p == best[i])].mean()))
        t_naive = (time.perf_counter() - t) / len(picks)
        fast = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            o = maths.pool_oracles(st.block, picks)
            r = maths.random_expected(st.block, picks)
            s = st.block.means[best]
            fast.append((time.perf_counter() - t) / len(picks))
        assert np.allclose(o, [x[0] for x in naive]) and np.allclose(r, [x[1] for x in naive])
        assert np.allclose(s, [x[2] for x in naive])
        f = statistics.median(fast)
        rows.append(f"| {m} | {1e3 * t_naive:.3f} | {1e3 * f:.4f} | {t_naive / f:.0f}x |")
    return len(test), rows


def _router_points(path: Path) -> tuple[int, list[str]]:
    """Seconds per learned-router point (prepare cell + fit + route + metrics) on the full corpus's mmlu."""
    from routereval.data.store import open_corpus
    from routereval.experiments.scaling.curves import protocol_state
    from routereval.experiments.scaling.routers import router_curves

    corpus = open_corpus(path, benchmarks=["mmlu"], texts=False)
    bench = corpus["mmlu"]
    st = protocol_state(bench, protocol="clean", seed=42, missing="prompts", costs=None)
    rows = []
    for router in ("knn", "mlp"):
        res = router_curves(corpus, bench, [st], routers=[router], params={}, groups=["strong_to_weak"],
                            ms=[5, 10, 100], seed=42, missing="prompts")
        for s in res.seconds:
            rows.append(f"| {router} | {s['m']} | {s['seconds']:.2f} | {s['fit_s']:.2f} |")
    return len(st.builder.split.train), rows




def main() -> str:
    path, t_gen = _corpus()
    load_before = os.getloadavg()
    runs = [_child(path) for _ in range(REPEATS)]
    med = {k: statistics.median(r[k] for r in runs) for k in ("open", "study", "rss_gib")}
    n_test, base = _baseline(path)
    n_train, routers = _router_points(path)
    load_after = os.getloadavg()
    r0 = runs[0]
    lines = [
        "## Scaling study at full scale (`bench/bench_scaling.py`)",
        "",
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit()}. Corpus: `routereval data synth "
        f"--scale full --seed 0` at `{path}`: {r0['models']:,} models, {r0['records']:,} records"
        + (f" (generated in this run in {t_gen:.0f} s)." if t_gen else " (generated earlier)."),
        f"Load average (1 min) {load_before[0]:.1f} before and {load_after[0]:.1f} after, on 2 cores shared with "
        "other engineers' jobs: the figures are upper bounds for an idle machine.",
        f"Medians of {REPEATS} runs, each a fresh process.",
        "",
        "| step | median | target |",
        "|---|---|---|",
        f"| open the stored corpus (memory-mapped) | {med['open']:.2f} s | |",
        f"| every curve of 12 benchmarks: oracle, r_o(0.25/0.5/0.75), random, best single; 4 groups, 20 draws per "
        f"random pool, m = 1..1000 log-spaced, both protocols ({r0['rows']:,} curve rows, {r0['pools']:,} pools; "
        f"with the weak-models analysis and the price frontier) | {med['study']:.1f} s | < 120 s |",
        f"| peak memory of open + study | {med['rss_gib']:.2f} GiB | |",
        "",
        "Baseline in the same run: the naive per-pool computation (dense float score rows of the pool, "
        "`max`/`mean` over the test prompts, one pool at a time) against the batched bit-packed one "
        "(OR + popcount over all 20 draws at once; random routing and best single from per-model test "
        "means), "
        f"on the same 20 random pools of `hellaswag` ({n_test:,} test prompts), ms per pool:",
        "",
        "| m | naive ms/pool | batched ms/pool | ratio |",
        "|---|---|---|---|",
        *base,
        "",
        "Learned-router points (the slow curves): seconds per point on the full corpus's `mmlu` "
        f"({n_train:,} train prompts, stored `synth` embeddings), strong_to_weak pools, clean protocol: preparing the "
        "cell (split, pool, scores, embeddings) + fit + route + metrics (200 bootstrap resamples):",
        "",
        "| router | m | s per point | of which fit s |",
        "|---|---|---|---|",
        *routers,
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(main())
