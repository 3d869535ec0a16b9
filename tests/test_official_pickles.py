"""The official RouterEval pickles (routereval-pickle, router-dataset-pickle) into the corpus store."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from routereval.catalog import BENCHMARKS
from routereval.data.store import open_corpus
from routereval.errors import InputError, ParameterError
from routereval.sources.pickles import (
    load_router_dataset,
    read_router_dataset_pickle,
    read_routereval_pickle,
    router_dataset_benchmark,
    router_dataset_pools,
)

sys.path.insert(0, str(Path(__file__).parent))
from official_fixtures import (  # noqa: E402
    Leaderboard,
    build_router_dataset,
    dump_pickle,
    model_names,
    random_router_dataset,
    write_leaderboard,
    write_official_tree,
    write_router_dataset,
)


def _spec(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


@pytest.fixture
def tree(tmp_path):
    return write_official_tree(tmp_path / "data", seed=3)


# ---------------------------------------------------------------------- routereval-pickle via the CLI
def test_import_official_leaderboards_via_cli(tmp_path, tree, cli):
    spec = _spec(tmp_path / "spec.toml", '[[benchmark]]\nformat = "routereval-pickle"\npath = "data"\n')
    r = cli("data", "import", spec, "--out", tmp_path / "corpus", "--json")
    assert r.code == 0, r.err
    info = r.json()
    expected = [b for key in ("old", "new", "mmlu_pro") for b in tree[key].benchmarks()]
    assert list(info["benchmarks"]) == expected
    assert info["benchmarks"]["truthfulqa"]["binary"] is False
    assert info["benchmarks"]["gsm8k"]["binary"] is True

    corpus = open_corpus(tmp_path / "corpus")
    for key, lb in tree.items():
        for name in lb.benchmarks():
            b = corpus[name]
            assert b.models.tolist() == lb.models
            # graded scores are kept exactly (float64), binary ones lose nothing in float32
            np.testing.assert_array_equal(b.scores, lb.scores(name))
            assert b.scores.dtype == (np.float32 if BENCHMARKS[name].binary else np.float64)
            assert b.prompt_ids.tolist() == lb.prompt_ids(name)
            assert b.texts.tolist() == lb.texts(name).tolist()
            subs = [s.name for s in BENCHMARKS[name].subsets if s.official in lb.correctness]
            assert b.subset_names == subs
            assert sorted(b.embeddings) == ["official/RoBERTa", "official/sentence_bert"]
            for enc in ("RoBERTa", "sentence_bert"):
                np.testing.assert_array_equal(b.embeddings[f"official/{enc}"], lb.embedding(name, enc))
    # leaderboards share models, as the real ones do; the models table is their union
    assert len(corpus.models) == len(set().union(*(lb.models for lb in tree.values())))


def test_mmlu_subsets_keep_catalog_order(tmp_path, tree):
    # the file lists virology before abstract_algebra: the catalog (reference) order wins
    lb = tree["old"]
    lb.correctness = dict(reversed(list(lb.correctness.items())))
    write_leaderboard(tmp_path / "data", lb)
    [mmlu] = read_routereval_pickle({"format": "routereval-pickle", "path": "data", "benchmarks": ["mmlu"]},
                                    base_dir=tmp_path, spec_file=tmp_path / "s.toml")
    assert mmlu.subset_names == ["abstract_algebra", "virology"]
    assert mmlu.prompt_ids[:2].tolist() == ["abstract_algebra/0", "abstract_algebra/1"]
    assert mmlu.prompt_ids[-1] == f"virology/{len(lb.correctness['harness_hendrycksTest_virology_5']) - 1}"


def test_options_restrict_leaderboards_benchmarks_embeddings(tmp_path, tree):
    kw = dict(base_dir=tmp_path, spec_file=tmp_path / "s.toml")
    out = read_routereval_pickle({"format": "routereval-pickle", "path": "data", "leaderboards": ["new"],
                                  "embeddings": ["RoBERTa"], "prompts": False}, **kw)
    assert [b.name for b in out] == ["ifeval", "bbh", "gpqa"]
    assert all(list(b.embeddings) == ["official/RoBERTa"] and b.texts is None for b in out)
    # reference scenario names are accepted too
    out = read_routereval_pickle({"format": "routereval-pickle", "path": "data",
                                  "benchmarks": ["harness_truthfulqa_mc_0", "mmlu_pro"], "embeddings": []}, **kw)
    assert [(b.name, b.binary, b.embeddings) for b in out] == [("truthfulqa", False, {}), ("mmlu_pro", True, {})]


def test_without_prompt_and_embed_files(tmp_path):
    lb = Leaderboard("mmlu_pro", model_names(3), {"mmlu_pro": np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])})
    write_leaderboard(tmp_path / "data", lb, prompts=False, embeddings=False)
    [b] = read_routereval_pickle({"path": "data"}, base_dir=tmp_path, spec_file=tmp_path / "s.toml")
    assert b.texts is None and b.embeddings == {}
    np.testing.assert_array_equal(b.scores, [[1, 0], [0, 0], [1, 1]])


# ---------------------------------------------------------------------- routereval-pickle: bad input
def _bad(tmp_path, table, match, exc=InputError):
    with pytest.raises(exc, match=match) as e:
        read_routereval_pickle({"format": "routereval-pickle", "path": "data", **table},
                               base_dir=tmp_path, spec_file=tmp_path / "s.toml")
    assert "\n" not in str(e.value)


def test_unknown_subscenario_is_named(tmp_path):
    lb = Leaderboard("new", model_names(2), {"bbh_snarks": np.ones((2, 2)), "bbh_made_up_task": np.ones((2, 2))})
    write_leaderboard(tmp_path / "data", lb, prompts=False, embeddings=False)
    _bad(tmp_path, {}, r"leaderboard_new\.pkl: subscenario\(s\) 'bbh_made_up_task' are not part of leaderboard 'new'")


def test_bad_structures(tmp_path):
    root = tmp_path / "data"
    _bad(tmp_path, {}, "no such folder")
    root.mkdir()
    _bad(tmp_path, {}, "no official score file found")
    f = root / "leaderboard_score" / "leaderboard_mmlu_pro.pkl"
    dump_pickle({"models": ["a"]}, f)
    _bad(tmp_path, {}, r"leaderboard_mmlu_pro\.pkl: the file: missing key 'model'")
    dump_pickle({"model": ["a", "b"], "data": {"mmlu_pro": {"correctness": np.ones((4, 3))}}}, f)
    _bad(tmp_path, {}, r"\['correctness'\]: shape \(4, 3\), expected \(prompts, 2 models\)")
    dump_pickle({"model": ["a", "b"], "data": {"mmlu_pro": {"correctness": np.full((4, 2), 1.5)}}}, f)
    _bad(tmp_path, {}, r"outside \[0, 1\]")
    dump_pickle({"model": ["a", "b"], "data": {"mmlu_pro": {"correctness": np.ones((4, 2))}}}, f)
    dump_pickle({"mmlu_pro": ["only one text"]}, root / "leaderboard_prompt" / "leaderboard_mmlu_pro_prompt.pkl")
    _bad(tmp_path, {}, r"leaderboard_mmlu_pro_prompt\.pkl: \['mmlu_pro'\]: 1 prompts, expected 4")
    _bad(tmp_path, {"prompts": False, "embeddings": ["RoBERTa"]}, r"RoBERTa_result\.pkl: no embeddings 'RoBERTa'")
    _bad(tmp_path, {"leaderboards": ["v3"]}, "option 'leaderboards': unknown 'v3'", ParameterError)
    _bad(tmp_path, {"benchmarks": ["nope"]}, "unknown benchmark 'nope'", ParameterError)
    _bad(tmp_path, {"benchmarks": ["gsm8k"], "leaderboards": ["mmlu_pro"]}, "not on the selected leaderboards",
         ParameterError)
    _bad(tmp_path, {"colour": "blue"}, "unknown option", ParameterError)


def test_bad_input_via_cli_writes_nothing(tmp_path, cli):
    lb = Leaderboard("new", model_names(2), {"bbh_not_a_task": np.ones((2, 2))})
    write_leaderboard(tmp_path / "data", lb, prompts=False, embeddings=False)
    spec = _spec(tmp_path / "spec.toml", '[[benchmark]]\nformat = "routereval-pickle"\npath = "data"\n')
    r = cli("data", "import", spec, "--out", tmp_path / "corpus")
    assert r.code == 2 and "'bbh_not_a_task'" in r.err and len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "corpus").exists()


# ---------------------------------------------------------------------- router-dataset-pickle
def test_router_dataset_import_via_cli(tmp_path, cli):
    raw, truth = random_router_dataset("gpqa", n_models=12, seed=1)  # full catalog prompt counts (1,192)
    path = write_router_dataset(tmp_path / "data", "gpqa", raw, numpy1=True)
    spec = _spec(tmp_path / "spec.toml",
                 '[[benchmark]]\nformat = "router-dataset-pickle"\npath = "data/router_dataset/gpqa_router_dataset.pkl"\n')
    r = cli("data", "import", spec, "--out", tmp_path / "corpus", "--json")
    assert r.code == 0, r.err
    b = open_corpus(tmp_path / "corpus")["gpqa"]
    pools = router_dataset_pools(load_router_dataset(path))
    union = list(dict.fromkeys(m for _, _, names in pools for m in names))
    assert b.models.tolist() == union
    rows = [truth["models"].index(m) for m in union]
    np.testing.assert_array_equal(b.scores, truth["scores"][rows].astype(np.float32))
    assert b.texts.tolist() == truth["texts"].tolist()
    np.testing.assert_array_equal(b.embeddings["official/router_dataset"], truth["embeddings"])
    # the catalog's subsets and ids, the same as routereval-pickle gives the same prompts
    assert b.subset_names == ["diamond", "extended", "main"]
    assert b.prompt_ids[0] == "diamond/0" and b.prompt_ids[198] == "extended/0" and b.prompt_ids[-1] == "main/447"


def test_router_dataset_graded_and_pools(tmp_path):
    raw, truth = random_router_dataset("truthfulqa", n_models=12, seed=2, subset_sizes=[40])
    path = write_router_dataset(tmp_path, "harness_truthfulqa_mc_0", raw)
    [b] = read_router_dataset_pickle({"path": path.name}, base_dir=path.parent, spec_file=tmp_path / "s.toml")
    assert b.name == "truthfulqa" and not b.binary
    # not the catalog's prompt count: one subset, positional ids
    assert b.subset_names == ["truthfulqa"] and b.prompt_ids[5] == "truthfulqa/5"
    pools = router_dataset_pools(load_router_dataset(path))
    assert [(m, g) for m, g, _ in pools] == [(m, g) for m in (3, 5, 10)
                                             for g in ("all_strong", "all_weak", "strong_to_weak")]
    assert pools[0][2] == list(raw["easy"][3]["all_strong"]["model"])
    # scores rebuilt at split_index positions equal the truth
    rows = [truth["models"].index(m) for m in b.models.tolist()]
    np.testing.assert_array_equal(b.scores, truth["scores"][rows])  # graded: exact, float64


def test_router_dataset_conflicting_scores(tmp_path):
    raw, _ = random_router_dataset("gsm8k", n_models=12, seed=0, subset_sizes=[30])
    pool = raw["easy"][5]["all_strong"]
    name = str(pool["model"][0])
    pool["data"]["test_score"] = pool["data"]["test_score"].copy()
    pool["data"]["test_score"][0, 0] = 1 - pool["data"]["test_score"][0, 0]
    path = write_router_dataset(tmp_path, "gsm8k", raw)
    with pytest.raises(InputError, match=rf"model '{name}' has different scores in pool \[.*\] and pool \['easy'\]\[5\]\['all_strong'\]"):
        read_router_dataset_pickle({"path": path.name}, base_dir=path.parent, spec_file=tmp_path / "s.toml")


@pytest.mark.parametrize("mutate, match", [
    (lambda r: r.pop("split_index"), r"the file: missing key 'split_index'"),
    (lambda r: r["split_index"].update(test_indices=r["split_index"]["val_indices"]), "permutation"),
    (lambda r: r["embedding"].update(val_embed=r["embedding"]["val_embed"][:1]), r"\['val_embed'\]: 1 rows, expected 3"),
    (lambda r: r["prompt"].update(train_prompt=r["prompt"]["train_prompt"][:-1]), r"\['train_prompt'\]: 23 prompts"),
    (lambda r: r["easy"][3]["all_weak"]["data"].update(val_score=np.ones((3, 4))),
     r"\['easy'\]\[3\]\['all_weak'\]\['data'\]\['val_score'\]: shape \(3, 4\), expected \(3, 3\)"),
    (lambda r: r["hard"][10]["all_strong"].pop("model"), r"\['hard'\]\[10\]\['all_strong'\]: missing key 'model'"),
    (lambda r: (r.pop("easy"), r.pop("hard")), "no candidate pools"),
    (lambda r: r["easy"].update({"three": r["easy"][3]}), "pool size key 'three' is not an integer"),
])
def test_router_dataset_structure_errors(tmp_path, mutate, match):
    raw, _ = random_router_dataset("gsm8k", n_models=12, seed=0, subset_sizes=[30])
    mutate(raw)
    path = write_router_dataset(tmp_path, "gsm8k", raw)
    with pytest.raises(InputError, match=match) as e:
        load_router_dataset(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_router_dataset_name_from_file_or_option(tmp_path):
    raw, _ = random_router_dataset("musr", n_models=12, seed=0, subset_sizes=[10, 10, 10])
    dump_pickle(raw, tmp_path / "my_pools.pkl")
    kw = dict(base_dir=tmp_path, spec_file=tmp_path / "s.toml")
    with pytest.raises(ParameterError, match="cannot tell the benchmark"):
        read_router_dataset_pickle({"path": "my_pools.pkl"}, **kw)
    [b] = read_router_dataset_pickle({"path": "my_pools.pkl", "name": "musr"}, **kw)
    assert b.name == "musr" and b.n_prompts == 30


def test_round_trip_matches_leaderboard_import(tmp_path):
    """The same data via routereval-pickle and via a router dataset gives the same benchmark."""
    sizes = {"gpqa_diamond": 198, "gpqa_extended": 546, "gpqa_main": 448}
    tree = write_official_tree(tmp_path / "data", seed=5, n_models=12, subsets={"new": sizes}, encoders=("RoBERTa",))
    lb = tree["new"]
    [from_lb] = read_routereval_pickle({"path": "data"}, base_dir=tmp_path, spec_file=tmp_path / "s.toml")
    raw = build_router_dataset(lb.scores("gpqa"), lb.models, subset_sizes=list(sizes.values()),
                               texts=lb.texts("gpqa"), embeddings=lb.embedding("gpqa", "RoBERTa"))
    from_rd = router_dataset_benchmark(raw, name="gpqa")
    rows = from_lb.model_index(from_rd.models.tolist())
    assert from_rd.prompt_ids.tolist() == from_lb.prompt_ids.tolist()
    assert from_rd.subsets.tolist() == from_lb.subsets.tolist()
    np.testing.assert_array_equal(from_rd.scores, from_lb.scores[rows])
    np.testing.assert_array_equal(from_rd.embeddings["official/router_dataset"], from_lb.embeddings["official/RoBERTa"])
