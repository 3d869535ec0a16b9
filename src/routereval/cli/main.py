"""Entry point of the ``routereval`` command.

Every :class:`~routereval.errors.RouterEvalError` a command raises becomes one line
on stderr and exit status 2.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys

import typer

app = typer.Typer(
    name="routereval",
    help="Build, run and serve LLM-router benchmarks at RouterEval scale.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module defines ``register(app)``; importing them is cheap (their heavy imports are lazy).
_COMMAND_MODULES = ("data", "pools", "routing", "sweep", "report", "coldstart", "serve", "scaling")

for _name in _COMMAND_MODULES:
    importlib.import_module(f"routereval.cli.{_name}").register(app)


def _reflow(text: str) -> str:
    """``text`` with each paragraph on one line: the terminal wraps it (Typer's rich help keeps the
    docstring's line breaks inside a paragraph, which breaks lines mid-sentence at any width)."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split("\n")) for p in paragraphs)


def _reflow_help(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        doc = info.help or inspect.getdoc(info.callback)
        if doc:
            info.help = _reflow(doc)
    for group in typer_app.registered_groups:
        _reflow_help(group.typer_instance)


_reflow_help(app)


def run(args: list[str] | None = None) -> int:
    """Run the CLI with ``args`` (``sys.argv[1:]`` when None); returns the exit status."""
    import click

    from routereval.errors import RouterEvalError

    # typer >= 0.2x raises its own Exit/Abort and the exceptions of its vendored copy of click
    import typer.exceptions as texc

    try:
        from typer._click.exceptions import ClickException as TyperClickException
        from typer._click.exceptions import NoArgsIsHelpError
        from typer._click.exceptions import UsageError as TyperUsageError
    except ImportError:  # pragma: no cover - older typer uses click itself
        TyperClickException, TyperUsageError = click.ClickException, click.UsageError
        NoArgsIsHelpError = ()
    exits = (click.exceptions.Exit, getattr(texc, "Exit", click.exceptions.Exit))
    aborts = (click.exceptions.Abort, getattr(texc, "Abort", click.exceptions.Abort))

    try:
        result = app(args=args, standalone_mode=False, prog_name="routereval")
    except exits as e:
        return e.exit_code
    except NoArgsIsHelpError as e:  # a bare group: its help is the answer
        e.show()
        return e.exit_code
    except (click.UsageError, TyperUsageError) as e:
        # a bad option or argument: one line, like every other input error
        ctx = getattr(e, "ctx", None)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        sys.stderr.write(f"error: {e.format_message()}{where}\n")
        return 2
    except (click.ClickException, TyperClickException) as e:
        e.show()
        return e.exit_code
    except aborts:
        sys.stderr.write("Aborted.\n")
        return 1
    except RouterEvalError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    except OSError as e:
        # a path the file system refused (an output under a file, a read-only directory, a full disk): one line,
        # not a traceback; an error naming no path is not the user's input: it keeps its traceback
        if not isinstance(e.filename, (str, bytes, os.PathLike)) or not e.filename:  # not a path: a descriptor, say
            raise
        where = os.fsdecode(e.filename) if not e.filename2 else f"{os.fsdecode(e.filename)} -> {os.fsdecode(e.filename2)}"
        sys.stderr.write(f"error: {where}: {e.strerror or e}\n")
        return 2
    return result if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run())
