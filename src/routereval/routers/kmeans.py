"""C-RoBERTa: k-means on prompt embeddings, the best model of each cluster on train."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from routereval.errors import ParameterError
from routereval.routers.base import RANDOM_STATE, Interval, Router, register


@register
class KMeansRouter(Router):
    """C-RoBERTa: cluster the training prompts with k-means, route each prompt to its cluster's best model.

    The cluster's best model is the one with the highest mean score over the cluster's
    training prompts (a cluster without training prompts falls back to the best overall).
    A prompt's cluster is its nearest centre (Euclidean, as ``KMeans.predict``).
    E_p as the reference: inverse distances to the centres, normalised, summed per
    cluster's model; terms under 1e-4 count 0.

    Under ``evaluate(..., protocol="paper")`` the defaults are the reference's
    (``router/C-RoBERTa-cluster/cluster.py``: ``KMeans(n_clusters=3, random_state=0)`` with the
    ``n_init="auto"`` of its pinned scikit-learn 1.6.1, i.e. one k-means++ start): ``k=3,
    n_init=1, random_state=0``, whatever the cell's seed.
    """

    name: ClassVar[str] = "kmeans"
    parameters: ClassVar[dict] = {"k": (Interval(int, 1, None),), "n_init": (Interval(int, 1, None),),
                                  "random_state": RANDOM_STATE}
    ep_threshold: ClassVar[float] = 1e-4
    state_keys: ClassVar[tuple] = ("cluster_centers_", "cluster_model_", "cluster_means_")
    state_layout: ClassVar[dict] = {"cluster_centers_": ("k", "d"), "cluster_means_": ("k", "m"),
                                    "cluster_model_": ("k",)}
    # the reference: cluster.py --seed 0 --numcluster 3 (test_router.py:24), KMeans' n_init="auto" = 1
    paper_defaults: ClassVar[dict] = {"k": 3, "n_init": 1, "random_state": 0}

    def __init__(self, *, k: int = 3, n_init: int = 10, random_state: int | None = 0) -> None:
        self.k = k
        self.n_init = n_init
        self.random_state = random_state

    @classmethod
    def warm_up(cls) -> None:
        import sklearn.cluster  # noqa: F401

    def _fit(self, X, Y, *, X_val, Y_val, cost) -> None:
        import warnings

        from sklearn.cluster import KMeans
        from sklearn.exceptions import ConvergenceWarning

        if self.k > X.shape[0]:
            raise ParameterError(
                f"The 'k' parameter of kmeans must be at most the number of training prompts ({X.shape[0]}). Got {self.k}.")
        seed = self.random_state if not isinstance(self.random_state, np.random.Generator) else int(
            self.random_state.integers(2**31))
        from threadpoolctl import threadpool_limits

        # one thread: on a small shared machine OpenMP oversubscription makes k-means 100x slower
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore", ConvergenceWarning)  # fewer distinct points than k
            # X in its own precision (float32 stays float32), as the reference hands it to KMeans
            km = KMeans(n_clusters=self.k, n_init=self.n_init, random_state=seed).fit(X)
        labels = km.labels_
        onehot = np.zeros((self.k, X.shape[0]))
        onehot[labels, np.arange(X.shape[0])] = 1.0
        counts = onehot.sum(axis=1, keepdims=True)
        means = np.where(counts > 0, onehot @ Y / np.where(counts > 0, counts, 1.0), Y.mean(axis=0)[None, :])
        self.cluster_centers_ = km.cluster_centers_.astype(np.float64)
        self.cluster_means_ = means  # (k, m) mean score of each model in each cluster
        self.cluster_model_ = np.argmax(means, axis=1)

    def _distances(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        c = self.cluster_centers_
        d2 = (X * X).sum(1)[:, None] - 2 * X @ c.T + (c * c).sum(1)[None, :]
        return np.sqrt(np.maximum(d2, 0.0))

    def _predict_scores(self, X):
        return self.cluster_means_[np.argmin(self._distances(X), axis=1)]

    def selection_probabilities(self, X, *, scores=None):
        self._check_fitted()
        w = 1.0 / (self._distances(X) + 1e-10)
        w /= w.sum(axis=1, keepdims=True)
        assign = np.zeros((self.k, self.n_models_))
        assign[np.arange(self.k), self.cluster_model_] = 1.0
        return w @ assign
