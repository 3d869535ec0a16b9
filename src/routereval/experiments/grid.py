"""The grid of a sweep: prepared cells (the product of the axes) and the routers run on each.

A *prepared cell* is one (benchmark, protocol, split, m, group, seed, draw, embedding): its
split, pool, scores and embeddings are prepared once, and every (router, params) of the
config runs on them; each of those is one row of the results, identified by its ``cell_hash``.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Any

from routereval.experiments.results import canonical_json

def param_grid(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of parameter values: {"k": [5, 10], "p": [1]} -> [{"k": 5, "p": 1}, {"k": 10, "p": 1}]."""
    names = list(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*(axes[n] for n in names))]


@dataclass(frozen=True)
class RouterRun:
    """One (router, params) on a prepared cell; ``cell_hash`` identifies its results row."""

    router: str
    params: dict[str, Any]
    cell_hash: str

    @property
    def params_json(self) -> str:
        return canonical_json(self.params)


@dataclass(frozen=True)
class CellSpec:
    """One prepared cell and the router runs on it (small and picklable: a task of a worker)."""

    benchmark: str
    protocol: str
    split: str
    m: int
    group: str
    seed: int
    draw: int
    embedding: str
    n_boot: int
    reference_score: float | None
    runs: tuple[RouterRun, ...]

    def config(self) -> dict[str, Any]:
        """The configuration columns of the cell's rows (without router and params)."""
        return {"benchmark": self.benchmark, "protocol": self.protocol, "split": self.split, "m": self.m,
                "group": self.group, "seed": self.seed, "draw": self.draw, "embedding": self.embedding}

    @property
    def stem(self) -> str:
        """A file-name-safe name of the prepared cell (its data file's prefix)."""
        digest = hashlib.sha256(canonical_json({**self.config(), "n_boot": self.n_boot,
                                                "reference_score": self.reference_score}).encode()).hexdigest()
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.benchmark)
        return f"{safe}-{digest[:16]}"

    def label(self) -> str:
        return (f"{self.benchmark} {self.protocol} m={self.m} {self.group} seed={self.seed}"
                + (f" draw={self.draw}" if self.group == "random" else "") + f" {self.embedding}")


def cell_hash(config: dict[str, Any], *, router: str, params: dict[str, Any], n_boot: int,
              reference_score: float | None, corpus_checksum: str) -> str:
    """SHA-256 of a row's configuration (router and params included) and the corpus's manifest checksum."""
    doc = {**config, "router": router, "params": params, "n_boot": n_boot, "reference_score": reference_score,
           "corpus": corpus_checksum}
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()


def expand(cfg, *, benchmarks: list[str], embeddings: dict[str, list[str]], corpus_checksum: str,
           splits: dict[str, list[str]] | None = None) -> list[CellSpec]:
    """The prepared cells of a config: seed by seed, then benchmark by benchmark, in config order.

    Parameters
    ----------
    cfg
        A :class:`~routereval.experiments.config.SweepConfig`.
    benchmarks
        The benchmarks to run (``cfg.benchmarks`` resolved against the corpus).
    embeddings
        Benchmark -> the encoders of its cells (the config's, a None resolved to the default).
    corpus_checksum
        The corpus manifest's SHA-256, part of every ``cell_hash``.
    splits
        Benchmark -> the named splits of its cells ("publisher", "random": "auto" resolved);
        default ``cfg.splits`` for every benchmark.
    """
    runs_of = [(name, combo) for name, axes in cfg.routers.items() for combo in param_grid(axes)]
    cells = []
    # seed-major: a sweep stopped early has whole tables for its first seeds, not one benchmark's every seed
    for seed, bench in itertools.product(cfg.seeds, benchmarks):
        bench_splits = splits[bench] if splits is not None else cfg.splits
        for split, protocol, m, group, emb in itertools.product(bench_splits, cfg.protocols, cfg.m, cfg.groups,
                                                                embeddings[bench]):
            # only the random group has draws; the other groups' pools do not depend on it
            for draw in (cfg.draws if group == "random" else [0]):
                spec = dict(benchmark=bench, protocol=protocol, split=split, m=m, group=group, seed=seed,
                            draw=draw, embedding=emb)
                runs = tuple(RouterRun(name, params, cell_hash(spec, router=name, params=params, n_boot=cfg.n_boot,
                                                               reference_score=cfg.reference_score,
                                                               corpus_checksum=corpus_checksum))
                             for name, params in runs_of)
                cells.append(CellSpec(**spec, n_boot=cfg.n_boot, reference_score=cfg.reference_score, runs=runs))
    return cells
