"""Choosing the anchor prompts a new model answers: random, stratified, irt (clusters), fisher (design), adaptive (CAT).

Every method is deterministic given ``random_state`` and chooses only among the candidate
prompts it is given: pass the train split's (a router does not know the split; with a
benchmark and no candidates, the train split of ``make_split(bench)`` with its defaults is the
default, which is not the split of a pool built otherwise), and no test prompt is asked.

- ``random``: k candidates uniformly without replacement; weights 1/k.
- ``stratified``: k split over the subsets in proportion to their sizes (the remainders by
  systematic sampling), random within each; an anchor weighs its subset's share over the
  subset's anchors, or 1/k in a subset asked by chance (quota under one anchor).
- ``irt`` (tinyBenchmarks' anchor points): the candidates are clustered (k-means, k
  clusters) by their fitted item parameters, one anchor per cluster (the candidate nearest
  its centre) weighing the cluster's share. An item is described by its fitted item
  response function evaluated at the population's abilities: its predicted probabilities of
  success for (up to 128, evenly spread) fitted models, so Euclidean distances between items
  are root mean square differences of predicted probabilities (tinyBenchmarks clusters on
  the item parameters or on the training models' correctness; this is the model's version
  of the latter). Distances of logits (the item parameters themselves) spent clusters on
  the many prompts every model gets right or wrong, whose answers tell nothing: on synth
  MMLU (validation corpus, 30 held-out models x 5 draws) 100 anchors clustered on
  probabilities gave a mean absolute error 0.026 against 0.031 on logits.
- ``fisher`` (a fixed design, the same for every new model): the anchors that, chosen greedily,
  most reduce the fitted population's posterior variance of the predicted mean score over the
  target prompts (A-optimal for the estimate, averaged over up to ``population`` fitted models
  standing in for the unknown new one: the expected Fisher information, 3PL where calibrated).
  Random anchors and clusters spend most of their answers on prompts every model gets right
  or wrong; this design asks the prompts that separate the population. For the seed's
  variety, it chooses among a seeded half of the candidates and a seeded sample of the
  population. No design weights (not a probability sample): the estimate comes from the
  model, as for ``adaptive``. On synth MMLU (validation corpus, 30 held-out models x 5
  seeds, with the neighbours' correction of the estimate) 100 anchors gave a mean absolute
  error of 0.0189 against 0.0228 for ``irt`` and 0.0225 for ``random``.
- ``adaptive`` (computerised adaptive testing): after a seeded random pick among the most
  informative at the prior, each next anchor is the one whose Fisher information at the
  current posterior of the new model most reduces the posterior variance ``g' Sigma g`` of
  its predicted mean score over the target prompts (``g`` its gradient in the model's vector;
  the study's test split, else the candidates): the information that matters for the
  estimate, not for every direction of the vector. ``z' Sigma z`` is updated by rank one per
  answer and recomputed every 10. No design weights: the estimate of the mean comes from the
  model alone. :class:`AdaptiveTest` built without a target is D-optimal (the largest
  ``p(1-p) z' Sigma z``, the largest gain in the log-determinant of the posterior precision):
  on real MMLU-Pro its estimates were twice as far off. With calibrated guessing floors and slopes (3PL,
  :func:`~routereval.coldstart.calibrate.calibrate_floors`) the information is the 3PL one:
  without the per-prompt slope, picking the prompts whose logits vary most picks those whose
  spread the prompt side overstates, and the estimate is pulled towards the population.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Any, Callable

import numpy as np

from routereval.errors import InputError, ParameterError
from routereval.routers.base import require_add_model
from routereval.validate import check_int, float_array, is_real, option

METHODS = ("random", "stratified", "irt", "fisher", "adaptive")


@dataclass(frozen=True)
class Anchors:
    """Chosen anchor prompts.

    Attributes
    ----------
    index : (k,) int64
        The chosen candidates (values of ``candidates``: prompt indices of the benchmark, or
        row indices of ``X``), in the order chosen.
    weights : (k,) float64 or None
        Design weights summing to 1 (each anchor's share of the candidate set), None for
        ``fisher`` and ``adaptive``.
    method : str
    answers : (k,) float64 or None
        For ``adaptive``: the answers received, in order.
    """

    index: np.ndarray
    weights: np.ndarray | None
    method: str
    answers: np.ndarray | None = None

    def __repr__(self) -> str:
        index = np.asarray(self.index).reshape(-1)  # as built by hand too (a list)
        shown = ", ".join(map(str, index[:5].tolist())) + (", ..." if len(index) > 5 else "")
        return (f"Anchors({self.method}, k={len(index)}, {'weighted' if self.weights is not None else 'no weights'}"
                f"{', answered' if self.answers is not None else ''}; index [{shown}])")


def _check_k(k: Any, n: int) -> int:
    k = check_int(k, f"{option('k')} (the number of anchors)", low=1)
    if k > n:
        raise ParameterError(f"{option('k')} = {k} anchors asked for, but there are only {n} candidate prompts; "
                             f"expected at most {n}")
    return int(k)


# --------------------------------------------------------------------------- pure selections


def random_positions(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """(k,) distinct positions in [0, n), uniformly."""
    return rng.permutation(n)[:k]


def allocate(sizes: np.ndarray, k: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Proportional allocation of ``k`` anchors over strata of ``sizes`` (at most a stratum's size).

    Each stratum gets the integer part of its quota ``k * size / n``; the anchors left over go to
    strata drawn by systematic sampling on their remainders, in an order shuffled by ``rng``, so a
    stratum gets its extra anchor with probability exactly its remainder and its expected count is
    its quota (without ``rng``: the largest remainders, ties by order). With fewer anchors than
    strata the drawn strata thus vary with the seed instead of always being the first ones.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    quota = k * sizes / sizes.sum()
    alloc = np.minimum(np.floor(quota).astype(np.int64), sizes)
    rest = k - int(alloc.sum())
    if rest == 0:
        return alloc
    frac = quota - alloc
    if rng is None:
        chosen = np.argsort(-frac, kind="stable")[:rest]
    else:
        # the remainders, each < 1, sum to ``rest``: points u, u + 1, ... on their running sum fall in ``rest``
        # distinct strata, each with probability its remainder (a stratum with one is below its size)
        order = rng.permutation(len(sizes))
        edges = np.cumsum(frac[order])
        points = rng.random() + np.arange(rest)
        last = int(np.flatnonzero(frac[order] > 0)[-1])  # a point past the rounded total: the last with a remainder
        chosen = order[np.minimum(np.searchsorted(edges, points, side="right"), last)]
    alloc[np.asarray(chosen, dtype=np.int64)] += 1
    return alloc


def stratified_positions(strata: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(k,) positions drawn per stratum in proportion to its size (:func:`allocate`), and their weights.

    A stratum whose quota ``k * size / n`` is at least 1 always has anchors: its share ``size / n``
    is split over them (post-stratified). A smaller stratum is asked only by chance, with
    probability its quota: its anchor weighs ``share / quota = 1 / k`` (Horvitz-Thompson), since
    weighting it by its share too would count the size twice and favour the large strata. The
    weights are normalised to sum 1: exactly unbiased when every quota is under 1 (or none is),
    else a ratio estimator whose bias is of order 1/k (the number of strata asked by chance varies).
    """
    strata = np.asarray(strata)
    labels, inv, sizes = np.unique(strata, return_inverse=True, return_counts=True)
    alloc = allocate(sizes, k, rng)
    n = len(strata)
    pos, w = [], []
    for s in range(len(labels)):
        if alloc[s] == 0:
            continue
        members = np.flatnonzero(inv == s)
        pos.append(members[rng.permutation(len(members))[:alloc[s]]])
        sure = k * sizes[s] >= n  # quota >= 1
        w.append(np.full(alloc[s], sizes[s] / n / alloc[s] if sure else 1.0 / k))
    w_all = np.concatenate(w)
    return np.concatenate(pos), w_all / w_all.sum()


def _rng(random_state: Any) -> np.random.Generator:
    """numpy's Generator from a seed, or a one-line :class:`ParameterError`."""
    try:
        return np.random.default_rng(random_state)
    except (TypeError, ValueError):
        raise ParameterError(f"random_state must be an int >= 0 (or a sequence of them). Got {random_state!r}.") from None


def _is_score(value: Any) -> bool:
    """A score in [0, 1]; a bool is a right (True) or wrong (False) answer."""
    return isinstance(value, (bool, np.bool_)) or (is_real(value) and 0 <= value <= 1)


def kmeans(F: np.ndarray, k: int, rng: np.random.Generator, *, n_iter: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding: (k, f) centres and (n,) labels of the rows of ``F`` (n, f).

    A few Lloyd iterations suffice here: the clusters only stratify the candidates.
    """
    F = np.ascontiguousarray(F, dtype=np.float32)
    n, f = F.shape
    sq = np.einsum("ij,ij->i", F, F)
    centres = np.empty((k, f), dtype=np.float32)
    first = int(rng.integers(n))
    centres[0] = F[first]
    d2 = np.maximum(sq - 2 * F @ F[first] + sq[first], 0)
    u = rng.random(k)
    for j in range(1, k):  # k-means++: the next centre with probability proportional to d^2
        cum = np.cumsum(d2, dtype=np.float64)
        nxt = int(np.searchsorted(cum, u[j] * cum[-1], side="right")) if cum[-1] > 0 else int(u[j] * n)
        nxt = min(nxt, n - 1)
        centres[j] = F[nxt]
        np.minimum(d2, np.maximum(sq - 2 * F @ F[nxt] + sq[nxt], 0), out=d2)
    labels = np.full(n, -1, dtype=np.int64)
    for _ in range(n_iter):
        new = np.argmin(np.einsum("ij,ij->i", centres, centres)[None, :] - 2 * F @ centres.T, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=k)
        keep = counts > 0  # an emptied cluster keeps its centre
        sums = np.stack([np.bincount(labels, weights=F[:, c], minlength=k) for c in range(f)], axis=1)
        centres[keep] = (sums[keep] / counts[keep, None]).astype(np.float32)
    return centres, labels


def _principal(F: np.ndarray, max_dim: int = 8) -> np.ndarray:
    """``F`` (n, f) projected on its top ``max_dim`` principal axes (distances barely change; k-means is faster)."""
    if F.shape[1] <= max_dim:
        return F
    C = F - F.mean(axis=0)
    _, vecs = np.linalg.eigh(C.T @ C)
    return C @ vecs[:, ::-1][:, :max_dim]


def cluster_positions(F: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(k,) positions, one per k-means cluster of the rows of ``F`` (the member nearest the centre), and their shares.

    Tied rows (duplicate prompts, items every model gets right) can leave clusters empty; the
    missing anchors then go to the clusters with the largest share per anchor (their next
    nearest members), and a cluster's share is split over its anchors, so there are always k.
    """
    F = np.asarray(_principal(np.asarray(F, dtype=np.float64)), dtype=np.float32)
    centres, labels = kmeans(F, k, rng)
    dist = np.einsum("ij,ij->i", F, F)[:, None] - 2 * F @ centres.T + np.einsum("ij,ij->i", centres, centres)[None, :]
    counts = np.bincount(labels, minlength=k)
    used = np.flatnonzero(counts)
    ranked = {int(c): np.flatnonzero(labels == c)[np.argsort(dist[labels == c, c], kind="stable")] for c in used}
    taken = {int(c): 1 for c in used}
    pos = [int(ranked[int(c)][0]) for c in used]
    while len(pos) < k:  # only with empty clusters
        open_ = [c for c in taken if taken[c] < len(ranked[c])]
        c = max(open_, key=lambda c: (counts[c] / taken[c], -c))
        pos.append(int(ranked[c][taken[c]]))
        taken[c] += 1
    owner = labels[np.asarray(pos)]
    w = counts[owner] / len(F) / np.array([taken[int(c)] for c in owner])
    return np.asarray(pos, dtype=np.int64), np.asarray(w, dtype=np.float64)


def response_features(Z: np.ndarray, offset: np.ndarray, Phi: np.ndarray, *, floor: np.ndarray | None = None,
                       max_models: int = 128) -> np.ndarray:
    """(n, m') item features whose Euclidean distances are RMS differences of predicted probabilities.

    Parameters
    ----------
    Z : (n, p), offset : (n,)
        Design rows and offsets of the items (calibrated).
    Phi : (m, p)
        The fitted models' vectors; at most ``max_models`` of them, evenly spaced, are used.
    floor : (n,), optional
        The items' guessing floors (3PL).
    """
    from routereval.routers.newmodel import floored

    Phi = np.asarray(Phi, dtype=np.float64)
    if len(Phi) > max_models:
        Phi = Phi[np.linspace(0, len(Phi) - 1, max_models).round().astype(int)]
    f = None if floor is None else np.asarray(floor, dtype=np.float64)[:, None]
    P = floored(np.asarray(Z, dtype=np.float64) @ Phi.T + np.asarray(offset, dtype=np.float64)[:, None], f)
    return P / np.sqrt(len(Phi))


def design_positions(Z: np.ndarray, offset: np.ndarray, Phi: np.ndarray, k: int, rng: np.random.Generator, *,
                     prior_cov: np.ndarray, floor: np.ndarray | None = None,
                     target: tuple[np.ndarray, np.ndarray] | None = None, target_floor: np.ndarray | None = None,
                     population: int = 64, share: float = 0.5, shortlist: int = 2000) -> np.ndarray:
    """(k,) positions of a fixed anchor design: greedy A-optimal for the mean score, averaged over a population.

    Each step adds the candidate that most reduces ``sum_c g_c' Sigma_c g_c`` over the sampled
    population models c (``Sigma_c`` the posterior covariance of model c's vector after the
    anchors so far, from the prior and the expected Fisher information; ``g_c`` the gradient
    of its predicted mean over the target prompts). The greedy order makes the first j
    anchors of a design of k the design of j.

    Parameters
    ----------
    Z : (n, p), offset : (n,)
        Design rows and offsets of the candidates.
    Phi : (m, p)
        The fitted models' vectors (the population).
    k
        Number of anchors.
    rng
        Draws the candidates considered (a ``share`` of them) and the population sample.
    prior_cov : (p, p)
        The population prior's covariance (the information before any answer).
    floor : (n,), optional
        Guessing floors of the candidates (3PL).
    target : ((n_t, p), (n_t,)), optional
        Design rows and offsets of the prompts whose mean is estimated (default: the candidates).
    target_floor : (n_t,), optional
    population
        How many fitted models to average over (a seeded sample; all when fewer).
    share
        Share of the candidates considered (at least k).
    shortlist
        Only the candidates most informative at the prior compete (the rest never win: a
        prompt no model of the population is unsure of stays uninformative).
    """
    from routereval.routers.newmodel import floored_weights
    from routereval.routers.linear import sigmoid

    Z = np.asarray(Z, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64)
    Phi = np.asarray(Phi, dtype=np.float64)
    n = len(Z)
    cand = np.sort(rng.choice(n, max(k, int(round(share * n))), replace=False)) if share < 1 else np.arange(n)
    pop = Phi[np.sort(rng.choice(len(Phi), population, replace=False))] if len(Phi) > population else Phi
    Zt, ot = (Z, offset) if target is None else (np.asarray(target[0], dtype=np.float64),
                                                 np.asarray(target[1], dtype=np.float64))
    ft = (floor if target is None else target_floor)
    st = sigmoid(Zt @ pop.T + ot[:, None])
    dpt = st * (1 - st) if ft is None else (1 - np.asarray(ft, dtype=np.float64))[:, None] * st * (1 - st)
    G = dpt.T @ Zt / len(Zt)                                               # (m, p)
    fc = None if floor is None else np.asarray(floor, dtype=np.float64)[cand][:, None]
    Zc = Z[cand]
    Vt = floored_weights(Zc @ pop.T + offset[cand][:, None], fc)[2].T      # (m, n_c) Fisher weights
    # per population model c and candidate i: gz = g_c' Sigma_c z_i and zz = z_i' Sigma_c z_i, at the prior
    # (the same for every model), then kept up to date by rank-one (Sherman-Morrison) updates as each
    # anchor adds v z z' to every model's precision
    cov = np.asarray(prior_cov, dtype=np.float64)
    SZt = cov @ Zc.T                                                        # (p, n_c)
    gz, zz = G @ SZt, np.einsum("ip,pi->i", Zc, SZt)

    def gains(gz, zz):
        return (gz * gz * Vt / (1 + Vt * zz)).sum(axis=0)

    keep = np.argsort(-gains(gz, zz), kind="stable")[:max(shortlist, k)]
    Zc, Vt, cand, gz = Zc[keep], Vt[:, keep], cand[keep], gz[:, keep]
    zz = np.repeat(zz[keep][None], len(pop), axis=0)                        # (m, n_c)
    S = np.repeat(cov[None], len(pop), axis=0)                              # (m, p, p) posterior covariances
    used = np.zeros(len(cand), dtype=bool)
    chosen = []
    for _ in range(k):
        gain = gains(gz, zz)
        gain[used] = -np.inf
        i = int(np.argmax(gain))
        used[i] = True
        chosen.append(i)
        u = S @ Zc[i]                                                       # (m, p) Sigma_c z_i
        beta = Vt[:, i] / (1 + Vt[:, i] * zz[:, i])                         # (m,)
        uZ = u @ Zc.T                                                       # (m, n_c) z_i' Sigma_c z_j
        gz -= (beta * np.einsum("cp,cp->c", G, u))[:, None] * uZ
        zz -= beta[:, None] * uZ * uZ
        S -= beta[:, None, None] * u[:, :, None] * u[:, None, :]
    return cand[np.asarray(chosen, dtype=np.int64)]


class AdaptiveTest:
    """Computerised adaptive testing of a new model over candidate prompts (one answer at a time).

    Parameters
    ----------
    Z : (n, p), offset : (n,)
        Design rows and offsets of the candidate prompts (``router.model_design(X)``).
    prior_mean : (p,), prior_cov : (p, p)
        The population prior of a model's vector.
    random_state
        Seeds the first pick: uniform among the ``n_first`` most informative at the prior.
    target : ((n_t, p), (n_t,)), optional
        Design rows and offsets of the prompts whose mean score is to be estimated: pick the
        prompt that most reduces the posterior variance of the predicted mean over them.
        None: D-optimal (the largest gain in the log-determinant of the precision).
    target_floor : (n_t,), optional
        Their guessing floors.
    n_first
        How many top candidates the first pick is drawn from (1: fully greedy).
    floor : (n,), optional
        Calibrated guessing floors of the candidates (3PL): a prompt a model can guess right
        tells less about it, and the posterior does not take lucky guesses for ability.

    Use ``i = test.next()``, ask the model, ``test.tell(i, score)``; repeat. ``phi`` and
    ``cov`` are the current posterior mode and covariance. :func:`adaptive_test` builds one
    from a fitted router's prompt side and population prior.
    """

    def __init__(self, Z: np.ndarray, offset: np.ndarray, prior_mean: np.ndarray, prior_cov: np.ndarray, *,
                 random_state: Any = 0, n_first: int = 5, floor: np.ndarray | None = None,
                 target: tuple[np.ndarray, np.ndarray] | None = None, target_floor: np.ndarray | None = None) -> None:
        self.Z = float_array(Z, "Z", ndim=2)
        n, p = self.Z.shape
        self.offset = float_array(offset, "offset", shape=(n,))
        self.floor = None if floor is None else float_array(floor, "floor", shape=(n,))
        self.prior_mean = float_array(prior_mean, "prior_mean", shape=(p,))
        self.prior_cov = float_array(prior_cov, "prior_cov", shape=(p, p))
        self.target = self.target_floor = None
        if target is not None:
            if not isinstance(target, tuple) or len(target) != 2:
                raise InputError("target must be a pair (Z_target (n_t, p) design rows, offsets (n_t,))")
            Zt = float_array(target[0], "target[0]", shape=(None, p))
            self.target = (Zt, float_array(target[1], "target[1]", shape=(len(Zt),)))
            if target_floor is not None:
                self.target_floor = float_array(target_floor, "target_floor", shape=(len(Zt),))
        elif target_floor is not None:
            raise InputError("target_floor is given without a target; give both or neither")
        self.phi = self.prior_mean.copy()
        self.cov = self.prior_cov.copy()
        self.asked: list[int] = []
        self.answers: list[float] = []
        self._used = np.zeros(len(self.Z), dtype=bool)
        self._rng = _rng(random_state)
        self.n_first = check_int(n_first, "n_first", low=1)
        self._pending: int | None = None
        self.refresh = 10  # exact information every this many answers, rank-one updates between
        self._quad = np.einsum("ij,ij->i", self.Z @ self.cov, self.Z)

    def __repr__(self) -> str:
        aim = "D-optimal" if self.target is None else f"aimed at the mean of {len(self.target[0])} prompts"
        return f"AdaptiveTest({len(self.Z)} candidates, {len(self.asked)} asked, {aim})"

    def information(self) -> np.ndarray:
        """(n,) what answering each candidate would gain at the current posterior (-inf if asked).

        Without a target, its Fisher information ``w z' Sigma z`` (``w = p(1-p)`` without a floor,
        the 3PL weight with one); with a target, the drop ``w (z' Sigma g)^2 / (1 + w z' Sigma z)``
        of the variance ``g' Sigma g`` of the predicted mean score over the target.
        """
        from routereval.routers.linear import sigmoid
        from routereval.routers.newmodel import floored_weights

        w = floored_weights(self.Z @ self.phi + self.offset, self.floor)[2]
        if self.target is None:
            info = w * self._quad
        else:  # the drop of the variance g' Sigma g of the predicted mean score when prompt i is answered
            Zt, ot = self.target
            s = sigmoid(Zt @ self.phi + ot)  # no overflow warning at extreme logits
            f = 0.0 if self.target_floor is None else self.target_floor
            g = ((1 - f) * s * (1 - s)) @ Zt / len(Zt)
            u = self.Z @ (self.cov @ g)
            info = w * u * u / (1.0 + w * self._quad)
        info[self._used] = -np.inf
        return info

    def plan(self, n: int) -> np.ndarray:
        """(n,) positions of the next ``n`` prompts to ask before any of their answers (a batch between answers);
        fewer when fewer candidates are left.

        The first is :meth:`next`; each further one is the most informative once those before it
        are answered, each with the information it is expected to give at the current posterior
        mode (the mode stays, the covariance shrinks). The answers and the posterior are unchanged;
        the next prompt is fixed as :meth:`next` fixes it.
        """
        n = check_int(n, "n", low=1)
        out = [self.next()]
        cov, quad, used = self.cov, self._quad, self._used
        try:
            self._used = used.copy()
            while len(out) < min(n, len(self.Z) - len(self.asked)):
                i = out[-1]
                self._used[i] = True
                c, sz, den = self._answer_step(i, self.phi)
                self._quad = self._quad - c * (self.Z @ sz) ** 2 / den
                self.cov = self.cov - c * np.outer(sz, sz) / den
                out.append(int(np.argmax(self.information())))
        finally:
            self.cov, self._quad, self._used = cov, quad, used
        return np.asarray(out, dtype=np.int64)

    def next(self) -> int:
        """The position (row of ``Z``) of the next prompt to ask."""
        if self._pending is not None:
            return self._pending
        if self._used.all():
            raise InputError("every candidate prompt has been asked")
        info = self.information()
        if not self.asked and self.n_first > 1:
            top = np.argsort(-info, kind="stable")[:self.n_first]
            i = int(top[self._rng.integers(len(top))])
        else:
            i = int(np.argmax(info))
        self._pending = i
        return i

    def tell(self, i: int, score: float) -> None:
        """Record the answer ``score`` in [0, 1] to candidate ``i`` and update the posterior.

        ``i`` is usually what :meth:`next` returned; any candidate not asked yet may be told
        (an answer the caller had already), and ``next`` then still proposes its prompt.
        """
        from routereval.routers.newmodel import map_logistic

        if isinstance(i, bool) or not isinstance(i, Integral) or not 0 <= i < len(self.Z):
            raise InputError(f"candidate {i!r} must be the int position of a candidate, 0 to {len(self.Z) - 1}")
        if self._used[int(i)]:
            raise InputError(f"candidate {i} was already asked; tell each answer once")
        if not _is_score(score):
            raise InputError(f"the answer to candidate {i} must be a score in [0, 1], got {score!r}")
        score = float(score)
        i = int(i)
        self._used[i] = True
        self._pending = None
        self.asked.append(i)
        self.answers.append(score)
        idx = np.asarray(self.asked)
        # a warm start from the last mode: a couple of Newton steps suffice after one more answer
        phi, cov = map_logistic(self.Z[idx], self.offset[idx], np.asarray(self.answers), self.prior_mean,
                                self.prior_cov, start=self.phi, max_iter=2,
                                floor=None if self.floor is None else self.floor[idx])
        if len(self.asked) % self.refresh == 0:
            self._quad = np.einsum("ij,ij->i", self.Z @ cov, self.Z)
        else:  # Sherman-Morrison: the new answer adds c z z' to the precision
            c, sz, den = self._answer_step(i, phi)
            self._quad = self._quad - c * (self.Z @ sz) ** 2 / den
        self.phi, self.cov = phi, cov

    def _answer_step(self, i: int, phi: np.ndarray) -> tuple[float, np.ndarray, float]:
        """The rank-one step an answer to candidate ``i`` adds to the precision, at ``phi``: ``c`` (its weight in
        ``c z z'``), ``Sigma z`` and ``1 + c z' Sigma z`` (Sherman-Morrison's denominator)."""
        from routereval.routers.newmodel import floored_weights

        z = self.Z[i]
        c = float(floored_weights(np.asarray([z @ phi + self.offset[i]]),
                                  None if self.floor is None else self.floor[i:i + 1])[2][0])
        sz = self.cov @ z
        return c, sz, 1 + c * float(z @ sz)


# --------------------------------------------------------------------------- public API


def select_anchors(source: Any, k: int, method: str = "irt", *, X: np.ndarray | None = None,
                   candidates: np.ndarray | None = None, subsets: np.ndarray | None = None,
                   answers: np.ndarray | Callable[[int], float] | None = None,
                   delta: np.ndarray | None = None, target: np.ndarray | None = None,
                   calibration: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                   random_state: Any = 0) -> Anchors:
    """Choose ``k`` anchor prompts for a new model among ``candidates``.

    Parameters
    ----------
    source
        A fitted router supporting ``add_model`` (needed by ``irt``, ``fisher`` and ``adaptive``) or a
        :class:`~routereval.data.model.Benchmark` (``random`` and ``stratified``; its subsets
        stratify, and its train split is the default candidate set).
    k
        Number of anchors.
    method
        ``random``, ``stratified``, ``irt``, ``fisher`` or ``adaptive``.
    X : (n, d), optional
        Prompt embeddings, rows indexed by the values of ``candidates`` (all rows when
        ``candidates`` is None). Needed with a router.
    candidates : (n_c,), optional
        Indices (prompts of the benchmark, or rows of ``X``) to choose among: the train
        prompts. Default: the train split of ``make_split(bench)`` (its default seed and
        missing rule: pass ``split.train`` for a pool built otherwise), or every row of ``X``.
    subsets : optional
        Stratum of each row of ``X`` / prompt of the benchmark (``stratified``); default the
        benchmark's subsets. With a router as the source ``stratified`` needs them.
    answers
        ``adaptive`` only: the new model's scores, as an array aligned with the rows of ``X``
        (simulation: every answer known) or a function ``answers(index) -> score`` called
        once per chosen prompt, in order. The other methods never ask: they ignore it, so one
        set of arguments serves a loop over every method.
    delta : (n,), optional
        Calibrated residual difficulty of each row of ``X`` (:mod:`routereval.coldstart.calibrate`),
        used by ``irt``, ``fisher`` and ``adaptive``; NaN where a row has none (its text's difficulty
        alone, as 0 does).
    target : (n_t,), optional
        ``fisher`` and ``adaptive``: rows of ``X`` whose mean score the anchors aim at (each
        next prompt most reduces the posterior variance of the predicted mean over them, e.g.
        the test split). None: the candidates' mean. The other methods ignore it (their
        anchors do not depend on a target). A test of the model's whole vector (D-optimal:
        :class:`AdaptiveTest` built by hand without a target) estimates a mean about half as
        well (real MMLU-Pro, 100 anchors: 0.042 against 0.019-0.020, bench/RESULTS.md).
    calibration : ((n,), (n,), (n,)), optional
        ``irt``, ``fisher`` and ``adaptive``: the 3PL calibration of every row of ``X`` (guessing floor, slope
        and residual difficulty, as :func:`routereval.coldstart.context.prompt_floors` gives):
        the items are then ``c + (1 - c) sigmoid(a (z . phi + o) + d)``, as in the study.
        It replaces ``delta`` for these methods.
    random_state
        Seed: the same seed gives the same anchors.

    Returns
    -------
    Anchors
    """
    if method not in METHODS:
        raise ParameterError(f"{option('method')} must be one of {', '.join(METHODS)}. Got {method!r}.")
    from routereval.data.model import Benchmark

    bench = source if isinstance(source, Benchmark) else None
    router = None if bench is not None else source
    if candidates is None:
        if bench is not None:
            from routereval.pools import make_split

            candidates = make_split(bench).train
        elif X is not None:
            candidates = np.arange(len(X))
        else:
            raise InputError("give the candidate prompts (candidates=) or their embeddings (X=)")
    n_rows = len(X) if X is not None else (bench.n_prompts if bench is not None else None)
    if n_rows is None and subsets is not None:  # candidates index the subsets' rows
        n_rows = len(np.atleast_1d(subsets))
    cand = _check_candidates(candidates, n_rows)
    k = _check_k(k, len(cand))
    if n_rows is not None:
        delta = _check_rows(n_rows, subsets=subsets, delta=delta, calibration=calibration, target=target)
    rng = _rng(random_state)
    if method == "random":
        return Anchors(cand[random_positions(len(cand), k, rng)].astype(np.int64), np.full(k, 1.0 / k), method)
    if method == "stratified":
        if subsets is None and bench is None:  # one stratum would be random anchors under another name
            raise ParameterError("stratified anchors need the subsets: pass the benchmark as the source, or "
                                 "subsets= (the subset of each row of X) with a router")
        if subsets is None:
            subsets = bench.subset_codes()
        strata = np.asarray(subsets)[cand]
        pos, w = stratified_positions(strata, k, rng)
        return Anchors(cand[pos].astype(np.int64), w, method)
    if router is None:
        raise InputError(f"the {method!r} anchor method needs a fitted router (its item parameters), not a benchmark")
    require_add_model(router)
    if X is None:
        raise InputError(f"the {method!r} anchor method needs the prompt embeddings X")
    if method == "adaptive" and answers is None:
        raise InputError("the 'adaptive' method needs the new model's answers: an array (simulation) or a function")
    from routereval.routers.newmodel import population_prior

    X = np.asarray(X)
    if method == "adaptive":
        test, _ = adaptive_test(router, X, candidates=cand, delta=delta, target=target, calibration=calibration,
                                random_state=random_state)
        return _run_adaptive(test, cand, k, answers, len(X))
    (Z, o, floor), tgt, tfloor = _designs(router, X, cand, target, delta, calibration)
    Phi = router.model_vectors()
    if method == "irt":
        pos, w = cluster_positions(response_features(Z, o, Phi, floor=floor), k, rng)
        return Anchors(cand[pos].astype(np.int64), w, method)
    pos = design_positions(Z, o, Phi, k, rng, prior_cov=population_prior(Phi)[1], floor=floor, target=tgt,
                           target_floor=tfloor)
    return Anchors(cand[pos].astype(np.int64), None, method)


def _designs(router, X: np.ndarray, cand: np.ndarray, target: np.ndarray | None, delta: np.ndarray | None,
             calibration: tuple | None) -> tuple[tuple, tuple | None, np.ndarray | None]:
    """((Z, offsets, floors) of the candidates, (Z, offsets) of the target or None, the target's floors): design rows
    and calibrated offsets of rows of ``X``, 3PL (floors) with a ``calibration``, else logistic with ``delta``."""

    def design(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        Z, o = router.model_design(X[idx])
        if calibration is not None:
            c3, a3, d3 = (np.asarray(v, dtype=np.float64)[idx] for v in calibration)
            return a3[:, None] * Z, a3 * o + d3, c3
        return Z, (o if delta is None else o + np.asarray(delta, dtype=np.float64)[idx]), None

    if target is None:
        return design(cand), None, None
    Zt, ot, tfloor = design(np.asarray(target))
    return design(cand), (Zt, ot), tfloor


def adaptive_test(router: Any, X: np.ndarray, *, candidates: np.ndarray | None = None, delta: np.ndarray | None = None,
                  target: np.ndarray | None = None, calibration: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                  random_state: Any = 0) -> tuple[AdaptiveTest, np.ndarray]:
    """The adaptive test of :func:`select_anchors` (``adaptive``), to drive by hand: answers arrive one at a time.

    Arguments as :func:`select_anchors`'s. Returns the test and ``rows`` (n_c,), the rows of ``X``
    of its candidates: ``test.next()`` is a position ``i``, the prompt ``rows[i]``; answer it with
    ``test.tell(i, score)``; ``test.plan(n)`` gives the next n to ask at once.
    """
    from routereval.routers.newmodel import population_prior

    require_add_model(router)
    X = np.asarray(X)
    cand = np.arange(len(X)) if candidates is None else _check_candidates(candidates, len(X))
    delta = _check_rows(len(X), subsets=None, delta=delta, calibration=calibration, target=target)
    (Z, o, floor), tgt, tfloor = _designs(router, X, cand, target, delta, calibration)
    if target is None:  # the candidates' mean, as fisher's default: a test of the whole vector strays from any mean
        tgt, tfloor = (Z, o), floor
    test = AdaptiveTest(Z, o, *population_prior(router.model_vectors()), random_state=random_state, target=tgt,
                        floor=floor, target_floor=tfloor)
    return test, cand.astype(np.int64)


def _check_candidates(candidates: Any, n_rows: int | None) -> np.ndarray:
    """``candidates`` as an array of distinct integer indices (1-D), within ``n_rows`` rows when that is known."""
    cand = np.asarray(candidates)
    if cand.ndim != 1 or not np.issubdtype(cand.dtype, np.integer) or len(np.unique(cand)) != len(cand):
        raise InputError("candidates must be distinct integer indices (1-D)")
    if n_rows is not None and len(cand) and (cand.min() < 0 or cand.max() >= n_rows):
        raise InputError(f"candidates must index the {n_rows} prompts (0 to {n_rows - 1}); got values from "
                         f"{cand.min()} to {cand.max()}")
    return cand


def _check_rows(n_rows: int, *, subsets: Any, delta: Any, calibration: Any, target: Any) -> np.ndarray | None:
    """Check that the per-row arrays cover every row the candidates and targets index; ``delta`` as floats."""
    if subsets is not None and np.shape(subsets) != (n_rows,):
        raise InputError(f"subsets must have one entry per row ({n_rows}); got shape {np.shape(subsets)}")
    if delta is not None:  # NaN: a difficulty not calibrated (as estimate_mean's target_delta), the text's alone
        delta = float_array(delta, f"delta (one entry per row, {n_rows})", shape=(n_rows,), finite=False)
        if np.isinf(delta).any():
            raise InputError(f"delta must be finite or NaN (not calibrated); it holds {delta[np.isinf(delta)][0]} at "
                             f"position {int(np.flatnonzero(np.isinf(delta))[0])}")
        delta = np.nan_to_num(delta, nan=0.0)
    if calibration is not None:
        if len(calibration) != 3 or any(np.shape(v) != (n_rows,) for v in calibration):
            raise InputError(f"calibration must be (floor, slope, delta), each with one entry per row ({n_rows})")
        floor, slope, _ = (float_array(v, f"calibration's {what}", shape=(n_rows,))
                           for v, what in zip(calibration, ("floor", "slope", "delta")))
        # a slope may be 0 or negative: a flat or miskeyed prompt (its weaker models score better) is one the
        # pool's calibration can find, and the 3PL design (slope times the logit) holds it as it is
        if ((floor < 0) | (floor >= 1)).any():
            raise InputError("calibration must hold guessing floors in [0, 1) (the share a model scores by chance)")
    if target is not None:
        t = np.asarray(target)
        if t.ndim != 1 or not np.issubdtype(t.dtype, np.integer) or (len(t) and (t.min() < 0 or t.max() >= n_rows)):
            raise InputError(f"target must be int indices of the {n_rows} rows")
    return delta


def _run_adaptive(test: AdaptiveTest, cand: np.ndarray, k: int, answers: Any, n_rows: int) -> Anchors:
    """Ask ``k`` prompts of ``test`` (positions among ``cand``), the answers from an array over the
    ``n_rows`` rows (simulation) or a function ``answers(row)``."""
    if callable(answers):
        score_of = answers
    else:
        try:
            arr = np.asarray(answers, dtype=np.float64)
            got = f"shape {arr.shape}"
        except (TypeError, ValueError):
            arr, got = np.empty((0, 0)), f"non-numeric {type(answers).__name__}"
        if arr.ndim != 1 or len(arr) != n_rows:
            raise InputError(f"answers must be one score per row of X ({n_rows}) or a function answers(row) -> "
                             f"score; got {got}")
        score_of = arr.__getitem__
    for _ in range(k):
        pos = test.next()
        row = int(cand[pos])
        score = score_of(row)
        if not _is_score(score):
            shown = repr(score.item() if isinstance(score, np.generic) else score)  # 2.0, not np.float64(2.0)
            raise InputError(f"the new model's answer on row {row} is {shown}; expected a score in [0, 1] (from "
                             f"answers{'(row)' if callable(answers) else '[row]'})")
        test.tell(pos, float(score))
    return Anchors(cand[np.asarray(test.asked)].astype(np.int64), None, "adaptive", np.asarray(test.answers))
