"""Opening one benchmark of the full synthetic corpus, and a sweep worker's cell: peak memory.

Every measurement runs in a fresh subprocess and reports its own VmHWM (peak RSS since
exec), median of 3 runs. The full corpus (``synth --scale full --seed 0``) is written
under a temporary directory by this version (prompts.parquet: one row group per
benchmark); a hard-linked copy whose prompts.parquet is rewritten as one row group stands
for a corpus written before the change, and a copy with every text repeated 20 times
(~3.7 kB a prompt, the size of the reference's few-shot prompts) shows how the previous read
grows with the texts. Baseline, in the same run: the reads the previous
``open_corpus`` made (``read_table`` of models.parquet, the whole prompts.parquet with its
text column, then the benchmark's slice as Python lists). Targets (issue 7): opening one
benchmark of the full corpus under 150 MB; a sweep worker (open + ``prepare_cell`` with the
stored embedding + fit/route a knn router) under 1 GB.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import commit as git_commit

_PEAK = r"""
import json, sys, time
def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

_CHILD = _PEAK + r"""
mode, path, name = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
extra = {}
if mode == "previous":  # the previous open_corpus's reads, verbatim in effect
    import numpy as np
    import pyarrow.parquet as pq
    from routereval.data.store import read_manifest
    meta = read_manifest(path)["benchmarks"][name]
    mt = pq.read_table(f"{path}/models.parquet")
    ids = mt.column("model").to_pylist()
    pt = pq.read_table(f"{path}/prompts.parquet", columns=["benchmark", "prompt", "subset", "gold", "text"])
    rows = pt.slice(meta["prompt_offset"], meta["prompts"])
    cols = {k: np.array(rows.column(k).to_pylist(), dtype=object) for k in ("prompt", "subset", "gold", "text")}
    extra["texts"] = len(cols["text"])
else:
    from routereval.data.store import open_corpus
    corpus = open_corpus(path, benchmarks=[name])
    bench = corpus[name]
    if mode == "open+texts":
        extra["texts"] = len(bench.texts)
    elif mode.startswith("worker"):
        from routereval.evaluate import evaluate_cell, make_router_from, prepare_cell
        protocol = mode.split(":")[1]
        cell = prepare_cell(corpus, benchmark=name, m=5, group="strong_to_weak", protocol=protocol,
                            embedding="synth")
        res = evaluate_cell(make_router_from("knn", None, seed=42, protocol=protocol), cell, n_boot=1000)
        extra.update(mu=res["mu"], n_test=res["n_test"], texts_loaded=cell.bench.texts_loaded)
    extra.setdefault("texts_loaded", bench.texts_loaded)
print(json.dumps({"seconds": time.perf_counter() - t, "peak_mb": peak_mb(), **extra}))
"""


def _run(mode: str, path: Path, name: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", _CHILD, mode, str(path), name], capture_output=True, text=True,
                         check=True, env=env)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _median(mode: str, path: Path, name: str, n: int = 3) -> dict:
    runs = [_run(mode, path, name) for _ in range(n)]
    out = dict(runs[-1])
    out["peak_mb"] = statistics.median(r["peak_mb"] for r in runs)
    out["seconds"] = statistics.median(r["seconds"] for r in runs)
    return out


def _lengthen_texts(src: Path, dst: Path, *, times: int) -> None:
    """``src`` prompts.parquet with every text repeated ``times`` times, one row group per benchmark."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with pq.ParquetFile(src) as pf, pq.ParquetWriter(dst, pf.schema_arrow, compression="zstd") as pw:
        for i in range(pf.num_row_groups):
            t = pf.read_row_group(i)
            text = pc.binary_join_element_wise(*([t.column("text")] * times), pa.scalar(" "))
            t = t.set_column(t.schema.get_field_index("text"), "text", text)
            pw.write_table(t, row_group_size=t.num_rows)


def _baseline_imports() -> float:
    code = _PEAK + "import numpy, pyarrow.parquet, routereval.data.store\nprint(peak_mb())"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def main() -> str:
    import pyarrow.parquet as pq

    from routereval.sources.synth import synth_corpus

    tmp = Path(tempfile.mkdtemp(prefix="bench_open_", dir="/tmp"))
    try:
        new = tmp / "full"
        synth_corpus(new, scale="full", seed=0)
        old = tmp / "full_one_row_group"
        shutil.copytree(new, old, copy_function=os.link)  # hard links: no second copy of the records
        one = pq.read_table(new / "prompts.parquet")
        (old / "prompts.parquet").unlink()
        pq.write_table(one, old / "prompts.parquet", compression="zstd")
        groups = pq.ParquetFile(new / "prompts.parquet").metadata.num_row_groups
        # few-shot-sized texts (the reference's prompt files hold ~1.6 GB of text): each text x20
        long = tmp / "full_long_texts"
        shutil.copytree(new, long, copy_function=os.link)
        (long / "prompts.parquet").unlink()  # a hard link: writing through it would change the original
        _lengthen_texts(new / "prompts.parquet", long / "prompts.parquet", times=20)
        imports = _baseline_imports()
        rows = []
        base = _median("previous", new, "gsm8k")
        rows.append(("previous reads (whole prompts.parquet with texts), gsm8k", base, None))
        for label, mode, path in (("`open_corpus(benchmarks=['gsm8k'])`", "open", new),
                                  ("same, corpus with one row group (written before)", "open", old),
                                  ("open + read `bench.texts` (gsm8k)", "open+texts", new)):
            rows.append((label, _median(mode, path, "gsm8k"), base))
        long_base = _median("previous", long, "gsm8k")
        rows.append(("previous reads, texts x20 (~3.7 kB a prompt)", long_base, None))
        for label, mode in (("`open_corpus(benchmarks=['gsm8k'])`, texts x20", "open"),
                            ("open + read `bench.texts`, texts x20", "open+texts")):
            rows.append((label, _median(mode, long, "gsm8k"), long_base))
        workers = []
        for name in ("mmlu", "hellaswag", "mmlu_pro"):
            for protocol in ("paper", "clean"):
                r = _median(f"worker:{protocol}", new, name)
                workers.append((name, protocol, r))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    commit = git_commit()
    load = os.getloadavg()
    lines = [
        "## open: one benchmark of the full corpus, and a sweep worker's cell",
        "",
        f"{dt.date.today().isoformat()}, commit `{commit}`, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        f"(shared machine). `synth --scale full --seed 0` (201.7M records; prompts.parquet in {groups} row groups). "
        f"Peak RSS (VmHWM) of a fresh process, median of 3; importing numpy + pyarrow + the store alone peaks at "
        f"{imports:.0f} MB.",
        "",
        "| run | peak RSS | wall time (with imports) | vs previous | texts in memory |",
        "|---|---|---|---|---|",
    ]
    for label, r, b in rows:
        ratio = "baseline" if b is None else f"{b['peak_mb'] - r['peak_mb']:+.0f} MB less".replace("+", "")
        lines.append(f"| {label} | {r['peak_mb']:.0f} MB | {1000 * r['seconds']:.0f} ms | {ratio} | "
                     f"{'yes' if r.get('texts') or r.get('texts_loaded') else 'no'} |")
    opened = rows[1][1]["peak_mb"]
    lines += ["", f"Target: opening one benchmark under 150 MB: {'met' if opened < 150 else 'MISSED'} ({opened:.0f} MB).",
              "", "Sweep worker: open + `prepare_cell` (m = 5, strong_to_weak, stored `synth` embedding) + fit/route "
              "`knn` + evaluate_cell (1,000 bootstrap resamples), one fresh process per cell:", "",
              "| benchmark | protocol | peak RSS | wall time (with imports) | texts read |", "|---|---|---|---|---|"]
    for name, protocol, r in workers:
        lines.append(f"| {name} | {protocol} | {r['peak_mb']:.0f} MB | {r['seconds']:.1f} s | "
                     f"{'yes' if r['texts_loaded'] else 'no'} |")
    worst = max(r["peak_mb"] for *_, r in workers)
    lines += ["", f"Target: a sweep worker under 1 GB: {'met' if worst < 1024 else 'MISSED'} (worst {worst:.0f} MB)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(main())
