"""Shared output helpers of the CLI: JSON or rich tables, progress bars."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Optional

import typer


class SplitChoice(str, Enum):
    """The ``--split`` choices of every command that splits prompts."""

    publisher = "publisher"
    random = "random"


# the same --split option on every command that splits: pass ``split_name(value)`` to the library
SplitOpt = Annotated[Optional[SplitChoice], typer.Option(
    "--split", help="publisher: the split the dataset's publisher shipped (the default when the benchmark has one); "
                    "random: the seeded stratified 80/10/10 split (the default otherwise).")]


def split_name(choice: "SplitChoice | None") -> str:
    """The library's split name for a ``--split`` value: ``auto`` when none was given."""
    return "auto" if choice is None else choice.value


def split_line(name: str, note: str, sizes: tuple[int, int, int]) -> str:
    """One line saying which split a command used: name, train/val/test sizes and how it was made."""
    return f"{name} split {sizes[0]}/{sizes[1]}/{sizes[2]}" + (f" ({note})" if note else "")


def check_out_dir(path: Path | None, option: str) -> None:
    """Refuse, before any work, an output directory that cannot be made (one line naming ``option``).

    An existing directory must be writable; else its nearest existing ancestor must be a
    directory this process may write in (a path under a file fails here, not as a traceback
    after the work). ``None`` passes. The path itself (a file there, a directory holding
    something else) is the writer's to check: each says what it may replace.
    """
    from routereval.errors import InputError

    if path is None:
        return
    p = Path(path)
    if p.is_dir():  # an existing directory: the writer writes in it (or replaces it, which it checks)
        if not os.access(p, os.W_OK | os.X_OK):
            raise InputError(f"{option} {p}: this directory is not writable")
        return
    for parent in p.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{option} {p}: {parent} is a file, not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise InputError(f"{option} {p}: {parent} is not writable")
            return


def print_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (numpy-aware, NaN as null)."""
    from routereval.jsonsafe import json_safe

    sys.stdout.write(json.dumps(json_safe(obj), indent=2) + "\n")


def console():
    from rich.console import Console

    # a pipe or a log file has no width: give tables room rather than wrapping every cell
    return Console(file=sys.stdout, soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def table(title: str | None, columns: list[str], rows: list[list[Any]]):
    """A rich table; numbers are right-aligned and floats shown with 4 digits."""
    from rich.table import Table

    t = Table(title=title, header_style="bold")
    for c in columns:
        t.add_column(c, justify="left")
    for r in rows:
        t.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in r])
    return t


LONG_EMBEDDING = 2000  # prompts: the embedding a non-terminal is told about


@contextlib.contextmanager
def progress(enabled: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar on stderr; yields ``update(task_name, done, total)``.

    Disabled (a no-op) when ``enabled`` is False. When stderr is not a terminal (a log, a
    notebook's cell, a CI job) no bar is drawn; a long embedding (``LONG_EMBEDDING`` prompts or
    more: MiniLM takes minutes) says once that it started, so a quiet log is not taken for a hang.
    """
    if not enabled:
        yield lambda name, done, total: None
        return
    if not sys.stderr.isatty():
        said = False

        def once(name: str, done: int, total: int) -> None:
            nonlocal said
            if name == "embed" and total >= LONG_EMBEDDING and not said:
                said = True
                sys.stderr.write(f"note: embedding {total} prompts (cached in the corpus for later runs)\n")
                sys.stderr.flush()

        yield once
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    tasks: dict[str, int] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=Console(file=sys.stderr), transient=True) as bar:
        def update(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done, total=total)

        yield update
