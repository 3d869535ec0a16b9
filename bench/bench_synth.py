"""Synthetic corpus: time and peak memory of ``synth --scale small|full``, and opening the full corpus.

Each generation runs in its own subprocess, so its peak RSS (VmHWM) is its own.
``small`` is the median of 5 runs; ``full`` (201.7M records) the median of 3 runs,
interleaved with 3 generation-only runs (the benchmarks are generated but not written),
which split the time between generating and writing (the machine is shared: compare
medians, not single runs). The full corpus is written under a temporary
directory and deleted afterwards. Targets (issue 3): full in under 5 minutes with peak
memory under 8 GB; ``open_corpus`` of the full corpus under 1 s.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import PEAK_KIB_SOURCE

_CHILD = r"""
import json, resource, sys, time
from routereval.sources.synth import synth_benchmarks, synth_corpus
""" + PEAK_KIB_SOURCE + r"""scale, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
if mode == "write":
    synth_corpus(out, scale=scale, seed=0)
else:  # generate only: every benchmark is built (bit-packed) and dropped
    for b in synth_benchmarks(scale, seed=0):
        pass
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "maxrss_mb": _peak_kib() / 1024}))
"""


def _run(scale: str, out: Path, mode: str) -> dict:
    res = subprocess.run([sys.executable, "-c", _CHILD, scale, str(out), mode],
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> str:
    from routereval.data.store import open_corpus, read_manifest

    tmp = Path(tempfile.mkdtemp(prefix="bench_synth_", dir="/tmp"))
    try:
        small = [_run("small", tmp / f"small{i}", "write") for i in range(5)]
        small_gen = [_run("small", tmp / "unused", "generate") for _ in range(3)]
        full_gen, full_runs = [], []
        for _ in range(3):
            full_gen.append(_run("full", tmp / "unused", "generate"))
            full_runs.append(_run("full", tmp / "full", "write"))
        manifest = read_manifest(tmp / "full")
        records = sum(b["records"] for b in manifest["benchmarks"].values())
        size = _du(tmp / "full")
        opens = []
        for _ in range(5):
            t = time.perf_counter()
            c = open_corpus(tmp / "full")
            opens.append(time.perf_counter() - t)
        n_models = len(c.models)
        del c
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    s_t = statistics.median(r["seconds"] for r in small)
    s_g = statistics.median(r["seconds"] for r in small_gen)
    s_m = max(r["maxrss_mb"] for r in small)
    f_t = statistics.median(r["seconds"] for r in full_runs)
    f_g = statistics.median(r["seconds"] for r in full_gen)
    full = {"maxrss_mb": max(r["maxrss_mb"] for r in full_runs)}
    rows = [
        "| run | wall time | peak RSS | note |",
        "|---|---|---|---|",
        f"| `synth --scale small` (generate + write) | {s_t:.2f} s (median of 5) | {s_m:.0f} MB | |",
        f"| small, generate only | {s_g:.2f} s (median of 3) | {max(r['maxrss_mb'] for r in small_gen):.0f} MB | "
        f"writing is {100 * (1 - s_g / s_t):.0f}% of the total |",
        f"| `synth --scale full` (generate + write) | {f_t:.1f} s (median of 3) | {full['maxrss_mb']:.0f} MB | "
        f"{records:,} records, {n_models:,} models, {size / 2**20:.0f} MiB on disk; "
        f"{records / f_t / 1e6:.1f} M records/s; target < 300 s and < 8 GB: "
        f"{'met' if f_t < 300 and full['maxrss_mb'] < 8192 else 'MISSED'} |",
        f"| full, generate only | {f_g:.1f} s (median of 3) | {max(r['maxrss_mb'] for r in full_gen):.0f} MB | "
        f"writing (Parquet records, cache, checksums) is {f_t - f_g:.1f} s, {100 * (1 - f_g / f_t):.0f}% of the total |",
        f"| `open_corpus` on the full corpus | {1000 * statistics.median(opens):.0f} ms (median of 5) | | "
        f"target < 1 s: {'met' if statistics.median(opens) < 1 else 'MISSED'} |",
    ]
    return "## synth: the synthetic corpus\n\n" + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(main())
