"""Reference routers: the oracle r_o, its mix r_o(p) with random, random, and the best single model.

The oracle types (``requires_scores = True``) see the scores of the prompts they route
only through the explicit ``scores=`` argument. Random draws come from
:func:`~routereval.routers.base.prompt_uniforms`, a seeded hash of each prompt, so
routing is deterministic and invariant to the order of prompts.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from routereval.routers.base import RANDOM_STATE, Interval, Router, prompt_uniforms, register


class _TrainMeanMixin:
    """Keeps each model's mean score on train (+ val): tie-breaks and the best single model."""

    state_layout: ClassVar[dict] = {"train_means_": ("m",)}

    def _fit(self, X, Y, *, X_val, Y_val, cost) -> None:
        Yall = Y if Y_val is None else np.concatenate([Y, Y_val])
        self.train_means_ = Yall.mean(axis=0)


def _oracle_choice(scores: np.ndarray, pref: np.ndarray) -> np.ndarray:
    """(n,) a best model per prompt; among tied best models the one with the highest ``pref``."""
    best = scores == scores.max(axis=1, keepdims=True)
    return np.argmax(np.where(best, pref[None, :], -np.inf), axis=1)


def _oracle_probs(scores: np.ndarray) -> np.ndarray:
    """The reference r_o's selection probabilities: scores normalised per prompt, uniform if all 0."""
    tot = scores.sum(axis=1, keepdims=True)
    m = scores.shape[1]
    return np.where(tot > 0, scores / np.where(tot > 0, tot, 1.0), 1.0 / m)


@register
class OracleRouter(_TrainMeanMixin, Router):
    """r_o: always a best pool model on the routed prompt (ties: the best on train).

    Sees the routed prompts' scores through ``scores=``. E_p follows the reference:
    the scores normalised per prompt (uniform where every model scores 0).
    """

    name: ClassVar[str] = "oracle"
    parameters: ClassVar[dict] = {}
    requires_scores: ClassVar[bool] = True
    state_keys: ClassVar[tuple] = ("train_means_",)

    def __init__(self) -> None:
        pass

    def _predict_scores(self, X, *, scores):
        return scores.copy()

    def route(self, X, *, scores=None):
        s = self.predict_scores(X, scores=scores)
        return _oracle_choice(s, self.train_means_)

    def selection_probabilities(self, X, *, scores=None):
        return _oracle_probs(self.predict_scores(X, scores=scores))


@register
class MixRouter(_TrainMeanMixin, Router):
    """r_o(p): the oracle with probability ``p``, else a uniformly random model.

    Each prompt's coin and random pick come from a seeded hash of the prompt. The
    predicted scores are the true scores on oracle prompts and a one-hot of the random
    pick elsewhere. E_p as the reference: ``p * oracle_probs + (1 - p) / m``.
    """

    name: ClassVar[str] = "mix"
    parameters: ClassVar[dict] = {"p": (Interval(float, 0, 1),), "random_state": RANDOM_STATE}
    requires_scores: ClassVar[bool] = True
    state_keys: ClassVar[tuple] = ("train_means_",)

    def __init__(self, *, p: float = 0.5, random_state: int | None = 0) -> None:
        self.p = p
        self.random_state = random_state

    def _draws(self, X):
        u = prompt_uniforms(X, self.n_models_ + 1, self.random_state)
        coin = u[:, 0] < self.p
        pick = np.minimum((u[:, 1] * self.n_models_).astype(np.int64), self.n_models_ - 1)
        return coin, pick

    def _predict_scores(self, X, *, scores):
        coin, pick = self._draws(X)
        onehot = np.zeros_like(scores)
        onehot[np.arange(len(pick)), pick] = 1.0
        return np.where(coin[:, None], scores, onehot)

    def route(self, X, *, scores=None):
        self._check_fitted()
        s = self.predict_scores(X, scores=scores)
        coin, pick = self._draws(X)
        return np.where(coin, _oracle_choice(s, self.train_means_), pick)

    def selection_probabilities(self, X, *, scores=None):
        self.predict_scores(X, scores=scores)  # validates
        s = np.asarray(scores, dtype=np.float64)
        return self.p * _oracle_probs(s) + (1 - self.p) / self.n_models_


@register
class RandomRouter(Router):
    """Random: each prompt goes to a uniformly random model (a seeded hash of the prompt).

    E_p is that of uniform selection probabilities, log2 m.
    """

    name: ClassVar[str] = "random"
    parameters: ClassVar[dict] = {"random_state": RANDOM_STATE}
    state_keys: ClassVar[tuple] = ()
    state_layout: ClassVar[dict] = {}

    def __init__(self, *, random_state: int | None = 0) -> None:
        self.random_state = random_state

    def _fit(self, X, Y, *, X_val, Y_val, cost) -> None:
        pass

    def _predict_scores(self, X):
        return prompt_uniforms(X, self.n_models_, self.random_state)

    def selection_probabilities(self, X, *, scores=None):
        n = self.predict_scores(X).shape[0]
        return np.full((n, self.n_models_), 1.0 / self.n_models_)


@register
class BestSingleRouter(_TrainMeanMixin, Router):
    """The pool's best single model on train (+ val when given): the baseline to beat.

    Every prompt goes to the model with the highest mean score on the fit prompts (first
    on ties). Its selection probabilities are one-hot: E_p = 0. :func:`routereval.evaluate.evaluate`
    fits it on the raw scores, not the 0.95-of-best labels of graded benchmarks
    (``fit_target = "scores"``), so it is the pool's best single model and its V_B is 1.
    """

    name: ClassVar[str] = "best_single"
    parameters: ClassVar[dict] = {}
    fit_target: ClassVar[str] = "scores"
    state_keys: ClassVar[tuple] = ("train_means_",)

    def __init__(self) -> None:
        pass

    def _predict_scores(self, X):
        return np.broadcast_to(self.train_means_, (X.shape[0], self.n_models_)).copy()

    def selection_probabilities(self, X, *, scores=None):
        r = self.route(X)
        out = np.zeros((len(r), self.n_models_))
        out[np.arange(len(r)), r] = 1.0
        return out
