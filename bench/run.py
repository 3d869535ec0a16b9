"""Run every bench/bench_*.py and write bench/RESULTS.md (figures, date, machine, commit).

Each bench module defines ``main() -> str`` returning a Markdown section. Run one alone
with ``python bench/bench_x.py``; ``make bench`` runs them all.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}"


def main(only: list[str]) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout.strip()
    sections = []
    for f in sorted(HERE.glob("bench_*.py")):
        if only and f.stem not in only and f.stem.removeprefix("bench_") not in only:
            continue
        spec = importlib.util.spec_from_file_location(f.stem, f)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        print(f"== {f.name}", flush=True)
        section = mod.main()
        print(section, flush=True)
        sections.append(section)
    header = (f"# Benchmark results\n\nRecorded by `make bench` on {dt.date.today().isoformat()}, "
              f"commit `{commit}`, machine: {_machine()}.\n"
              "Timings are medians of several runs on a shared, noisy machine; compare ratios.\n")
    (HERE / "RESULTS.md").write_text(header + "\n" + "\n\n".join(sections) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
