"""The routing decision of a served router: predicted scores, optional cost trade-off, choice.

A :class:`RoutingEngine` holds a loaded router, its pool's model names and (when the router
was fitted on a corpus with costs) each model's mean cost per prompt in USD. With a cost
weight λ, a prompt goes to ``argmax(score - λ * cost)``; with λ = 0 to the router's own
``route`` (which may break ties its own way, e.g. knn's ``tie_break``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from routereval.errors import InputError
from routereval.validate import is_real


def cost_adjusted_choice(scores: np.ndarray, cost: np.ndarray, cost_weight: float) -> np.ndarray:
    """(n,) index of ``argmax(scores - cost_weight * cost)`` per row; ties go to the first model.

    Parameters
    ----------
    scores
        (n, m) predicted scores, higher is better.
    cost
        (m,) cost of each model.
    cost_weight
        λ >= 0, in score units per unit of cost.
    """
    return np.argmax(np.asarray(scores, dtype=np.float64) - cost_weight * np.asarray(cost, dtype=np.float64)[None, :],
                     axis=1)


def check_cost_weight(value: Any, *, what: str = "cost_weight") -> float:
    """``value`` as a finite float >= 0, else :class:`InputError`."""
    if not (is_real(value) and value >= 0):
        raise InputError(f"{what} must be a finite number >= 0; got {value!r}")
    return float(value)


@dataclass
class RoutingEngine:
    """A loaded router ready to route embedded prompts.

    Attributes
    ----------
    router
        The fitted router.
    models
        (m,) pool model names, in the router's column order.
    cost
        (m,) mean cost per prompt of each model, or None when the router was fitted without costs.
    """

    router: Any
    models: list[str]
    cost: np.ndarray | None
    no_cost: tuple[str, ...] = ()  # pool models pool.cost lacks (e.g. added by add-model), when it lists others

    @classmethod
    def from_saved(cls, saved: Any, *, source: str = "router.json") -> "RoutingEngine":
        """Build from a :class:`~routereval.routers.persist.SavedRouter` (checks its pool)."""
        models = saved.pool.get("models")
        if not isinstance(models, list) or not models or not all(isinstance(m, str) and m for m in models):
            raise InputError("pool.models must be a non-empty list of model names", file=source)
        if len(set(models)) != len(models):
            raise InputError("pool.models names a model twice", file=source)
        n = getattr(saved.router, "n_models_", len(models))
        if n != len(models):
            raise InputError(f"the router scores {n} models but pool.models lists {len(models)}", file=source)
        cost = None
        raw = saved.pool.get("cost")
        # a pool saved before costs were stored, or one whose models gained no cost (a newer
        # pool version): served, but without the cost trade-off
        if isinstance(raw, dict) and set(raw) == set(models):
            vals = [raw[m] for m in models]
            if not all(is_real(v) and v >= 0 for v in vals):
                raise InputError("pool.cost must map every pool model to a finite cost >= 0", file=source)
            cost = np.asarray(vals, dtype=np.float64)
        no_cost = tuple(m for m in models if isinstance(raw, dict) and raw and m not in raw)
        return cls(router=saved.router, models=list(models), cost=cost, no_cost=no_cost)

    def check_cost_weight(self, value: Any, *, what: str = "cost_weight") -> float:
        lam = check_cost_weight(value, what=what)
        if lam > 0 and self.cost is None and self.no_cost:
            raise InputError(f"{what} is {lam:g} but pool.cost has no cost for {', '.join(map(repr, self.no_cost))} "
                             "(a model added by add-model without --cost has none: add it again with --cost, its "
                             "mean cost per prompt in USD, to the router it was added to); only 0 is allowed")
        if lam > 0 and self.cost is None:
            raise InputError(f"{what} is {lam:g} but this router was fitted without model costs; "
                             "only 0 is allowed (fit it on a corpus with costs to trade score against cost)")
        return lam

    def route(self, X: np.ndarray | Sequence[str], cost_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Score and route a batch.

        Parameters
        ----------
        X
            (n, d) embeddings (or (n,) texts for a text router).
        cost_weights
            (n,) λ of each prompt.

        Returns
        -------
        scores : (n, m) float64 predicted scores
        choice : (n,) int model index of each prompt
        """
        scores = np.asarray(self.router.predict_scores(X), dtype=np.float64)
        lam = np.asarray(cost_weights, dtype=np.float64)
        choice = np.empty(len(lam), dtype=np.int64)
        plain = lam == 0
        if plain.any():
            Xp = X[plain] if isinstance(X, np.ndarray) else [x for x, p in zip(X, plain) if p]
            choice[plain] = self.router.route(Xp) if not plain.all() else self.router.route(X)
        for value in np.unique(lam[~plain]):
            rows = lam == value
            choice[rows] = cost_adjusted_choice(scores[rows], self.cost, float(value))
        return scores, choice
