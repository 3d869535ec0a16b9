"""Write small files in exactly the structures of the official RouterEval data (``linggm/RouterEval``).

The official files cannot be downloaded on the test machines, so tests write their own,
with the same keys, nesting, array orientation and dtypes as the reference code
(MilkThink-Lab/RouterEval ``utils.py``, ``get_router_dataset.py``) reads and writes::

    <root>/leaderboard_score/leaderboard_<key>.pkl
        {'model': [n_models names], 'data': {subscenario: {'correctness': (n_sub, n_models) float64}}}
    <root>/leaderboard_prompt/leaderboard_<key>_prompt.pkl         {subscenario: (n_sub,) str array}
    <root>/leaderboard_embed/leaderboard_<key>_embed/<encoder>_result.pkl   {subscenario: (n_sub, dim) float32}
    <root>/router_dataset/<scenario>_router_dataset.pkl           see :func:`build_router_dataset`

Typical use::

    tree = write_official_tree(tmp_path / "data", seed=0)       # every leaderboard, 2 encoders
    tree["old"].scores("mmlu")                                   # ground truth (models, prompts)

    raw = build_router_dataset(scores, models, subset_sizes=[198, 546, 448], texts=..., embeddings=...)
    write_router_dataset(tmp_path / "data", "gpqa", raw)

Pickles are written with :func:`dump_pickle`; ``numpy1=True`` writes them as numpy 1.x did
(``numpy.core.multiarray`` names, protocol 2), which is how the official files were made.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from routereval.catalog import BENCHMARKS, LEADERBOARDS

GROUPS = ("all_strong", "all_weak", "strong_to_weak")
DEFAULT_POOLS = {"easy": (3, 5), "hard": (10,)}

# a few subscenarios per leaderboard (with small prompt counts) for the default tree
DEFAULT_SUBSETS: dict[str, dict[str, int]] = {
    "old": {"harness_truthfulqa_mc_0": 6, "harness_gsm8k_5": 7, "harness_arc_challenge_25": 5,
            "harness_hendrycksTest_abstract_algebra_5": 4, "harness_hendrycksTest_virology_5": 3},
    "new": {"bbh_snarks": 5, "bbh_navigate": 4, "gpqa_diamond": 3, "gpqa_main": 4, "ifeval": 6},
    "mmlu_pro": {"mmlu_pro": 9},
}


def dump_pickle(obj: Any, path: str | Path, *, protocol: int = 4, numpy1: bool = False) -> Path:
    """Pickle ``obj`` to ``path`` (parents created).

    ``numpy1=True`` rewrites numpy 2's ``numpy._core`` module names to numpy 1.x's
    ``numpy.core`` in a protocol-2 pickle (whose GLOBAL opcodes name modules as plain
    text), producing the bytes numpy 1.x writes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if numpy1:
        data = pickle.dumps(obj, protocol=2).replace(b"numpy._core.", b"numpy.core.")
    else:
        data = pickle.dumps(obj, protocol=protocol)
    path.write_bytes(data)
    return path


def official_key(subscenario: str) -> tuple[str, str, str]:
    """(benchmark, subset name, leaderboard) of an official subscenario key."""
    for b in BENCHMARKS.values():
        for s in b.subsets:
            if s.official == subscenario:
                return b.name, s.name, b.leaderboard
    raise KeyError(subscenario)


@dataclass
class Leaderboard:
    """The content of one leaderboard's official files, and ground truth for tests.

    Attributes
    ----------
    key
        ``old``, ``new`` or ``mmlu_pro``.
    models
        (n_models,) model names, the file's ``'model'`` list.
    correctness
        subscenario -> (n_sub, n_models) scores, the official orientation.
    prompts
        subscenario -> (n_sub,) prompt texts.
    embeddings
        encoder -> subscenario -> (n_sub, dim) float32.
    """

    key: str
    models: list[str]
    correctness: dict[str, np.ndarray]
    prompts: dict[str, np.ndarray] = field(default_factory=dict)
    embeddings: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def subscenarios(self, benchmark: str) -> list[str]:
        """This leaderboard's subscenarios of ``benchmark``, in catalog order."""
        return [s.official for s in BENCHMARKS[benchmark].subsets if s.official in self.correctness]

    def scores(self, benchmark: str) -> np.ndarray:
        """(n_models, n_prompts) scores of ``benchmark`` as the reference's ``create_responses`` builds them."""
        return np.vstack([self.correctness[s] for s in self.subscenarios(benchmark)]).T

    def texts(self, benchmark: str) -> np.ndarray:
        return np.concatenate([self.prompts[s] for s in self.subscenarios(benchmark)])

    def embedding(self, benchmark: str, encoder: str) -> np.ndarray:
        return np.vstack([self.embeddings[encoder][s] for s in self.subscenarios(benchmark)])

    def prompt_ids(self, benchmark: str) -> list[str]:
        """The ids routereval gives these prompts: ``"<subset>/<i>"``."""
        out = []
        for s in self.subscenarios(benchmark):
            name = official_key(s)[1]
            out += [f"{name}/{i}" for i in range(len(self.correctness[s]))]
        return out

    def benchmarks(self) -> list[str]:
        return [b for b in LEADERBOARDS[self.key] if self.subscenarios(b)]


def random_leaderboard(key: str, *, models: Sequence[str], subsets: dict[str, int], rng: np.random.Generator,
                       encoders: Sequence[str] = ("RoBERTa", "sentence_bert"), dim: int = 8) -> Leaderboard:
    """A leaderboard with random scores: 0/1 (graded for TruthfulQA), texts, embeddings.

    Parameters
    ----------
    key
        Leaderboard key.
    models
        Model names.
    subsets
        Official subscenario -> number of prompts (may be fewer than the catalog's).
    rng
        Random generator.
    encoders, dim
        Encoders to write embeddings for, and their width.
    """
    n = len(models)
    ability = np.linspace(0.15, 0.85, n)
    correctness, prompts = {}, {}
    for sub, k in subsets.items():
        bench = official_key(sub)[0]
        p = np.clip(ability[None, :] + rng.normal(0, 0.15, (k, 1)), 0, 1)
        if BENCHMARKS[bench].binary:
            correctness[sub] = (rng.random((k, n)) < p).astype(np.float64)
        else:  # graded, like TruthfulQA's mc2 scores
            correctness[sub] = np.round(np.clip(p + rng.normal(0, 0.1, (k, n)), 0, 1), 4)
        prompts[sub] = np.array([f"[{sub}] question {i}: what is {rng.integers(100)} + {i}?" for i in range(k)])
    embeddings = {enc: {sub: rng.normal(size=(k, dim)).astype(np.float32) for sub, k in subsets.items()}
                  for enc in encoders}
    return Leaderboard(key, list(models), correctness, prompts, embeddings)


def write_leaderboard(root: str | Path, lb: Leaderboard, *, prompts: bool = True, embeddings: bool = True,
                      numpy1: bool = False) -> dict[str, Path]:
    """Write one leaderboard's official files under ``root``; returns their paths by role."""
    root = Path(root)
    out = {"score": dump_pickle({"model": list(lb.models), "data": {s: {"correctness": c} for s, c in lb.correctness.items()}},
                                root / "leaderboard_score" / f"leaderboard_{lb.key}.pkl", numpy1=numpy1)}
    if prompts:
        out["prompt"] = dump_pickle(dict(lb.prompts), root / "leaderboard_prompt" / f"leaderboard_{lb.key}_prompt.pkl",
                                    numpy1=numpy1)
    if embeddings:
        for enc, data in lb.embeddings.items():
            out[f"embed:{enc}"] = dump_pickle(
                dict(data), root / "leaderboard_embed" / f"leaderboard_{lb.key}_embed" / f"{enc}_result.pkl", numpy1=numpy1)
    return out


def model_names(n: int, *, offset: int = 0) -> list[str]:
    """``n`` leaderboard-style model names (``org-k/model-k-7B``)."""
    return [f"org-{i % 4}/model-{i}-{7 * (1 + i % 3)}B" for i in range(offset, offset + n)]


def write_official_tree(root: str | Path, *, seed: int = 0, n_models: int = 6,
                        subsets: dict[str, dict[str, int]] | None = None, numpy1_keys: Sequence[str] = ("old",),
                        encoders: Sequence[str] = ("RoBERTa", "sentence_bert")) -> dict[str, Leaderboard]:
    """Write a small official download (score, prompt and embedding files of every leaderboard).

    The leaderboards share some models, as the real ones do. ``numpy1_keys`` are written as
    numpy 1.x pickles. Returns the ground truth by leaderboard key.
    """
    rng = np.random.default_rng(seed)
    subsets = DEFAULT_SUBSETS if subsets is None else subsets
    out = {}
    for i, key in enumerate(subsets):
        lb = random_leaderboard(key, models=model_names(n_models, offset=2 * i), subsets=subsets[key], rng=rng,
                                encoders=encoders)
        write_leaderboard(root, lb, numpy1=key in numpy1_keys)
        out[key] = lb
    return out


# ---------------------------------------------------------------------- router datasets
def stratified_split(subset_sizes: Sequence[int], *, seed: int = 42) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference's 80/10/10 split per subset (``np.random.seed(seed)``, shuffle per subset)."""
    rs = np.random.RandomState(seed)  # same stream as the legacy global seed the reference uses
    train, val, test = [], [], []
    start = 0
    for n in subset_sizes:
        idx = np.arange(start, start + n)
        rs.shuffle(idx)
        a, b = int(0.8 * n), int(0.9 * n)
        train += idx[:a].tolist()
        val += idx[a:b].tolist()
        test += idx[b:].tolist()
        start += n
    return np.array(train), np.array(val), np.array(test)


def default_pools(scores: np.ndarray, pools: dict[str, Sequence[int]] | None = None,
                  *, seed: int = 0) -> dict[str, dict[int, dict[str, np.ndarray]]]:
    """Model row indices per (difficulty, m, group): the strongest m, the weakest m, one from each quantile."""
    pools = DEFAULT_POOLS if pools is None else pools
    order = np.argsort(scores.mean(axis=1), kind="stable")
    rng = np.random.default_rng(seed)
    out: dict[str, dict[int, dict[str, np.ndarray]]] = {}
    for d, sizes in pools.items():
        out[d] = {}
        for m in sizes:
            groups = np.array_split(order, m)
            out[d][m] = {"all_strong": order[-m:], "all_weak": order[:m],
                         "strong_to_weak": np.array([rng.choice(g) for g in groups])}
    return out


def build_router_dataset(scores: np.ndarray, models: Sequence[str], *, subset_sizes: Sequence[int],
                         texts: Sequence[str], embeddings: np.ndarray, graded: bool = False,
                         pools: dict[str, dict[int, dict[str, Sequence[int]]]] | None = None,
                         seed: int = 42) -> dict:
    """A router dataset dict exactly as ``get_router_dataset.py`` builds it.

    Parameters
    ----------
    scores
        (n_models, n_prompts) scores of one benchmark, prompts in catalog subset order.
    models
        (n_models,) names.
    subset_sizes
        Prompt count of each subset (the strata of the split), summing to n_prompts.
    texts
        (n_prompts,) prompt texts.
    embeddings
        (n_prompts, dim) prompt embeddings.
    graded
        Add ``train_label`` (1 where a model scores >= 0.95 of the prompt's best), as for TruthfulQA.
    pools
        difficulty -> m -> group -> model row indices; :func:`default_pools` when None.
    seed
        Split seed (the reference's 42).
    """
    scores = np.asarray(scores)
    model_arr = np.array(list(models))  # the reference indexes np.array(score_data['model'])
    tr, va, te = stratified_split(subset_sizes, seed=seed)
    texts = np.asarray(texts)
    embeddings = np.asarray(embeddings)
    pools = default_pools(scores) if pools is None else pools
    raw: dict[str, Any] = {}
    for d, sizes in pools.items():
        raw[d] = {}
        for m, groups in sizes.items():
            raw[d][m] = {}
            for g, rows in groups.items():
                rows = np.asarray(rows)
                sel = scores[rows].T  # (n_prompts, m), as split_data receives it
                data = {"train_score": sel[tr, :], "val_score": sel[va, :], "test_score": sel[te, :]}
                if graded:
                    t = data["train_score"]
                    data["train_label"] = (t >= 0.95 * t.max(axis=1, keepdims=True)).astype(t.dtype)
                raw[d][m][g] = {"data": data, "model": model_arr[rows]}
    raw["split_index"] = {"train_indices": tr, "val_indices": va, "test_indices": te}
    raw["embedding"] = {"train_embed": embeddings[tr], "val_embed": embeddings[va], "test_embed": embeddings[te]}
    raw["prompt"] = {"train_prompt": texts[tr], "val_prompt": texts[va], "test_prompt": texts[te]}
    return raw


def write_router_dataset(root: str | Path, scenario: str, raw: dict, *, numpy1: bool = False) -> Path:
    """Write ``<root>/router_dataset/<scenario>_router_dataset.pkl`` (``scenario`` as the reference names it)."""
    return dump_pickle(raw, Path(root) / "router_dataset" / f"{scenario}_router_dataset.pkl", numpy1=numpy1)


def random_router_dataset(benchmark: str, *, n_models: int = 12, seed: int = 0,
                          subset_sizes: Sequence[int] | None = None, dim: int = 8) -> tuple[dict, dict[str, Any]]:
    """A router dataset of ``benchmark`` with random data; returns (raw dict, ground truth).

    ``subset_sizes`` defaults to the catalog's (full prompt counts). Ground truth keys:
    ``scores`` (n_models, n_prompts), ``models``, ``texts``, ``embeddings``.
    """
    info = BENCHMARKS[benchmark]
    sizes = [s.prompts for s in info.subsets] if subset_sizes is None else list(subset_sizes)
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    models = model_names(n_models)
    p = np.linspace(0.15, 0.85, n_models)[:, None] + rng.normal(0, 0.1, (1, n))
    if info.binary:
        scores = (rng.random((n_models, n)) < p).astype(np.float64)
    else:
        scores = np.round(np.clip(p + rng.normal(0, 0.1, (n_models, n)), 0, 1), 4)
    texts = np.array([f"{benchmark} prompt {i}" for i in range(n)])
    emb = rng.normal(size=(n, dim)).astype(np.float32)
    raw = build_router_dataset(scores, models, subset_sizes=sizes, texts=texts, embeddings=emb,
                               graded=not info.binary)
    return raw, {"scores": scores, "models": models, "texts": texts, "embeddings": emb}
