"""The study's directory: CSV files, ``summary.md`` and plots, written aside and renamed into place."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Iterable, Sequence

from routereval.atomic import remove, swap_directory, temporary_dir
from routereval.errors import InputError
from routereval.experiments.scaling.curves import CURVE_COLUMNS
from routereval.experiments.scaling.frontier import FRONTIER_COLUMNS
from routereval.experiments.scaling.study import ScalingResult
from routereval.experiments.scaling.summary import summary_markdown
from routereval.experiments.scaling.weak import WEAK_COLUMNS
from routereval.validate import check_bool



def _cell(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "" if not math.isfinite(v) else repr(round(v, 10))
    return str(v)


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict]) -> None:
    """``rows`` as CSV with exactly ``columns`` (NaN as an empty cell)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for r in rows:
            w.writerow([_cell(r.get(c, "")) for c in columns])


def check_out(out: str | os.PathLike) -> Path:
    """Refuse, before any work, an ``--out`` that is a file or another non-empty directory."""
    from routereval.reports.studies import check_study_target

    return check_study_target(out, "scaling")


def write_outputs(result: ScalingResult, out: str | os.PathLike, *, plots: bool = True) -> list[Path]:
    """Write the study's directory ``out`` atomically; returns the files written.

    Everything is written into a hidden sibling directory that replaces ``out`` when complete,
    so an interrupted run leaves the previous study (or nothing), never half of one.
    """
    if not isinstance(result, ScalingResult):
        raise InputError(f"result must be the ScalingResult of run_scaling; got {type(result).__name__}")
    plots = check_bool(plots, "plots")
    out = check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_dir(out)
    try:
        write_csv(tmp / "curves.csv", CURVE_COLUMNS, result.curves)
        write_csv(tmp / "weak.csv", WEAK_COLUMNS, result.weak)
        if result.frontier:
            write_csv(tmp / "frontier.csv", FRONTIER_COLUMNS, result.frontier)
        figures: list[str] = []
        if plots:
            from routereval.experiments.scaling.plots import plot_all

            figures = plot_all(result, tmp)
        (tmp / "summary.md").write_text(summary_markdown(result, figures=figures), encoding="utf-8")
        swap_directory(tmp, out)
    finally:
        remove(tmp)
    return sorted(out.iterdir())
