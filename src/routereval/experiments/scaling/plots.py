"""Plots of the scaling study: one figure per benchmark and a grid (matplotlib, imported lazily; no pyplot:
:mod:`routereval.figures`).

Colours are the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies);
protocols differ by line style (``clean`` solid, ``paper`` dashed), so the figures also read in grey.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from routereval.figures import new_figure

OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7"}
COLOURS = {"oracle": OKABE_ITO["blue"], "random": OKABE_ITO["vermillion"], "best_single": OKABE_ITO["black"],
           "weak_oracle": OKABE_ITO["green"], "mix": OKABE_ITO["sky"]}
# green is the weak-model curve's; routers take the remaining colours first
ROUTER_COLOURS = (OKABE_ITO["orange"], OKABE_ITO["purple"], OKABE_ITO["yellow"], OKABE_ITO["green"])
ROUTER_MARKERS = ("o", "s", "^", "D", "v", "P")
MIX_STYLES = ((0, (6, 2)), (0, (3, 1, 1, 1)), (0, (1, 1.5)), (0, (8, 2, 2, 2)), (0, (2, 3)))
PROTOCOL_STYLE = {"clean": "-", "paper": "--"}
GROUP_TITLES = {"random": "random pools", "all_strong": "all strong", "all_weak": "all weak",
                "strong_to_weak": "strong to weak"}
LABELS = {"oracle": "oracle r_o", "random": "random routing", "best_single": "best single model"}


# for these figures only (routereval.figures): SVG text stays text, so the report's pages can be searched
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
         "axes.spines.top": False, "axes.spines.right": False, "svg.fonttype": "none"}


def _series(rows, **key) -> list[dict]:
    return sorted((r for r in rows if all(r[k] == v for k, v in key.items())), key=lambda r: r["m"])


def _label(curve: str, protocol: str, protocols: Sequence[str]) -> str:
    base = LABELS.get(curve, curve)
    return f"{base} ({protocol})" if len(protocols) > 1 else base


def m_ticks(hi: int) -> list[int]:
    """Labelled pool sizes of a log axis up to ``hi``: 1, 2, 3, 5, 10, 20, 50 for short axes,
    1, 3, 10, 30, 100, ... for long ones (labels must not collide), and ``hi`` itself."""
    series = (1, 2, 3, 5, 10, 20, 50) if hi <= 60 else tuple(f * 10 ** k for k in range(7) for f in (1, 3))
    ticks = [t for t in series if t <= hi]
    if ticks[-1] < hi:
        if ticks[-1] > hi / 1.6:  # too close to label both
            ticks.pop()
        ticks.append(hi)
    return ticks


def _log_m_axis(ax, ms: Sequence[int]) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    ax.set_xscale("log")
    hi = int(max(ms)) if ms else 10
    ax.set_xlim(0.85, hi * 1.18)
    ax.xaxis.set_major_locator(FixedLocator(m_ticks(hi)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("pool size m (candidate models)")
    ax.grid(True, which="major", alpha=0.3, linewidth=0.6)


def _group_panel(ax, rows, group: str, protocols: Sequence[str], ps: Sequence[float], routers: Sequence[str],
                 draws: int) -> None:
    from routereval.experiments.scaling.curves import curve_name

    ms_all: list[int] = []
    for proto in protocols:
        ls = PROTOCOL_STYLE.get(proto, "-")
        first = proto == protocols[0]
        curves = ["oracle", "best_single"] + ([curve_name(p) for p in ps] + ["random"] if first else [])
        for curve in curves:
            s = _series(rows, protocol=proto, group=group, curve=curve)
            if not s:
                continue
            m = np.array([r["m"] for r in s])
            y = np.array([r["score"] for r in s])
            ms_all += m.tolist()
            if curve.startswith("r_o("):
                i = [curve_name(p) for p in ps].index(curve)
                ax.plot(m, y, color=COLOURS["mix"], linestyle=MIX_STYLES[i % len(MIX_STYLES)], linewidth=1.3,
                        label=curve)
                continue
            ax.plot(m, y, color=COLOURS[curve], linestyle=ls, linewidth=2.0 if curve == "oracle" else 1.5,
                    marker="o" if curve == "oracle" else None, markersize=3, label=_label(curve, proto, protocols))
            lo = np.array([r["lo"] for r in s])
            if group == "random" and first and np.isfinite(lo).any():
                hi = np.array([r["hi"] for r in s])
                ax.fill_between(m, lo, hi, color=COLOURS[curve], alpha=0.13, linewidth=0)
        for i, router in enumerate(routers):
            s = _series(rows, protocol=proto, group=group, curve=router)
            if not s:
                continue
            m = np.array([r["m"] for r in s])
            y = np.array([r["score"] for r in s])
            yerr = np.array([[r["score"] - r["lo"] for r in s], [r["hi"] - r["score"] for r in s]])
            ax.errorbar(m, y, yerr=np.clip(yerr, 0, None), color=ROUTER_COLOURS[i % len(ROUTER_COLOURS)],
                        marker=ROUTER_MARKERS[i % len(ROUTER_MARKERS)], linestyle=ls, linewidth=1.2, markersize=4,
                        capsize=2, label=_label(router, proto, protocols))
            ms_all += m.tolist()
    title = GROUP_TITLES.get(group, group) + (f" ({draws} draws, 95% band)" if group == "random" else "")
    ax.set_title(title)
    ax.set_ylabel("test score")
    _log_m_axis(ax, ms_all)


def _weak_panel(ax, weak_rows, protocols: Sequence[str], threshold: float) -> None:
    for proto in protocols:
        s = sorted((r for r in weak_rows if r["protocol"] == proto), key=lambda r: r["k"])
        if not s:
            continue
        ls = PROTOCOL_STYLE.get(proto, "-")
        k = [r["k"] for r in s]
        ax.plot(k, [r["oracle"] for r in s], color=COLOURS["weak_oracle"], linestyle=ls, marker="o", markersize=3,
                linewidth=1.8, label=_label("weak-model oracle", proto, protocols))
        ax.axhline(s[0]["target"], color=COLOURS["best_single"], linestyle=ls, linewidth=1.0, alpha=0.7)
        if proto == protocols[0]:
            ax.annotate(f"target {s[0]['target']:.3f}", (k[0], s[0]["target"]), xytext=(2, 3),
                        textcoords="offset points", fontsize=8)
            reached = next((r["k"] for r in s if r["reaches_target"]), None)
            verdict = (f"reached with {reached} of {len(s)} weak models" if reached is not None
                       else f"not reached: {s[-1]['oracle']:.3f} with all {len(s)}")
            ax.text(0.98, 0.04, verdict, ha="right", va="bottom", transform=ax.transAxes, fontsize=8)
    if not weak_rows:
        ax.text(0.5, 0.5, f"no model scores at most {threshold:g}", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(f"weak models (score <= {threshold:g}), added best first")
    ax.set_xlabel("weak models in the pool")
    ax.set_ylabel("test score (oracle)")
    ax.grid(True, alpha=0.3, linewidth=0.6)
    if weak_rows:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _frontier_panel(ax, frontier, protocol: str, routers: Sequence[str], unit: str | None, cheapest: dict | None) -> None:
    pts = [r for r in frontier if r["protocol"] == protocol]
    orc = [r for r in pts if r["curve"] == "oracle"]
    c = np.array([r["cost"] for r in orc])
    y = np.array([r["score"] for r in orc])
    ax.scatter(c, y, s=8, color="#999999", alpha=0.45, linewidths=0, label="oracle, one pool")
    on = sorted((r for r in orc if r.get("on_frontier")), key=lambda r: r["cost"])
    ax.step([r["cost"] for r in on], [r["score"] for r in on], where="post", color=COLOURS["oracle"], linewidth=1.8,
            label="oracle frontier")
    for i, router in enumerate(routers):
        rp = [r for r in pts if r["curve"] == router]
        if rp:
            ax.scatter([r["cost"] for r in rp], [r["score"] for r in rp], s=22,
                       color=ROUTER_COLOURS[i % len(ROUTER_COLOURS)], marker=ROUTER_MARKERS[i % len(ROUTER_MARKERS)],
                       label=router, zorder=3)
    singles = [r for r in orc if r["m"] == 1]
    if singles:
        ax.scatter([r["cost"] for r in singles], [r["score"] for r in singles], s=20, facecolors="none",
                   edgecolors=COLOURS["best_single"], label="single models", zorder=3)
    if cheapest is not None:
        ax.scatter([cheapest["cost"]], [cheapest["score"]], s=90, facecolors="none", edgecolors=COLOURS["random"],
                   linewidths=1.8, label="cheapest pool reaching best single", zorder=4)
    if len(c) and c.min() > 0 and c.max() / c.min() > 30:
        from matplotlib.ticker import NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a log axis overlap
    ax.set_title(f"quality-cost frontier ({protocol})")
    ax.set_xlabel(unit or "cost")
    ax.set_ylabel("test score")
    ax.grid(True, alpha=0.3, linewidth=0.6)
    ax.legend(loc="best", frameon=True, framealpha=0.85, fontsize=7)


def _legend(fig, axes, ncol: int, spare=None) -> None:
    """One legend for the panels: in the spare (unused) panel when there is one, else below them."""
    seen: dict[str, object] = {}
    for ax in axes:
        if ax.get_legend() is not None:
            continue  # the frontier panel keeps its own legend
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if seen and spare is not None:
        spare.set_visible(True)
        spare.axis("off")
        spare.legend(list(seen.values()), list(seen.keys()), loc="center", frameon=False, fontsize=9)
    elif seen:  # hung below the panels; the saved file's bounding box takes it in, however many rows
        fig.legend(list(seen.values()), list(seen.keys()), loc="upper center", ncol=min(ncol, len(seen)),
                   frameon=False, bbox_to_anchor=(0.5, 0.0))


def _suptitle(fig, text: str, fontsize: int = 11) -> None:
    """The figure's title, wrapped to the figure's width (about 12 characters an inch at 11 pt)."""
    import textwrap

    lines = textwrap.wrap(text, width=max(20, int(fig.get_figwidth() * 132 / fontsize)))
    fig.suptitle("\n".join(lines), fontsize=fontsize)


def _save(fig, out: Path, stem: str) -> list[str]:
    names = []
    for ext in ("png", "svg"):
        # the tight box: a title or legend wider than a one-panel figure is kept whole, not cut at its edge
        fig.savefig(out / f"{stem}.{ext}", dpi=150 if ext == "png" else None, bbox_inches="tight", pad_inches=0.1)
        names.append(f"{stem}.{ext}")
    return names


def plot_benchmark(result, info, out: Path) -> list[str]:
    """``scaling_<benchmark>.png`` and ``.svg``: a panel per group, the weak models and the frontier."""
    s = result.settings
    rows = [r for r in result.curves if r["benchmark"] == info.name]
    groups = [g for g in ("random", "all_strong", "strong_to_weak", "all_weak") if g in s["groups"]
              and any(r["group"] == g for r in rows)]
    weak_rows = [r for r in result.weak if r["benchmark"] == info.name]
    frontier = [r for r in result.frontier if r["benchmark"] == info.name]
    # no weak model: the summary says so, and the figure keeps its room for the curves
    n = len(groups) + bool(weak_rows) + bool(frontier)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    with new_figure((4.6 * ncols, 3.6 * nrows + 0.9), style=STYLE) as fig:
        axes = fig.subplots(nrows, ncols, squeeze=False)
        flat = list(axes.ravel())
        for ax, g in zip(flat, groups):
            _group_panel(ax, rows, g, s["protocols"], s["ps"], s["routers"], s["draws"])
        if weak_rows:
            _weak_panel(flat[len(groups)], weak_rows, s["protocols"], s["weak"])
        if frontier:
            p0 = s["protocols"][0]
            _frontier_panel(flat[len(groups) + bool(weak_rows)], frontier, p0, s["routers"], info.cost_unit,
                            info.cheapest.get(p0))
        for ax in flat[n:]:
            ax.set_visible(False)
        spare = flat[n] if len(flat) > n else None
        # the same y range on the group panels, so pool groups compare at a glance
        ys = [a.get_ylim() for a in flat[:len(groups)]]
        if ys:
            lo, hi = min(y[0] for y in ys), max(y[1] for y in ys)
            for a in flat[:len(groups)]:
                a.set_ylim(lo, hi)
        _suptitle(fig, f"{info.name}: test score against the number of candidate models "
                       f"({info.n_eligible} models, {info.split[2]} test prompts)")
        fig.tight_layout()  # it keeps the title's height clear above the panels
        _legend(fig, flat[:n], ncol=4, spare=spare)
        return _save(fig, out, f"scaling_{info.name}")


def plot_grid(result, out: Path) -> list[str]:
    """``grid.png`` and ``.svg``: every benchmark's random-pool curves (or its first group's), side by side."""
    from routereval.experiments.scaling.curves import curve_name

    s = result.settings
    infos = result.benchmarks
    ncols = min(4, len(infos))
    nrows = math.ceil(len(infos) / ncols)
    with new_figure((3.7 * ncols, 2.9 * nrows + 0.7), style=STYLE) as fig:
        axes = fig.subplots(nrows, ncols, squeeze=False)
        flat = list(axes.ravel())
        ps = s["ps"]
        mid = [0.5] if 0.5 in ps else ps[len(ps) // 2:len(ps) // 2 + 1]
        for ax, info in zip(flat, infos):
            rows = [r for r in result.curves if r["benchmark"] == info.name]
            group = "random" if any(r["group"] == "random" for r in rows) else next(
                (g for g in s["groups"] if any(r["group"] == g for r in rows)), None)
            if group is None:
                ax.set_visible(False)
                continue
            sub = [r for r in rows if r["curve"] in ("oracle", "random", "best_single", *map(curve_name, mid))]
            _group_panel(ax, sub, group, s["protocols"], mid, (), s["draws"])
            ax.set_title(f"{info.name} ({GROUP_TITLES.get(group, group)})")
        for ax in flat[len(infos):]:
            ax.set_visible(False)
        spare = flat[len(infos)] if len(flat) > len(infos) else None
        _suptitle(fig, "Model-level scaling: test score against the number of candidate models")
        fig.tight_layout()
        _legend(fig, flat[:len(infos)], ncol=5 if ncols > 1 else 2, spare=spare)
        return _save(fig, out, "grid")


def plot_all(result, out: Path) -> list[str]:
    """Every figure of the study into ``out``; returns the file names."""
    names: list[str] = []
    for info in result.benchmarks:
        names += plot_benchmark(result, info, out)
    names += plot_grid(result, out)
    return names
