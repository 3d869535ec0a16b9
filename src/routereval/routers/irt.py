"""Multidimensional IRT router (as in IRT-Router).

Item response theory with the pool models as respondents and the prompts as items: each
model j has a learned ability vector theta_j (k dims); each prompt's discrimination
(loadings) a(x) >= 0 (k dims) and difficulty b(x) (a scalar) are predicted from its
embedding x, so that unseen prompts get them too:

    P(model j answers x well) = sigmoid(a(x) . theta_j - b(x)),
    a(x) = softplus(x A + a0),  b(x) = x w + c.

Non-negative loadings keep abilities interpretable: along every dimension a higher theta
means a higher chance of success. Trained with BCE on the pool's scores; O(batch * k * (d + m))
per step, so m = 1000 trains in seconds.
"""

from __future__ import annotations

import math

import numpy as np

from routereval.routers.base import Interval, check_X, register
from routereval.routers.linear import _COMMON, _BCERouter, mean_logit, uniform_init


def _softplus(z):
    if isinstance(z, np.ndarray):
        return np.logaddexp(0.0, z).astype(z.dtype, copy=False)
    import torch

    return torch.nn.functional.softplus(z)


@register
class IRTRouter(_BCERouter):
    """Multidimensional IRT: ``P_j(x) = sigmoid(a(x) . theta_j - b(x))``.

    Parameters
    ----------
    dim
        k, the number of latent ability dimensions.
    lr, weight_decay, batch_size, max_epochs, patience, device, n_jobs, random_state
        As in :class:`~routereval.routers.linear.LinearR`.

    Attributes
    ----------
    ability_ : (m, k) float32
        theta_j, the ability vector of each pool model.
    loading_weights_ : (d, k), loading_bias_ : (k,)
        A and a0 of the discrimination a(x) = softplus(x A + a0).
    difficulty_weights_ : (d,), difficulty_bias_ : (1,)
        w and c of the difficulty b(x) = x w + c.
    """

    name = "irt"
    parameters = {**_COMMON, "dim": (Interval(int, 1, None),)}
    state_layout = {"ability_": ("m", "dim"), "loading_weights_": ("d", "dim"), "loading_bias_": ("dim",),
                    "difficulty_weights_": ("d",), "difficulty_bias_": (1,)}
    _weights = tuple(state_layout)  # all of them trained (a subclass keeps these unless it sets its own)

    def __init__(self, *, dim: int = 16, lr: float = 0.005, weight_decay: float = 0.0, batch_size: int = 256,
                 max_epochs: int = 100, patience: int = 5, device: str = "cpu", n_jobs: int = 1,
                 random_state=None) -> None:
        self.dim = dim
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _init_params(self, rng, X, Y):
        d, m, k = X.shape[1], Y.shape[1], self.dim
        return {"ability_": (rng.standard_normal((m, k)) / math.sqrt(k)).astype(np.float32),
                "loading_weights_": uniform_init(rng, d, (d, k)),
                "loading_bias_": np.zeros(k, dtype=np.float32),
                "difficulty_weights_": uniform_init(rng, d, (d,)),
                # start at the overall success rate: b = -logit(mean score)
                "difficulty_bias_": -mean_logit(Y, axis=None).reshape(1)}

    @staticmethod
    def _forward(p, x, relu):
        a = _softplus(x @ p["loading_weights_"] + p["loading_bias_"])
        b = x @ p["difficulty_weights_"] + p["difficulty_bias_"]
        return a @ p["ability_"].T - b[:, None]

    # cold start: phi_j = theta_j, z(x) = a(x), o(x) = -b(x)
    supports_add_model = True
    _model_axes = {"ability_": 0}

    @staticmethod
    def _design(p, x):
        a = _softplus(x @ p["loading_weights_"] + p["loading_bias_"])
        return a, -(x @ p["difficulty_weights_"] + p["difficulty_bias_"])

    def difficulty(self, X: np.ndarray) -> np.ndarray:
        """(n,) predicted difficulty b(x) of each prompt of ``X`` (n, d)."""
        self._check_fitted()
        X = check_X(X, n_features=self.n_features_in_).astype(np.float32, copy=False)
        return (X @ self.difficulty_weights_ + self.difficulty_bias_).astype(np.float64)

    def discrimination(self, X: np.ndarray) -> np.ndarray:
        """(n, k) predicted loadings a(x) >= 0 of each prompt of ``X`` (n, d)."""
        self._check_fitted()
        X = check_X(X, n_features=self.n_features_in_).astype(np.float32, copy=False)
        return _softplus(X @ self.loading_weights_ + self.loading_bias_).astype(np.float64)
