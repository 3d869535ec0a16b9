"""The quality-cost frontier over pools, and the cheapest pool that reaches the best single model."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from routereval.experiments.scaling import maths

FRONTIER_COLUMNS = ("benchmark", "protocol", "curve", "group", "m", "draw", "score", "cost", "on_frontier",
                    "reaches_best_single")


def frontier_rows(points: Sequence[dict], *, best_single: dict[str, float]) -> list[dict]:
    """Mark the Pareto frontier (per benchmark, protocol and curve) and the pools reaching the best single.

    Parameters
    ----------
    points
        One dict per pool and curve with ``benchmark, protocol, curve, group, m, draw, score, cost``.
    best_single
        Protocol -> the benchmark-wide best single model's test score.
    """
    out = [{k: p[k] for k in FRONTIER_COLUMNS if k in p} for p in points if np.isfinite(p["cost"])]
    keys = sorted({(r["benchmark"], r["protocol"], r["curve"]) for r in out})
    for key in keys:
        idx = [i for i, r in enumerate(out) if (r["benchmark"], r["protocol"], r["curve"]) == key]
        mask = maths.pareto_mask([out[i]["cost"] for i in idx], [out[i]["score"] for i in idx])
        for i, on in zip(idx, mask):
            out[i]["on_frontier"] = bool(on)
    for r in out:
        r["reaches_best_single"] = bool(r["score"] >= best_single[r["protocol"]] - 1e-12)
    return out


def cheapest_reaching(points: Sequence[dict], target: float, *, curve: str = "oracle") -> dict | None:
    """The cheapest pool (point of ``curve``) whose score reaches ``target``; None when none does."""
    ok = [p for p in points if p["curve"] == curve and np.isfinite(p["cost"]) and p["score"] >= target - 1e-12]
    if not ok:
        return None
    return min(ok, key=lambda p: (p["cost"], -p["score"], p["m"]))
