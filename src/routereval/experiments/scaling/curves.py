"""Scaling curves of one benchmark: oracle, r_o(p), random routing and best single against m.

Per protocol, the pools come from :class:`routereval.pools.PoolBuilder` (the same windows,
draws and random pools ``routereval pools`` builds); their test scores from one
:class:`~routereval.experiments.scaling.maths.Block` of the eligible models on the test
prompts, reduced for all pools of one (group, m) at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from routereval.errors import InputError
from routereval.experiments.scaling import maths
from routereval.experiments.scaling.costs import CostSource
from routereval.pools import PoolBuilder, Split, make_split


def curve_name(p: float) -> str:
    """``r_o(0.5)``: the curve name of the oracle-random mix with oracle probability ``p``."""
    return f"r_o({p:g})"


def study_split(bench, *, protocol: str, seed: int, missing: str, split: str = "auto") -> Split:
    """The prompt split of the study: the one place it is obtained (``routereval.pools.make_split``).

    ``split``: ``auto`` (the publisher's when the benchmark has one, else the seeded random
    split), ``publisher`` or ``random``.
    """
    return make_split(bench, protocol=protocol, seed=seed, missing=missing, split=split)


@dataclass
class ProtocolState:
    """What the curves, the weak-model analysis and the frontier share for one protocol."""

    protocol: str
    builder: PoolBuilder
    block: maths.Block
    cost: np.ndarray | None          # (n_eligible,) or (n_eligible, n_test), aligned with block rows
    best_single: int                 # block row of the benchmark-wide best single model (protocol's choice)

    @property
    def best_single_score(self) -> float:
        return float(self.block.means[self.best_single])


def protocol_state(bench, *, protocol: str, seed: int, missing: str, costs: CostSource | None,
                   previous: ProtocolState | None = None, split: str = "auto") -> ProtocolState:
    """Split, pool builder and test block of ``bench`` under ``protocol``.

    The test block of ``previous`` (another protocol's state) is reused when its split has
    the same test prompts (the protocols share the split; only the choices differ).
    """
    sp = study_split(bench, protocol=protocol, seed=seed, missing=missing, split=split)
    builder = PoolBuilder(bench, protocol=protocol, split=sp, seed=seed, missing=missing)
    rows = builder.policy.models
    if previous is not None and np.array_equal(previous.builder.split.test, sp.test) \
            and np.array_equal(previous.builder.policy.models, rows):
        block = previous.block
    else:
        block = maths.make_block(bench, rows, sp.test)
    cost = None if costs is None else costs.block_cost(rows, sp.test)
    # clean: the best model on train+val, scored on test; paper: the best on test (the reference)
    best = int(np.argmax(builder.fit_means())) if protocol == "clean" else int(np.argmax(block.means))
    return ProtocolState(protocol, builder, block, cost, best)


@dataclass
class CurveResult:
    """Rows of one benchmark's curves (see :data:`CURVE_COLUMNS`), frontier points and skipped points."""

    rows: list[dict] = field(default_factory=list)
    points: list[dict] = field(default_factory=list)   # one per pool: oracle score and cost (frontier)
    skipped: list[dict] = field(default_factory=list)


CURVE_COLUMNS = ("benchmark", "protocol", "group", "curve", "m", "score", "lo", "hi", "cost")


def group_pools(state: ProtocolState, group: str, m: int, draws: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_pools, m) block positions of the pools of ``group`` and ``m`` and (n_pools,) positions of their best single.

    ``random``: ``draws`` seeded draws; other groups: the one pool the protocol chooses.
    """
    b = state.builder
    pools = [b.pool(m, group, draw=d) for d in range(draws if group == "random" else 1)]
    picks = np.searchsorted(b.policy.models, np.stack([p.models for p in pools]))
    best = picks[np.arange(len(pools)), [p.best_single for p in pools]]
    return picks, best


def scaling_curves(bench, states: Sequence[ProtocolState], *, groups: Sequence[str], ms: Sequence[int],
                   draws: int, ps: Sequence[float]) -> CurveResult:
    """Oracle, r_o(p), random and best-single curves of ``bench`` for every protocol, group and m.

    Parameters
    ----------
    bench
        The benchmark.
    states
        One :class:`ProtocolState` per protocol.
    groups, ms
        Pool groups and sizes; an m larger than a group's eligible models is skipped (listed
        in ``skipped``), not an error.
    draws
        Seeded draws of each random pool (the band is the 2.5-97.5 percentile over draws).
    ps
        Oracle probabilities of the r_o(p) curves.

    Returns
    -------
    CurveResult
        ``rows``: one dict per (protocol, group, curve, m) with the mean ``score``, ``lo``/``hi``
        (the band; NaN for single pools) and ``cost`` (mean cost per prompt; NaN without costs).
    """
    res = CurveResult()
    for st in states:
        for group in groups:
            for m in ms:
                try:
                    room = st.builder.eligible(group, m)
                except InputError as e:  # e.g. no model above the windows' floor: this group has no pools
                    res.skipped.append({"benchmark": bench.name, "protocol": st.protocol, "group": group,
                                        "m": int(m), "reason": e.reason})
                    continue
                if m > room:
                    res.skipped.append({"benchmark": bench.name, "protocol": st.protocol, "group": group, "m": int(m),
                                        "reason": f"only {room} eligible models"})
                    continue
                picks, best = group_pools(st, group, m, draws)
                _add_points(res, bench.name, st, group, m, picks, best, ps)
    return res


def _add_points(res: CurveResult, name: str, st: ProtocolState, group: str, m: int, picks: np.ndarray,
                best: np.ndarray, ps: Sequence[float]) -> None:
    block = st.block
    oracle = maths.pool_oracles(block, picks)
    rnd = maths.random_expected(block, picks)
    single = block.means[best]
    values = {"oracle": oracle, "random": rnd, "best_single": single}
    for p in ps:
        values[curve_name(p)] = maths.mix_expected(oracle, rnd, p)
    costs: dict[str, np.ndarray] = {}
    if st.cost is not None:
        model_cost = st.cost if st.cost.ndim == 1 else st.cost.mean(axis=1)  # (n_eligible,) mean test cost
        c_or = maths.oracle_costs(block, picks, st.cost)
        c_rnd = model_cost[picks].mean(axis=1)
        costs = {"oracle": c_or, "random": c_rnd, "best_single": model_cost[best]}
        for p in ps:
            costs[curve_name(p)] = maths.mix_expected(c_or, c_rnd, p)
    for curve, v in values.items():
        mean, lo, hi = maths.band(v) if group == "random" else (v[0], np.nan, np.nan)
        c = float(np.mean(costs[curve])) if curve in costs else np.nan
        res.rows.append({"benchmark": name, "protocol": st.protocol, "group": group, "curve": curve, "m": int(m),
                         "score": float(mean), "lo": float(lo), "hi": float(hi), "cost": c})
    for d in range(len(picks)):
        res.points.append({"benchmark": name, "protocol": st.protocol, "group": group, "m": int(m), "draw": d,
                           "curve": "oracle", "score": float(oracle[d]),
                           "cost": float(costs["oracle"][d]) if costs else np.nan,
                           "models": picks[d]})
