"""Shared fixtures: the real data folder and an in-process CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: real performance records (must exist; tests never skip without it)."""
    assert SHARED_DATA.is_dir(), f"real data folder missing: {SHARED_DATA}"
    return SHARED_DATA


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self):
        import json

        return json.loads(self.out)


@pytest.fixture
def cli(capsys):
    """Run ``routereval ARGS...`` in-process; returns exit code, stdout, stderr."""
    from routereval.cli.main import run

    def invoke(*args: str | os.PathLike) -> CliResult:
        capsys.readouterr()
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


# --------------------------------------------------------------------------- serve (issue 9)
# A real knn router for tests/test_serve*.py: fitted by `routereval fit --save` with MiniLM on a
# seeded sample of RouterBench ARC-Challenge (real per-query costs); session-scoped, fitted once.

SERVE_N_PROMPTS = 120
SERVE_BENCH = "routerbench.arc-challenge"


@pytest.fixture(scope="session")
def rb_router(tmp_path_factory, shared_data):
    """(router_dir, corpus_dir, benchmark): knn, m=3 strong_to_weak, fitted with `routereval fit --save`."""
    from pathlib import Path

    from routereval.cli.main import run
    from routereval.data.model import Corpus
    from routereval.data.store import write_corpus
    from routereval.sources import import_spec

    spec = Path(__file__).resolve().parents[1] / "examples" / "sources" / "routerbench.toml"
    bench = import_spec(spec)[SERVE_BENCH]
    import numpy as np

    keep = np.sort(np.random.default_rng(0).choice(bench.n_prompts, SERVE_N_PROMPTS, replace=False))
    root = tmp_path_factory.mktemp("serve")
    write_corpus(Corpus.from_benchmarks([bench.select(prompts=keep)]), root / "corpus")
    code = run(["fit", str(root / "corpus"), "--benchmark", SERVE_BENCH, "--router", "knn", "--m", "3",
                "--group", "strong_to_weak", "--embedding", "minilm", "--save", str(root / "router"), "--json"])
    assert code == 0
    return root / "router", root / "corpus", SERVE_BENCH


@pytest.fixture(scope="session")
def saved(rb_router):
    from routereval.routers.persist import load_router

    return load_router(rb_router[0])


@pytest.fixture(scope="session")
def real_prompts(rb_router):
    from routereval.data.store import open_corpus

    return open_corpus(rb_router[1])[rb_router[2]].texts[:8].tolist()


