"""Learned-router points of the scaling curves: fit and evaluate a router per (protocol, group, m).

These are the slow curves (a fit per point), so they take their own, smaller m list. Each point
is one :func:`routereval.evaluate.evaluate_cell` on the cell :func:`routereval.evaluate.prepare_cell`
builds (the pool of draw 0 for ``random``), so a point equals ``routereval eval`` on that pool.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

DEFAULT_ROUTER_MS = (2, 3, 5, 10, 20, 50, 100)


@dataclass
class RouterResult:
    rows: list[dict] = field(default_factory=list)       # curve rows (CURVE_COLUMNS)
    points: list[dict] = field(default_factory=list)     # frontier points
    seconds: list[dict] = field(default_factory=list)    # cost of each point: prepare + fit + route + metrics


def router_curves(corpus, bench, states, *, routers: Sequence[str], params: dict[str, dict[str, Any]],
                  groups: Sequence[str], ms: Sequence[int], seed: int, embedding: str | None = None,
                  n_boot: int = 200, missing: str = "auto", split: str = "auto", progress: Callable[[str, int, int], None] | None = None) -> RouterResult:
    """Fit and evaluate each router on each (protocol, group, m) pool that fits.

    Parameters
    ----------
    corpus
        The open corpus (or its directory) ``bench`` belongs to.
    states
        :class:`~routereval.experiments.scaling.curves.ProtocolState` per protocol (for the
        eligible models and the per-model costs).
    routers, params
        Router specs and, per spec, its hyperparameters.
    ms
        Pool sizes of the router curves (those too large for a group are left out).
    n_boot
        Bootstrap resamples of µ's 95% CI (the ``lo``/``hi`` of the row).
    """
    from routereval.evaluate import evaluate_cell, make_router_from, prepare_cell

    made = {r: make_router_from(r, params.get(r), seed=seed, protocol="clean") for r in routers}  # validate first
    kinds = {r: getattr(made[r], "input_kind", "embedding") for r in routers}
    out = RouterResult()
    todo = [(st, g, m) for st in states for g in groups for m in ms if m <= _room(st, g, m)]
    for i, (st, group, m) in enumerate(todo):
        cells: dict[str, Any] = {}
        for spec in routers:
            t0 = time.perf_counter()
            kind = kinds[spec]
            if kind not in cells:
                cells[kind] = prepare_cell(corpus, benchmark=bench.name, m=int(m), group=group, protocol=st.protocol,
                                           embedding=embedding, seed=seed, draw=0, input_kind=kind,
                                           missing=missing, split=split)
            cell = cells[kind]
            router = make_router_from(spec, params.get(spec), seed=seed, protocol=st.protocol)
            res = evaluate_cell(router, cell, router_name=spec, n_boot=n_boot, seed=seed, params=params.get(spec))
            cost = _routed_cost(res, st, cell.pool.models)
            lo, hi = res["mu_ci"]
            out.rows.append({"benchmark": bench.name, "protocol": st.protocol, "group": group, "curve": spec,
                             "m": int(m), "score": res["mu"], "lo": lo, "hi": hi, "cost": cost,
                             "pool_oracle": res["oracle"]})  # the oracle of this very pool (draw 0 for random)
            out.points.append({"benchmark": bench.name, "protocol": st.protocol, "group": group, "m": int(m),
                               "draw": 0, "curve": spec, "score": res["mu"], "cost": cost})
            out.seconds.append({"router": spec, "m": int(m), "group": group, "protocol": st.protocol,
                                "seconds": time.perf_counter() - t0, "fit_s": res["fit_s"]})
        if progress is not None:
            progress(f"routers on {bench.name}", i + 1, len(todo))
    return out


def _room(st, group: str, m: int) -> int:
    from routereval.errors import InputError

    try:
        return st.builder.eligible(group, m)
    except InputError:  # the group has no pools on this benchmark (listed by the curves' skips)
        return 0


def _routed_cost(res: dict, st, pool_models: np.ndarray) -> float:
    """Mean cost per prompt of the router's routes: measured on the cost matrix, else shares x prices."""
    if res.get("cost"):
        return float(res["cost"]["mean_cost"])
    if st.cost is None or st.cost.ndim != 1:
        return float("nan")
    pos = np.searchsorted(st.builder.policy.models, np.asarray(pool_models))
    shares = np.array([res["selection"][str(n)] for n in res["models"]])
    return float(shares @ st.cost[pos])
