"""Summaries of a stored corpus, read from its manifest (no scores are loaded)."""

from __future__ import annotations

import os

from routereval.data.store import read_manifest


def corpus_info(path: str | os.PathLike) -> dict:
    """Per-benchmark summary of the corpus at ``path``.

    Returns
    -------
    dict
        ``{"models": N, "records": R, "benchmarks": {name: {"models", "prompts", "records",
        "binary", "missing", "cost", "subsets", "mean_score": {"min", "median", "max"}}}}``
    """
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
        }
    return {"models": m["models"], "records": sum(b["records"] for b in benches.values()), "benchmarks": benches}
