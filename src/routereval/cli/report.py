"""``routereval report``: the paper's tables (and study plots) from a sweep's results store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer


def report_cmd(
    results: Annotated[Optional[Path], typer.Argument(help="RESULTS directory of `routereval sweep` (leave it out "
                                                      "for a report of --scaling / --coldstart studies alone).")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="md (default), tex, html, csv or json (csv/json: one row per table cell).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write to this file (atomically) instead of stdout.")] = None,
    protocol: Annotated[Optional[list[str]], typer.Option("--protocol", help="Only these protocols (paper, clean; comma-separated or repeated).")] = None,
    benchmarks: Annotated[Optional[list[str]], typer.Option("--benchmarks", "-b", help="Only these benchmarks (comma-separated or repeated).")] = None,
    scaling: Annotated[Optional[list[Path]], typer.Option("--scaling", help="Include a `routereval scaling` output directory (summary and plots); repeat it for several.")] = None,
    coldstart: Annotated[Optional[list[Path]], typer.Option("--coldstart", help="Include a `routereval coldstart` output directory (summary and plots); repeat it for several.")] = None,
    n_boot: Annotated[Optional[int], typer.Option("--n-boot", help="Bootstrap resamples for the CIs and the wins' p-values "
                                                  "(default: the sweep's n_boot, else 1000).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Per benchmark and m, routers as rows: µ_o, V_R, V_B, E_p averaged over the groups, with CIs and wins; and
    the studies given (without RESULTS: the studies alone)."""
    from routereval.reports.build import check_out, make_report, render, renderer, write_atomic

    if as_json and fmt not in (None, "json"):
        from routereval.errors import ParameterError

        raise ParameterError(f"--json asks for JSON but --format asks for {fmt!r}; give one of them")
    fmt = "json" if as_json else (fmt or "md")
    renderer(fmt)  # an unknown format fails before any work
    if out is not None:
        check_out(out)
    report = make_report(results, protocols=protocol, benchmarks=benchmarks, scaling=scaling, coldstart=coldstart,
                         n_boot=n_boot)
    text = render(report, fmt, out=out)
    if out is None:
        sys.stdout.write(text)
    else:
        write_atomic(text, out)
        parts = [f"{len(report.tables)} table{'s' * (len(report.tables) != 1)}"] if report.tables or not report.studies else []
        parts += [f"{len(report.studies)} stud{'ies' if len(report.studies) != 1 else 'y'}"] if report.studies else []
        sys.stderr.write(f"wrote {out} ({fmt}, {', '.join(parts)})\n")


def register(app: typer.Typer) -> None:
    """Add report to the app."""
    app.command("report")(report_cmd)
