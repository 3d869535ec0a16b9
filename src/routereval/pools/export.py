"""Write a benchmark's pools in the official RouterEval router-dataset pickle structure.

The structure is the one ``get_router_dataset.py`` pickles and the official router
scripts read::

    {'easy': {3: {group: {'data': {'train_score', 'val_score', 'test_score'[, 'train_label']},
                          'model': (m,) str array}}, 5: ...},
     'hard': {10: ..., 100: ..., 1000: ...},
     'split_index': {'train_indices', 'val_indices', 'test_indices'},
     'embedding': {'train_embed', 'val_embed', 'test_embed'},
     'prompt': {'train_prompt', 'val_prompt', 'test_prompt'}}

with groups ``all_strong``, ``all_weak``, ``strong_to_weak``; score arrays are
(n_prompts_of_split, m) float64; ``train_label`` only for graded benchmarks. An (m, group)
with too few eligible models is left out (and reported in the notes). ``split_index``
positions index the exported prompts (under the ``prompts`` missing-records policy, the
kept prompts only), so together they are a permutation of 0..n-1 as in the reference.
Embeddings come from ``Benchmark.embeddings``: the one named by ``embedding``, else
``official/RoBERTa`` (the reference's default), else ``synth``, else the first stored one;
a benchmark without embeddings gets (n, 0) arrays (and a note).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from routereval.atomic import replacing
from routereval.data.model import Benchmark
from routereval.errors import InputError
from routereval.pools.build import PoolBuilder, pool_scores, training_labels
from routereval.pools.types import EASY_MS, HARD_MS, PAPER_GROUPS

EMBEDDING_PREFERENCE = ("official/RoBERTa", "synth")


def choose_embedding(bench: Benchmark, embedding: str | None = None) -> str | None:
    """Name of the embedding the export uses (see the module docstring); None if there is none."""
    if embedding is not None:
        if embedding not in bench.embeddings:
            raise InputError(f"benchmark {bench.name!r} has no embedding {embedding!r}; "
                             f"stored: {', '.join(bench.embeddings) or '(none)'}")
        return embedding
    for name in EMBEDDING_PREFERENCE:
        if name in bench.embeddings:
            return name
    return next(iter(bench.embeddings), None)


def router_dataset(bench: Benchmark, *, protocol: str = "clean", seed: int = 42, missing: str = "auto",
                   embedding: str | None = None, split: str = "auto") -> tuple[dict, list[str]]:
    """The official router-dataset dict of ``bench`` and notes on what was left empty.

    ``split``: ``auto`` (the publisher's when the benchmark has one), ``publisher`` or ``random``.

    Returns
    -------
    dataset, notes
        The nested dict (see the module docstring) and one line per skipped entry.
    """
    emb_name = choose_embedding(bench, embedding)
    b = PoolBuilder(bench, protocol=protocol, seed=seed, missing=missing, split=split)
    sp = b.split
    notes: list[str] = []
    out: dict = {}
    for level, ms in (("easy", EASY_MS), ("hard", HARD_MS)):
        out[level] = {}
        for m in ms:
            out[level][m] = {}
            for g in PAPER_GROUPS:
                if m > b.eligible(g, m):
                    notes.append(f"m={m} {g}: only {b.eligible(g, m)} eligible models; left out")
                    continue
                pool = b.pool(m, g)
                tr, va, te = pool_scores(bench, pool)
                data = {"train_score": tr, "val_score": va, "test_score": te}
                if not bench.binary:
                    data["train_label"] = training_labels(bench, tr)
                out[level][m][g] = {"data": data, "model": np.array(pool.model_names.tolist(), dtype=str)}
            if not out[level][m]:
                del out[level][m]
    kept = b.policy.prompts
    out["split_index"] = {f"{k}_indices": np.searchsorted(kept, idx).astype(np.int64) for k, idx in
                          (("train", sp.train), ("val", sp.val), ("test", sp.test))}
    if emb_name is None:
        out["embedding"] = {f"{k}_embed": np.zeros((len(idx), 0), np.float32) for k, idx in
                            (("train", sp.train), ("val", sp.val), ("test", sp.test))}
        notes.append("no stored embedding: embedding entries have width 0")
    else:
        e = np.asarray(bench.embeddings[emb_name])
        out["embedding"] = {f"{k}_embed": np.ascontiguousarray(e[idx]) for k, idx in
                            (("train", sp.train), ("val", sp.val), ("test", sp.test))}
    prompts = bench.texts if bench.texts is not None else bench.prompt_ids
    out["prompt"] = {f"{k}_prompt": np.asarray(prompts[idx], dtype=object) for k, idx in
                     (("train", sp.train), ("val", sp.val), ("test", sp.test))}
    return out, notes


def router_dataset_filename(name: str) -> str:
    """The file name the reference scripts read for benchmark ``name``.

    A catalog benchmark gets the catalog's ``file_stem`` (the reference's scenario name:
    ``truthfulqa`` -> ``harness_truthfulqa_mc_0_router_dataset.pkl``); any other benchmark
    ``<name>_router_dataset.pkl``.
    """
    from routereval.catalog import BENCHMARKS

    info = BENCHMARKS.get(name)
    return f"{info.file_stem if info is not None else name + '_router_dataset'}.pkl"


def export_router_dataset(bench: Benchmark, out_dir: str | os.PathLike, *, protocol: str = "clean", seed: int = 42,
                          missing: str = "auto", embedding: str | None = None,
                          split: str = "auto") -> tuple[Path, list[str]]:
    """Write ``out_dir/<file>`` atomically (:func:`router_dataset_filename`); returns its path and the notes."""
    data, notes = router_dataset(bench, protocol=protocol, seed=seed, missing=missing, embedding=embedding,
                                 split=split)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / router_dataset_filename(bench.name)
    with replacing(path) as tmp, open(tmp, "wb") as f:
        pickle.dump(data, f, protocol=4)  # writing only; inputs are never unpickled unrestricted
    return path, notes
