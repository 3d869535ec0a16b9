"""Figures without pyplot: matplotlib's object API, its style set for one figure at a time.

A library that plots through ``pyplot`` switches its caller's backend (``matplotlib.use``) and,
with ``rcParams.update``, leaves its style on every later figure of the process: a notebook's
inline plots stop showing, and one study's SVG text settings carried into another study's
files. :func:`new_figure` builds a bare :class:`~matplotlib.figure.Figure` (no backend, no
global registry of open figures to close) inside ``matplotlib.rc_context``, so the style
holds while the figure is drawn and saved, and nowhere else. matplotlib is imported here only
when a figure is made.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping


@contextmanager
def new_figure(figsize: tuple[float, float], *, style: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """A new :class:`~matplotlib.figure.Figure` of ``figsize`` inches (width, height), drawn and saved in the block
    under the rc settings ``style`` (restored on leaving it)."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(dict(style or {})):
        yield Figure(figsize=figsize)
