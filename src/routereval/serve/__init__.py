"""Serve a saved router over HTTP: a routing API and an OpenAI-compatible proxy.

``create_app(router_dir, ...)`` builds the FastAPI app (see :mod:`routereval.serve.app`);
``routereval serve ROUTER_DIR`` runs it under uvicorn. Importing this package loads
nothing heavy: FastAPI, uvicorn, httpx and torch are imported when an app is built.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ROUTER_MODEL", "create_app"]

ROUTER_MODEL = "router"  # the virtual model name that asks for routing: no pool model may take it


def create_app(router_dir: Any, **options: Any) -> Any:
    """Build the serving app for the router saved in ``router_dir`` (see :func:`routereval.serve.app.create_app`)."""
    from routereval.serve.app import create_app as _create_app

    return _create_app(router_dir, **options)
