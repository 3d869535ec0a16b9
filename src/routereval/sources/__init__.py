"""Adapters that bring performance records into the canonical data model."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from routereval.sources.importer import import_spec

__all__ = ["import_spec"]


def __dir__() -> list[str]:  # the lazy names too, for dir() and a notebook's tab completion
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str):
    # lazy: `import routereval.sources` (and its submodules) stays cheap
    if name == "import_spec":
        from routereval.sources.importer import import_spec

        return import_spec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
