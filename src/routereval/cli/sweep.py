"""``routereval sweep``: run a config's whole grid of cells, resumably, locally or on Dask."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Optional

import typer

from routereval.cli import ui


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A rich bar of rows done, with failed and running counts and the time left (stderr, terminals only)."""
    if not enabled or not sys.stderr.isatty():
        yield lambda state: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("failed {task.fields[failed]}  running {task.fields[running]}"),
                  TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                  console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task("cells", total=None, failed=0, running=0)

        def update(state: dict[str, Any]) -> None:
            desc = "embedding prompts" if state["phase"] == "embedding" else "cells"
            bar.update(task, description=desc, completed=state["done"], total=state["total"] or None,
                       failed=state["failed"], running=state["running"])

        yield update


def sweep_cmd(
    config: Annotated[Path, typer.Argument(help="Sweep config (TOML); paths in it are relative to it.")],
    out: Annotated[Path, typer.Option("--out", help="Results directory (Parquet; created, or resumed).")],
    workers: Annotated[int, typer.Option("--workers", help="Local worker processes (BLAS threads divided).")] = 1,
    cluster: Annotated[Optional[str], typer.Option(
        "--cluster", help="local:N (a Dask LocalCluster) or tcp://HOST:PORT (a running dask scheduler).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override a config key with a TOML value: m=[3], routers.knn.k=[5,10] (repeatable).")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Run the cells that failed before again.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Add to results made from another corpus.")] = False,
    trust_code: Annotated[bool, typer.Option(
        "--trust-code", help="Allow module:Class routers in the config (importing them runs their code).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run every cell of a sweep config; finished cells are skipped, so rerunning resumes."""
    from routereval.experiments.backends import make_backend
    from routereval.experiments.sweep import plan_sweep, run_sweep

    ui.check_out_dir(out, "--out")
    backend = make_backend(workers=workers, cluster=cluster)
    plan = plan_sweep(config, out=out, overrides=set_, trust_code=trust_code, force=force)
    with _progress(not as_json) as update:
        summary = run_sweep(plan, backend=backend, retry_failed=retry_failed, progress=update)
    if as_json:
        ui.print_json(summary)
        return
    ui.console().print(
        f"{summary['cells']} rows (router runs): {summary['ok']} ok, {summary['failed']} failed, {summary['skipped']} already done"
        + (f", {summary['skipped_failed']} failed before (--retry-failed reruns them)" if summary["skipped_failed"] else "")
        + f"; {summary['seconds']:.1f} s on {summary['backend']}; results in {summary['results']}")


def register(app: typer.Typer) -> None:
    """Add sweep to the app."""
    app.command("sweep")(sweep_cmd)
