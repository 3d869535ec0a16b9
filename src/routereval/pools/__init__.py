"""Candidate pools and splits: router benchmarks built as the RouterEval paper does.

See :mod:`routereval.pools.build` for the ``paper`` and ``clean`` protocols; the split itself
lives in :mod:`routereval.data.splits` (the store needs it too) and is re-exported here.
"""

from routereval.data.splits import MissingPolicy, Split, make_kfold, make_split, missing_policy
from routereval.pools.build import (
    N_DRAWS,
    PoolBuilder,
    best_single,
    make_pool,
    make_pools,
    oracle_score,
    pool_scores,
    training_labels,
)
from routereval.pools.types import (
    EASY_MS,
    GROUPS,
    HARD_MS,
    MISSING_POLICIES,
    PAPER_GROUPS,
    PAPER_MS,
    PROTOCOLS,
    Pool,
)

__all__ = [
    "EASY_MS", "GROUPS", "HARD_MS", "MISSING_POLICIES", "N_DRAWS", "PAPER_GROUPS", "PAPER_MS", "PROTOCOLS",
    "MissingPolicy", "Pool", "PoolBuilder", "Split", "best_single", "make_kfold", "make_pool", "make_pools",
    "make_split", "missing_policy", "oracle_score", "pool_scores", "training_labels",
]
