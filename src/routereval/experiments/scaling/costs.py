"""Where a benchmark's costs come from: its cost matrix, else the models table's prices or sizes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CostSource:
    """The cost of routing a prompt to a model.

    Attributes
    ----------
    kind
        ``records`` (the benchmark's per-prompt cost matrix, USD), ``price`` (the models
        table's ``price_in + price_out``: USD per input and output token, the same for every
        prompt) or ``params`` (parameter count in billions, a proxy for serving cost).
    unit
        Axis label of the cost.
    values
        (n_models, n_prompts) for ``records``, else (n_models,), aligned with the benchmark's rows.
    """

    kind: str
    unit: str
    values: np.ndarray

    def block_cost(self, rows: np.ndarray, prompts: np.ndarray) -> np.ndarray:
        """Cost of ``rows`` on ``prompts``: (n_rows, n_prompts) for records, else (n_rows,)."""
        v = np.asarray(self.values)
        if v.ndim == 1:
            return v[np.asarray(rows)].astype(np.float64)
        return v[np.asarray(rows)][:, np.asarray(prompts)].astype(np.float64)


def cost_source(bench, models=None, rows: np.ndarray | None = None) -> CostSource | None:
    """The costs of ``bench``, or None when neither records nor the models table give any.

    Records' costs win; else prices, else sizes, taken from ``models`` (a
    :class:`~routereval.data.model.ModelTable`) when every model in ``rows`` (default: all
    of the benchmark's models) has one. A cost matrix with unknown (NaN) cells among
    ``rows`` is not used.
    """
    rows = np.arange(bench.n_models) if rows is None else np.asarray(rows)
    if bench.cost is not None:
        c = np.asarray(bench.cost)
        if np.isfinite(c[rows]).all():
            return CostSource("records", "mean cost per prompt (USD)", c)
    if models is None:
        return None
    idx = models.index()
    at = np.array([idx.get(str(m), -1) for m in bench.models])
    if (at[rows] < 0).any():
        return None

    def column(values):
        v = np.full(bench.n_models, np.nan)
        ok = at >= 0
        v[ok] = np.asarray(values, dtype=np.float64)[at[ok]]
        return v

    price = column(models.price_in) + column(models.price_out)
    if np.isfinite(price[rows]).all():
        return CostSource("price", "price per input + output token (USD)", price)
    params = column(models.params) / 1e9
    if np.isfinite(params[rows]).all():
        return CostSource("params", "model size (billions of parameters)", params)
    return None
