"""Routers behind one contract (see :mod:`routereval.routers.base`) and their registry."""

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

__all__ = ["Interval", "OfType", "Options", "Router", "available_routers", "get_router_class", "make_router", "register"]
