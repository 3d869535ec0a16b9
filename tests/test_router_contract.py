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
