"""The scaling-up study over benchmarks: run every curve, the weak-model analysis and the frontier.

:func:`run_scaling` is what ``routereval scaling`` runs; :func:`write_outputs` writes the study's
directory (``curves.csv``, ``weak.csv``, ``frontier.csv``, ``summary.md``, plots) atomically.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from routereval.errors import InputError, ParameterError
from routereval.experiments.scaling import maths
from routereval.experiments.scaling.costs import cost_source
from routereval.experiments.scaling.curves import ProtocolState, protocol_state, scaling_curves
from routereval.experiments.scaling.frontier import cheapest_reaching, frontier_rows
from routereval.experiments.scaling.weak import WeakResult, weak_analysis
from routereval.pools import GROUPS, missing_policy
from routereval.validate import as_list, as_path, check_int, is_real, option

DEFAULT_PS = (0.25, 0.5, 0.75)
DEFAULT_WEAK = 0.3
# Missing records: keep every model and only the prompts all of them were evaluated on. The study's
# subject is the number of models, so dropping partly evaluated models (the pools' "auto" choice
# when most models are complete) would cap m below "all models" and change the population.
DEFAULT_MISSING = "prompts"


@dataclass
class BenchmarkInfo:
    """What the summary says about one benchmark besides its curves."""

    name: str
    binary: bool
    n_models: int
    n_eligible: int
    missing: str
    split: tuple[int, int, int]
    cost_kind: str | None
    cost_unit: str | None
    ms: list[int]
    split_name: str = "random"
    split_note: str = ""
    best_single: dict[str, dict] = field(default_factory=dict)   # protocol -> {model, score, cost}
    weak: dict[str, WeakResult] = field(default_factory=dict)    # protocol -> weak pool
    cheapest: dict[str, dict | None] = field(default_factory=dict)  # protocol -> cheapest pool reaching best single


@dataclass
class ScalingResult:
    """Everything the study computed; rows are dicts with the columns of the CSV files."""

    curves: list[dict]
    weak: list[dict]
    frontier: list[dict]
    skipped: list[dict]
    benchmarks: list[BenchmarkInfo]
    settings: dict[str, Any]
    router_seconds: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def __repr__(self) -> str:  # a notebook shows this, not every curve point
        return (f"ScalingResult({', '.join(b.name for b in self.benchmarks)}: {len(self.curves)} curve points, "
                f"{len(self.weak)} weak-model rows, {len(self.frontier)} frontier rows, {len(self.skipped)} skipped"
                + (f"; {self.seconds:.1f} s)" if self.seconds else ")"))

    def to_json(self) -> dict:
        """A JSON-ready summary (the CLI's ``--json``); the rows themselves are in the CSV files."""
        out = {"settings": self.settings, "seconds": self.seconds, "skipped": self.skipped, "benchmarks": []}
        for b in self.benchmarks:
            out["benchmarks"].append({
                "name": b.name, "binary": b.binary, "models": b.n_models, "eligible": b.n_eligible,
                "missing": b.missing, "split": list(b.split), "split_name": b.split_name, "split_note": b.split_note, "cost": b.cost_kind, "ms": b.ms,
                "best_single": b.best_single,
                "weak": {p: {"threshold": w.threshold, "n_weak": w.n_weak, "oracle_all": w.oracle_all,
                             "target": w.target, "reached_k": w.reached_k, "summary": w.sentence()}
                         for p, w in b.weak.items()},
                "cheapest_reaching_best_single": {p: _public_point(c) for p, c in b.cheapest.items()},
                "points": [r for r in self.curves if r["benchmark"] == b.name],
            })
        return out


def _public_point(p: dict | None) -> dict | None:
    return None if p is None else {k: v for k, v in p.items() if k != "models"}


# ----------------------------------------------------------------------------- checks
def _check_ps(ps: Sequence[float]) -> list[float]:
    out = []
    for p in ps:
        if not (is_real(p) and 0.0 <= p <= 1.0):
            raise ParameterError(f"{option('ps', '--p')}: {p!r} is not an oracle probability of r_o(p); each must "
                                 "lie in [0, 1]")
        out.append(float(p))
    return list(dict.fromkeys(out))


def _check_unit(value, name: str, *, allow_zero: bool = True) -> float:
    if not is_real(value) or not (0.0 <= value <= 1.0) or (not allow_zero and value == 0):
        raise ParameterError(f"{name} must be a score in {'[0' if allow_zero else '(0'}, 1], got {value!r}")
    return float(value)


def resolve_benchmarks(corpus, names: Sequence[str] | str) -> list[str]:
    """``"all"`` or names -> benchmark names of ``corpus``; an unknown one is a one-line error."""
    available = list(corpus.benchmarks)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        raise InputError(f"{option('benchmarks', '--benchmark')}: no benchmark named; expected a name, a "
                         "comma-separated list or 'all'")
    if list(names) == ["all"]:
        return available
    for n in names:
        if n not in corpus.benchmarks:
            raise InputError(f"{option('benchmarks', '--benchmark')}: {n!r} is not in the corpus; available: "
                             f"{', '.join(available)}")
    return list(dict.fromkeys(names))


# ----------------------------------------------------------------------------- the study
def run_scaling(corpus, *, benchmarks: Sequence[str] | str = "all", groups: Sequence[str] = GROUPS,
                ms: Sequence[int] | None = None, m_max: int = 1000, draws: int = 20,
                ps: Sequence[float] = DEFAULT_PS, protocols: Sequence[str] = ("clean",),
                weak: float = DEFAULT_WEAK, target: float | None = None, seed: int = 42, missing: str = DEFAULT_MISSING,
                routers: Sequence[str] = (), router_params: dict[str, dict] | None = None,
                router_ms: Sequence[int] | None = None, embedding: str | None = None, n_boot: int = 200,
                split: str = "auto",
                progress: Callable[[str, int, int], None] | None = None) -> ScalingResult:
    """The model-level scaling-up study of ``corpus``'s benchmarks.

    Parameters
    ----------
    corpus
        A corpus directory or an open :class:`~routereval.data.model.Corpus`.
    benchmarks
        Names, or ``"all"``.
    groups
        Pool groups: ``all_strong``, ``all_weak``, ``strong_to_weak``, ``random``.
    ms
        Pool sizes (default: :func:`~routereval.experiments.scaling.maths.default_ms` up to
        ``min(m_max, eligible models)``). A size too large for a group is skipped and listed.
    draws
        Seeded draws of each random pool.
    ps
        Oracle probabilities of the r_o(p) curves, each in [0, 1].
    protocols
        ``clean`` (pools and best single chosen on train+val) and/or ``paper`` (the reference).
    weak, target
        Threshold of the weak-models analysis, and the score their pool should reach
        (default: the best single model's test score).
    seed, missing
        Seed of the split and the draws; missing-records policy (see
        :func:`routereval.pools.missing_policy`; default ``prompts``: every model, only the
        prompts every model was evaluated on; nothing is dropped from a complete benchmark).
    routers, router_params, router_ms, embedding, n_boot
        Learned routers fitted per point (with their hyperparameters) on the sizes ``router_ms``
        (default: 2, 3, 5, 10, 20, 50, 100 that fit), the prompt embedding and the bootstrap
        resamples of their CI.
    split
        The prompt split: ``auto`` (the publisher's when the benchmark has one, else the
        seeded random split), ``publisher`` or ``random`` (see :func:`routereval.pools.make_split`).

    Returns
    -------
    ScalingResult
    """
    from routereval.data.model import Corpus
    from routereval.data.store import open_corpus
    from routereval.pools.build import _check_group, _check_protocol

    t0 = time.perf_counter()
    if not isinstance(corpus, Corpus):  # a path, as every other entry point takes
        corpus = open_corpus(as_path(corpus, "corpus (a directory or an open Corpus)"), texts=bool(routers))
    names = resolve_benchmarks(corpus, benchmarks)
    groups = list(dict.fromkeys(_check_group(g, "--groups") for g in as_list(groups, "groups")))
    protocols = list(dict.fromkeys(_check_protocol(p) for p in as_list(protocols, "protocols")))
    if not groups or not protocols:
        raise InputError(f"{option('groups')} and {option('protocols', '--protocol')} must name at least one group "
                         "and one protocol")
    ps = _check_ps(as_list(ps, "ps"))
    draws, m_max = check_int(draws, option("draws"), low=1), check_int(m_max, option("m_max"), low=1)
    ms = None if ms is None else sorted({check_int(m, option("ms", "--m"), low=1) for m in as_list(ms, "ms")})
    if ms == []:
        raise ParameterError(f"{option('ms', '--m')} must name at least one pool size, or be None for the default "
                             "sizes")
    weak = _check_unit(weak, option("weak"))
    target = None if target is None else _check_unit(target, option("target"), allow_zero=False)
    routers = list(dict.fromkeys(as_list(routers, "routers") or []))
    unused = [option(name, flag) for name, flag, v in (("router_ms", "--router-m", router_ms),
                                                       ("embedding", None, embedding)) if v and not routers]
    if unused:  # they shape the routers' curves only: without routers they would be ignored silently
        raise ParameterError(f"{unused[0]} applies to the learned routers' curves; name them with "
                             f"{option('routers')} or leave it out")
    if routers:
        from routereval.experiments.scaling.routers import DEFAULT_ROUTER_MS

        router_ms = sorted({check_int(m, option("router_ms", "--router-m"), low=1)
                            for m in (as_list(router_ms, "router_ms") or DEFAULT_ROUTER_MS)})
    router_params = dict(router_params or {})
    stray = [k for k in router_params if k not in routers or not isinstance(router_params[k], dict)]
    if stray:  # a flat {"k": 1} or a misspelt router would be dropped silently
        raise ParameterError(f"router_params: {stray[0]!r} is not one of routers ({', '.join(routers) or 'none'}) "
                             "with a dict of its parameters; expected e.g. {'knn': {'k': 7}}")
    settings = {"benchmarks": names, "groups": groups, "protocols": protocols, "ms": ms, "m_max": m_max,
                "draws": draws, "ps": ps, "weak": weak, "target": target, "seed": seed, "missing": missing,
                "routers": routers, "router_params": router_params, "router_ms": router_ms if routers else None, "embedding": embedding, "split": split}
    curves, weak_rows, points, skipped, infos, secs = [], [], [], [], [], []
    for bench_i, name in enumerate(names):
        bench = corpus[name]
        policy = missing_policy(bench, missing)
        costs = cost_source(bench, getattr(corpus, "models", None), policy.models)
        states: list[ProtocolState] = []
        for protocol in protocols:
            states.append(protocol_state(bench, protocol=protocol, seed=seed, missing=missing, costs=costs,
                                         previous=states[0] if states else None, split=split))
        n_el = states[0].builder.n_eligible
        bms = ms if ms is not None else maths.default_ms(n_el, m_max)
        res = scaling_curves(bench, states, groups=groups, ms=bms, draws=draws, ps=ps)
        sp = states[0].builder.split
        info = BenchmarkInfo(name, bool(bench.binary), bench.n_models, n_el, policy.note,
                             (len(sp.train), len(sp.val), len(sp.test)),
                             None if costs is None else costs.kind, None if costs is None else costs.unit, list(bms),
                             split_name=getattr(sp, "name", "random"), split_note=getattr(sp, "note", ""))
        bench_points = list(res.points)
        for st in states:
            wr = _best_and_weak(bench, st, info, weak=weak, target=target)
            weak_rows.extend(wr.rows)
            curves.extend({"benchmark": name, "protocol": st.protocol, "group": "weak", "curve": "weak_oracle",
                           "m": r["k"], "score": r["oracle"], "lo": np.nan, "hi": np.nan, "cost": np.nan}
                          for r in wr.rows)
        curves.extend(res.rows)
        skipped.extend(res.skipped)
        if routers:
            from routereval.experiments.scaling.routers import router_curves

            rr = router_curves(corpus, bench, states, routers=routers, params=router_params or {}, groups=groups,
                               ms=[m for m in router_ms if m <= n_el], seed=seed, embedding=embedding,
                               n_boot=n_boot, missing=missing, split=split, progress=progress)
            curves.extend(rr.rows)
            bench_points.extend(rr.points)
            secs.extend({"benchmark": name, **s} for s in rr.seconds)
            skipped.extend({"benchmark": name, "protocol": "-", "group": "routers", "m": m,
                            "reason": f"only {n_el} eligible models"} for m in router_ms if m > n_el)
        if costs is not None:
            points.extend(_frontier(bench, states, bench_points, info))
        infos.append(info)
        if progress is not None:
            progress("benchmarks", bench_i + 1, len(names))
    if not any(r["curve"] != "weak_oracle" for r in curves):
        detail = "; ".join(f"{s['benchmark']} {s['group']} m={s['m']}: {s['reason']}" for s in skipped[:3])
        raise InputError(f"nothing to compute: every requested pool size is too large for its group ({detail})")
    return ScalingResult(curves, weak_rows, points, skipped, infos, settings, secs, time.perf_counter() - t0)


def _best_and_weak(bench, st: ProtocolState, info: BenchmarkInfo, *, weak: float, target: float | None) -> WeakResult:
    """Record the benchmark-wide best single model of ``st``'s protocol and run its weak-models analysis."""
    names = bench.models[st.builder.policy.models]
    bs = st.best_single
    info.best_single[st.protocol] = {"model": str(names[bs]), "score": st.best_single_score,
                                     "cost": None if st.cost is None else float(np.mean(st.cost[bs]))}
    wr = weak_analysis(bench.name, st.protocol, st.block, st.builder.scorer.means, names, threshold=weak,
                       target=st.best_single_score if target is None else target,
                       target_kind="best_single" if target is None else "given")
    info.weak[st.protocol] = wr
    return wr


def _frontier(bench, states: Sequence[ProtocolState], points: list[dict], info: BenchmarkInfo) -> list[dict]:
    """Frontier rows of one benchmark; records per protocol the cheapest pool reaching its best single model."""
    for st in states:
        mine = [p for p in points if p["protocol"] == st.protocol]
        c = cheapest_reaching(mine, st.best_single_score)
        if c is not None and "models" in c:
            c = {**c, "models": [str(x) for x in bench.models[st.builder.policy.models[c["models"]]]]}
        info.cheapest[st.protocol] = c
    return frontier_rows(points, best_single={st.protocol: st.best_single_score for st in states})
