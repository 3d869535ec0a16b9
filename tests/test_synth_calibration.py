"""The synthetic generator against real data: random-pool oracle scores on MMLU-Pro.

For the real MMLU-Pro matrix (31 models, the prompts every model answered) and a synthetic
MMLU-Pro benchmark with the same model accuracies, the mean oracle score of random pools of m
models (mean over prompts of the pool's best score) agrees within 0.05 for m = 2, 3, 5, 10, 20.
The synthetic benchmark is drawn by ``synth_matrix``, which shares the corpus generator's prompt
sampler, model population (families, closeness, skill and hidden traits of the full-scale
MMLU-Pro leaderboard) and sampling function (IRT probabilities and correlated family draws);
only the general abilities are solved to the real accuracies. So a drift of the corpus's
correlation structure moves these curves: a tighter guard (DRIFT_GUARD) catches drifts well
inside the issue's 0.05.
"""

from __future__ import annotations

import numpy as np
import pytest

from routereval.sources.synth import oracle_curve, synth_matrix

POOL_SIZES = (2, 3, 5, 10, 20)
TOLERANCE = 0.05    # the bound
DRIFT_GUARD = 0.02  # the generator is within ~0.01 of the real curve; a structural drift exceeds this


def _real_matrix(path) -> np.ndarray:
    """(31, n) 0/1 matrix of the real MMLU-Pro records, prompts every model answered."""
    import pyarrow.csv as pc

    table = pc.read_csv(path, convert_options=pc.ConvertOptions(include_columns=["model", "question_id", "correct"]))
    models, mi = np.unique(table.column("model").to_numpy(zero_copy_only=False), return_inverse=True)
    prompts, pi = np.unique(table.column("question_id").to_numpy(), return_inverse=True)
    s = np.full((len(models), len(prompts)), np.nan)
    s[mi, pi] = table.column("correct").to_numpy()
    return s[:, ~np.isnan(s).any(axis=0)]


@pytest.fixture(scope="module")
def real(shared_data) -> np.ndarray:
    return _real_matrix(shared_data / "mmlu_pro" / "mmlu_pro_correctness_long.csv.gz")


def test_real_matrix_is_what_the_data_readme_says(real):
    assert real.shape[0] == 31
    assert 10_000 < real.shape[1] <= 12_032
    assert set(np.unique(real).tolist()) == {0.0, 1.0}


def test_oracle_curve_matches_a_naive_loop():
    rng = np.random.default_rng(0)
    s = (rng.random((7, 50)) < 0.4).astype(float)
    got = oracle_curve(s, (1, 3, 7), draws=4, seed=9)
    pick = np.random.default_rng(9)
    for m in (1, 3, 7):
        vals = []
        for _ in range(4):
            pool = pick.choice(7, m, replace=False)
            vals.append(sum(max(s[i, j] for i in pool) for j in range(50)) / 50)
        assert got[m] == pytest.approx(sum(vals) / 4)


def test_oracle_curve_checks_its_arguments():
    from routereval.errors import ParameterError

    s = np.eye(3)
    assert oracle_curve(s, 2, draws=1) == oracle_curve(s, [2], draws=1)  # one size is one size
    for args, kw, msg in (((np.full((3, 3), np.nan), [1]), {}, "parameter 'scores'"),
                          ((np.ones(3), [1]), {}, "parameter 'scores'"), ((s, [4]), {}, "pool_sizes must be an int in \\[1, 3\\]; got 4"),
                          ((s, [1.5]), {}, "pool_sizes must be an int .*; got 1.5"),
                          ((s, [1]), dict(draws=0), "^draws must be an int >= 1; got 0$")):
        with pytest.raises(ParameterError, match=msg):
            oracle_curve(*args, **kw)


def test_synthetic_oracle_curve_matches_real_mmlu_pro(real):
    acc = real.mean(axis=1)
    real_curve = oracle_curve(real, POOL_SIZES, draws=30, seed=1)
    for seed in (0, 1):
        synth = synth_matrix(acc, real.shape[1], benchmark="mmlu_pro", scale="full", seed=seed)
        # same per-model accuracies (sampling noise only)
        assert np.abs(synth.mean(axis=1) - acc).max() < 0.025
        synth_curve = oracle_curve(synth, POOL_SIZES, draws=30, seed=1)
        gaps = {m: synth_curve[m] - real_curve[m] for m in POOL_SIZES}
        assert all(abs(g) < TOLERANCE for g in gaps.values()), (real_curve, synth_curve)
        assert all(abs(g) < DRIFT_GUARD for g in gaps.values()), (real_curve, synth_curve)
        # realistic error correlation: hard prompts are hard for all
        rc = np.corrcoef(real)[np.triu_indices(31, 1)].mean()
        sc = np.corrcoef(synth.astype(float))[np.triu_indices(31, 1)].mean()
        assert abs(rc - sc) < 0.05


def test_independent_errors_would_fail_the_calibration(real):
    """The bound is discriminating: models with the same accuracies but independent errors miss it."""
    acc = real.mean(axis=1)
    rng = np.random.default_rng(0)
    indep = rng.random(real.shape) < acc[:, None]
    real_curve = oracle_curve(real, POOL_SIZES, draws=30, seed=1)
    indep_curve = oracle_curve(indep, POOL_SIZES, draws=30, seed=1)
    assert max(indep_curve[m] - real_curve[m] for m in POOL_SIZES) > TOLERANCE


@pytest.mark.parametrize("constant, value", [("DIFFICULTY_SD", 1.5), ("HIDDEN_SD", 1.0)])
def test_a_drift_of_the_corpus_structure_fails_the_calibration(real, monkeypatch, constant, value):
    """The check sees the corpus generator's constants: a drifted correlation structure misses the guard."""
    import routereval.sources.synth as synth

    acc = real.mean(axis=1)
    real_curve = oracle_curve(real, POOL_SIZES, draws=30, seed=1)
    monkeypatch.setattr(synth, constant, value)
    drifted = oracle_curve(synth_matrix(acc, real.shape[1], seed=0), POOL_SIZES, draws=30, seed=1)
    assert max(abs(drifted[m] - real_curve[m]) for m in POOL_SIZES) > DRIFT_GUARD


def test_synth_matrix_draws_as_the_corpus_does():
    """synth_matrix and the corpus share one sampling step: given a corpus benchmark's own models
    (scale "small": 50 models in 16 families, many near-duplicates) and their accuracies, the
    oracle curves agree, and both are far below what independent errors would give."""
    from routereval.sources.synth import synth_benchmarks

    bench = next(synth_benchmarks("small", seed=1, names=["mmlu_pro"]))
    corpus = bench.scores.astype(np.float64)
    acc = corpus.mean(axis=1)
    again = synth_matrix(acc, corpus.shape[1], scale="small", seed=1)
    indep = np.random.default_rng(0).random(corpus.shape) < acc[:, None]
    c, a, i = (oracle_curve(x, POOL_SIZES, draws=30, seed=1) for x in (corpus, again, indep))
    assert all(abs(a[m] - c[m]) < TOLERANCE for m in POOL_SIZES), (c, a)
    assert max(i[m] - c[m] for m in POOL_SIZES) > 2 * max(abs(a[m] - c[m]) for m in POOL_SIZES), (c, a, i)
