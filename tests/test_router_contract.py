"""One contract test over every registered router (neural ones are checked as they appear)."""

from __future__ import annotations

import pytest

from routereval.routers import available_routers
from routereval.routers.checks import CHECKS, run_check

ROUTERS = sorted(available_routers())


def test_registry_has_the_papers_routers():
    assert {"oracle", "mix", "random", "best_single", "knn", "kmeans"} <= set(ROUTERS)


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("router", ROUTERS)
def test_contract(router, check):
    res = run_check(router, check)
    assert res.ok, f"{router}: {check}: {res.message}"


def test_init_check_accepts_a_router_without_hyperparameters_and_names_positional_ones():
    import numpy as np

    from routereval.routers import Router
    from routereval.routers.checks import ContractViolation, check_init_stores_params

    class Plain(Router):  # no __init__ at all: nothing to store
        parameters = {}

        def _fit(self, X, Y, *, X_val, Y_val, cost):
            self.m_ = Y.shape[1]

        def _predict_scores(self, X):
            return np.zeros((len(X), self.m_))

    check_init_stores_params(Plain)

    class Positional(Plain):
        def __init__(self, k=3, *args):
            self.k = k

    with pytest.raises(ContractViolation, match=r"keyword-only .*positional: k, \*args"):
        check_init_stores_params(Positional)
