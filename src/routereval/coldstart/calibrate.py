"""Item calibration: each candidate prompt's own difficulty, learned from the population's answers.

A router's prompt side is a function of the embedding, ``z(x), o(x)``; on a given prompt the
fitted models' answers still deviate from it by a shared amount (the prompt is harder or
easier than its embedding says). With the models' vectors ``Phi`` fixed, each train prompt
gets a residual difficulty ``delta_i`` (logit scale, prior N(0, s^2)), the posterior mode of
a one-parameter logistic regression on the m answers, and ``s^2`` is matched to the spread
of the deltas (a few rounds of empirical Bayes). tinyBenchmarks fits every item's IRT
parameters from the training models' answers; this is its counterpart for prompts the
router generalises to.

Anchors then use offsets ``o + delta``; prompts never answered by the population (the test
split) have an unknown ``delta ~ N(0, s^2)``, so their expected score is
``E sigmoid(eta + delta) ~= sigmoid(eta / sqrt(1 + pi s^2 / 8))`` (the probit approximation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from routereval.routers.linear import sigmoid as _sigmoid


@dataclass(frozen=True)
class ItemCalibration:
    """Residual difficulties of calibrated prompts.

    Attributes
    ----------
    delta : (n,)
        Offset to add to ``o(x)`` of each calibrated prompt.
    spread : float
        s^2, the variance of the residual difficulty of an uncalibrated prompt.
    """

    delta: np.ndarray
    spread: float
    models: np.ndarray | None = None  # the models (rows of Phi) that answered, None: all

    @property
    def shrink(self) -> float:
        """Factor on the logit of an uncalibrated prompt that gives its expected score."""
        return expected_logit_scale(self.spread)


def expected_logit_scale(spread: float) -> float:
    """``1 / sqrt(1 + pi s^2 / 8)``: ``E sigmoid(eta + N(0, s^2)) ~= sigmoid(eta * scale)``."""
    return 1.0 / math.sqrt(1.0 + math.pi * max(float(spread), 0.0) / 8.0)



def item_deltas(eta: np.ndarray, Y: np.ndarray, spread: float, *, n_iter: int = 20,
                max_step: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-prompt MAP residual difficulty and its posterior variance (vectorised Newton, steps clipped to
    ``max_step``: with many models and saturated probabilities a full step overshoots).

    Parameters
    ----------
    eta : (n, m)
        Fixed logits of the m models on the n prompts.
    Y : (n, m)
        Their scores in [0, 1], NaN where missing (ignored).
    spread
        Prior variance s^2 of a delta.

    Returns
    -------
    delta : (n,), var : (n,)
    """
    obs = ~np.isnan(Y)
    Yz = np.where(obs, Y, 0.0)
    d = np.zeros(len(eta))
    for _ in range(n_iter):
        p = _sigmoid(eta + d[:, None])
        g = np.sum(np.where(obs, Yz - p, 0.0), axis=1) - d / spread
        H = np.sum(np.where(obs, p * (1 - p), 0.0), axis=1) + 1.0 / spread
        step = np.clip(g / H, -max_step, max_step)
        d = d + step
        if float(np.max(np.abs(step), initial=0.0)) < 1e-6:
            break
    p = _sigmoid(eta + d[:, None])
    H = np.sum(np.where(obs, p * (1 - p), 0.0), axis=1) + 1.0 / spread
    return d, 1.0 / H


def calibrate_items(Z: np.ndarray, offset: np.ndarray, Phi: np.ndarray, Y: np.ndarray, *,
                    n_rounds: int = 4, spread0: float = 1.0, max_models: int = 256) -> ItemCalibration:
    """Residual difficulties of prompts with design rows ``Z`` (n, p) and offsets (n,), from the answers ``Y`` (n, m)
    of models with vectors ``Phi`` (m, p); the spread s^2 by moment matching (``E delta^2 + var``).

    At most ``max_models`` models (a fixed, evenly spaced subset) answer for each prompt: a
    few hundred already pin one number per prompt, and the cost is O(n m) per Newton step."""
    Phi = np.asarray(Phi, dtype=np.float64)
    Y = np.asarray(Y)
    keep = None
    if len(Phi) > max_models:
        keep = np.linspace(0, len(Phi) - 1, max_models).round().astype(int)
        Phi, Y = Phi[keep], Y[:, keep]
    eta = np.asarray(Z, dtype=np.float64) @ Phi.T + np.asarray(offset)[:, None]
    Y = np.asarray(Y, dtype=np.float64)
    s2 = float(spread0)
    for _ in range(n_rounds):
        d, v = item_deltas(eta, Y, s2)
        s2 = max(float(np.mean(d ** 2 + v)), 1e-4)
    d, _ = item_deltas(eta, Y, s2)
    return ItemCalibration(delta=d, spread=s2, models=keep)


def calibrate_more(cal: ItemCalibration, Z: np.ndarray, offset: np.ndarray, Phi: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Residual difficulties (n,) of further prompts (design ``Z``, ``offset``, the same models' answers ``Y`` (n, m)),
    under the spread (and model subset) of ``cal``."""
    Phi = np.asarray(Phi, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if cal.models is not None:
        Phi, Y = Phi[cal.models], Y[:, cal.models]
    eta = np.asarray(Z, dtype=np.float64) @ Phi.T + np.asarray(offset)[:, None]
    return item_deltas(eta, Y, cal.spread)[0]
