"""A new model's mean score on a whole benchmark (or its test split) from its anchor answers.

As tinyBenchmarks' gp-IRT (Maia Polo et al., 2024), two estimators are combined:

- the anchor estimator ``sum_i w_i y_i`` (design weights of the anchors; unbiased for
  random and cluster anchors, and for stratified ones up to a ratio estimator's O(1/k) bias when
  some subsets are asked by chance; noisy: its variance is about ``sum w_i^2 p_i(1-p_i)``);
- p-IRT: the observed answers where an anchor is a target prompt, the model's predicted
  probability ``p_i = sigmoid(z_i . phi + o_i)`` elsewhere (``phi`` fitted on the anchors);
  precise but biased when the prompt side misfits the new model.

``gp = lam * anchor + (1 - lam) * pirt`` with the weight that minimises the mean squared
error of the combination, ``lam = (V_p - C) / (V_a + V_p - 2 C)`` clipped to [0, 1]: ``V_a``
the anchor estimator's variance (Bernoulli part ``sum w_i^2 p_i(1-p_i)`` plus the spread of
the anchors' own means, ``sum w_i^2 (p_i - pbar)^2 k / (k - 1)``, as for a sample drawn with
probabilities ``w``), ``V_p`` p-IRT's mean squared error (the parameter uncertainty by the
delta method with the Laplace posterior covariance, and the squared bias, estimated from the
weighted residuals of the anchors: ``max(0, rbar^2 - var(rbar))`` with
``rbar = sum w_i (y_i - p_i)``), and ``C`` the covariance of the two errors: both come from
the same anchor answers, ``C = sum_i w_i (g' Sigma z_i) dp_i/deta`` (``g`` the gradient of
the predicted mean in the model's vector, ``Sigma`` the posterior covariance). With
``C = 0`` this is tinyBenchmarks' inverse-MSE rule; ignoring ``C`` overweights the anchor
mean (on synth MMLU its errors correlate 0.6-0.8 with p-IRT's, so the best weight is near 0
where the rule without ``C`` gave about 0.4). The Bernoulli noise of the unseen target
prompts is common to both estimators: it leaves ``lam`` alone and widens the interval.
Anchors without design weights (adaptive) give ``lam = 0`` (the residuals' plain mean then
only widens the interval). The interval is normal with the combined standard error, clipped to [0, 1].

With known models that answered the same anchors (references), ``lam`` is learned from them
instead (:func:`population_weight`): the least-squares weight of the anchor mean over their own
anchor means, p-IRT and known means. The rule above estimates p-IRT's bias from the new model's
own weighted residual, which holds the anchor mean's sampling error, so ``lam`` grew exactly when
the anchor mean was off by chance; a weight learned per anchor set does not depend on the new
model's luck (on synth MMLU, 100 `irt` anchors: 0.0202 -> 0.0185 mean absolute error).

The neighbours' correction (:mod:`routereval.coldstart.neighbours`) then adds what known models
that answered the anchors alike missed by; the interval moves with it and widens by the
correction's own standard error and by the error the corrected estimator makes on the references
themselves (:meth:`MeanEstimate.corrected`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from routereval.errors import InputError
from routereval.routers.linear import sigmoid as _sigmoid
from routereval.validate import float_array, is_real


@dataclass(frozen=True)
class MeanEstimate:
    """The estimated mean score of a new model.

    Attributes
    ----------
    mean, low, high
        The gp-IRT estimate and its interval.
    se
        Its standard error.
    anchor_mean
        The design-weighted mean of the anchor answers (None without weights).
    pirt
        The p-IRT estimate (answers where known, predictions elsewhere).
    lam
        Weight of ``anchor_mean`` in ``mean``.
    n_anchors
    correction
        The neighbours' correction included in ``mean`` (0 without references).
    level
        Coverage of the interval ``[low, high]``.
    """

    mean: float
    low: float
    high: float
    se: float
    anchor_mean: float | None
    pirt: float
    lam: float
    n_anchors: int
    correction: float = 0.0
    level: float = 0.95

    def corrected(self, correction: float, se: float = 0.0, error_rms: float = 0.0) -> "MeanEstimate":
        """This estimate moved by ``correction``, its interval moved with it and widened by what the references show.

        The centre is clipped to [0, 1], then the interval around it: a correction past a bound
        leaves the estimate at the bound with an interval reaching inside, never a single point.
        The interval is ``centre +- z se`` clipped to [0, 1] (``z`` the normal quantile of
        ``level``), so a bound clipped before does not narrow the moved interval, and a
        model-based ``se_0`` of 0 is widened too. Its standard error becomes
        ``max(sqrt(se_0^2 + se^2), error_rms)``: ``se`` is the
        correction's own sampling error, ``error_rms`` the error the corrected estimator makes on
        the known models (:class:`~routereval.coldstart.neighbours.Correction`); where the model-based ``se_0`` is too small for
        the data (a pool of a few models, a misfitting prior), the references say so.
        """
        c = float(correction)
        se_new = max(math.hypot(self.se, float(se)), float(error_rms))
        half = _z(self.level) * se_new
        centre = float(np.clip(self.mean - self.correction + c, 0, 1))
        return replace(self, mean=centre, low=float(max(0.0, centre - half)), high=float(min(1.0, centre + half)),
                       se=se_new, correction=c)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _z(level: float) -> float:
    """The two-sided normal quantile of coverage ``level``: 1.96 for 0.95."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


def combine_weight(var_anchor: float, mse_pirt: float, cross_cov: float) -> float:
    """The weight ``lam`` in [0, 1] of the anchor estimator minimising the MSE of ``lam A + (1 - lam) P``.

    ``var_anchor`` and ``mse_pirt`` are the two errors' mean squares, ``cross_cov`` their
    covariance: ``lam = (V_p - C) / (V_a + V_p - 2 C)``, clipped (0 when both errors are equal).
    """
    den = var_anchor + mse_pirt - 2.0 * cross_cov
    if not den > 0:
        return 0.0
    return float(min(1.0, max(0.0, (mse_pirt - cross_cov) / den)))


def anchor_variance(p_anchor: np.ndarray, weights: np.ndarray) -> float:
    """Variance of ``sum w_i y_i`` (weights summing to 1): Bernoulli ``sum w^2 p(1-p)`` plus the anchors' spread.

    The spread term ``sum w_i^2 (p_i - pbar_w)^2 k / (k - 1)`` is the design variance of a sample
    drawn with probabilities ``w`` (for k random anchors, the variance of the prompts' means over k);
    stratified and cluster designs have less, so it errs towards the model-based estimate.
    """
    p = np.asarray(p_anchor, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    k = len(p)
    bern = float(np.sum(w ** 2 * np.clip(p * (1 - p), 1e-4, None)))
    spread = float(np.sum(w ** 2 * (p - w @ p) ** 2)) * (k / (k - 1)) if k > 1 else 0.0
    return bern + spread


def cross_covariance(weights: np.ndarray, Z_anchor: np.ndarray, cov: np.ndarray, grad: np.ndarray,
                     dp: np.ndarray) -> float:
    """Covariance of the anchor estimator's error ``sum w_i (y_i - p_i)`` with p-IRT's ``grad' (phi_hat - phi)``.

    To first order ``phi_hat - phi = Sigma sum_i z_i (dp_i / v_i) (y_i - p_i)`` (a Newton step
    from the truth, ``v_i = p_i (1 - p_i)``), so the covariance is
    ``sum_i w_i (grad' Sigma z_i) dp_i``.

    Parameters
    ----------
    weights : (k,)
        Design weights (normalised here to sum 1).
    Z_anchor : (k, p)
        Design rows of the anchors.
    cov : (p, p)
        Posterior covariance of the model's vector.
    grad : (p,)
        Gradient of the predicted mean over the unseen targets in the model's vector.
    dp : (k,)
        ``dp_i / deta_i`` at the anchors.
    """
    w = np.asarray(weights, dtype=np.float64)
    w = w / np.sum(w)
    return float(np.sum(w * (np.asarray(Z_anchor, dtype=np.float64) @ (np.asarray(cov) @ np.asarray(grad))) *
                        np.asarray(dp, dtype=np.float64)))


def gp_combine(y: np.ndarray, p_anchor: np.ndarray, p_target: np.ndarray, grad_var: float, *,
               weights: np.ndarray | None, observed: np.ndarray | None = None, extra_var: float = 0.0,
               cross_cov: float = 0.0, level: float = 0.95, lam_fixed: float | None = None) -> MeanEstimate:
    """Combine the anchor mean and p-IRT into the gp-IRT estimate (a pure function).

    Parameters
    ----------
    y : (k,)
        Anchor answers.
    p_anchor : (k,)
        The model's predicted probabilities on the anchors.
    p_target : (n,)
        Its predicted probabilities on the target prompts.
    grad_var
        Parameter-uncertainty variance of the mean of ``p_target`` over the unobserved
        targets (delta method), already divided as a mean over all n targets.
    weights : (k,) or None
        Design weights (normalised here to sum 1); None: no anchor estimator.
    observed : (n,) int, optional
        For each target prompt, the position of its anchor among ``y`` or -1.
    extra_var
        Further variance of p-IRT: the prompt side's error on unseen prompts, measured on the
        population (:func:`generalisation_var`).
    cross_cov
        Covariance of the anchor estimator's error with p-IRT's (both from the same answers;
        :func:`estimate_from_posterior` computes it), with the normalised weights.
    level
        Coverage of the interval.
    lam_fixed
        The weight of the anchor mean, learned elsewhere (:func:`population_weight`); None: the MSE rule above.
    """
    y = np.asarray(y, dtype=np.float64)
    p_anchor = np.asarray(p_anchor, dtype=np.float64)
    p_target = np.asarray(p_target, dtype=np.float64)
    n = len(p_target)
    known = np.zeros(n, dtype=bool) if observed is None else np.asarray(observed) >= 0
    vals = p_target.copy()
    if known.any():
        vals[known] = y[np.asarray(observed)[known]]
    pirt = float(vals.mean())
    unseen = ~known
    noise = float(np.sum(p_target[unseen] * (1 - p_target[unseen]))) / n ** 2  # Bernoulli noise of the unseen
    r = y - p_anchor
    k = len(y)
    w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, dtype=np.float64) / np.sum(weights)
    rbar = float(w @ r)
    var_rbar = float(np.sum(w ** 2 * (r - rbar) ** 2)) * (k / (k - 1) if k > 1 else 1.0)
    bias2 = max(0.0, rbar ** 2 - var_rbar) * (unseen.mean() ** 2)
    mse_pirt = grad_var + bias2 + float(extra_var) * (unseen.mean() ** 2)
    if weights is None:
        anchor_mean, lam, var_a, cc = None, 0.0, 0.0, 0.0
    else:
        anchor_mean = float(w @ y)
        var_a = anchor_variance(p_anchor, w)
        cc = float(cross_cov)
        lam = combine_weight(var_a, mse_pirt, cc) if lam_fixed is None else float(lam_fixed)
    mean = (lam * anchor_mean if anchor_mean is not None else 0.0) + (1 - lam) * pirt
    se = math.sqrt(max(lam ** 2 * var_a + (1 - lam) ** 2 * mse_pirt + 2 * lam * (1 - lam) * cc, 0.0) + noise)
    zq = _z(level)
    return MeanEstimate(mean=float(np.clip(mean, 0, 1)), low=float(max(0.0, mean - zq * se)),
                        high=float(min(1.0, mean + zq * se)), se=se, anchor_mean=anchor_mean, pirt=pirt,
                        lam=float(lam), n_anchors=k, level=float(level))


def estimate_from_posterior(phi: np.ndarray, cov: np.ndarray, Z_anchor: np.ndarray, o_anchor: np.ndarray,
                            y: np.ndarray, Z_target: np.ndarray, o_target: np.ndarray, *,
                            weights: np.ndarray | None = None, observed: np.ndarray | None = None,
                            target_scale: np.ndarray | float = 1.0, extra_var: float = 0.0,
                            level: float = 0.95, floor_anchor: np.ndarray | None = None,
                            floor_target: np.ndarray | None = None, lam_fixed: float | None = None) -> MeanEstimate:
    """gp-IRT from a fitted posterior (mode ``phi`` (p,), covariance ``cov`` (p, p)) and the design rows.

    ``o_anchor`` / ``o_target`` include any calibrated residual difficulties; ``target_scale``
    (scalar or (n,)) multiplies the target logits of prompts whose own difficulty is unknown
    (see :func:`~routereval.coldstart.calibrate.expected_logit_scale`), 1 where it is known.
    ``floor_anchor`` (k,) / ``floor_target`` (n,): calibrated guessing floors (3PL), None: none.
    """
    from routereval.routers.newmodel import floored

    p_anchor = floored(Z_anchor @ phi + o_anchor, floor_anchor)
    c = np.broadcast_to(np.asarray(target_scale, dtype=np.float64), (len(Z_target),))
    s = _sigmoid(c * (Z_target @ phi + o_target))
    f = np.zeros(len(s)) if floor_target is None else np.asarray(floor_target, dtype=np.float64)
    p_target = f + (1 - f) * s
    n = len(p_target)
    unseen = np.ones(n, dtype=bool) if observed is None else np.asarray(observed) < 0
    g = (c[unseen] * (1 - f[unseen]) * s[unseen] * (1 - s[unseen])) @ Z_target[unseen] / n
    cross = 0.0
    if weights is not None:
        from routereval.routers.newmodel import floored_weights

        _, u, _ = floored_weights(Z_anchor @ phi + o_anchor, floor_anchor)
        cross = cross_covariance(weights, Z_anchor, cov, g, u * p_anchor * (1 - p_anchor))
    return gp_combine(y, p_anchor, p_target, float(g @ cov @ g), weights=weights, observed=observed,
                      extra_var=extra_var, cross_cov=cross, level=level, lam_fixed=lam_fixed)


POPULATION_REFS = 256  # known models the anchor mean's weight is learned from (a seeded sample; all when fewer)


def anchor_and_pirt(Phi: np.ndarray, Y: np.ndarray, weights: np.ndarray, Z_target: np.ndarray, o_target: np.ndarray,
                    *, observed: np.ndarray | None = None, target_scale: np.ndarray | float = 1.0,
                    floor_target: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The anchor mean and p-IRT of r models at once, as :func:`estimate_from_posterior` gives each (a pure function).

    Parameters
    ----------
    Phi : (r, p)
        Each model's posterior mode.
    Y : (k, r)
        Their answers on the anchors.
    weights : (k,)
        The anchors' design weights.
    Z_target, o_target, observed, target_scale, floor_target
        As in :func:`estimate_from_posterior`.

    Returns
    -------
    A, P : (r,)
        The design-weighted anchor means and the p-IRT estimates.
    """
    Y = np.asarray(Y, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    c = np.broadcast_to(np.asarray(target_scale, dtype=np.float64), (len(Z_target),))
    f = np.zeros(len(Z_target)) if floor_target is None else np.asarray(floor_target, dtype=np.float64)
    vals = f[:, None] + (1 - f[:, None]) * _sigmoid(c[:, None] * (Z_target @ np.asarray(Phi).T + o_target[:, None]))
    if observed is not None and (known := np.asarray(observed) >= 0).any():
        vals[known] = Y[np.asarray(observed)[known]]  # a target that is an anchor counts with its answer
    return w @ Y, vals.mean(axis=0)


def population_weight(estimate: Any, Y_ref: np.ndarray, target_ref: np.ndarray, *,
                      max_refs: int = POPULATION_REFS, seed: Any = 0, parts: Any = None) -> Any:
    """The weight ``lam`` of the anchor mean learned from known models that answered the same anchors.

    Each of up to ``max_refs`` references (a sample seeded by ``seed``) gets, from its answers,
    the anchor mean ``A_j`` and p-IRT ``P_j`` (``estimate(answers)`` -> a :class:`MeanEstimate`,
    or a sequence of them for several targets) against its known mean ``t_j``;
    ``lam = sum (P - t)(P - A) / sum (P - A)^2`` clipped to [0, 1], the least-squares weight of
    ``A`` in ``lam A + (1 - lam) P``. Unlike the model-based rule of :func:`gp_combine` (p-IRT's
    squared bias from the new model's own weighted anchor residual, which holds the anchor mean's
    own sampling error, so ``lam`` grew exactly when the anchor mean was off by chance), it depends
    on the anchor set only, not on the new model's answers. None with fewer than 3 references (or
    ``max_refs`` under 3).

    References whose answers shaped the prompt side (the fitted pool) are fitted better by p-IRT
    than a new model is, which pulls ``lam`` towards 0; the study measures the estimate with that
    pull, each held-out model outside the fit.

    Parameters
    ----------
    estimate
        answers (k,) -> a :class:`MeanEstimate` with design weights, or a sequence of q of them.
    Y_ref : (k, n_ref)
        The references' answers on the anchors.
    target_ref : (n_ref,) or (n_ref, q)
        Their known means over the targets, one column per estimate ``estimate`` returns.
    parts
        Optional: answers (k, r) -> (A, P), each (r, q), the anchor means and p-IRT of r references at once
        (:func:`anchor_and_pirt`), the same as ``estimate`` gives one by one, faster.

    Returns
    -------
    float, or (q,) ndarray for q targets; None
    """
    Y = np.asarray(Y_ref, dtype=np.float64)
    T = np.asarray(target_ref, dtype=np.float64)
    n = Y.shape[1]
    if n < 3 or max_refs < 3:
        return None
    pick = np.sort(np.random.default_rng(seed).permutation(n)[:max_refs])
    if parts is not None:
        A, P = (np.asarray(v, dtype=np.float64).reshape(len(pick), -1) for v in parts(Y[:, pick]))
    else:
        ests = [estimate(Y[:, j]) for j in pick]
        ests = [[e] if isinstance(e, MeanEstimate) else list(e) for e in ests]
        if any(e.anchor_mean is None for e in ests[0]):
            raise InputError("population_weight: the estimates have no anchor mean (anchors without design weights "
                             "have no weight to learn)")
        A = np.array([[e.anchor_mean for e in row] for row in ests], dtype=np.float64)
        P = np.array([[e.pirt for e in row] for row in ests], dtype=np.float64)
    t = T[pick].reshape(len(pick), -1)
    if t.shape != P.shape:
        raise InputError(f"population_weight: {P.shape[1]} estimate(s) per reference but {t.shape[1]} known "
                         "mean(s); expected one known mean per target")
    den = np.sum((P - A) ** 2, axis=0)
    lam = np.clip(np.where(den > 0, np.sum((P - t) * (P - A), axis=0) / np.where(den > 0, den, 1.0), 0.0), 0.0, 1.0)
    return float(lam[0]) if T.ndim == 1 else lam


def generalisation_var(Z: np.ndarray, offset: np.ndarray, Phi: np.ndarray, Y: np.ndarray, *, scale: float = 1.0) -> float:
    """Variance of the prompt side's error in a model's mean over unseen prompts, measured on the population.

    For each fitted model j, the gap between its mean score on prompts the router was not
    trained on (validation: ``Z`` (n, p), ``offset`` (n,), answers ``Y`` (n, m)) and its
    predicted mean there; the mean squared gap less its Bernoulli part.
    """
    P = _sigmoid(scale * (np.asarray(Z) @ np.asarray(Phi).T + np.asarray(offset)[:, None]))
    Y = np.asarray(Y, dtype=np.float64)
    n = len(Y)
    if n == 0:
        return 0.0
    gap = Y.mean(axis=0) - P.mean(axis=0)
    noise = np.sum(P * (1 - P), axis=0) / n ** 2
    return float(max(0.0, np.mean(gap ** 2 - noise)))


def estimate_mean(router: Any, X_anchor: np.ndarray, y_anchor: np.ndarray, X_target: np.ndarray, *,
                  weights: np.ndarray | None = None, observed: np.ndarray | None = None,
                  anchor_delta: np.ndarray | None = None, target_delta: np.ndarray | None = None,
                  spread: float = 0.0, level: float = 0.95, prior_scale: float = 1.0,
                  references: tuple[np.ndarray, np.ndarray] | None = None, adaptive: bool = False) -> MeanEstimate:
    """A new model's mean score over the target prompts, from its answers on the anchors.

    Parameters
    ----------
    router
        A fitted router supporting ``add_model`` (the new model need not be added).
    X_anchor : (k, d), y_anchor : (k,)
        The anchor prompts and the new model's scores on them, in [0, 1].
    X_target : (n, d)
        The prompts whose mean score is estimated (the whole benchmark, or its test split).
    weights : (k,), optional
        The anchors' design weights (:class:`~routereval.coldstart.anchors.Anchors`); None for
        adaptive anchors (the estimate is then p-IRT alone).
    observed : (n,) int, optional
        Position among the anchors of each target prompt that is an anchor, -1 otherwise.
    anchor_delta : (k,), target_delta : (n,), optional
        Calibrated residual difficulties (:func:`~routereval.coldstart.calibrate.calibrate_items`)
        of the anchors and of the target prompts; a target prompt without one (NaN, or no
        ``target_delta``) has an unknown difficulty of variance ``spread``.
    spread
        s^2 of the calibration (0: no calibration).
    level
        Coverage of the interval (default 0.95).
    prior_scale
        Scales the population prior's covariance (see ``add_model``).
    references : ((k, n_ref), (n_ref,)), optional
        Known models' answers on the same anchors and their mean scores over the same target
        prompts (e.g. the corpus models the router was fitted on): the estimate then includes
        the neighbours' correction (:func:`~routereval.coldstart.neighbours.neighbour_correction`), and with
        ``weights`` the anchor mean's weight ``lam`` is learned from them (:func:`population_weight`; at least 3).
        The new model's own answers on the targets must not be among them.
    adaptive
        The anchors come from an adaptive test (chosen for these answers): only the references that
        answered them at the new model's level correct the estimate (see
        :mod:`~routereval.coldstart.neighbours`).

    Returns
    -------
    MeanEstimate
    """
    from routereval.routers.base import require_add_model
    from routereval.coldstart.calibrate import expected_logit_scale

    require_add_model(router)
    if not (is_real(level) and 0 < level < 1):
        raise InputError(f"level must be a number in (0, 1). Got {level!r}.")
    if not isinstance(adaptive, (bool, np.bool_)):
        raise InputError(f"adaptive must be True (the anchors come from an adaptive test) or False. Got {adaptive!r}.")
    if not (is_real(spread) and spread >= 0):
        got = repr(spread) if is_real(spread) else f"{type(spread).__name__}" + (
            " (pass its .spread)" if hasattr(spread, "spread") else "")
        raise InputError(f"spread must be the calibration's variance s^2, a number >= 0 (0: none). Got {got}.")
    from routereval.routers.base import check_X

    for what, arr in (("X_anchor", X_anchor), ("X_target", X_target)):  # named: they are two arrays of prompts
        check_X(arr, n_features=getattr(router, "n_features_in_", None), what=f"{what}: ")
    Za, oa = router.model_design(X_anchor)
    k = len(Za)
    y = np.asarray(y_anchor, dtype=np.float64)
    if y.shape != (k,) or not np.all((y >= 0) & (y <= 1)):
        what = "" if y.shape != (k,) else (" with a NaN (a missing answer: leave that anchor out)" if np.isnan(y).any()
                                           else f" with values from {y.min()} to {y.max()}")
        raise InputError(f"y_anchor must be {k} scores in [0, 1], one per anchor; got shape {y.shape}{what}")
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (k,):
            raise InputError(f"weights must be {k} positive design weights, one per anchor; got shape {w.shape}")
        if not np.all(np.isfinite(w) & (w > 0)):
            bad = w[~(np.isfinite(w) & (w > 0))][0]
            raise InputError(f"weights must be finite and > 0 (the anchors' design weights; only their ratios "
                             f"count); got {bad:g}")
    if anchor_delta is not None:
        anchor_delta = float_array(anchor_delta, "anchor_delta (one entry per anchor)", shape=(k,))
        oa = oa + anchor_delta
    Zt, ot = router.model_design(X_target)
    if not len(Zt):
        raise InputError("X_target holds no prompt; expected the prompts whose mean score is estimated")
    if observed is not None and (np.shape(observed) != (len(Zt),)):
        raise InputError(f"observed must have one entry per target prompt ({len(Zt)})")
    if observed is not None:
        obs = np.asarray(observed)
        if not np.issubdtype(obs.dtype, np.integer) or obs.min() < -1 or obs.max() >= k:
            raise InputError(f"observed must hold, per target prompt, its position among the {k} anchors or -1")
    known = np.zeros(len(Zt), dtype=bool)
    if target_delta is not None:
        td = np.asarray(target_delta, dtype=np.float64)
        if td.shape != (len(Zt),):
            raise InputError(f"target_delta must have one entry per target prompt ({len(Zt)})")
        known = ~np.isnan(td)
        ot = ot + np.where(known, td, 0.0)
    scale = np.where(known, 1.0, expected_logit_scale(spread))

    def gp(y: np.ndarray, lam: float | None = None) -> MeanEstimate:
        phi, cov = router.posterior_model(X_anchor, y, prior_scale=prior_scale, offsets=anchor_delta)
        return estimate_from_posterior(phi, cov, Za, oa, y, Zt, ot, weights=weights, observed=observed,
                                       target_scale=scale, level=level, lam_fixed=lam)

    est = gp(y)
    if references is None:
        return est
    if not isinstance(references, tuple) or len(references) != 2:
        raise InputError("references must be a tuple (Y_ref (k, n_ref) answers, target_ref (n_ref,) known means)")
    Y_ref = float_array(references[0], "references' answers Y_ref", shape=(len(y), None),
                        expected=f"(k={len(y)}, n_ref) scores in [0, 1]")
    target_ref = float_array(references[1], "references' known means target_ref", shape=(Y_ref.shape[1],),
                             expected=f"(n_ref={Y_ref.shape[1]},) means in [0, 1]")
    if ((Y_ref < 0) | (Y_ref > 1)).any() or ((target_ref < 0) | (target_ref > 1)).any():
        raise InputError("references must hold answers and known means in [0, 1]")
    from routereval.coldstart.neighbours import neighbour_correction

    # with design weights, the anchor mean's weight is learned from the references (population_weight) and used
    # for the new model and for every reference inside the correction alike
    lam = population_weight(gp, Y_ref, target_ref) if weights is not None else None
    if lam is not None:
        est = gp(y, lam)
    corr = neighbour_correction(y, Y_ref, target_ref, lambda yy: gp(yy, lam).mean, level_match=bool(adaptive),
                                full_output=True)
    return est.corrected(corr.value, corr.se, corr.error_rms)
