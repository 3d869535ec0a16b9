"""Router metrics: small pure numpy functions on arrays (see ARCHITECTURE.md).

Conventions: ``Y`` is (n, m) test scores of the pool's models (rows: prompts), ``routes``
is (n,) chosen model indices, ``probs`` is (n, m) per-prompt selection probabilities.
"""

from routereval.metrics.core import (
    aiq,
    apgr,
    bootstrap_ci,
    bootstrap_indices,
    bootstrap_means,
    e_p,
    mean_cost,
    mu,
    non_decreasing_hull,
    oracle,
    oracle_gap,
    oracle_recall,
    paired_bootstrap_p,
    routed_scores,
    selection_entropy,
    selection_shares,
    tradeoff_routes,
    v_b,
    v_b_ci,
    v_r,
)

__all__ = [
    "aiq", "apgr", "bootstrap_ci", "bootstrap_indices", "bootstrap_means", "e_p", "mean_cost", "mu", "non_decreasing_hull", "oracle", "oracle_gap",
    "oracle_recall", "paired_bootstrap_p", "routed_scores", "selection_entropy", "selection_shares", "tradeoff_routes", "v_b",
    "v_b_ci", "v_r",
]
