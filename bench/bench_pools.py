"""Pool building at full RouterEval scale: every pool of 12 benchmarks, both protocols.

Corpus: ``routereval data synth --scale full`` (8,567 models, 50,265 prompts, ~201.7M records),
generated once into ``$ROUTEREVAL_BENCH_DIR`` (default /tmp/routereval-bench/synth-full) and
reused. Pool building runs in a fresh subprocess so its peak RSS is its own: it opens the
stored corpus (memory-mapped cache) and builds every pool (m in 3, 5, 10, 100, 1000 that fit
x all_strong, all_weak, strong_to_weak, clean and paper protocols).

Baseline, in the same run: the reference's algorithm (float score rows, one oracle per
window and per draw in a Python loop) on the same windows / draws of one benchmark,
compared with the batched bit-packed version on exactly the same work.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import PEAK_KIB_SOURCE

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("ROUTEREVAL_BENCH_DIR", "/tmp/routereval-bench")) / "synth-full"
REPEATS = 3

_CHILD = r"""
import json, resource, sys, time
""" + PEAK_KIB_SOURCE + r"""t0 = time.perf_counter()
from routereval.data.store import open_corpus
corpus = open_corpus(sys.argv[1], texts=False)
t_open = time.perf_counter() - t0
from routereval.pools import make_pools
t1 = time.perf_counter()
n = 0
for bench in corpus:
    for protocol in ("clean", "paper"):
        n += len(make_pools(bench, protocol=protocol, skip_too_large=True))
t_pools = time.perf_counter() - t1
rss = _peak_kib() / 2**20
print(json.dumps({"open": t_open, "pools": t_pools, "n": n, "rss_gib": rss,
                  "models": len(corpus.models), "records": corpus.n_records}))
"""


def _ensure_corpus() -> tuple[Path, float | None]:
    # a corpus left by an earlier run may predate the current store format: regenerate it
    # (about 15 s) unless ROUTEREVAL_BENCH_REUSE=1 asks to reuse it while iterating
    if (CORPUS / "manifest.json").exists() and os.environ.get("ROUTEREVAL_BENCH_REUSE") == "1":
        return CORPUS, None
    from routereval.sources.synth import synth_corpus

    t = time.perf_counter()
    synth_corpus(CORPUS, scale="full", seed=0)
    return CORPUS, time.perf_counter() - t


def _child(path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _baseline(path: Path) -> list[str]:
    """Reference-style loops vs the batched version on the same work (one benchmark)."""
    import numpy as np

    from routereval.data.store import open_corpus
    from routereval.pools import PoolBuilder

    bench = open_corpus(path, benchmarks=["hellaswag"], texts=False)["hellaswag"]
    b = PoolBuilder(bench, protocol="paper")
    dense = np.asarray(bench.scores, dtype=np.float64)[b.policy.models]  # the reference's float matrix
    rows = []
    for m, n_draws in ((10, 50), (100, 20), (1000, 3)):
        region = b.region("all_weak", m)
        n_win = min(len(region) - m + 1, 50)
        t = time.perf_counter()
        naive_w = [np.mean(np.max(dense[region[s:s + m]], axis=0)) for s in range(n_win)]
        t_naive_w = (time.perf_counter() - t) / n_win
        fast_w = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            vals = b.scorer.windows(region, m)
            fast_w.append((time.perf_counter() - t) / len(vals))
        assert np.allclose(vals[:n_win] / b.scorer.n, naive_w)
        picks = b.draw_picks(m)
        t = time.perf_counter()
        naive_d = [np.mean(np.max(dense[picks[i]], axis=0)) for i in range(n_draws)]
        t_naive_d = (time.perf_counter() - t) / n_draws
        fast_d = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            dv = b.scorer.draws(picks)
            fast_d.append((time.perf_counter() - t) / len(picks))
        assert np.allclose(dv[:n_draws] / b.scorer.n, naive_d)
        fw, fd = statistics.median(fast_w), statistics.median(fast_d)
        rows.append(f"| {m} | {1e3 * t_naive_w:.3f} | {1e3 * fw:.4f} | {t_naive_w / fw:.0f}x "
                    f"| {1e3 * t_naive_d:.3f} | {1e3 * fd:.4f} | {t_naive_d / fd:.0f}x |")
    return rows


def main() -> str:
    path, t_gen = _ensure_corpus()
    runs = [_child(path) for _ in range(REPEATS)]
    med = {k: statistics.median(r[k] for r in runs) for k in ("open", "pools", "rss_gib")}
    r0 = runs[0]
    lines = [
        "## Pools at full scale (`bench/bench_pools.py`)",
        "",
        f"Corpus: `routereval data synth --scale full` at `{path}`: {r0['models']:,} models, "
        f"{r0['records']:,} records" + (f" (generated in this run in {t_gen:.0f} s)." if t_gen else " (generated earlier)."),
        f"Medians of {REPEATS} runs, each a fresh process (peak RSS is the whole process).",
        "",
        "| step | median | target |",
        "|---|---|---|",
        f"| open the stored corpus (memory-mapped) | {med['open']:.2f} s | < 1 s |",
        f"| build every pool: {r0['n']} pools (12 benchmarks x m that fit x 3 groups x 2 protocols) "
        f"| {med['pools']:.1f} s | < 60 s |",
        f"| peak memory of open + build | {med['rss_gib']:.2f} GiB | < 4 GB |",
        "",
        "Baseline in the same run: the reference's loop (float rows, one `np.mean(np.max(...))` per window / "
        "draw) against the bit-packed batched scan on the same windows and draws of `hellaswag`, in ms per "
        "window / per draw (naive timed on a prefix of the windows / draws).",
        "",
        "| m | naive ms/window | batched ms/window | ratio | naive ms/draw | batched ms/draw | ratio |",
        "|---|---|---|---|---|---|---|",
        *_baseline(path),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(main())
