"""Matrix-factorisation router (as in RouteLLM's MF router and EmbedLLM).

A prompt embedding x is projected to k dimensions, each pool model has a learned
k-dimensional embedding v_j and a bias b_j, and the probability that model j answers the
prompt well is ``sigmoid(<W x, v_j> + b_j)``, trained with BCE on the pool's scores. The
cost per step is O(batch * k * (d + m)), so pools of m = 1000 models train in seconds.
"""

from __future__ import annotations

import math

import numpy as np

from routereval.routers.base import Interval, register
from routereval.routers.linear import _COMMON, _BCERouter, mean_logit, uniform_init


@register
class MatrixFactorizationRouter(_BCERouter):
    """MF: ``score_j(x) = sigmoid((x W) . v_j + b_j)``.

    Parameters
    ----------
    dim
        k, the dimension of the latent space shared by prompts and models.
    lr, weight_decay, batch_size, max_epochs, patience, device, n_jobs, random_state
        As in :class:`~routereval.routers.linear.LinearR`.

    Attributes
    ----------
    projection_ : (d, k) float32
        W, the prompt projection.
    model_embeddings_ : (m, k) float32
        v_j, one row per pool model.
    model_bias_ : (m,) float32
        b_j.
    """

    name = "mf"
    parameters = {**_COMMON, "dim": (Interval(int, 1, None),)}
    state_layout = {"projection_": ("d", "dim"), "model_embeddings_": ("m", "dim"), "model_bias_": ("m",)}
    _weights = tuple(state_layout)  # all of them trained (a subclass keeps these unless it sets its own)

    def __init__(self, *, dim: int = 32, lr: float = 0.005, weight_decay: float = 0.0, batch_size: int = 256,
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
        return {"projection_": uniform_init(rng, d, (d, k)),
                "model_embeddings_": (rng.standard_normal((m, k)) / math.sqrt(k)).astype(np.float32),
                "model_bias_": mean_logit(Y)}

    @staticmethod
    def _forward(p, x, relu):
        return (x @ p["projection_"]) @ p["model_embeddings_"].T + p["model_bias_"]

    # cold start: phi_j = (v_j, b_j), z(x) = (x W, 1)
    supports_add_model = True
    _model_axes = {"model_embeddings_": 0, "model_bias_": 0}

    @staticmethod
    def _design(p, x):
        z = x @ p["projection_"]
        return np.hstack([z, np.ones((len(z), 1), dtype=z.dtype)]), np.zeros(len(x))
