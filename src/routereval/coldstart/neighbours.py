"""The neighbours' correction of a new model's estimated mean score.

Known models whose full answers are on record (the corpus's, not only those the prompt side
was learned from) answered the same anchors as the new model: the same estimator applied to their anchor answers misses their known mean by a residual, and the
new model's error is most like the residuals of the models that answered the anchors most
like it (fine-tunes of one base get the same prompts right and wrong, beyond what their
fitted vectors say: their errors share that luck). The estimate adds the residuals' mean
weighted by ``exp((a_j - max a) / bandwidth)``, ``a_j`` the share of the anchors on which
reference j agrees with the new model, times the share to apply: how well the references'
residuals predict one another (:func:`neighbour_shrinkage`; near 0 among unrelated models,
whose residuals are only noise). On synth MMLU (validation corpus, 970 reference
models, 30 held-out x 5 draws, 100 anchors) it cut the mean absolute error from 0.0257 to
0.0228 (``irt``), 0.0281 to 0.0225 (``random``), 0.0251 to 0.0189 (``fisher``) and 0.0225 to
0.0128 (``adaptive``); applied whole (no shrinkage) a bandwidth of 0.05 did worse than 0.02,
0.01 about the same. On real MMLU-Pro (30 references of different families) it is 0 for about
half the anchor sets and changes the error little (``irt`` 0.0277 to 0.0270). The interval
moves with the estimate and widens by the correction's own standard error and by the error the
corrected estimator makes on the references themselves (:meth:`~routereval.coldstart.estimate.MeanEstimate.corrected`).

Anchors of an adaptive test were chosen for the new model's answers: a reference that answers them
at another level sees a test tuned to someone else, and its estimation error is not one the new
model makes (on a weak model's test every stronger reference is overestimated alike, their residuals
then predict one another and the whole correction applies: real MMLU-Pro, a pool of 10, Llama-2-7B
corrected from 0.17 to 0.003). With ``level_match`` only references whose mean answer on the anchors
is within two standard errors of the new model's are used (:func:`level_matched`). Measured
(bench/RESULTS.md, rule written first): on three MMLU-Pro pools of 10, 100 adaptive answers 0.045 ->
0.026 (gp-IRT alone 0.026); AlpacaEval pools of 20 and 30 0.029 -> 0.025; synth MMLU (siblings
everywhere, which always pass) 0.0100 -> 0.0103.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from routereval.errors import InputError

NEIGHBOURS = 20     # references whose residuals are weighed (the most agreeing, and those tied with the last)
MAX_TIED = 3        # ... at most this many times NEIGHBOURS of them
BANDWIDTH = 0.02    # of the agreement share: a reference agreeing on 2% fewer anchors weighs e^-1 as much


# a known model with the new one's score on this share of the prompts, and at most COPY_CHANCE times the
# disagreements of two independent models with their score distributions, is a copy of it (the same model under
# another name, as leaderboards hold). The second test keeps two distinct strong models, which agree on 99% of
# easy prompts by chance alone.
COPY_AGREEMENT = 0.99
COPY_CHANCE = 0.1


def agreement(y: np.ndarray, Y_ref: np.ndarray) -> np.ndarray:
    """(n_ref,) share of agreement ``1 - mean_i |y_i - Y_ref[i, j]|`` of answers ``y`` (k,) with each column of ``Y_ref`` (k, n_ref)."""
    y = np.asarray(y, dtype=np.float64)
    return 1.0 - np.abs(np.asarray(Y_ref, dtype=np.float64) - y[:, None]).mean(axis=0)


def most_agreeing(agree: np.ndarray, n: int, *, tie_key: Callable[[np.ndarray], np.ndarray] | None = None
                  ) -> np.ndarray:
    """Positions of the ``n`` most agreeing references and of every one tied with the ``n``-th, most agreeing first.

    Among thousands of references, answers on 100 binary anchors take only 101 agreement
    values: a cut at exactly ``n`` would choose among the tied by their order in the corpus.
    The ties are all kept, up to ``MAX_TIED * n``; beyond that, the tied kept are those with the
    smallest ``tie_key(positions)`` (a key of each reference's content, so the set does not
    depend on the order either), else the first in order.
    """
    a = np.asarray(agree, dtype=np.float64)
    order = np.argsort(-a, kind="stable")
    if len(a) <= n:
        return order
    cut, cap = a[order[n - 1]], MAX_TIED * n
    if int(np.sum(a >= cut)) <= cap or tie_key is None:
        return order[:min(int(np.sum(a >= cut)), cap)]
    above = order[:int(np.sum(a > cut))]
    tied = np.flatnonzero(a == cut)
    tied = tied[np.argsort(np.asarray(tie_key(tied)), kind="stable")]
    return np.r_[above, tied[:cap - len(above)]]


def content_keys(Y: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(n,) a hash of each column of ``Y`` (k, n) with its ``target`` (n,) or (n, q): a tie-break of references by
    what they are, not where they stand (equal keys: equal answers and means, interchangeable)."""
    import hashlib

    Y = np.ascontiguousarray(np.asarray(Y, dtype=np.float64).T)
    t = np.ascontiguousarray(np.asarray(target, dtype=np.float64).reshape(len(Y), -1))
    return np.array([int.from_bytes(hashlib.blake2b(Y[j].tobytes() + t[j].tobytes(), digest_size=8).digest(), "little")
                     for j in range(len(Y))], dtype=np.uint64)


def level_matched(y: np.ndarray, Y_ref: np.ndarray) -> np.ndarray:
    """(n_ref,) bool: references whose mean answer on the anchors is within two standard errors of the new model's.

    ``|mean(Y_ref[:, j]) - mean(y)| <= 2 sqrt((var(y) + var(Y_ref[:, j])) / k)``, the standard error of
    the difference of two independent means of k answers (population variances), for ``y`` (k,)
    and ``Y_ref`` (k, n_ref).
    """
    y = np.asarray(y, dtype=np.float64)
    Y = np.asarray(Y_ref, dtype=np.float64)
    k = len(y)
    return np.abs(Y.mean(axis=0) - y.mean()) <= 2.0 * np.sqrt((y.var() + Y.var(axis=0)) / k)


def neighbour_weights(agree: np.ndarray, *, bandwidth: float = BANDWIDTH) -> np.ndarray:
    """(n,) weights summing to 1, ``exp((a_j - max a) / bandwidth)`` normalised."""
    a = np.asarray(agree, dtype=np.float64)
    w = np.exp((a - a.max()) / bandwidth)
    return w / w.sum()


def neighbour_correction(y: np.ndarray, Y_ref: np.ndarray, target_ref: np.ndarray,
                         estimate: Callable[[np.ndarray], Any], *, neighbours: int = NEIGHBOURS,
                         bandwidth: float = BANDWIDTH, level_match: bool = False, full_output: bool = False) -> Any:
    """The neighbours' correction of an estimate from answers ``y``: their residuals' weighted mean.

    Parameters
    ----------
    y : (k,)
        The new model's anchor answers.
    Y_ref : (k, n_ref)
        Reference models' answers on the same anchors.
    target_ref : (n_ref,) or (n_ref, q)
        Their known mean scores over the target prompts (q sets of targets at once).
    estimate
        The estimator applied to each reference's answers: ``estimate(answers (k,))`` -> a
        float, or (q,) estimates of the q targets.
    neighbours
        How many of the most agreeing references are weighed (with those tied with the last).
    bandwidth
        Of the agreement share (see :func:`neighbour_weights`).
    level_match
        Use only the references at the new model's level on the anchors (:func:`level_matched`):
        for anchors chosen for the new model's answers (an adaptive test).
    full_output
        Return a :class:`Correction`: the value with its standard error and the references' error.

    Returns
    -------
    float or (q,) ndarray
        ``s * sum_j w_j (target_ref[j] - estimate(Y_ref[:, j]))`` over the ``neighbours`` most
        agreeing references and those tied with the last (:func:`most_agreeing`; past its cap, the
        tied are chosen by :func:`content_keys`, not by their order), ``s`` the
        share to apply (:func:`neighbour_shrinkage`); 0 without references. With ``full_output``,
        a :class:`Correction` of it.
    """
    Y_ref = np.asarray(Y_ref, dtype=np.float64)
    target_ref = np.asarray(target_ref, dtype=np.float64)
    if Y_ref.ndim != 2 or Y_ref.shape[0] != len(y) or Y_ref.shape[1] != len(target_ref):
        raise InputError(f"references: answers must be (k={len(y)}, n_ref) with one known mean per reference; "
                         f"got answers {Y_ref.shape} and {len(target_ref)} means")
    if level_match:
        keep = level_matched(y, Y_ref)
        Y_ref, target_ref = Y_ref[:, keep], target_ref[keep]
    if Y_ref.shape[1] == 0:
        zero = 0.0 if target_ref.ndim == 1 else np.zeros(target_ref.shape[1])
        return Correction(zero, zero, zero) if full_output else zero
    a = agreement(y, Y_ref)
    top = most_agreeing(a, neighbours, tie_key=lambda pos: content_keys(Y_ref[:, pos], target_ref[pos]))
    resid = target_ref[top] - np.array([estimate(Y_ref[:, j]) for j in top], dtype=np.float64)
    share = neighbour_shrinkage(Y_ref[:, top], resid, bandwidth=bandwidth)
    w = neighbour_weights(a[top], bandwidth=bandwidth)
    rbar = w @ resid
    out = _scalar(share * rbar + 0.0)  # + 0.0: a share of 0 times a negative mean is 0, not -0.0
    if not full_output:
        return out
    # the residuals' spread from all the weighed references alike (weights piled on one reference would leave a
    # weighted spread of about 0), then the weighted mean's variance sum w^2 s^2
    spread = resid.std(axis=0, ddof=1) if len(top) > 1 else np.zeros(resid.shape[1:])
    se = share * np.sqrt(np.sum(w ** 2)) * spread
    loo = resid - share * _others_prediction(Y_ref[:, top], resid, bandwidth)  # each one corrected by the others
    return Correction(out, _scalar(se), _scalar(np.sqrt(np.mean(loo ** 2, axis=0))))


def _scalar(v: Any) -> Any:
    return float(v) if np.ndim(v) == 0 else v


@dataclass(frozen=True)
class Correction:
    """The neighbours' correction of an estimate (:func:`neighbour_correction` with ``full_output``).

    Attributes
    ----------
    value : float or (q,)
        The correction.
    se : float or (q,)
        Its sampling error: ``s * sqrt(sum_j w_j^2) * sd(r)``, the weighted mean's standard error
        with the spread ``sd(r)`` (ddof 1) of the ``n`` weighed residuals taken alike (0 for one).
    error_rms : float or (q,)
        The error of the corrected estimator on the known models: the root mean square over the
        weighed references of each one's residual less the correction the others give it (its
        residual itself when there are too few references to correct).
    """

    value: Any
    se: Any
    error_rms: Any


def neighbour_shrinkage(Y: np.ndarray, resid: np.ndarray, *, bandwidth: float = BANDWIDTH) -> np.ndarray | float:
    """How far the references' residuals predict one another: the share of the correction to apply, in [0, 1].

    Each reference's residual is predicted by the others' (weighted by their agreement with it on
    the anchors, as the new model's correction is); ``b`` is the least-squares slope of the
    residuals on those predictions (through 0), shrunk by ``max(0, 1 - 1/t^2)`` (``t`` its
    t statistic) and clipped to [0, 1]. Near-duplicate models (fine-tunes of one base) share
    their luck and predict one another (``b`` near 1); unrelated models do not, and the
    correction would only add their noise (on real MMLU-Pro, 30 models of different families,
    the unshrunk correction raised the error of 100 ``irt`` anchors from 0.0277 to 0.0304).

    Parameters
    ----------
    Y : (k, n)
        The references' answers on the anchors.
    resid : (n,) or (n, q)
        Their residuals (q sets of targets).

    Returns
    -------
    float or (q,) ndarray
    """
    r = np.asarray(resid, dtype=np.float64)
    n = np.shape(Y)[1]
    if n < 3:
        return 0.0 if r.ndim == 1 else np.zeros(r.shape[1])
    c = _others_prediction(Y, r, bandwidth)
    cc = np.sum(c * c, axis=0)
    b = np.where(cc > 0, np.sum(r * c, axis=0) / np.where(cc > 0, cc, 1.0), 0.0)
    s2 = np.sum((r - b * c) ** 2, axis=0) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t2 = np.where(s2 > 0, b * b * cc / s2, np.inf)
        shrink = np.clip(b * np.maximum(0.0, 1.0 - 1.0 / t2), 0.0, 1.0)
    return _scalar(shrink)


def _others_prediction(Y: np.ndarray, resid: np.ndarray, bandwidth: float) -> np.ndarray:
    """(n,) or (n, q): each reference's residual predicted by the others', weighted by their agreement with it
    on the anchors (as the new model's correction weighs them); 0 with fewer than 3 references."""
    Y = np.asarray(Y, dtype=np.float64)
    r = np.asarray(resid, dtype=np.float64)
    if Y.shape[1] < 3:
        return np.zeros_like(r)
    A = 1.0 - np.abs(Y[:, :, None] - Y[:, None, :]).mean(axis=0)
    np.fill_diagonal(A, -np.inf)  # a reference does not predict itself
    W = np.exp((A - A.max(axis=1, keepdims=True)) / bandwidth)
    W /= W.sum(axis=1, keepdims=True)
    return W @ r


def copies(y: np.ndarray, S: np.ndarray, cols: np.ndarray, *, sums: np.ndarray | None,
           agreement: float = COPY_AGREEMENT, chance: float = COPY_CHANCE, min_expected: float = 0.0,
           chunk: int = 256) -> np.ndarray:
    """(len(cols),) bool: which columns ``cols`` of ``S`` (n, ·) are copies of the answers ``y`` (n,).

    A copy has the same score on at least ``agreement`` of the prompts, and at most ``chance``
    times the disagreements of two independent models with the two score distributions
    (``1 - sum_v f_y(v) f_c(v)``), of which at least ``min_expected`` are expected (on a few
    prompts, agreeing everywhere is no evidence). Binary scores (``sums``: every column's sum of
    ``S``) by one matrix-vector product (``|y - c| = y + c - 2 y c``); graded ones (``sums``
    None) ``chunk`` columns at a time, scores compared as they are (round answers read from
    a file as the records were written first).
    """
    cols = np.asarray(cols, dtype=np.int64)
    if not len(cols):
        return np.zeros(0, dtype=bool)
    y = np.asarray(y, dtype=S.dtype)
    n = len(y)
    if sums is not None:
        sums = np.asarray(sums, dtype=np.float64)[cols]
        same = 1.0 - (y.sum(dtype=np.float64) + sums - 2.0 * (y @ S)[cols].astype(np.float64)) / n
        p, m = float(y.mean(dtype=np.float64)), sums / n
        by_chance = p * m + (1 - p) * (1 - m)
    else:
        vals, counts = np.unique(y, return_counts=True)
        freq = counts / n
        same, by_chance = np.empty(len(cols)), np.empty(len(cols))
        for i in range(0, len(cols), chunk):
            C = S[:, cols[i:i + chunk]]
            same[i:i + chunk] = (C == y[:, None]).mean(axis=0)
            at = np.clip(np.searchsorted(vals, C), 0, len(vals) - 1)
            by_chance[i:i + chunk] = np.where(vals[at] == C, freq[at], 0.0).mean(axis=0)
    return ((same >= agreement) & (1.0 - same <= chance * (1.0 - by_chance))
            & (n * (1.0 - by_chance) >= min_expected))
