"""A router of your own: ridge regression from the prompt embedding to each model's score.

Evaluate it like a built-in router (with ``examples/`` on ``PYTHONPATH``):

    routereval check-router my_router:RidgeRouter
    routereval eval CORPUS --benchmark mmlu --router my_router:RidgeRouter --param alpha=0.5 --m 5 --group all_strong
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from routereval.routers import Interval, Router


class RidgeRouter(Router):
    """Predict each model's score on a prompt with ridge regression on the embedding."""

    name: ClassVar[str] = "ridge"  # shown in results; not registered (use my_router:RidgeRouter)
    parameters: ClassVar[dict] = {"alpha": (Interval(float, 0, None, closed="neither"),)}
    # the learned arrays' axes ("m": the pool; "d_plus_1" is no known size, only named): loading refuses
    # a saved router whose coef_ does not have a column per pool model
    state_layout: ClassVar[dict] = {"coef_": ("d_plus_1", "m")}

    def __init__(self, *, alpha: float = 1.0) -> None:
        self.alpha = alpha  # only store hyperparameters; fit validates them

    def _fit(self, X, Y, *, X_val, Y_val, cost) -> None:
        Xb = np.hstack([X, np.ones((len(X), 1))])  # with an intercept
        A = Xb.T @ Xb + self.alpha * np.eye(Xb.shape[1])
        self.coef_ = np.linalg.solve(A, Xb.T @ Y)  # (d + 1, m): learned state ends in '_'

    def _predict_scores(self, X):
        return np.hstack([X, np.ones((len(X), 1))]) @ self.coef_
