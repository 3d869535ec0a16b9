"""``routereval pools``: candidate pools and splits (pools issue)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Registers nothing yet."""
