"""Plots of the cold-start study: error vs k, µ vs k with bounds (matplotlib, imported lazily; no pyplot:
:mod:`routereval.figures`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from routereval.atomic import remove_orphans, replacing
from routereval.figures import new_figure

# Okabe-Ito: distinguishable with every common colour-vision deficiency
PALETTE = {"random": "#E69F00", "stratified": "#56B4E9", "irt": "#009E73", "fisher": "#CC79A7",
           "adaptive": "#D55E00", "plain": "#000000", "upper": "#0072B2", "lower": "#000000"}
MARKERS = {"random": "o", "stratified": "s", "irt": "^", "fisher": "v", "adaptive": "D"}  # one per anchor method


def _save(fig, out: Path, stem: str) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` beside each other, each written aside and renamed into place."""
    written = []
    for ext in ("png", "svg"):
        final = out / f"{stem}.{ext}"
        remove_orphans(final)
        with replacing(final) as tmp:
            fig.savefig(tmp, format=ext, dpi=130, bbox_inches="tight")
        written.append(final)
    return written


def _short(name: str, width: int = 28) -> str:
    """A model name cut to ``width`` characters (an ellipsis marks the cut)."""
    return name if len(name) <= width else name[:width - 1] + "…"


def plot_study(summary: list[dict[str, Any]], out: Path, *, title: str, baseline: dict[int, float],
               stratified_is_random: bool = False) -> list[Path]:
    """``error_vs_k`` (MAE of the estimated mean per method; the plain mean of k random answers dashed)
    and ``mu_vs_k`` (routing µ with the added model between the two bounds, over the held-out models whose
    removal costs the full refit at least 0.005: elsewhere the bounds coincide), one panel per pre-training.

    ``baseline``: k -> MAE of the plain mean of k random answers (measured in the study).
    ``stratified_is_random``: the benchmark's train prompts form one subset, so ``stratified`` anchors are the
    ``random`` ones: its line is drawn dashed and its legend says so (else it hides under random's).
    """
    pretrains = sorted({s["pretrain"] for s in summary}, key=lambda p: ("pool", "corpus").index(p))
    methods = [m for m in MARKERS if any(s["method"] == m for s in summary)]
    written: list[Path] = []
    for stem, key in (("error_vs_k", "mae"), ("mu_vs_k", "mu_added_matter")):
        with new_figure((5.2 * len(pretrains), 3.8)) as fig:
            axes = fig.subplots(1, len(pretrains), squeeze=False, sharey=True)
            for ax, pre in zip(axes[0], pretrains):
                rows = [s for s in summary if s["pretrain"] == pre]
                held = ""
                for meth in methods:
                    pts = sorted((s["k"], s[key], s.get("mae_se")) for s in rows if s["method"] == meth)
                    same = stratified_is_random and meth == "stratified"
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=MARKERS[meth], color=PALETTE[meth],
                            ls="--" if same else "-", mfc="none" if same else None,
                            label="stratified (= random: one subset)" if same else meth)
                    se = [p[2] for p in pts]
                    if key == "mae" and not same and all(x is not None and math.isfinite(x) for x in se):
                        ax.fill_between([p[0] for p in pts], [p[1] - x for p, x in zip(pts, se)],
                                        [p[1] + x for p, x in zip(pts, se)], color=PALETTE[meth], alpha=0.12, lw=0)
                ks = sorted({s["k"] for s in rows})
                if key == "mae":
                    bl = [(k, baseline[k]) for k in ks if k in baseline]
                    ax.plot([b[0] for b in bl], [b[1] for b in bl], ls="--", color=PALETTE["plain"],
                            label="plain mean, random")
                    ax.set_ylabel("mean |estimated - true test mean| (± SE)")
                else:
                    up = next(s["mu_upper_matter"] for s in rows)
                    lo = next(s["mu_lower_matter"] for s in rows)
                    n = next(s["n_matter"] for s in rows)
                    # every line here is the mean over the held-out models that matter (all of them when none does)
                    which = ("all held-out models: none matters" if not n
                             else f"{n} model that matters" if n == 1 else f"{n} models that matter")
                    names = next((s.get("matter_models") or [] for s in rows), [])
                    full = next((s.get("mu_full_matter") for s in rows), None)
                    ax.axhline(up, ls="--", color=PALETTE["upper"], label="upper: refit with full answers")
                    if full is not None:  # the added model with all its answers: where the curves head
                        ax.axhline(full, ls="-.", color=PALETTE["upper"], alpha=0.7,
                                   label="same prompt side, all its train answers")
                    ax.axhline(lo, ls=":", color=PALETTE["lower"],
                               label="lower: the pool without the model" + (f" ({which})" if n else ""))
                    ax.set_ylabel(f"routing µ on test ({which})")
                    if 0 < len(names) <= 3:  # name the few models every line rests on
                        held = "\nheld out: " + ", ".join(_short(x) for x in names)
                ax.set_xscale("log")
                ax.minorticks_off()  # only the k values studied are labelled
                ax.set_xticks(ks)
                ax.set_xticklabels([str(k) for k in ks])
                ax.set_xlabel("anchors k")
                ax.set_title(f"pre-training: {pre}" + held, fontsize=10 if held else None)
                ax.grid(alpha=0.3)
            # beside the panels, not over them: any corner of a panel may hold a line
            axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
            # above the panels' titles, which take a second line when they name the held-out models
            two_lines = any("\n" in ax.get_title() for ax in axes[0])
            fig.suptitle(title, fontsize=10, y=1.07 if two_lines else 0.98)
            written += _save(fig, out, stem)
    return written
