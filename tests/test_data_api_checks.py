"""Argument checks of the data layer's Python API (Benchmark, Corpus, the store, splits, pools): every
user mistake is one line of the package's errors naming the parameter, never a numpy/Attribute/Type/IndexError
from deep inside and never nonsense accepted silently."""

from __future__ import annotations

import numpy as np
import pytest

from routereval.data.model import Benchmark, Corpus
from routereval.data.splits import Split
from routereval.data.store import open_corpus, write_corpus
from routereval.errors import InputError, ParameterError
from routereval.pools import make_kfold, make_pool, make_pools, make_split, pool_scores, training_labels

from test_pools import _bench


def _one_line(exc_type, match, call, *args, **kwargs):
    """``call(*args, **kwargs)`` raises ``exc_type`` matching ``match``, in one line."""
    with pytest.raises(exc_type, match=match) as e:
        call(*args, **kwargs)
    assert "\n" not in str(e.value)
    return e.value


def _small(**kw):
    args = dict(models=["a", "b"], prompt_ids=["p", "q", "r"], scores=np.array([[0, 1, np.nan], [1, 1, 0]], float))
    return Benchmark("x", **{**args, **kw})


@pytest.fixture(scope="module")
def toy():
    return _bench(40, 60)


# ----------------------------------------------------------------------------- 1. binary
def test_binary_must_be_a_bool_and_true_only_for_0_1_scores(tmp_path):
    _one_line(ParameterError, "binary must be True or False; got 'no'", _small, binary="no")
    _one_line(InputError, r"score 0\.2 of model 'a' on prompt 'p' is neither 0 nor 1, but binary=True", _small,
              scores=np.array([[0.2, 0.7, 1.0], [0.0, 1.0, 0.0]]), binary=True)
    # 0/1 with NaN (missing) stays a binary benchmark and round-trips, NaN included
    b = _small(binary=True)
    assert b.binary and _small(binary=np.bool_(True)).binary and not _small(binary=False).binary
    write_corpus([b], tmp_path / "c")
    np.testing.assert_array_equal(open_corpus(tmp_path / "c")["x"].scores, b.scores)


# ----------------------------------------------------------------------------- 2. a str is not a list
@pytest.mark.parametrize("kwargs, match", [
    (dict(models="ab"), "models must be a list or array .*; got 'ab'"),
    (dict(prompt_ids="pqr"), "prompt_ids must be a list or array .*; got 'pqr'"),
    (dict(texts="abc"), "texts must be a list or array .*; got 'abc'"),
    (dict(subsets="abc"), "subsets must be a list or array .*; got 'abc'"),
    (dict(gold="abc"), "gold must be a list or array .*; got 'abc'"),
])
def test_a_str_for_a_per_entry_argument_is_refused(kwargs, match):
    _one_line(InputError, match, _small, **kwargs)


def test_model_index_takes_one_name_or_several():
    b = _small(models=["some/model", "other"])
    np.testing.assert_array_equal(b.model_index("some/model"), [0])
    np.testing.assert_array_equal(b.model_index(["other", "some/model"]), [1, 0])
    _one_line(InputError, "model 'nope' is not in benchmark 'x'", b.model_index, "nope")
    _one_line(InputError, "names must be a model id or a list of them; got None", b.model_index, None)


# ----------------------------------------------------------------------------- 3. cost, embeddings, scores
@pytest.mark.parametrize("cost, match", [
    (-np.ones((2, 3)), r"cost -1\.0 of model 'a' on prompt 'p' is not a price; expected USD >= 0"),
    (np.array([[0, 0, 0], [0, np.inf, 0]], float), r"cost inf of model 'b' on prompt 'q' is not a price"),
    (np.full((2, 3), "x"), "cost must be numeric"),
])
def test_costs_must_be_usd_at_least_0(cost, match):
    _one_line(InputError, match, _small, cost=cost)


def test_unknown_costs_stay_allowed():
    cost = np.array([[0.001, np.nan, 0.0], [0.002, 0.002, np.nan]])
    np.testing.assert_array_equal(_small(cost=cost).cost, cost)


@pytest.mark.parametrize("emb, match", [
    (np.full((3, 4), np.nan), r"embeddings 'e' hold NaN or inf for 3 of 3 prompts \(first: 'p'\)"),
    (np.array([[0.0, 1.0], [np.inf, 0.0], [0.0, 0.0]]),
     r"embeddings 'e' hold NaN or inf for 1 of 3 prompts \(first: 'q'\)"),
    (np.full((3, 4), "x"), "embeddings 'e' must be numeric"),
    (np.zeros((2, 4)), r"embeddings 'e' have shape \(2, 4\), expected \(3, dim\)"),
])
def test_embeddings_must_be_finite(emb, match):
    _one_line(InputError, match, _small, embeddings={"e": emb})


def test_finite_embeddings_are_kept():
    emb = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(_small(embeddings={"e": emb}).embeddings["e"], emb)


@pytest.mark.parametrize("scores", [np.full((2, 3), "x"), [[0.1, "a", 0.2], [0.0, 1.0, 0.5]]])
def test_scores_must_be_numeric(scores):
    _one_line(InputError, r"benchmark 'x': scores must be numeric \(floats in \[0, 1\]", _small, scores=scores)


def test_none_is_a_missing_score_or_an_unknown_cost():
    """JSON's null, as built from a JSON file: NaN."""
    b = _small(scores=[[0.1, None, 0.2], [0.0, 1.0, 0.5]], cost=[[0.001, None, 0.0], [None, 0.002, 0.002]],
               gold=[["A", "B"], ["C", "D"], ["E", "F"]])
    assert np.isnan(b.scores[0, 1]) and np.isnan(b.cost[0, 1]) and b.cost[1, 1] == 0.002
    assert b.gold.shape == (3,) and b.gold[0] == ["A", "B"]  # several gold answers stay one entry


# ----------------------------------------------------------------------------- 4. open_corpus arguments
@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "c"
    write_corpus([_small(texts=["t1", "t2", "t3"])], path)
    return path


def test_open_corpus_checks_its_arguments_before_reading(corpus_dir):
    _one_line(InputError, "path must be a path .*; got None", open_corpus, None)
    _one_line(InputError, r"benchmarks must be a benchmark name or a list of names; got \[\['x'\]\]", open_corpus,
              corpus_dir, benchmarks=[["x"]])
    _one_line(ParameterError, "texts must be True or False; got 'no'", open_corpus, corpus_dir, texts="no")
    # one name is one benchmark (never its characters); texts=False gives none
    assert list(open_corpus(corpus_dir, benchmarks="x")) and not open_corpus(corpus_dir, texts=False)["x"].has_texts
    assert open_corpus(str(corpus_dir))["x"].texts.tolist() == ["t1", "t2", "t3"]


# ----------------------------------------------------------------------------- 5. wrong type for the main argument
def test_the_wrong_type_for_the_main_argument_is_named(toy, tmp_path):
    msg = r"bench must be a routereval Benchmark \(corpus\['mmlu'\]\); got str"
    _one_line(InputError, msg, make_split, "mmlu")
    _one_line(InputError, msg, make_pools, "mmlu", ms=3)
    _one_line(InputError, msg, make_pool, "mmlu", m=3, group="all_weak")
    _one_line(InputError, msg, make_kfold, "mmlu")
    _one_line(InputError, msg, training_labels, "mmlu", np.zeros((3, 3)))
    takes = "Corpus.from_benchmarks takes a Benchmark or a list of Benchmarks"
    _one_line(InputError, f"{takes}; got a str", Corpus.from_benchmarks, "abc")
    _one_line(InputError, f"{takes}; got a int", Corpus.from_benchmarks, [toy, 3])
    _one_line(InputError, "split must be a Split .* or one of: auto, publisher, random; got int", make_pools, toy,
              ms=3, split=123)
    _one_line(InputError, "unknown split 'nope'", make_pools, toy, ms=3, split="nope")
    corpus = Corpus.from_benchmarks([toy])
    _one_line(InputError, "path must be a path .*; got None", write_corpus, corpus, None)
    _one_line(InputError, "write_corpus takes a Corpus or Benchmarks; got a NoneType", write_corpus, None,
              tmp_path / "c")
    _one_line(InputError, "unknown benchmark", corpus.__getitem__, ["toy"])
    # a name the stored corpus does not hold is the caller's mistake there too, not a damaged corpus (CorpusError)
    write_corpus(corpus, tmp_path / "stored")
    from routereval.data.store import open_corpus

    err = _one_line(InputError, "unknown benchmark 'tooy'; expected one of: toy", open_corpus, tmp_path / "stored",
                    benchmarks=["tooy"])
    assert err.file == str(tmp_path / "stored")
    assert Corpus.from_benchmarks(toy)["toy"] is toy  # one Benchmark is a list of one


# ----------------------------------------------------------------------------- 6. a split of another benchmark
def test_a_split_of_another_benchmark_is_refused(toy):
    other = _bench(40, 200, seed=1, name="other")
    _one_line(InputError, r"the split was made for benchmark 'other' \(200 prompts\), not for 'toy' \(60 prompts\)",
              make_pools, toy, ms=3, split=make_split(other))
    # indices that happen to fit are refused too: the split records its benchmark
    _one_line(InputError, r"made for benchmark 'toy' \(60 prompts\), not for 'other'", make_pools, other, ms=3,
              split=make_split(toy))
    _one_line(InputError, "made for benchmark 'other'", make_pool, toy, m=3, group="all_weak",
              split=make_kfold(other)[0])
    # a split made by hand (no record of its benchmark) must at least index this one's prompts
    _one_line(InputError, r"the split's prompt indices \(0 to 199\) do not fit benchmark 'toy' \(60 prompts\)",
              make_pools, toy, ms=3, split=Split(np.arange(150), np.arange(150, 170), np.arange(170, 200)))
    pool = make_pool(other, m=3, group="all_weak")
    short = _bench(40, 100, seed=1, name="other")  # same name, another version
    _one_line(InputError, r"made for benchmark 'other' \(200 prompts\), not for 'other' \(100 prompts\)",
              pool_scores, short, pool)


def test_a_split_of_this_benchmark_is_used(toy):
    sp = make_split(toy, seed=3)
    assert (sp.benchmark, sp.n_prompts) == ("toy", 60)
    assert all(p.split is sp for p in make_pools(toy, ms=3, split=sp))
    by_hand = Split(np.arange(48), np.arange(48, 54), np.arange(54, 60), seed=None)
    assert make_pool(toy, m=3, group="all_weak", split=by_hand).split is by_hand


# ----------------------------------------------------------------------------- 7. training_labels
@pytest.mark.parametrize("Y, match", [
    (np.full((3, 3), 7.0), r"Y_train must hold finite scores in \[0, 1\] .*; got 7\.0 at row 0, column 0"),
    (np.array([[0.5, np.nan, 0.2]]), r"Y_train must hold finite scores .*; got nan at row 0, column 1"),
    (np.zeros(3), r"Y_train must be \(n_prompts, m\) with 1 <= m <= 40 .*; got shape \(3,\)"),
    (np.zeros((3, 41)), r"1 <= m <= 40 \(the models of benchmark 'toy'\); got shape \(3, 41\)"),
    (np.zeros((3, 0)), r"got shape \(3, 0\)"),
    ("abc", r"Y_train must be numeric \(scores in \[0, 1\]\); got 'abc'"),
])
@pytest.mark.parametrize("graded", [False, True])
def test_training_labels_refuses_what_is_not_a_pools_scores(Y, match, graded):
    _one_line(InputError, match, training_labels, _bench(40, 30, graded=graded), Y)


def test_training_labels_of_valid_scores_are_unchanged():
    Y = np.array([[0.5, 0.49, 0.2], [0.0, 0.0, 0.0], [1.0, 0.96, 0.94]])
    np.testing.assert_array_equal(training_labels(_bench(20, 30, graded=True), Y), [[1, 1, 0], [1, 1, 1], [1, 1, 0]])
    Yb = np.array([[1, 0, 1], [0, 0, 1]])
    np.testing.assert_array_equal(training_labels(_bench(20, 30), Yb), Yb)


# ----------------------------------------------------------------------------- 8. make_pools options
def test_make_pools_options(toy):
    _one_line(ParameterError, "skip_too_large must be True or False; got 'no'", make_pools, toy, ms=[100],
              skip_too_large="no")
    _one_line(ParameterError, r"ms must name at least one pool size; got \[\]", make_pools, toy, ms=[])
    _one_line(ParameterError, r"groups must name at least one group; got \(\)", make_pools, toy, groups=())
    _one_line(ParameterError, "ms must name at least one pool size; got None", make_pools, toy, ms=None)
    assert make_pools(toy, ms=[100], skip_too_large=True) == []  # asked for: every pair too large
    assert [(p.m, p.group) for p in make_pools(toy, ms=3, groups="all_weak")] == [(3, "all_weak")]


# ----------------------------------------------------------------------------- integers and choices
def test_integer_options_and_choices_are_named_with_their_flags(toy):
    from routereval.pools import PoolBuilder
    from routereval.sources.synth import oracle_curve, synth_matrix

    _one_line(ParameterError, r"^seed \(--seed\) must be an int in \[0, 2\*\*32 - 1\]; got 4294967296$", make_split,
              toy, seed=2**32)
    assert make_split(toy, seed=np.uint32(2**32 - 1)).seed == 2**32 - 1
    _one_line(ParameterError, r"^k must be an int >= 3; got 2$", make_kfold, toy, k=2)
    _one_line(ParameterError, r"^draw must be an int >= 0; got -1$", PoolBuilder(toy).pool, 3, "random", draw=-1)
    _one_line(ParameterError, r"^seed \(--seed\) must be an int >= 0; got -2$", synth_matrix, [0.5], 10, seed=-2)
    _one_line(ParameterError, r"^n_prompts must be an int >= 1; got 0$", synth_matrix, [0.5], 0)
    _one_line(ParameterError, r"^each of pool_sizes must be an int in \[1, 2\]; got 3$", oracle_curve,
              np.ones((2, 4)), [1, 3])
    _one_line(InputError, r"^unknown protocol 'dirty' \(--protocol\); expected one of", make_split, toy,
              protocol="dirty")
    _one_line(InputError, r"^unknown missing-records policy 'x' \(--missing\)", make_split, toy, missing="x")
    _one_line(InputError, r"^unknown group 'best' \(--group\)", make_pool, toy, m=3, group="best")
    _one_line(InputError, r"^unknown group 'best' \(--groups\)", make_pools, toy, ms=3, groups=["random", "best"])
