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
from dataclasses import dataclass, replace
from typing import Any

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
    models : (m_used,) or None
        The models (rows of ``Phi``) whose answers calibrated them: an evenly spaced subset of a
        large population, None for all.
    source : str or None
        Which models' vectors it was calibrated under (:func:`calibrate_prompts` records it, so a
        ``like=`` from another router is refused); None where not recorded.
    """

    delta: np.ndarray
    spread: float
    models: np.ndarray | None = None
    source: str | None = None

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


FLOOR_GRID = np.linspace(0.0, 0.5, 6)  # candidate guessing floors of an item
MIN_FLOOR_MODELS = 100  # a floor and a slope are pinned only by many models' answers (the floor by the weakest)
SLOPE_SD0 = 0.5  # starting prior sd of an item's slope around 1 (then matched to the slopes' spread)


def item_floors(eta: np.ndarray, Y: np.ndarray, spread: float, *, grid: np.ndarray = FLOOR_GRID,
                slope_var: float = SLOPE_SD0 ** 2, n_iter: int = 12
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-prompt guessing floor, slope and residual difficulty: ``c + (1 - c) sigmoid(a eta + delta)`` (3PL).

    The router's logits ``eta`` share one slope across prompts; real items discriminate more
    or less than their embedding says (and an adaptive test, picking the prompts whose
    logits vary most, would pick those whose spread is overstated). For each floor ``c`` of
    ``grid`` the MAP ``(a, delta)`` (priors N(1, slope_var) and N(0, s^2); Fisher scoring,
    steps clipped) is found for every prompt at once; each prompt keeps the triple of the
    largest posterior (a uniform prior over the grid).

    Parameters
    ----------
    eta : (n, m)
        Fixed logits of the m models on the n prompts.
    Y : (n, m)
        Their scores in [0, 1] (no NaN).
    spread
        Prior variance s^2 of a delta.

    Returns
    -------
    floor : (n,), slope : (n,), delta : (n,), slope_sq : (n,)
        ``slope_sq``: posterior ``E (a - 1)^2`` (mode plus variance), for the prior's spread.
    """
    from routereval.routers.newmodel import floored_weights

    Y = np.asarray(Y, dtype=np.float64)
    n = len(eta)
    best = np.full(n, -np.inf)
    out = [np.zeros(n), np.ones(n), np.zeros(n), np.zeros(n)]
    a, d = np.ones(n), np.zeros(n)
    for c in grid:
        cc = np.full(1, float(c)) if c > 0 else None
        for _ in range(n_iter):
            lin = a[:, None] * eta + d[:, None]
            p, u, info = floored_weights(lin, cc)
            r = u * (Y - p)
            ga = np.sum(r * eta, axis=1) - (a - 1) / slope_var
            gd = np.sum(r, axis=1) - d / spread
            haa = np.sum(info * eta * eta, axis=1) + 1 / slope_var
            had = np.sum(info * eta, axis=1)
            hdd = np.sum(info, axis=1) + 1 / spread
            det = haa * hdd - had * had
            a = a + np.clip((hdd * ga - had * gd) / det, -0.5, 0.5)
            d = d + np.clip((haa * gd - had * ga) / det, -1.0, 1.0)
        lin = a[:, None] * eta + d[:, None]
        p = np.clip(c + (1 - c) * _sigmoid(lin), 1e-12, 1 - 1e-12)
        lp = np.sum(Y * np.log(p) + (1 - Y) * np.log1p(-p), axis=1) - 0.5 * d * d / spread \
            - 0.5 * (a - 1) ** 2 / slope_var
        info = floored_weights(lin, cc)[2]
        haa = np.sum(info * eta * eta, axis=1) + 1 / slope_var
        better = lp > best
        best[better] = lp[better]
        for o, v in zip(out, (np.full(n, float(c)), a, d, (a - 1) ** 2 + 1 / haa)):
            o[better] = v[better]
    return out[0], out[1], out[2], out[3]


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


def _answers(cal: ItemCalibration, Z: np.ndarray, offset: np.ndarray, Phi: np.ndarray, Y: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """The logits (n, m') and answers (n, m') of the models ``cal`` calibrated with."""
    Phi = np.asarray(Phi, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if cal.models is not None:
        Phi, Y = Phi[cal.models], Y[:, cal.models]
    return np.asarray(Z, dtype=np.float64) @ Phi.T + np.asarray(offset)[:, None], Y


def calibrate_more(cal: ItemCalibration, Z: np.ndarray, offset: np.ndarray, Phi: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Residual difficulties (n,) of further prompts (design ``Z``, ``offset``, the same models' answers ``Y`` (n, m)),
    under the spread (and model subset) of ``cal``."""
    eta, Y = _answers(cal, Z, offset, Phi, Y)
    return item_deltas(eta, Y, cal.spread)[0]


def calibrate_floors(cal: ItemCalibration, Z: np.ndarray, offset: np.ndarray, Phi: np.ndarray, Y: np.ndarray, *,
                     slope_var: float | None = None, n_rounds: int = 1
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    """Guessing floors (n,), slopes (n,) and 3PL residual difficulties (n,) of prompts (design ``Z``, ``offset``,
    answers ``Y`` (n, m) of the models ``Phi`` (m, p)) under the spread and model subset of ``cal``
    (:func:`item_floors`), and the slopes' prior variance: ``slope_var`` when given (further prompts under
    the same calibration), else matched to the slopes' spread in ``n_rounds`` rounds.

    None where a floor cannot be pinned: graded or missing answers, or fewer than
    :data:`MIN_FLOOR_MODELS` models (the floor of an item is what its weakest models score).
    """
    eta, Y = _answers(cal, Z, offset, Phi, Y)
    if Y.shape[1] < MIN_FLOOR_MODELS or np.isnan(Y).any() or not np.isin(Y, (0.0, 1.0)).all():
        return None
    if slope_var is None:
        slope_var = SLOPE_SD0 ** 2
        for _ in range(n_rounds):
            slope_var = max(float(np.mean(item_floors(eta, Y, cal.spread, slope_var=slope_var)[3])), 1e-4)
    c, a, d, _ = item_floors(eta, Y, cal.spread, slope_var=slope_var)
    return c, a, d, slope_var


def calibrate_prompts(router: Any, X: np.ndarray, Y: np.ndarray, *, like: ItemCalibration | None = None
                      ) -> ItemCalibration:
    """Each prompt's own difficulty under ``router``'s prompt side, from its pool's answers on it.

    What :func:`~routereval.coldstart.estimate_mean` and
    :func:`~routereval.coldstart.select_anchors` take as ``anchor_delta`` / ``target_delta`` /
    ``delta`` and ``spread``: the logistic calibration the study and ``add-model`` start from
    (with binary answers from 100 or more models they also fit each prompt's guessing floor and
    slope, :func:`calibrate_floors`). Without it the estimate is worse (on real MMLU-Pro, 100
    random answers: a mean absolute error of 0.030, above the plain mean's 0.025; calibrated,
    with the references, 0.024).

    Parameters
    ----------
    router
        A fitted router with a per-model parameter vector (``supports_add_model``).
    X : (n, d)
        The prompts' embeddings (the train split's; or the test split's, with ``like``).
    Y : (n, m)
        Scores in [0, 1] of the router's m models on them, in its column order (every column: a
        model added with ``add_model`` too); NaN where a model has no answer.
    like
        A calibration of other prompts (the train split's) whose spread these share: calibrating
        the test prompts from the pool's answers on them, as the study does.

    Returns
    -------
    ItemCalibration
        ``delta`` (n,) and ``spread`` (s^2, the variance of an uncalibrated prompt's difficulty).
    """
    from routereval.routers.base import require_add_model
    from routereval.errors import InputError
    from routereval.validate import float_array

    require_add_model(router)
    Phi = router.model_vectors()
    X = float_array(X, "X", ndim=2, expected="(n, d) prompt embeddings")
    if not len(X):
        raise InputError("X holds no prompt; expected the (n, d) embeddings of the prompts to calibrate")
    Y = float_array(Y, "Y", shape=(len(X), len(Phi)), finite=False,
                    expected=f"(n={len(X)}, m={len(Phi)}) scores of the router's models on the prompts")
    known = Y[~np.isnan(Y)]
    if ((known < 0) | (known > 1)).any():
        raise InputError("Y must hold scores in [0, 1] (NaN where a model has no answer)")
    if like is not None and not (isinstance(like, ItemCalibration)
                                 and (like.models is None or int(np.max(like.models)) < len(Phi))):
        raise InputError(f"like must be the ItemCalibration of other prompts by this router's models; got "
                         f"{type(like).__name__}" + ("" if not isinstance(like, ItemCalibration) else
                                                     " from a router with more models"))
    if like is not None and like.source is not None and like.source != _source(Phi, like.source):
        n_like = like.source.split(":", 1)[0]
        raise InputError(f"like is a calibration under other model vectors (its {n_like} models; this router has "
                         f"{len(Phi)}): another router's, this one's before a refit, or of other models; expected "
                         "calibrate_prompts(router, ...) of this router on its train prompts")
    Z, o = router.model_design(X)
    if like is None:
        return replace(calibrate_items(Z, o, Phi, Y), source=_source(Phi))
    return ItemCalibration(delta=calibrate_more(like, Z, o, Phi, Y), spread=like.spread, models=like.models,
                           source=like.source)


def _source(Phi: np.ndarray, like: str | None = None) -> str:
    """``"m:digest"`` of the model vectors ``Phi`` (m, p) a calibration is made under; with ``like`` (another
    calibration's), of its first m rows: models added to the router since (add_model) leave it the same."""
    import hashlib

    head = "" if like is None else like.split(":", 1)[0]
    if like is not None and not head.isdigit():
        return ""  # no source this function wrote: matches none
    m = len(Phi) if like is None else min(int(head), len(Phi))
    vecs = np.ascontiguousarray(np.asarray(Phi, dtype=np.float64)[:m])
    return f"{m}:{hashlib.sha256(vecs.tobytes()).hexdigest()[:20]}"
