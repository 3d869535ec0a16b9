"""The synthetic corpus: shape per scale, determinism, score kinds, learnable signal, CLI."""

from __future__ import annotations

import re

import numpy as np
import pytest

from routereval.catalog import BENCHMARKS, LEADERBOARDS, PAPER_MODELS, PAPER_PROMPTS, PAPER_RECORDS
from routereval.data.store import open_corpus, read_manifest
from routereval.errors import InputError, ParameterError
from routereval.sources.synth import (
    EMBED_DIM, SCALES, synth_benchmarks, synth_corpus, synth_matrix, synth_models,
)


@pytest.fixture(scope="module")
def small():
    models = synth_models("small", seed=0)
    return models, {b.name: b for b in synth_benchmarks("small", seed=0, models=models)}


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "tiny"
    synth_corpus(out, scale="tiny", seed=3)
    return out


def _spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


# ------------------------------------------------------------------ shape against the catalog
@pytest.mark.parametrize("scale", ["tiny", "small"])
def test_shape_matches_catalog(scale):
    sc = SCALES[scale]
    models = synth_models(scale, seed=1)
    benches = list(synth_benchmarks(scale, seed=1, models=models))
    assert [b.name for b in benches] == list(BENCHMARKS)
    assert len(models.table) == sc.n_models
    seen: set[str] = set()
    for b in benches:
        info = BENCHMARKS[b.name]
        # every subset kept, in catalog order, each with its scaled count
        assert b.subset_names == [s.name for s in info.subsets]
        counts = [int(np.sum(b.subsets == s.name)) for s in info.subsets]
        assert counts == sc.subset_counts(info)
        assert min(counts) >= sc.min_per_subset
        assert b.n_prompts < info.prompts
        # every model of the leaderboard on every prompt of its benchmarks
        assert b.is_complete
        n_lb = {"old": sc.n_old, "new": sc.n_new, "mmlu_pro": sc.n_pro}[info.leaderboard]
        assert b.n_models == n_lb
        assert b.binary == info.binary
        assert b.embeddings["synth"].shape == (b.n_prompts, EMBED_DIM)
        assert b.embeddings["synth"].dtype == np.float32
        assert len(set(b.prompt_ids.tolist())) == b.n_prompts
        seen.update(b.models.tolist())
    assert len(seen) == sc.n_models
    if scale == "tiny":  # a few dozen prompts per benchmark: the cap plus at most the subsets' minimum
        for b in benches:
            assert b.n_prompts <= sc.max_per_benchmark + sc.min_per_subset * len(BENCHMARKS[b.name].subsets)


def test_full_scale_shape_without_generating():
    sc = SCALES["full"]
    models = synth_models("full", seed=0)
    lb = models.leaderboards
    assert len(models.table) == PAPER_MODELS == 8567
    assert (len(lb["old"]), len(lb["new"]), len(lb["mmlu_pro"])) == (5000, 3811, 1823)
    assert set(lb["mmlu_pro"]) <= set(lb["new"])  # MMLU-Pro's models are v2 models
    assert len(set(lb["old"]) | set(lb["new"]) | set(lb["mmlu_pro"])) == PAPER_MODELS
    prompts = {name: sum(sc.subset_counts(info)) for name, info in BENCHMARKS.items()}
    assert prompts == {name: info.prompts for name, info in BENCHMARKS.items()}
    assert sum(prompts.values()) == PAPER_PROMPTS
    records = sum(len(lb[key]) * sum(prompts[b] for b in names) for key, names in LEADERBOARDS.items())
    assert records == PAPER_RECORDS
    # ids look like org/family-size-variant; the family column names the family in the id
    pat = re.compile(r"^[a-z]+/([a-z0-9]+)-([0-9.]+)b-[a-z0-9.]+(-\d+)?$")
    ids = models.table.ids.tolist()
    assert len(set(ids)) == len(ids)
    for mid, fam, params in zip(ids[:500], models.table.family[:500], models.table.params[:500]):
        m = pat.match(mid)
        assert m, mid
        assert m.group(1) == fam
        assert float(m.group(2)) * 1e9 == pytest.approx(params)
    # per-token prices grow with size
    t = models.table
    assert np.all(t.price_out > t.price_in) and np.all(t.price_in > 0)
    assert _spearman(t.params, t.price_in) > 0.9


def test_bad_parameters():
    with pytest.raises(ParameterError, match="scale"):
        synth_models("huge")
    with pytest.raises(ParameterError, match="seed"):
        synth_models("tiny", seed=-1)
    with pytest.raises(ParameterError, match="names"):
        list(synth_benchmarks("tiny", names=["nope"]))
    with pytest.raises(ParameterError, match="accuracies"):
        synth_matrix([0.5, 1.2], 10)
    with pytest.raises(ParameterError, match="n_prompts"):
        synth_matrix([0.5], 0)
    with pytest.raises(ParameterError, match="benchmark"):
        synth_matrix([0.5], 10, benchmark="nope")
    with pytest.raises(ParameterError, match="graded"):
        synth_matrix([0.5], 10, benchmark="truthfulqa")
    with pytest.raises(ParameterError, match=r"11 models, but the 'mmlu_pro' leaderboard has 10 at scale 'tiny'"):
        synth_matrix([0.5] * 11, 10, scale="tiny")


def test_names_str_is_one_name_and_wrong_types_are_one_line(tmp_path):
    (arc,) = synth_benchmarks("tiny", names="arc")  # one name, not its letters
    assert arc.name == "arc" and arc.n_prompts > 0
    with pytest.raises(ParameterError, match="^parameter 'names': unknown benchmark 5; expected one of: arc, "):
        synth_benchmarks("tiny", names=5)
    with pytest.raises(ParameterError, match="^parameter 'names': unknown benchmark \\['arc'\\]"):
        synth_benchmarks("tiny", names=[["arc"]])
    # checked at the call, not when first iterated
    with pytest.raises(ParameterError, match="^parameter 'scale': unknown scale \\['tiny'\\]; expected one of: tiny, "):
        synth_benchmarks(["tiny"])
    with pytest.raises(ParameterError, match="^parameter 'models': expected the SynthModels .*; got str$"):
        synth_benchmarks("tiny", models="tiny")
    with pytest.raises(ParameterError, match="^parameter 'scale': unknown scale \\['tiny'\\]"):
        synth_models(["tiny"])
    with pytest.raises(InputError, match="^out \\(--out\\) must be a path \\(a str or pathlib.Path\\); got None$"):
        synth_corpus(None, scale="tiny")
    with pytest.raises(ParameterError, match="^parameter 'accuracies': expected a non-empty 1-d array"):
        synth_matrix(["high"], 10)
    with pytest.raises(ParameterError, match="^parameter 'benchmark': unknown benchmark \\['mmlu'\\]"):
        synth_matrix([0.5], 10, benchmark=["mmlu"])
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ determinism
def test_same_seed_same_bytes_other_seed_differs(tiny_corpus, tmp_path):
    again = synth_corpus(tmp_path / "again", scale="tiny", seed=3)
    other = synth_corpus(tmp_path / "other", scale="tiny", seed=4)
    files = read_manifest(tiny_corpus)["files"]
    assert any(f.startswith("cache/") for f in files) and "records/benchmark=mmlu/part-0.parquet" in files
    assert read_manifest(again)["files"] == files  # every table, cache and embedding file, byte for byte
    other_files = read_manifest(other)["files"]
    for f in ("cache/mmlu/bits.npy", "cache/truthfulqa/scores.npy", "models.parquet", "prompts.parquet",
              "embeddings/mmlu/synth.npy"):
        assert other_files[f]["sha256"] != files[f]["sha256"], f


def test_benchmark_independent_of_the_others_requested():
    alone = next(synth_benchmarks("tiny", seed=2, names=["gpqa"]))
    together = {b.name: b for b in synth_benchmarks("tiny", seed=2)}["gpqa"]
    assert np.array_equal(alone.bits, together.bits)
    assert np.array_equal(alone.embeddings["synth"], together.embeddings["synth"])


# ------------------------------------------------------------------ scores
def test_stored_corpus_round_trip(tiny_corpus):
    c = open_corpus(tiny_corpus)
    gen = {b.name: b for b in synth_benchmarks("tiny", seed=3)}
    assert len(c.models) == SCALES["tiny"].n_models
    assert set(c.models.family.tolist()) == set(synth_models("tiny", seed=3).table.family.tolist())
    for name, b in c.benchmarks.items():
        assert np.array_equal(b.scores, gen[name].scores, equal_nan=True)
        assert b.texts.tolist() == gen[name].texts.tolist()
        assert np.array_equal(np.asarray(b.embeddings["synth"]), gen[name].embeddings["synth"])


def test_truthfulqa_graded_others_binary(small):
    _, benches = small
    tq = benches["truthfulqa"]
    s = tq.scores
    assert not tq.binary
    assert np.all((s >= 0) & (s <= 1))
    assert np.mean((s > 0.01) & (s < 0.99)) > 0.5  # mostly strictly between 0 and 1
    assert len(np.unique(s)) > 1000
    for name, b in benches.items():
        if name != "truthfulqa":
            assert b.binary
            assert set(np.unique(b.scores).tolist()) == {0.0, 1.0}


def test_stronger_models_score_higher(small):
    models, benches = small
    for name, b in benches.items():
        rows = models.leaderboards[BENCHMARKS[name].leaderboard]
        # small benchmarks near the guessing floor (GPQA) are noisy, as on the real leaderboard
        assert _spearman(models.ability[rows], b.model_means()) > (0.8 if b.n_prompts >= 200 else 0.3), name


def test_guessing_floor(small):
    models, benches = small
    # the weakest (broken) models sit near chance on multiple choice, near zero on generative tasks
    assert benches["mmlu"].model_means().min() > 0.15          # 4 choices
    assert benches["gsm8k"].model_means().min() < 0.1          # generative
    assert benches["math"].model_means().min() < 0.05


def test_families_are_near_duplicates(small):
    models, benches = small
    b = benches["mmlu"]
    rows = models.leaderboards["old"]
    fam = models.table.family[rows]
    s = b.scores - b.model_means()[:, None]  # residuals after each model's and each prompt's mean
    s -= s.mean(axis=0)
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    corr = s @ s.T
    same = fam[:, None] == fam[None, :]
    off = ~np.eye(len(rows), dtype=bool)
    assert (same & off).sum() > 20
    assert corr[same & off].mean() > corr[~same].mean() + 0.2


def test_router_learnable_signal(small):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    models, benches = small
    b = benches["mmlu"]
    s = b.scores
    codes = b.subset_codes()
    # the best model differs from subset to subset
    best = [int(np.argmax(s[:, codes == k].mean(axis=1))) for k in range(codes.max() + 1)]
    assert len(set(best)) >= 5
    # prompt embeddings and texts predict a model's correctness better than the majority rate
    rng = np.random.default_rng(0)
    perm = rng.permutation(b.n_prompts)
    tr, te = perm[: b.n_prompts * 7 // 10], perm[b.n_prompts * 7 // 10:]
    means = b.model_means()
    mid = np.argsort(means)[len(means) // 2 - 2: len(means) // 2 + 2]  # median models (balanced labels)
    tfidf = TfidfVectorizer().fit(b.texts[tr])
    gains_emb, gains_txt = [], []
    for i in mid:
        y = s[i].astype(int)
        majority = max(y[te].mean(), 1 - y[te].mean())
        x = b.embeddings["synth"]
        acc = LogisticRegression(solver="liblinear").fit(x[tr], y[tr]).score(x[te], y[te])
        gains_emb.append(acc - majority)
        xt = tfidf.transform(b.texts)
        acc_t = LogisticRegression(solver="liblinear").fit(xt[tr], y[tr]).score(xt[te], y[te])
        gains_txt.append(acc_t - majority)
    assert max(gains_emb) > 0.1
    assert np.mean(gains_emb) > 0.05
    assert np.mean(gains_txt) > 0.02


def test_synth_matrix_matches_accuracies():
    acc = np.array([0.1, 0.2, 0.45, 0.7, 0.95])
    m = synth_matrix(acc, 4000, seed=5)
    assert m.shape == (5, 4000) and m.dtype == bool
    assert np.abs(m.mean(axis=1) - acc).max() < 0.03
    assert np.array_equal(m, synth_matrix(acc, 4000, seed=5))
    assert not np.array_equal(m, synth_matrix(acc, 4000, seed=6))
    # a binary benchmark other than MMLU-Pro: 4 choices, the v1 leaderboard's population
    m = synth_matrix([0.3, 0.6, 0.9], 3000, benchmark="mmlu", scale="small", seed=2)
    assert m.shape == (3, 3000) and np.abs(m.mean(axis=1) - [0.3, 0.6, 0.9]).max() < 0.035


# ------------------------------------------------------------------ CLI
def test_cli_synth_json(cli, tmp_path):
    out = tmp_path / "c"
    r = cli("data", "synth", "--scale", "tiny", "--seed", "1", "--out", out, "--json")
    assert r.code == 0, r.err
    info = r.json()
    sc = SCALES["tiny"]
    assert info["models"] == sc.n_models
    assert list(info["benchmarks"]) == list(BENCHMARKS)
    assert info["benchmarks"]["truthfulqa"]["binary"] is False
    assert info["benchmarks"]["mmlu"]["subsets"] == 57
    expect = sum({"old": sc.n_old, "new": sc.n_new, "mmlu_pro": sc.n_pro}[info_.leaderboard]
                 * sum(sc.subset_counts(info_)) for info_ in BENCHMARKS.values())
    assert info["records"] == expect
    assert all(b["missing"] == 0 for b in info["benchmarks"].values())


def test_cli_synth_bad_seed_writes_nothing(cli, tmp_path):
    out = tmp_path / "c"
    r = cli("data", "synth", "--scale", "tiny", "--seed", "-1", "--out", out)
    assert r.code == 2
    assert r.err.strip().count("\n") == 0 and "seed" in r.err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
