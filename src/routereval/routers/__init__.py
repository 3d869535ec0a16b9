"""Routers behind one contract (see :mod:`routereval.routers.base`) and their registry."""

from typing import Any

from routereval.routers.base import (
    Interval,
    OfType,
    Options,
    Router,
    available_routers,
    get_router_class,
    make_router,
    register,
)

__all__ = ["Interval", "OfType", "Options", "Router", "available_routers", "get_router_class", "make_router", "register",
           "load_router", "save_router"]


def __dir__() -> list[str]:  # the lazy names too, for dir() and a notebook's tab completion
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str) -> Any:
    # saving and loading (safetensors, the corpus store's checksums) are imported when first asked for
    if name in ("load_router", "save_router"):
        from routereval.routers import persist

        return getattr(persist, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
