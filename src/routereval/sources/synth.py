"""The embedded default corpus: synthetic records with the real RouterEval corpus's shape.

``synth_corpus(out, scale=..., seed=...)`` writes a corpus with the paper's 12
benchmarks, their subsets and (scaled) prompt counts, and three leaderboards
that share models as the official ones do. Scores come from an IRT-style model:

* every model has a general ability ``g``, skill-specific deviations over
  :data:`SKILLS` and a few *hidden* traits (idiosyncrasies no prompt text reveals);
* every prompt has a difficulty ``b``, a discrimination ``a``, a convex mix of
  skill loadings ``w`` (set by its subset) and hidden loadings ``v``;
* ``P(correct) = c + (1 - c) * sigmoid(a * (g + s.w + h.v - b))`` with the
  guessing floor ``c = 1 / choices`` for multiple choice (0 for generative tasks);
  binary benchmarks draw 0/1 from it, TruthfulQA gets the graded score
  ``c + (1 - c) * sigmoid(a * (...) + noise)`` in [0, 1].

Models come in families of near-duplicate fine-tunes (a base model's traits plus
a small perturbation; a few fine-tunes are broken), with sizes, and per-token
prices that grow with size. Prompt texts are drawn from skill-specific
vocabularies and a difficulty-graded vocabulary, and every benchmark carries a
precomputed 48-dimensional embedding ``Benchmark.embeddings["synth"]`` (a noisy
projection of the skill loadings and difficulty), so a router can learn from
either. The latent structure is calibrated on the real MMLU-Pro matrix: :func:`synth_matrix`
draws a benchmark through the corpus's own prompt sampler, model population and
sampling function, with the real models' accuracies (``tests/test_synth_calibration.py``).

Scales (model counts per leaderboard ``old`` / ``new`` / ``mmlu_pro``, distinct models):

=====  ====================================  ======  =====================  ===========
scale  prompts (every subset kept)           models  per leaderboard        records
=====  ====================================  ======  =====================  ===========
tiny   430: 2% of each subset (>= 2), about   40      24 / 20 / 10           9,148
       48 per benchmark (MMLU 119)
small  2,506: 5% of each subset (>= 4)       200     120 / 100 / 50         249,240
full   50,265: the catalog's counts          8,567   5,000 / 3,811 / 1,823  201,715,850
=====  ====================================  ======  =====================  ===========

MMLU-Pro's models are a subset of the v2 (``new``) models, as on the leaderboard;
v1 and v2 share ``old + new - models`` models. At full scale the record count is
exactly the paper's 201,715,850.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from routereval.catalog import BENCHMARKS, LEADERBOARDS, BenchmarkInfo
from routereval.data import bits as _bits
from routereval.data.model import Benchmark, ModelTable
from routereval.errors import ParameterError
from routereval.validate import as_list, as_path, check_int, option

# ---------------------------------------------------------------------------- the latent space
SKILLS: tuple[str, ...] = ("knowledge", "science", "math", "reasoning", "commonsense", "instruction")
N_HIDDEN = 6          # hidden traits per model (family idiosyncrasies; invisible in prompt texts)
EMBED_DIM = 48        # dimension of Benchmark.embeddings["synth"]

# Calibrated on the real MMLU-Pro matrix (tests/test_synth_calibration.py, a grid search over
# these constants): spread of prompt difficulty, log-normal discrimination, strength of
# skill-specific and hidden traits. Real models' errors are strongly correlated (hard prompts
# are hard for all; mean inter-model correlation 0.357 real vs 0.355 synthetic): a wide
# difficulty spread against a moderate residual (skills + hidden traits) gives that.
DIFFICULTY_SD = 2.5
DISCRIMINATION_LOGMEAN = 0.35
DISCRIMINATION_LOGSD = 0.35
SKILL_SD = 0.35
HIDDEN_SD = 0.35
TRUTHFULQA_NOISE_SD = 0.8
# Guessing is correlated too: models that guess are drawn to the same plausible distractor, so a
# prompt's guessing floor varies around 1/choices (floor = 2/choices * Beta(k, k)); FLAWED_SHARE of
# prompts have a flawed key (no model's answer counts, as in real benchmarks' label noise).
GUESS_BETA = 0.5
FLAWED_SHARE = 0.02

# Typical median model mean per benchmark on the Open LLM Leaderboard (sets each benchmark's offset)
_TARGET_MEDIAN = {
    "arc": 0.55, "hellaswag": 0.72, "mmlu": 0.55, "truthfulqa": 0.48, "winogrande": 0.70, "gsm8k": 0.30,
    "ifeval": 0.45, "bbh": 0.42, "gpqa": 0.29, "math": 0.10, "musr": 0.40, "mmlu_pro": 0.30,
}

# Primary skill of a subset, by keyword in its name (first match wins), else by benchmark.
_SUBSET_SKILL_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("math", "math"), ("algebra", "math"), ("statistic", "math"), ("econometric", "math"),
    ("arithmetic", "math"), ("counting", "math"), ("geometr", "math"), ("num_theory", "math"),
    ("calculus", "math"), ("object_counting", "math"), ("accounting", "math"),
    ("physics", "science"), ("chemistry", "science"), ("biology", "science"), ("anatomy", "science"),
    ("astronomy", "science"), ("medic", "science"), ("virology", "science"), ("genetics", "science"),
    ("nutrition", "science"), ("computer", "science"), ("machine_learning", "science"),
    ("electrical", "science"), ("clinical", "science"), ("diamond", "science"), ("extended", "science"),
    ("main", "science"),
    ("logic", "reasoning"), ("fallac", "reasoning"), ("deduction", "reasoning"), ("tracking", "reasoning"),
    ("boolean", "reasoning"), ("web_of_lies", "reasoning"), ("navigate", "reasoning"),
    ("temporal", "reasoning"), ("date", "reasoning"), ("penguins", "reasoning"), ("murder", "reasoning"),
    ("placements", "reasoning"), ("allocation", "reasoning"), ("causal", "reasoning"),
    ("shapes", "reasoning"),
    ("moral", "commonsense"), ("hyperbaton", "commonsense"), ("snarks", "commonsense"),
    ("sports", "commonsense"), ("movie", "commonsense"), ("ruin", "commonsense"),
    ("disambiguation", "commonsense"), ("colored", "commonsense"), ("translation", "commonsense"),
)
_BENCH_SKILL = {
    "arc": "science", "hellaswag": "commonsense", "mmlu": "knowledge", "truthfulqa": "knowledge",
    "winogrande": "commonsense", "gsm8k": "math", "ifeval": "instruction", "bbh": "reasoning",
    "gpqa": "science", "math": "math", "musr": "reasoning", "mmlu_pro": "knowledge",
}

# Skill vocabularies: prompt texts draw words from them in proportion to the prompt's loadings.
_VOCAB: dict[str, tuple[str, ...]] = {
    "knowledge": ("history", "law", "treaty", "court", "century", "empire", "policy", "economy", "market",
                  "philosophy", "religion", "culture", "society", "government", "statute", "nation",
                  "dynasty", "constitution", "trade", "ethics", "doctrine", "region", "archive", "census"),
    "science": ("molecule", "cell", "protein", "energy", "force", "reaction", "atom", "enzyme", "organism",
                "circuit", "voltage", "orbit", "gene", "tissue", "compound", "velocity", "species",
                "photon", "membrane", "catalyst", "neuron", "algorithm", "virus", "isotope"),
    "math": ("integer", "equation", "sum", "product", "fraction", "polynomial", "triangle", "probability",
             "derivative", "integral", "matrix", "prime", "divisor", "ratio", "angle", "sequence",
             "remainder", "variable", "function", "radius", "median", "percent", "digit", "root"),
    "reasoning": ("therefore", "implies", "premise", "conclusion", "order", "before", "after", "left",
                  "right", "truth", "liar", "suspect", "clue", "deduce", "swap", "position", "sequence",
                  "constraint", "valid", "argument", "rule", "puzzle", "schedule", "track"),
    "commonsense": ("kitchen", "dog", "rain", "friend", "walk", "door", "coffee", "party", "car", "shoes",
                    "garden", "morning", "movie", "game", "store", "child", "sleep", "dinner", "phone",
                    "window", "weather", "ball", "street", "holiday"),
    "instruction": ("write", "format", "bullet", "words", "exactly", "lowercase", "title", "paragraph",
                    "respond", "include", "avoid", "json", "sections", "letter", "highlight", "repeat",
                    "quote", "end", "capital", "postscript", "markdown", "keyword", "sentence", "limit"),
}
_FILLER = ("the", "a", "of", "which", "what", "is", "in", "to", "and", "following", "best", "most",
           "given", "that", "for", "statement", "answer", "question", "describe", "consider")
# difficulty-graded words, easiest first: one is drawn near the prompt's difficulty quantile
_LEVEL = ("simple", "basic", "everyday", "common", "standard", "typical", "moderate", "detailed",
          "technical", "complex", "subtle", "advanced", "rigorous", "obscure", "expert", "graduate")

_ORG_SYL = ("neo", "vex", "lum", "tar", "quin", "sol", "mor", "kai", "zen", "ral", "dro", "fen",
            "hal", "pyx", "ori", "bel", "cor", "dex", "gal", "jin")
_FAM_SYL = ("lla", "mis", "qwe", "fal", "gem", "phi", "yi", "ola", "sta", "int", "bloo", "pyth",
            "zeph", "her", "orc", "vic", "wiz", "sol", "nous", "tul", "bar", "cam", "dol", "fin")
_VARIANTS = ("base", "instruct", "chat", "dpo", "sft", "orpo", "merge", "slerp", "v0.1", "v0.2", "v1",
             "v2", "rp", "code", "math", "uncensored", "laser", "lora", "ties", "dare")
_SIZES_B = np.array([0.5, 1.1, 1.8, 3.0, 7.0, 8.0, 13.0, 14.0, 32.0, 34.0, 70.0, 72.0])


@dataclass(frozen=True)
class SynthScale:
    """Size of a synthetic corpus: prompt scaling and models per leaderboard."""

    name: str
    prompt_fraction: float
    min_per_subset: int
    n_models: int
    n_old: int
    n_new: int
    n_pro: int
    max_per_benchmark: int = 0  # 0: no cap

    def subset_counts(self, info: BenchmarkInfo) -> list[int]:
        """Prompts per subset: the catalog's counts scaled down, every subset kept."""
        frac = self.prompt_fraction
        if frac >= 1.0:
            return [s.prompts for s in info.subsets]
        if self.max_per_benchmark:
            frac = min(frac, self.max_per_benchmark / info.prompts)
        return [max(self.min_per_subset, int(round(s.prompts * frac))) for s in info.subsets]


SCALES: dict[str, SynthScale] = {s.name: s for s in (
    SynthScale("tiny", 0.02, 2, 40, 24, 20, 10, max_per_benchmark=48),
    SynthScale("small", 0.05, 4, 200, 120, 100, 50),
    # 5,000 x 28,659 + 3,811 x 9,574 + 1,823 x 12,032 = 201,715,850 records, the paper's figure
    SynthScale("full", 1.0, 1, 8567, 5000, 3811, 1823),
)}


def _scale(scale: str) -> SynthScale:
    if not isinstance(scale, str) or scale not in SCALES:
        raise ParameterError(f"parameter 'scale': unknown scale {scale!r}; expected one of: {', '.join(SCALES)}")
    return SCALES[scale]


def _check_seed(seed: int) -> int:
    return check_int(seed, option("seed"), low=0)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    """An independent generator per (seed, stream...), so each part is reproducible on its own."""
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


# ---------------------------------------------------------------------------- models
@dataclass
class SynthModels:
    """The models of a synthetic corpus: their table, latent traits and leaderboards.

    Attributes
    ----------
    table
        Ids ("org/family-size-variant"), params, per-token prices, family names.
    ability
        (n_models,) general ability ``g``.
    skills
        (n_models, len(SKILLS)) skill-specific deviations.
    hidden
        (n_models, N_HIDDEN) hidden traits (shared within a family).
    family
        (n_models,) int family code (models are sorted by family).
    closeness
        (n_models,) share of a model's per-prompt outcomes taken from its family's draw:
        fine-tunes of one base get the same answers right and wrong far more often than
        their latent traits alone imply, as near-duplicates on the leaderboard do.
    leaderboards
        Leaderboard key -> sorted (n,) indices into ``table`` of its models.
    """

    table: ModelTable
    ability: np.ndarray
    skills: np.ndarray
    hidden: np.ndarray
    family: np.ndarray
    closeness: np.ndarray
    leaderboards: dict[str, np.ndarray]


def _latent_traits(n: int, family: np.ndarray, n_families: int, rng: np.random.Generator,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(skills, hidden) of ``n`` models: the family's traits plus a fine-tune perturbation."""
    fam_skills = rng.normal(0.0, SKILL_SD, (n_families, len(SKILLS)))
    fam_hidden = rng.normal(0.0, HIDDEN_SD, (n_families, N_HIDDEN))
    skills = fam_skills[family] + rng.normal(0.0, 0.35 * SKILL_SD, (n, len(SKILLS)))
    hidden = fam_hidden[family] + rng.normal(0.0, 0.35 * HIDDEN_SD, (n, N_HIDDEN))
    return skills, hidden


def _families(n: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """(family (n,) sorted codes 0..k-1, k): a few popular bases with many fine-tunes (Zipf-like),
    as on the leaderboard."""
    n_fam = max(4, n // 12)
    weights = 1.0 / np.arange(1, n_fam + 1) ** 0.9
    family = np.sort(rng.choice(n_fam, size=n, p=weights / weights.sum()))
    family = np.unique(family, return_inverse=True)[1]  # families in use, renumbered 0..k-1
    return family, int(family.max()) + 1


def _closeness(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) share of each model's per-prompt outcomes drawn from its family's draw."""
    return rng.uniform(0.3, 0.9, n)


def synth_models(scale: str = "small", *, seed: int = 0) -> SynthModels:
    """The models of the synthetic corpus of ``scale`` (deterministic by ``seed``)."""
    sc, seed = _scale(scale), _check_seed(seed)
    rng = _rng(seed, 0)
    n = sc.n_models
    family, n_fam = _families(n, rng)
    fam_quality = rng.normal(0.0, 0.6, n_fam)
    fam_size_lo = rng.integers(0, len(_SIZES_B) - 2, n_fam)
    size_idx = np.minimum(fam_size_lo[family] + rng.integers(0, 3, n), len(_SIZES_B) - 1)
    params_b = _SIZES_B[size_idx]
    broken = rng.random(n) < 0.05  # fine-tunes that broke the base model (near-chance scores)
    ability = (fam_quality[family] + 0.45 * np.log2(params_b / 7.0) + rng.normal(0.0, 0.25, n)
               - 2.5 * broken)
    skills, hidden = _latent_traits(n, family, n_fam, rng)
    # per-token prices grow with size (USD; ~ $0.2 per million input tokens at 7B)
    price_in = 0.2e-6 * (params_b / 7.0) ** 0.9 * np.exp(rng.normal(0.0, 0.15, n))
    price_out = price_in * rng.uniform(1.5, 4.0, n)

    orgs = [a + b for a in _ORG_SYL for b in ("ai", "labs", "research", "x", "hub")]
    fam_names = [(_FAM_SYL[i % len(_FAM_SYL)] + _FAM_SYL[(i * 7 + 3) % len(_FAM_SYL)]
                  + ("" if i < len(_FAM_SYL) else str(i // len(_FAM_SYL)))) for i in range(n_fam)]
    fam_org = rng.integers(0, len(orgs), n_fam)
    org_choice = np.where(rng.random(n) < 0.3, fam_org[family], rng.integers(0, len(orgs), n))
    variant = rng.integers(0, len(_VARIANTS), n)
    ids, seen = [], set()
    for i in range(n):
        size = f"{params_b[i]:g}b"
        base = f"{orgs[org_choice[i]]}/{fam_names[family[i]]}-{size}-{_VARIANTS[variant[i]]}"
        name, k = base, 1
        while name in seen:
            k += 1
            name = f"{base}-{k}"
        seen.add(name)
        ids.append(name)

    # leaderboards: v1 = the first n_old models, v2 = the last n_new (they share n_old + n_new - n),
    # MMLU-Pro = a random subset of v2, as on the Open LLM Leaderboard
    new = np.arange(n - sc.n_new, n)
    pro = np.sort(rng.choice(new, size=sc.n_pro, replace=False))
    leaderboards = {"old": np.arange(sc.n_old), "new": new, "mmlu_pro": pro}
    table = ModelTable(np.array(ids, dtype=object), params=params_b * 1e9, price_in=price_in,
                       price_out=price_out, family=np.array([fam_names[f] for f in family], dtype=object))
    closeness = _closeness(n, rng)
    return SynthModels(table=table, ability=ability, skills=skills, hidden=hidden, family=family,
                       closeness=closeness, leaderboards=leaderboards)


# ---------------------------------------------------------------------------- prompts
@dataclass
class _Prompts:
    loadings: np.ndarray      # (n, K) convex skill mix
    hidden: np.ndarray        # (n, N_HIDDEN)
    difficulty: np.ndarray    # (n,)
    discrimination: np.ndarray  # (n,)
    guess: np.ndarray         # (n,) guessing floor


def _subset_skill(bench: str, subset: str) -> int:
    for key, skill in _SUBSET_SKILL_KEYWORDS:
        if key in subset:
            return SKILLS.index(skill)
    return SKILLS.index(_BENCH_SKILL.get(bench, "knowledge"))


def _prompt_params(primary: np.ndarray, subset_code: np.ndarray, n_subsets: int, choices: int,
                   rng: np.random.Generator) -> _Prompts:
    """Latent parameters of prompts whose subset ``subset_code`` has primary skill ``primary[code]``."""
    n, k = len(subset_code), len(SKILLS)
    # a subset's skill mix: mostly its primary skill plus a random secondary mix
    sub_mix = 0.35 * rng.dirichlet(np.ones(k), n_subsets)
    sub_mix[np.arange(n_subsets), primary] += 0.65
    loadings = 0.75 * sub_mix[subset_code] + 0.25 * rng.dirichlet(np.ones(k), n)
    sub_shift = rng.normal(0.0, 0.4, n_subsets)
    difficulty = sub_shift[subset_code] + rng.normal(0.0, DIFFICULTY_SD, n)
    discrimination = np.exp(rng.normal(DISCRIMINATION_LOGMEAN, DISCRIMINATION_LOGSD, n))
    hidden = rng.normal(0.0, 1.0, (n, N_HIDDEN))
    guess = (2.0 / choices) * rng.beta(GUESS_BETA, GUESS_BETA, n) if choices else np.zeros(n)
    flawed = rng.random(n) < FLAWED_SHARE
    difficulty[flawed] += 8.0  # out of reach of every model ...
    guess[flawed] = 0.0        # ... and no guess matches the key
    return _Prompts(loadings, hidden, difficulty, discrimination, guess)


def _logits(ability: np.ndarray, skills: np.ndarray, hidden: np.ndarray, p: _Prompts,
            offset: float = 0.0) -> np.ndarray:
    """(n_models, n_prompts) float32 ``a * (g + s.w + h.v - b - offset)``."""
    z = skills.astype(np.float32) @ p.loadings.T.astype(np.float32)
    z += hidden.astype(np.float32) @ p.hidden.T.astype(np.float32)
    z += ability.astype(np.float32)[:, None]
    z -= (p.difficulty + offset).astype(np.float32)[None, :]
    z *= p.discrimination.astype(np.float32)[None, :]
    return z


def _prob(z: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """In place: logits -> ``guess + (1 - guess) * sigmoid(z)``; ``guess`` is (n_prompts,)."""
    np.negative(z, out=z)
    with np.errstate(over="ignore"):  # exp(large) = inf gives probability 0, as it should
        np.exp(z, out=z)
    z += 1.0
    np.reciprocal(z, out=z)
    if guess.any():
        g = guess.astype(np.float32)
        z *= 1.0 - g
        z += g
    return z


def _solve_offset(ability: np.ndarray, skills: np.ndarray, hidden: np.ndarray, p: _Prompts,
                  target: float) -> float:
    """Benchmark difficulty offset that puts the median model mean at ``target`` (bisection)."""
    base = _logits(ability, skills, hidden, p) / p.discrimination.astype(np.float32)[None, :]
    lo, hi = -8.0, 8.0
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        z = (base - np.float32(mid)) * p.discrimination.astype(np.float32)[None, :]
        med = float(np.median(_prob(z, p.guess).mean(axis=1)))
        lo, hi = (mid, hi) if med > target else (lo, mid)
    return 0.5 * (lo + hi)


def _texts(loadings: np.ndarray, difficulty: np.ndarray, subsets: np.ndarray,
           rng: np.random.Generator) -> np.ndarray:
    """Prompt texts: skill words in proportion to the loadings, filler, a difficulty word."""
    n = len(loadings)
    length = 24
    cum = np.cumsum(loadings, axis=1)
    cum[:, -1] = 1.0
    skill = (rng.random((n, length))[:, :, None] > cum[:, None, :]).sum(axis=2)  # categorical draw
    vocab_size = len(_VOCAB[SKILLS[0]])
    word = rng.integers(0, vocab_size, (n, length))
    filler = rng.random((n, length)) < 0.35
    filler_word = rng.integers(0, len(_FILLER), (n, length))
    words = np.array([w for s in SKILLS for w in _VOCAB[s]] + list(_FILLER), dtype=object)
    idx = np.where(filler, len(SKILLS) * vocab_size + filler_word, skill * vocab_size + word)
    rank = np.argsort(np.argsort(difficulty)) / max(n - 1, 1)
    level = np.clip(np.round(rank * (len(_LEVEL) - 1) + rng.normal(0.0, 1.0, n)), 0, len(_LEVEL) - 1).astype(int)
    toks = words[idx]
    topic = [s.replace("_", " ") for s in subsets.tolist()]
    return np.array([f"[{topic[i]}] {_LEVEL[level[i]]}: " + " ".join(toks[i]) + "?" for i in range(n)],
                    dtype=object)


def _embed(loadings: np.ndarray, difficulty: np.ndarray, proj: np.ndarray,
           rng: np.random.Generator) -> np.ndarray:
    """(n, EMBED_DIM) float32: a noisy projection of the skill loadings and standardised difficulty."""
    feats = np.column_stack([loadings * 3.0, (difficulty - difficulty.mean()) / (difficulty.std() + 1e-9)])
    emb = feats @ proj + rng.normal(0.0, 0.3, (len(loadings), proj.shape[1]))
    return emb.astype(np.float32)


# ---------------------------------------------------------------------------- benchmarks
_CELLS_PER_CHUNK = 1 << 21  # model rows are generated in chunks of ~2M cells (8 MB of float32)


def synth_benchmarks(scale: str = "small", *, seed: int = 0, models: SynthModels | None = None,
                     names: Iterable[str] | None = None,
                     progress: Callable[[str, int, int], None] | None = None) -> Iterator[Benchmark]:
    """The synthetic benchmarks, generated one at a time (in the catalog's order).

    Parameters
    ----------
    scale
        ``tiny``, ``small`` or ``full`` (see the module docstring).
    seed
        Non-negative integer; the output is a function of (scale, seed).
    models
        The models, as :func:`synth_models` returns them for (scale, seed) (made when None).
    names
        Benchmark name(s) to generate (one str is one name; all 12 when None); each is the same
        whichever others are asked for.
    progress
        Optional callback ``progress(task, done_cells, total_cells)``.

    Returns
    -------
    Iterator[Benchmark]
        Each benchmark made when it is reached (the arguments are checked at the call). Binary
        benchmarks held bit-packed, (n_models, ceil(n_prompts / 8)) uint8, filled chunk by chunk
        of models so the dense matrix never exists; TruthfulQA graded float32. Each carries
        prompt ids, subsets, texts, gold letters (multiple choice) and ``embeddings["synth"]``
        of shape (n_prompts, EMBED_DIM).
    """
    sc, seed = _scale(scale), _check_seed(seed)
    if models is not None and not isinstance(models, SynthModels):
        raise ParameterError("parameter 'models': expected the SynthModels of synth_models(scale, seed=seed); "
                             f"got {type(models).__name__}")
    wanted = list(BENCHMARKS) if names is None else as_list(names, "parameter 'names'")
    for name in wanted:
        if not isinstance(name, str) or name not in BENCHMARKS:
            raise ParameterError(f"parameter 'names': unknown benchmark {name!r}; expected one of: {', '.join(BENCHMARKS)}")
    return _generate(wanted, sc, seed, models, progress)  # arguments checked now, benchmarks made when iterated


def _generate(wanted: list[str], sc: SynthScale, seed: int, models: SynthModels | None,
              progress: Callable[[str, int, int], None] | None) -> Iterator[Benchmark]:
    models = synth_models(sc.name, seed=seed) if models is None else models
    # one embedding projection for the whole corpus, so every benchmark shares one space
    proj = _rng(seed, 1).normal(0.0, 1.0, (len(SKILLS) + 1, EMBED_DIM)) / np.sqrt(len(SKILLS) + 1)
    for name in wanted:
        yield _synth_benchmark(BENCHMARKS[name], list(BENCHMARKS).index(name), sc, seed, models, proj, progress)


def _benchmark_prompts(info: BenchmarkInfo, counts: Sequence[int], rng: np.random.Generator,
                       ) -> tuple[np.ndarray, _Prompts]:
    """(subset code (n_prompts,), latent prompt parameters) of a benchmark with ``counts`` prompts per subset."""
    subset_code = np.repeat(np.arange(len(counts)), counts)
    primary = np.array([_subset_skill(info.name, s.name) for s in info.subsets])
    return subset_code, _prompt_params(primary, subset_code, len(counts), info.choices, rng)


def _synth_benchmark(info: BenchmarkInfo, bench_idx: int, sc: SynthScale, seed: int, models: SynthModels,
                     proj: np.ndarray, progress: Callable[[str, int, int], None] | None) -> Benchmark:
    rng = _rng(seed, 2, bench_idx)
    subset_code, prompts = _benchmark_prompts(info, sc.subset_counts(info), rng)
    subsets = np.array([s.name for s in info.subsets], dtype=object)[subset_code]
    n_prompts = len(subset_code)
    rows = models.leaderboards[info.leaderboard]
    ab, sk, hd = models.ability[rows], models.skills[rows], models.hidden[rows]
    fam, close = models.family[rows], models.closeness[rows]
    # the offset is solved on a fixed subsample of models and prompts (cheap at full scale)
    sub_m = rng.choice(len(rows), size=min(len(rows), 256), replace=False)
    sub_p = rng.choice(n_prompts, size=min(n_prompts, 2048), replace=False)
    sub = _Prompts(prompts.loadings[sub_p], prompts.hidden[sub_p], prompts.difficulty[sub_p],
                   prompts.discrimination[sub_p], prompts.guess[sub_p])
    offset = _solve_offset(ab[sub_m], sk[sub_m], hd[sub_m], sub, _TARGET_MEDIAN[info.name])

    texts = _texts(prompts.loadings, prompts.difficulty, subsets, rng)
    emb = _embed(prompts.loadings, prompts.difficulty, proj, rng)
    gold = None
    if info.choices:
        gold = np.array([chr(65 + i) for i in rng.integers(0, info.choices, n_prompts)], dtype=object)
    prompt_ids = np.array([f"{info.name}-{i:05d}" for i in range(n_prompts)], dtype=object)

    n_models = len(rows)
    chunk = max(1, _CELLS_PER_CHUNK // n_prompts)
    if info.binary:
        out = np.empty((n_models, (n_prompts + 7) // 8), dtype=np.uint8)
    else:
        out = np.empty((n_models, n_prompts), dtype=np.float32)
    task = f"synth {info.name}"
    for start in range(0, n_models, chunk):
        stop = min(start + chunk, n_models)
        sl = slice(start, stop)
        block = _sample_scores(rng, ab[sl], sk[sl], hd[sl], fam[sl], close[sl], prompts, offset,
                               binary=info.binary, seed=seed, bench_idx=bench_idx)
        out[sl] = np.packbits(block, axis=1) if info.binary else block
        if progress is not None:
            progress(task, stop * n_prompts, n_models * n_prompts)
    common = dict(models=models.table.ids[rows], prompt_ids=prompt_ids, subsets=subsets, texts=texts, gold=gold,
                  embeddings={"synth": emb}, source=f"synth:{sc.name}:seed={seed}", validate=False)
    if info.binary:
        return Benchmark(info.name, bits=out, **common)
    return Benchmark(info.name, scores=out, binary=False, **common)


def _sample_scores(rng: np.random.Generator, ability: np.ndarray, skills: np.ndarray, hidden: np.ndarray,
                   family: np.ndarray, closeness: np.ndarray, p: _Prompts, offset: float, *, binary: bool,
                   seed: int, bench_idx: int) -> np.ndarray:
    """Scores of a block of models on a benchmark's prompts: the one sampling step of the generator.

    Both the corpus (:func:`synth_benchmarks`, chunk by chunk) and the calibration entry point
    (:func:`synth_matrix`) draw through here, so the calibration test checks the corpus's
    correlation structure (IRT probabilities plus correlated family draws).

    Returns
    -------
    np.ndarray
        (n, n_prompts) bool when ``binary``, else float32 graded scores in [0, 1].
    """
    z = _logits(ability, skills, hidden, p, offset)
    n_prompts = len(p.difficulty)
    if binary:
        u = _family_draws(rng, family, closeness, n_prompts, seed, bench_idx, normal=False)
        return u < _prob(z, p.guess)
    z += TRUTHFULQA_NOISE_SD * _family_draws(rng, family, closeness, n_prompts, seed, bench_idx, normal=True)
    return np.clip(_prob(z, p.guess), 0.0, 1.0)


def _family_draws(rng: np.random.Generator, family: np.ndarray, closeness: np.ndarray, n_prompts: int,
                  seed: int, bench_idx: int, *, normal: bool) -> np.ndarray:
    """(n, n_prompts) float32 uniform (or standard normal) draws, each cell taken from the model's
    family draw with probability ``closeness`` and from its own otherwise (the marginal is unchanged,
    so each model's expected scores are too). A family's draw depends only on (seed, benchmark,
    family), whichever chunk its models fall in."""
    own = rng.standard_normal((len(family), n_prompts), dtype=np.float32) if normal else \
        rng.random((len(family), n_prompts), dtype=np.float32)
    share = rng.random(own.shape, dtype=np.float32) < closeness.astype(np.float32)[:, None]
    fams, local = np.unique(family, return_inverse=True)
    draws = np.empty((len(fams), n_prompts), dtype=np.float32)
    for k, f in enumerate(fams.tolist()):  # a handful of families per chunk
        frng = _rng(seed, 4, bench_idx, f)
        draws[k] = frng.standard_normal(n_prompts, dtype=np.float32) if normal else frng.random(n_prompts, dtype=np.float32)
    return np.where(share, draws[local], own)


def synth_corpus(out: str | os.PathLike, *, scale: str = "small", seed: int = 0,
                 progress: Callable[[str, int, int], None] | None = None) -> Path:
    """Generate the synthetic corpus of ``scale`` and write it to ``out`` (atomically, streaming).

    One benchmark at a time is generated and handed to the corpus writer, so memory
    stays at one benchmark's packed matrix plus a chunk of models (full scale: well under 1 GB).

    Parameters
    ----------
    out
        Corpus directory to create (an existing corpus there is replaced).
    scale
        ``tiny`` (unit tests), ``small`` (seconds), ``full`` (8,567 models, 201,715,850 records).
    seed
        Non-negative integer; the same (scale, seed) gives byte-identical tables and cache.
    progress
        Optional callback ``progress(task, done, total)`` (generation and writing).

    Returns
    -------
    Path
        ``out``.
    """
    from routereval.data.store import CorpusWriter

    out = as_path(out, option("out"))
    _scale(scale)
    seed = _check_seed(seed)
    models = synth_models(scale, seed=seed)
    with CorpusWriter(out, models=models.table, progress=progress) as w:
        for bench in synth_benchmarks(scale, seed=seed, models=models, progress=progress):
            w.add(bench)
    return out


# ---------------------------------------------------------------------------- calibration entry point
def synth_matrix(accuracies: Sequence[float] | np.ndarray, n_prompts: int, *, benchmark: str = "mmlu_pro",
                 scale: str = "full", seed: int = 0) -> np.ndarray:
    """Scores of a synthetic ``benchmark`` whose models have the given accuracies, drawn as the corpus draws.

    Everything but the models' general abilities is the corpus generator's: prompts come
    from the benchmark's subsets (catalog proportions) through the same prompt sampler;
    the models are a random sample of the benchmark's leaderboard in
    ``synth_models(scale, seed=seed)`` and keep their families, closeness, skill and
    hidden traits; scores are drawn by the same function as :func:`synth_benchmarks`'s
    (IRT probabilities and the correlated family draws). Only each model's general
    ability is solved (bisection) so that its expected score equals its target; this
    replaces the corpus's ability-plus-benchmark-offset, which sets the level only.
    So a calibration against real data checks the corpus's correlation structure.

    Parameters
    ----------
    accuracies
        (n_models,) target mean score of each model, in [0, 1]; n_models at most the size of
        the benchmark's leaderboard at ``scale``.
    n_prompts
        Number of prompts (columns).
    benchmark
        A binary catalog benchmark (sets subsets, answer options, leaderboard).
    scale
        Scale whose model population (families) the models are drawn from.
    seed
        Non-negative integer.

    Returns
    -------
    np.ndarray
        (n_models, n_prompts) bool; row means match ``accuracies`` (above the guessing floor) up to
        sampling noise (standard error about ``sqrt(acc (1 - acc) / n_prompts)``).
    """
    seed = _check_seed(seed)
    try:
        acc = np.asarray(accuracies, dtype=np.float64)
    except (TypeError, ValueError):  # not numbers: refused below
        acc = np.empty(0)
    if acc.ndim != 1 or len(acc) == 0 or not np.all((acc >= 0) & (acc <= 1)):
        raise ParameterError("parameter 'accuracies': expected a non-empty 1-d array of values in [0, 1]")
    n_prompts = check_int(n_prompts, "n_prompts", low=1)
    if not isinstance(benchmark, str) or benchmark not in BENCHMARKS:
        raise ParameterError(f"parameter 'benchmark': unknown benchmark {benchmark!r}; expected one of: "
                             f"{', '.join(BENCHMARKS)}")
    info = BENCHMARKS[benchmark]
    if not info.binary:  # logit noise moves a graded model's mean off the solved target
        raise ParameterError(f"parameter 'benchmark': {benchmark!r} is graded; expected a binary benchmark")
    models = synth_models(scale, seed=seed)
    pool = models.leaderboards[info.leaderboard]
    n = len(acc)
    if n > len(pool):
        raise ParameterError(f"parameter 'accuracies': {n} models, but the {info.leaderboard!r} leaderboard has "
                             f"{len(pool)} at scale {scale!r}; expected at most that many (or a larger scale)")
    rng = _rng(seed, 3)
    # prompts per subset in the catalog's proportions (largest remainders)
    share = np.array([s.prompts for s in info.subsets], dtype=np.float64)
    share *= int(n_prompts) / share.sum()
    counts = np.floor(share).astype(np.int64)
    counts[np.argsort(counts - share)[: int(n_prompts) - counts.sum()]] += 1
    _, p = _benchmark_prompts(info, counts, rng)
    rows = np.sort(rng.choice(pool, size=n, replace=False))
    sk, hd = models.skills[rows], models.hidden[rows]
    # vectorised bisection on each model's general ability (the family draws keep the marginal)
    lo, hi = np.full(n, -12.0), np.full(n, 12.0)
    a = p.discrimination.astype(np.float32)[None, :]
    base = _logits(np.zeros(n), sk, hd, p) / a  # s.w + h.v - b, computed once
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        mean = _prob((base + mid.astype(np.float32)[:, None]) * a, p.guess).mean(axis=1)
        up = mean < acc
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    return _sample_scores(rng, 0.5 * (lo + hi), sk, hd, models.family[rows], models.closeness[rows], p, 0.0,
                          binary=True, seed=seed, bench_idx=list(BENCHMARKS).index(benchmark))


def oracle_curve(scores: np.ndarray, pool_sizes: Sequence[int], *, draws: int = 20,
                 seed: int = 0) -> dict[int, float]:
    """Mean oracle score of random pools: for each m, the mean over ``draws`` seeded random
    pools of m models (rows of ``scores``) of the mean over prompts of the pool's best score.

    Parameters
    ----------
    scores
        (n_models, n_prompts) scores in [0, 1], no NaN.
    pool_sizes
        Pool sizes m (one int or several, each in [1, n_models]).
    draws, seed
        Random pools per size (>= 1) and the seed of their draws.

    Returns
    -------
    dict
        m -> mean oracle score.
    """
    try:
        s = np.asarray(scores, dtype=np.float32)
    except (TypeError, ValueError):
        s = np.empty(0, dtype=np.float32)
    if s.ndim != 2 or not s.size or not np.all((s >= 0) & (s <= 1)):  # NaN fails the range test
        raise ParameterError("parameter 'scores': expected a (n_models, n_prompts) array of scores in [0, 1] "
                             "without NaN")
    draws = check_int(draws, "draws", low=1)
    rng = np.random.default_rng(_check_seed(seed))
    out = {}
    for m in as_list(pool_sizes, "parameter 'pool_sizes'"):
        m = check_int(m, "each of pool_sizes", low=1, high=len(s))
        out[m] = float(np.mean([s[rng.choice(len(s), m, replace=False)].max(axis=0).mean()
                                     for _ in range(draws)]))
    return out
