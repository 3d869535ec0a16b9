"""Summaries of a stored corpus: from its manifest, and per model from its dense cache."""

from __future__ import annotations

import os

import numpy as np

from routereval.data.store import read_manifest
from routereval.validate import check_bool


def corpus_info(path: str | os.PathLike, *, models: bool = False) -> dict:
    """Per-benchmark summary of the corpus at ``path``.

    Parameters
    ----------
    path
        The corpus directory.
    models
        Also give every model's mean score and record count per benchmark (reads the dense
        cache, memory-mapped; without it only the manifest is read).

    Returns
    -------
    dict
        ``{"models": N, "records": R, "benchmarks": {name: {"models", "prompts", "records",
        "binary", "missing", "cost", "subsets", "mean_score": {"min", "median", "max"},
        "splits": [...], "publisher_split": None | {"train", "val", "test", "note"}
        [, "per_model": [{"model", "mean", "records"}, ...] best first]}}}``
    """
    models = check_bool(models, "models")
    m = read_manifest(path)
    benches = {}
    for name, b in m["benchmarks"].items():
        benches[name] = {
            "models": b["models"],
            "prompts": b["prompts"],
            "records": b["records"],
            "binary": b["binary"],
            "missing": b["missing"],
            "cost": b["cost"],
            "subsets": len(b["subsets"]),
            "mean_score": b["mean_score"],
            "splits": (["publisher"] if "publisher" in b.get("splits", {}) else []) + ["random"],
            "publisher_split": b.get("publisher_split"),
        }
    legacy = [name for name, b in m["benchmarks"].items() if "publisher_split" not in b]
    if legacy:  # written before named splits: a stored imported split is the publisher's (data.splits)
        for name, pub in _legacy_publisher_splits(path, legacy).items():
            benches[name]["splits"] = ["publisher", "random"]
            benches[name]["publisher_split"] = pub
    if models:
        for name, rows in model_table(path).items():
            benches[name]["per_model"] = rows
    return {"models": m["models"], "records": sum(b["records"] for b in benches.values()), "benchmarks": benches}


def _legacy_publisher_splits(path: str | os.PathLike, names: list[str]) -> dict[str, dict]:
    """The publisher split summaries of ``names`` in a corpus written before named splits (those that have one)."""
    from routereval.data.splits import publisher_split
    from routereval.data.store import open_corpus

    out = {}
    for bench in open_corpus(path, benchmarks=names, texts=False):
        pub = publisher_split(bench)
        if pub is not None:
            out[bench.name] = {"train": len(pub.train), "val": len(pub.val), "test": len(pub.test), "note": pub.note}
    return out


def model_table(path: str | os.PathLike) -> dict[str, list[dict]]:
    """Per benchmark, every model's mean score over the prompts it was evaluated on and its record count.

    Returns
    -------
    dict
        benchmark -> ``[{"model", "mean", "records"}, ...]`` sorted by mean, best first (ties by name).
    """
    from routereval.data.store import open_corpus

    corpus = open_corpus(path, texts=False)
    out = {}
    for bench in corpus:
        means, counts = bench.model_means(), bench.record_counts()  # from the bits: nothing unpacked
        order = sorted(range(bench.n_models), key=lambda i: (-np.nan_to_num(means[i], nan=-1.0), bench.models[i]))
        out[bench.name] = [{"model": str(bench.models[i]), "mean": float(means[i]), "records": int(counts[i])}
                           for i in order]
    return out
