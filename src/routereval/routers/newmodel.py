"""Estimating one new model's parameter vector with the prompt side held fixed.

Routers with a per-model parameter vector (``mf``, ``irt``, ``linear``, ``mlp``) predict
``logit_ij = z(x_i) . phi_j + o(x_i)``: a prompt-side design row ``z(x)`` (p,) and offset
``o(x)`` that every model shares, and the model's own vector ``phi_j`` (p,). A new model is a
Bayesian logistic regression on its anchor answers with the fitted population of models as
the prior (empirical Bayes): :func:`population_prior` and :func:`map_logistic`.
"""

from __future__ import annotations

import numpy as np

from routereval.errors import InputError
from routereval.routers.linear import sigmoid as _sigmoid


def population_prior(Phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the fitted models' parameter vectors: the prior of a new model.

    The sample covariance of m vectors of p values is singular when m <= p, so it is
    shrunk towards its diagonal with weight ``p / (m + p)`` (more shrinkage when fewer
    models back each dimension), plus a ridge of 1e-4 of the mean variance.

    Parameters
    ----------
    Phi : (m, p)
        One row per fitted model.

    Returns
    -------
    mean : (p,), cov : (p, p)
    """
    Phi = np.asarray(Phi, dtype=np.float64)
    m, p = Phi.shape
    mean = Phi.mean(axis=0)
    if m < 2:  # no spread to learn from: a broad isotropic prior
        return mean, np.eye(p) * max(float(np.mean(Phi ** 2)), 1.0)
    S = np.cov(Phi, rowvar=False, ddof=1).reshape(p, p)
    lam = p / (m + p)
    cov = (1 - lam) * S + lam * np.diag(np.diag(S))
    scale = float(np.trace(cov)) / p
    cov += np.eye(p) * max(1e-4 * scale, 1e-8)
    return mean, cov



def floored(eta: np.ndarray, floor: np.ndarray | None) -> np.ndarray:
    """``floor + (1 - floor) * sigmoid(eta)``: the probability of a correct answer with a guessing floor (3PL)."""
    s = _sigmoid(eta)
    return s if floor is None else floor + (1.0 - floor) * s


def floored_weights(eta: np.ndarray, floor: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p, score weight ``dp/deta / (p (1 - p))``, Fisher weight ``(dp/deta)^2 / (p (1 - p))``) at ``eta``.

    Without a floor these are ``sigmoid(eta)``, 1 and ``p (1 - p)``: the logistic model's.
    """
    s = _sigmoid(eta)
    if floor is None:
        return s, np.ones_like(s), s * (1 - s)
    p = floor + (1.0 - floor) * s
    dp = (1.0 - floor) * s * (1 - s)
    v = np.clip(p * (1 - p), 1e-12, None)
    return p, dp / v, dp * dp / v


def log_posterior(phi: np.ndarray, Z: np.ndarray, offset: np.ndarray, y: np.ndarray, weights: np.ndarray,
                  prior_mean: np.ndarray, precision: np.ndarray, floor: np.ndarray | None = None) -> float:
    """Weighted Bernoulli log-likelihood of soft targets ``y`` plus the Gaussian log-prior (up to a constant)."""
    eta = Z @ phi + offset
    if floor is None:
        # y log s(eta) + (1 - y) log(1 - s(eta)) = y eta - log(1 + e^eta)
        ll = float(np.sum(weights * (y * eta - np.logaddexp(0.0, eta))))
    else:
        p = np.clip(floored(eta, floor), 1e-12, 1 - 1e-12)
        ll = float(np.sum(weights * (y * np.log(p) + (1 - y) * np.log1p(-p))))
    d = phi - prior_mean
    return ll - 0.5 * float(d @ precision @ d)


def map_logistic(Z: np.ndarray, offset: np.ndarray, y: np.ndarray, prior_mean: np.ndarray, prior_cov: np.ndarray, *,
                 weights: np.ndarray | None = None, start: np.ndarray | None = None, max_iter: int = 50,
                 tol: float = 1e-9, floor: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mode of ``phi`` and its Laplace covariance: Newton's method with step halving.

    Maximises ``sum_i w_i [y_i eta_i - log(1 + exp(eta_i))] - (phi - mu)' Sigma^-1 (phi - mu) / 2``
    with ``eta = Z phi + offset``; ``y`` may be graded scores in [0, 1] (soft targets). The
    objective is strictly concave (the prior is proper), so Newton converges from any start.

    Parameters
    ----------
    Z : (k, p)
        Design rows of the anchor prompts.
    offset : (k,)
        Their fixed offsets.
    y : (k,)
        The new model's scores on them, in [0, 1].
    prior_mean : (p,), prior_cov : (p, p)
        The Gaussian prior (see :func:`population_prior`).
    weights : (k,), optional
        Likelihood weight of each answer (default 1).
    start : (p,), optional
        Starting point (default the prior mean): a warm start for adaptive testing.
    floor : (k,), optional
        Guessing floors ``c_i`` of the anchors: ``P(correct) = c + (1 - c) sigmoid(eta)`` (3PL;
        Fisher scoring, the likelihood is then not concave but the step halving keeps it
        increasing). None: the logistic model.

    Returns
    -------
    phi : (p,)
        The posterior mode.
    cov : (p, p)
        The inverse negative Hessian at the mode (Laplace approximation of the posterior).
    """
    Z = np.asarray(Z, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    mu = np.asarray(prior_mean, dtype=np.float64)
    P = np.linalg.inv(np.asarray(prior_cov, dtype=np.float64))
    P = 0.5 * (P + P.T)
    phi = mu.copy() if start is None else np.asarray(start, dtype=np.float64).copy()
    obj = log_posterior(phi, Z, offset, y, w, mu, P, floor)
    for _ in range(max_iter):
        p, u, info = floored_weights(Z @ phi + offset, floor)
        grad = Z.T @ (w * u * (y - p)) - P @ (phi - mu)
        H = (Z * (w * info)[:, None]).T @ Z + P  # (expected) negative Hessian, positive definite
        step = np.linalg.solve(H, grad)
        t = 1.0
        while True:
            cand = phi + t * step
            new = log_posterior(cand, Z, offset, y, w, mu, P, floor)
            if new >= obj - 1e-12 or t < 1e-6:
                break
            t *= 0.5
        phi, gain, obj = cand, new - obj, new
        if abs(gain) < tol and float(np.max(np.abs(t * step))) < 1e-7:
            break
    _, _, info = floored_weights(Z @ phi + offset, floor)
    H = (Z * (w * info)[:, None]).T @ Z + P
    return phi, np.linalg.inv(H)


def check_answers(X: np.ndarray, y: np.ndarray, *, n_features: int | None,
                  weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate anchor prompts ``X`` (k, d), scores ``y`` (k,) in [0, 1] and optional weights (k,) > 0.

    The weights come back rescaled to mean 1: relative weights of the answers, so design weights
    that sum to 1 (:class:`~routereval.coldstart.Anchors`) weigh k answers as k answers, not as one.
    They are no counts: an answer given twice is two rows.
    """
    from routereval.routers.base import check_X

    X = check_X(X, n_features=n_features, what="X_anchor: ")
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or len(y) != len(X):
        raise InputError(f"y_anchor must be 1-D with one score per anchor prompt ({len(X)}), got shape {y.shape}")
    if len(y) == 0:
        raise InputError("a new model needs at least one anchor answer")
    if not np.isfinite(y).all() or (y < 0).any() or (y > 1).any():
        raise InputError("y_anchor must hold scores in [0, 1] with no NaN")
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != y.shape or not np.isfinite(weights).all() or (weights <= 0).any():
            raise InputError(f"weights must be {y.shape[0]} finite positive numbers, one per anchor")
        weights = weights / weights.max()  # first to at most 1: a sum of huge or tiny weights neither overflows
        weights = weights * (len(weights) / weights.sum())
    return X, y, weights
