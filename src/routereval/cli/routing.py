"""``routereval eval | fit | routers | check-router`` (routers issue)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Registers nothing yet."""
