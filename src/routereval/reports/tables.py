"""The paper's Tables 1-2 from a results store: per benchmark and m, routers as rows.

Each row is one router with one parameter setting; its figures are averaged over the cells
of the table: the pool groups (the paper's three), the pool draws within a group, and the
seeds. Per seed the figure is the mean over groups of the mean over draws; shown is the mean
(± sample standard deviation) over seeds. The 95% CI of µ_o is the bootstrap of the whole
average from the stored per-prompt routed scores (see :mod:`routereval.reports.stats`); the
"wins" column counts cells where the router beats the pool's best single model (paired
bootstrap p < 0.05 on the same test prompts). Where both protocols are in the report, the
tables show them side by side with the difference paper - clean.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from routereval.reports import stats

#: the paper's pool groups, in its order (other groups follow alphabetically)
GROUP_ORDER = ("all_strong", "all_weak", "strong_to_weak", "random")
#: the paper's router order (Tables 1-2); routers not listed follow alphabetically
ROUTER_ORDER = ("oracle", "mix", "random", "best_single", "linear", "mlp", "kmeans", "knn", "mlc", "mf", "irt")
PROTOCOL_ORDER = ("paper", "clean")
#: the figures averaged over cells, as stored (names of ``routereval eval --json``)
AVERAGED = ("mu", "v_r", "v_b", "e_p", "e_sel", "oracle_recall")
#: figures whose best non-oracle value is bold (higher is better)
BOLD = ("mu", "v_r", "v_b")
#: figures shown side by side with their difference when both protocols are reported
DELTA = ("mu", "v_r", "v_b", "e_p")
#: shown beside them where the corpus had costs
COST = "mean_cost"
LABELS = {"mu": "µ_o", "v_r": "V_R", "v_b": "V_B", "e_p": "E_p", "e_sel": "e_sel", "oracle_recall": "recall",
          "mu_ci": "µ_o 95% CI", "wins": "wins", COST: "cost"}
DESCRIPTIONS = {
    "mu": "mean test score of the routed models",
    "v_r": "µ_o / the reference (GPT-4-class) model's score",
    "v_b": "µ_o / the pool's best single model",
    "e_p": "the paper's classification-bias entropy of the selection probabilities (bits, per router as the reference computes it)",
    "e_sel": "entropy of the selection histogram over the test prompts (bits; 0 = collapse onto one model)",
    "oracle_recall": "share of solvable test prompts routed to a model that solves them",
    "mu_ci": "95% bootstrap CI of the averaged µ_o (each cell's test prompts resampled)",
    "wins": "cells where the router beats the pool's best single model (paired bootstrap p < 0.05)",
    COST: "mean cost per test prompt of the routed models (USD; where the corpus has costs)",
}
DELTA_PROTOCOL = "paper-clean"


@dataclass
class Column:
    """One column: a figure under one protocol (or the difference ``paper-clean``)."""

    metric: str
    protocol: str
    label: str


@dataclass
class Value:
    """One table cell. ``value`` mean over seeds, ``std`` their sample std (None for one seed),
    ``lo``/``hi`` the CI (``mu_ci``), ``n`` the cells averaged (or tested, for ``wins``)."""

    value: float | None = None
    std: float | None = None
    lo: float | None = None
    hi: float | None = None
    n: int = 0
    n_seeds: int = 0
    bold: bool = False


@dataclass
class Row:
    router: str
    params: str
    label: str
    oracle_type: bool
    values: dict[tuple[str, str], Value] = field(default_factory=dict)
    incomplete: bool = False  # fewer cells than the table's (failed cells)


@dataclass
class ReportTable:
    benchmark: str
    m: int
    embedding: str
    protocols: list[str]
    groups: list[str]
    seeds: list[int]
    columns: list[Column]
    rows: list[Row]
    n_cells: int  # cells (seed, group, draw) of the table, per protocol
    split: str | None = None  # the split kind ("random"; "publisher" where a sweep ran other splits)

    @property
    def title(self) -> str:
        return f"{self.benchmark}, m = {self.m}"


@dataclass
class Report:
    """Everything a renderer needs: the tables and what they were made from."""

    tables: list[ReportTable]
    protocols: list[str]
    benchmarks: list[str]
    embeddings: list[str]
    seeds: list[int]
    splits: list[str]
    groups: list[str]
    n_rows: int
    n_failed: int
    source: str
    n_boot: int
    studies: list[Any] = field(default_factory=list)

    def __repr__(self) -> str:  # a notebook shows this, not every table
        if not self.source:  # a report of studies alone (no sweep results)
            return f"Report({len(self.studies)} studies, no sweep results)"
        return (f"Report({len(self.tables)} tables from {self.source!r}: {self.n_rows} rows, {self.n_failed} failed; "
                f"benchmarks {', '.join(map(str, self.benchmarks)) or '-'}; {len(self.studies)} studies)")


def _order(values, order: Sequence[str]) -> list:
    return sorted(values, key=lambda v: (order.index(v) if v in order else len(order), str(v)))


def router_label(router: str, params: str) -> str:
    """``knn (k=5)``: the router's name and its parameters (none: the name alone)."""
    p = json.loads(params) if params else {}
    if not p:
        return router
    return f"{router} (" + ", ".join(f"{k}={v}" for k, v in p.items()) + ")"


def _params_key(params: str) -> tuple:
    # k=5 before k=15: numbers compare as numbers
    p = json.loads(params) if params else {}
    return tuple((k, (0, float(v), "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0.0, str(v)))
                 for k, v in sorted(p.items()))


def oracle_types(routers: Sequence[str]) -> set[str]:
    """The registered routers among ``routers`` that see test scores (oracle, mix): never bold.

    ``module:Class`` routers are not imported (a report runs no user code): not oracle-type.
    """
    from routereval.routers import available_routers

    reg = available_routers()
    return {r for r in routers if r in reg and getattr(reg[r], "requires_scores", False)}


def columns_for(protocols: Sequence[str], *, cost: bool = False) -> list[Column]:
    """Columns of a table: the paper's four figures (side by side with the difference when two
    protocols are reported), then selection entropy, oracle recall, the CI, the wins (and the
    mean cost, with ``cost``) per protocol."""
    extra = ("e_sel", "oracle_recall", "mu_ci", "wins") + ((COST,) if cost else ())
    if len(protocols) == 1:
        p = protocols[0]
        return [Column(k, p, LABELS[k]) for k in (*DELTA, *extra)]
    cols = []
    for k in DELTA:
        cols += [Column(k, p, f"{LABELS[k]} {p}") for p in protocols]
        cols.append(Column(k, DELTA_PROTOCOL, f"Δ{LABELS[k]}"))
    for p in protocols:
        cols += [Column(k, p, f"{LABELS[k]} {p}") for k in extra]
    return cols


class _Rows:
    """Column access to a results table: scalars as Python lists, per-prompt lists as numpy slices."""

    def __init__(self, table) -> None:
        self.n = table.num_rows
        self._t = table
        self._cache: dict[str, Any] = {}

    def col(self, name: str) -> list:
        if name not in self._cache:
            self._cache[name] = self._t.column(name).to_pylist()
        return self._cache[name]

    def lists(self, name: str) -> list[np.ndarray]:
        if name not in self._cache:
            import pyarrow as pa

            arr = self._t.column(name).combine_chunks()
            if isinstance(arr, pa.ChunkedArray):  # an empty table
                arr = pa.array([], type=arr.type)
            offsets = arr.offsets.to_numpy()
            values = arr.values.to_numpy(zero_copy_only=False).astype(np.float64)
            self._cache[name] = [values[offsets[i]:offsets[i + 1]] for i in range(len(arr))]
        return self._cache[name]


def _unit_state(seed: int, group: str, draw: int) -> tuple[int, int, int]:
    # one bootstrap stream per cell, shared by every router on it (common resamples)
    code = GROUP_ORDER.index(group) if group in GROUP_ORDER else 100 + zlib.crc32(group.encode()) % 10**6
    return (int(seed), code, int(draw))


def _weights(units: list[tuple[int, str, int]]) -> tuple[dict[int, dict[str, list[int]]], np.ndarray]:
    """Per seed, per group the unit indices; and each unit's weight in the overall average
    (1 / (seeds x groups of its seed x draws of its group))."""
    tree: dict[int, dict[str, list[int]]] = {}
    for i, (s, g, _d) in enumerate(units):
        tree.setdefault(s, {}).setdefault(g, []).append(i)
    w = np.zeros(len(units))
    for s, groups in tree.items():
        for g, idx in groups.items():
            w[idx] = 1.0 / (len(tree) * len(groups) * len(idx))
    return tree, w


def _per_seed(values: list, tree: dict[int, dict[str, list[int]]]) -> list[float | None]:
    out = []
    for s in sorted(tree):
        group_means = []
        for idx in tree[s].values():
            v = [values[i] for i in idx if values[i] is not None and np.isfinite(values[i])]
            group_means.append(float(np.mean(v)) if v else None)
        out.append(None if any(g is None for g in group_means) else float(np.mean(group_means)))
    return out


def _bootstrap(rows: _Rows, idx: list[int], *, n_boot: int) -> tuple[dict[int, np.ndarray], dict[int, float]]:
    """Per results row: (n_boot,) bootstrap means of its routed scores, and its p-value of beating
    the best single model. Rows on the same cell share the cell's resamples (drawn once); the
    p-values use the cell's seed, as ``eval`` does."""
    routed, best = rows.lists("routed_scores"), rows.lists("best_single_scores")
    seeds, groups, draws = rows.col("seed"), rows.col("group"), rows.col("draw")
    by_state: dict[tuple, list[int]] = {}
    by_seed: dict[tuple, list[int]] = {}
    for i in idx:
        by_state.setdefault((_unit_state(seeds[i], groups[i], draws[i]), len(routed[i])), []).append(i)
        by_seed.setdefault((seeds[i], len(routed[i])), []).append(i)
    means: dict[int, np.ndarray] = {}
    for (state, _n), ii in by_state.items():
        means.update(zip(ii, stats.resample_means(np.vstack([routed[i] for i in ii]), n_boot=n_boot,
                                                  random_state=state)))
    pvals: dict[int, float] = {}
    for (seed, _n), ii in by_seed.items():
        p = stats.paired_p_values(np.vstack([routed[i] for i in ii]), np.vstack([best[i] for i in ii]),
                                  n_boot=n_boot, random_state=seed)
        pvals.update(zip(ii, p.tolist()))
    return means, pvals


def _row_values(rows: _Rows, idx: list[int], boot: tuple[dict[int, np.ndarray], dict[int, float]], *,
                level: float, alpha: float = 0.05) -> dict[str, Value]:
    seeds, groups, draws = rows.col("seed"), rows.col("group"), rows.col("draw")
    order = sorted(idx, key=lambda i: _unit_state(seeds[i], groups[i], draws[i]))
    units = [(seeds[i], groups[i], draws[i]) for i in order]
    tree, w = _weights(units)
    out: dict[str, Value] = {}
    for k in (*AVERAGED, COST):
        col = rows.col(k)
        per_seed = _per_seed([col[i] for i in order], tree)
        mean, std = stats.mean_std(per_seed)
        if any(v is None for v in per_seed):
            mean = std = None  # e.g. V_R without a reference score
        out[k] = Value(mean, std, n=len(order), n_seeds=len(tree))
    means, pvals = boot
    # the CI of the weighted average: each cell resampled on its own, combined with the weights
    lo, hi = stats.percentile_ci(np.dot(w, np.vstack([means[i] for i in order])), level=level)
    routed = rows.lists("routed_scores")
    out["mu_ci"] = Value(float(np.dot(w, [routed[i].mean() for i in order])), lo=lo, hi=hi, n=len(order),
                         n_seeds=len(tree))
    wins = sum(pvals[i] < alpha for i in order)
    out["wins"] = Value(float(wins), n=len(order), n_seeds=len(tree))
    return out


def build_tables(table, *, n_boot: int = 1000, level: float = 0.95) -> list[ReportTable]:
    """The report's tables from a results table (rows with status ``ok``; see results-schema).

    One table per (benchmark, m, embedding); its rows are (router, params), its columns those
    of :func:`columns_for` for the protocols present.
    """
    rows = _Rows(table)
    if rows.n == 0:
        return []
    key_cols = [rows.col(c) for c in ("benchmark", "m", "embedding", "split")]
    by_table: dict[tuple, list[int]] = {}
    for i in range(rows.n):
        by_table.setdefault(tuple(c[i] for c in key_cols), []).append(i)
    protocols_all = _order(set(rows.col("protocol")), PROTOCOL_ORDER)
    oracles = oracle_types(sorted(set(rows.col("router"))))
    out = []
    from routereval.catalog import BENCHMARKS

    order = list(BENCHMARKS)  # the paper's benchmark order; others follow alphabetically
    for (bench, m, emb, split) in sorted(by_table, key=lambda k: (
            order.index(k[0]) if k[0] in order else len(order), k[0], k[1], k[2], str(k[3]))):
        idx = by_table[(bench, m, emb, split)]
        protocols = [p for p in protocols_all if any(rows.col("protocol")[i] == p for i in idx)]
        columns = columns_for(protocols, cost=any(rows.col(COST)[i] is not None for i in idx))
        by_row: dict[tuple[str, str], dict[str, list[int]]] = {}
        for i in idx:
            by_row.setdefault((rows.col("router")[i], rows.col("params")[i]), {}).setdefault(
                rows.col("protocol")[i], []).append(i)
        cells_per_protocol = {p: {(rows.col("seed")[i], rows.col("group")[i], rows.col("draw")[i])
                                  for i in idx if rows.col("protocol")[i] == p} for p in protocols}
        boot = _bootstrap(rows, idx, n_boot=n_boot)
        report_rows = []
        router_keys = sorted(by_row, key=lambda rp: (
            ROUTER_ORDER.index(rp[0]) if rp[0] in ROUTER_ORDER else len(ROUTER_ORDER), rp[0], _params_key(rp[1])))
        for router, params in router_keys:
            row = Row(router, params, router_label(router, params), router in oracles)
            for p in protocols:
                ii = by_row[(router, params)].get(p, [])
                if len(ii) < len(cells_per_protocol[p]):
                    row.incomplete = True
                if not ii:
                    continue
                for k, v in _row_values(rows, ii, boot, level=level).items():
                    row.values[(k, p)] = v
            if len(protocols) == 2:
                for k in DELTA:
                    a, b = row.values.get((k, protocols[0])), row.values.get((k, protocols[1]))
                    if a and b and a.value is not None and b.value is not None:
                        row.values[(k, DELTA_PROTOCOL)] = Value(a.value - b.value, n=min(a.n, b.n))
            report_rows.append(row)
        _mark_best(report_rows, protocols)
        groups = _order({rows.col("group")[i] for i in idx}, GROUP_ORDER)
        seeds = sorted({rows.col("seed")[i] for i in idx})
        out.append(ReportTable(bench, int(m), emb, protocols, groups, seeds, columns, report_rows,
                               max(len(c) for c in cells_per_protocol.values()), split))
    return out


def _mark_best(rows: list[Row], protocols: Sequence[str]) -> None:
    """Bold the best non-oracle value of each figure in :data:`BOLD` (ties: all of them)."""
    for p in protocols:
        for k in BOLD:
            vals = [(r, r.values[(k, p)]) for r in rows
                    if not r.oracle_type and (k, p) in r.values and r.values[(k, p)].value is not None]
            if not vals:
                continue
            top = max(v.value for _, v in vals)
            for _, v in vals:
                v.bold = abs(v.value - top) <= 1e-12 * max(1.0, abs(top))


def tidy_rows(report: Report) -> list[dict[str, Any]]:
    """One dict per table cell (csv/json): the table's keys, the row's router and params, the
    column's metric and protocol, and the cell's figures with the text a table shows."""
    from routereval.reports.text import cell_text

    out = []
    for t in report.tables:
        for r in t.rows:
            for c in t.columns:
                v = r.values.get((c.metric, c.protocol))
                if v is None:
                    continue
                out.append({"benchmark": t.benchmark, "m": t.m, "embedding": t.embedding, "split": t.split,
                            "groups": ",".join(t.groups), "router": r.router, "params": r.params, "label": r.label,
                            "oracle_type": r.oracle_type, "protocol": c.protocol, "metric": c.metric,
                            "value": v.value, "std": v.std, "lo": v.lo, "hi": v.hi, "n": v.n,
                            "n_seeds": v.n_seeds, "bold": v.bold, "text": cell_text(c, v)})
    return out
