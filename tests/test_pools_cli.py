"""``routereval pools`` on a stored corpus, the official router-dataset export, and real MMLU-Pro."""

from __future__ import annotations

import numpy as np
import pytest

from routereval.data.model import Benchmark
from routereval.data.store import open_corpus, write_corpus
from routereval.pools import PoolBuilder, make_pool, make_pools, make_split, missing_policy, oracle_score, pool_scores

from test_pools import _bench


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("pools") / "corpus"
    arc = _bench(300, 500, seed=1, name="arc", subsets=["arc_challenge"] * 500)
    arc.embeddings["synth"] = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    arc.texts = np.array([f"question {j}?" for j in range(500)], dtype=object)
    tqa = _bench(200, 300, seed=2, graded=True, name="truthfulqa")
    write_corpus([arc, tqa, _bench(50, 100, seed=3, name="custom")], path)
    return path


def test_cli_json_matches_library(cli, corpus):
    r = cli("pools", corpus, "--benchmark", "arc", "--m", "3,10", "--json")
    assert r.code == 0, r.err
    out = r.json()
    assert out["benchmark"] == "arc" and out["protocol"] == "clean" and out["missing"]["policy"] == "complete"
    assert out["split"] == "random" and (out["n_train"], out["n_val"], out["n_test"]) == (400, 50, 50)
    assert [(p["m"], p["group"]) for p in out["results"]] == [(m, g) for m in (3, 10)
                                                            for g in ("all_strong", "all_weak", "strong_to_weak")]
    bench = open_corpus(corpus, benchmarks=["arc"])["arc"]
    for p in out["results"]:
        pool = make_pool(bench, m=p["m"], group=p["group"])
        te = pool_scores(bench, pool)[2]
        assert p["models"] == pool.model_names.tolist()
        assert p["oracle"] == pytest.approx(oracle_score(te))
        assert p["best_single"] == pytest.approx(te[:, pool.best_single].mean())
        assert p["v_r"] == pytest.approx(p["oracle"] / 0.852)
        assert p["v_b"] == pytest.approx(p["oracle"] / p["best_single"])
        assert (p["n_train"], p["n_val"], p["n_test"]) == (400, 50, 50)
        paper = make_pool(bench, m=p["m"], group=p["group"], protocol="paper")
        assert p["paper_models"] == paper.model_names.tolist()
        # the paper's pools were chosen on all prompts, test included: their test oracle is never lower on average
    clean = np.mean([p["oracle"] for p in out["results"]])
    leaky = np.mean([p["paper_oracle"] for p in out["results"]])
    assert leaky >= clean


def test_cli_table_default_m_skips_with_note_and_no_reference(cli, corpus):
    r = cli("pools", corpus, "--benchmark", "custom", "--protocol", "paper")
    assert r.code == 0, r.err
    assert "skipped m=100 all_weak" in r.out and "skipped m=1000" in r.out
    assert "n/a" in r.out  # no reference model for a benchmark outside the catalog
    assert "paper oracle" not in r.out
    r = cli("pools", corpus, "--benchmark", "arc", "--m", "3")
    assert "paper oracle" in r.out and "0.852" in r.out


@pytest.mark.parametrize("args,needle", [
    (["--benchmark", "nope"], "unknown benchmark 'nope'"),
    (["--benchmark", "arc", "--m", "1000"], "m=1000 is larger than"),
    (["--benchmark", "arc", "--m", "0"], "m (--m) must be an int >= 1"),
    (["--benchmark", "arc", "--m", "3,x"], "--m: 'x' is not an integer"),
    (["--benchmark", "arc", "--groups", "all_medium"], "unknown group 'all_medium'"),
    (["--benchmark", "arc", "--protocol", "leaky"], "unknown protocol 'leaky'"),
    (["--benchmark", "arc", "--missing", "drop"], "missing-records policy"),
])
def test_cli_bad_requests_one_line_exit_2(cli, corpus, args, needle):
    r = cli("pools", corpus, *args)
    assert r.code == 2
    assert needle in r.err and r.err.count("\n") == 1 and r.out == ""


def test_cli_missing_corpus_exit_2(cli, tmp_path):
    r = cli("pools", tmp_path / "absent", "--benchmark", "arc")
    assert r.code == 2 and r.err.count("\n") == 1


def _read_pickle(path):
    try:  # the import engineer's reader, once it exists
        from routereval.sources.pickles import load_router_dataset, router_dataset_pools
    except ImportError:
        from routereval.sources.safe_pickle import safe_load

        raw = safe_load(path)
        pools = [(m, g, [str(x) for x in raw[lvl][m][g]["model"]]) for lvl in ("easy", "hard")
                 for m in raw[lvl] for g in raw[lvl][m] if raw[lvl][m][g]["model"] is not None]
        return raw, pools
    raw = load_router_dataset(path)
    return raw, [(m, g, [str(x) for x in names]) for m, g, names in router_dataset_pools(raw)]


@pytest.mark.parametrize("name,protocol", [("arc", "paper"), ("truthfulqa", "clean")])
def test_export_router_dataset_round_trip(cli, corpus, tmp_path, name, protocol):
    out = tmp_path / "export"
    r = cli("pools", corpus, "--benchmark", name, "--protocol", protocol, "--export-router-dataset", out, "--json")
    assert r.code == 0, r.err
    # the file the reference's test_router.py reads: data/router_dataset/{scenario}_router_dataset.pkl
    path = out / ({"arc": "arc", "truthfulqa": "harness_truthfulqa_mc_0"}[name] + "_router_dataset.pkl")
    assert r.json()["export"]["path"] == str(path)
    raw, pools = _read_pickle(path)
    bench = open_corpus(corpus, benchmarks=[name])[name]
    built = make_pools(bench, ms=(3, 5, 10, 100), protocol=protocol)
    assert sorted((m, g, names) for m, g, names in pools) == sorted((p.m, p.group, p.model_names.tolist()) for p in built)
    assert 1000 not in raw["hard"]  # too few models: left out
    assert any("m=1000" in n for n in r.json()["export"]["notes"])
    # the table may show one size; the file is still the whole grid, and the text output says so
    text = cli("pools", corpus, "--benchmark", name, "--protocol", protocol, "--m", "3", "--export-router-dataset", out)
    assert text.code == 0 and "the reference's grid: easy m = 3, 5; hard m = 10, 100, 1000" in text.out
    assert "note (the file): m=1000" in text.out and sorted(_read_pickle(path)[0]["hard"]) == sorted(raw["hard"])
    split = make_split(bench)
    np.testing.assert_array_equal(raw["split_index"]["test_indices"], split.test)
    p = built[0]
    d = raw["easy"][3][p.group]["data"]
    for key, arr in zip(("train_score", "val_score", "test_score"), pool_scores(bench, p)):
        np.testing.assert_array_equal(d[key], arr)
    assert d["train_score"].shape == (len(split.train), 3)
    if name == "arc":
        assert "train_label" not in d
        np.testing.assert_array_equal(raw["embedding"]["val_embed"], np.asarray(bench.embeddings["synth"])[split.val])
        assert raw["prompt"]["test_prompt"][0] == bench.texts[split.test[0]]
    else:
        lab = d["train_label"]
        np.testing.assert_array_equal(lab, d["train_score"] >= 0.95 * d["train_score"].max(axis=1, keepdims=True))
        assert raw["embedding"]["train_embed"].shape == (len(split.train), 0)


# test_router.py line 7 of the reference: the names it opens as data/router_dataset/{name}_router_dataset.pkl
REFERENCE_DATASETS = ['arc', 'hellaswag', 'mmlu', 'harness_truthfulqa_mc_0', 'winogrande', 'gsm8k', 'ifeval', 'bbh',
                      'gpqa', 'musr', 'math', 'mmlu_pro']


def test_export_names_every_catalog_benchmark_as_the_reference_reads_it(tmp_path):
    from routereval.catalog import BENCHMARKS
    from routereval.pools.export import export_router_dataset
    from routereval.sources.pickles import load_router_dataset

    out = tmp_path / "router_dataset"
    written = {}
    for i, name in enumerate(BENCHMARKS):
        bench = _bench(12, 40, seed=i, name=name, graded=not BENCHMARKS[name].binary)
        path, _ = export_router_dataset(bench, out, protocol="paper")
        written[name] = path
    assert len(written) == 12
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{d}_router_dataset.pkl" for d in REFERENCE_DATASETS)
    assert written["truthfulqa"].name == "harness_truthfulqa_mc_0_router_dataset.pkl"
    for name, path in written.items():  # each file holds its own benchmark's pools
        assert path.name == BENCHMARKS[name].file_stem + ".pkl"
        assert load_router_dataset(path)["easy"][3]["all_strong"]["data"]["test_score"].shape[1] == 3
    # a benchmark outside the catalog keeps its own name
    path, _ = export_router_dataset(_bench(12, 40, seed=0, name="custom"), tmp_path / "other")
    assert path.name == "custom_router_dataset.pkl"


def test_exported_router_dataset_imports_back_with_its_split_and_pools(cli, corpus, tmp_path):
    """export -> data import (router-dataset-pickle) -> pools: the same split and the same pools."""
    out = tmp_path / "export"
    assert cli("pools", corpus, "-b", "arc", "--protocol", "paper", "--export-router-dataset", out).code == 0
    spec = tmp_path / "spec.toml"
    spec.write_text('[[benchmark]]\nformat = "router-dataset-pickle"\npath = "export/arc_router_dataset.pkl"\n')
    r = cli("data", "import", spec, "--out", tmp_path / "back", "--json")
    assert r.code == 0, r.err
    orig = open_corpus(corpus, benchmarks=["arc"])["arc"]
    back = open_corpus(tmp_path / "back")["arc"]
    s0, s1 = make_split(orig), make_split(back)
    for a, b in ((s0.train, s1.train), (s0.val, s1.val), (s0.test, s1.test)):
        np.testing.assert_array_equal(a, b)
    # every pool of the file is in the imported benchmark, with the same scores on the same test prompts
    _, pools = _read_pickle(out / "arc_router_dataset.pkl")
    for m, g, names in pools:
        a = np.asarray(orig.scores)[orig.model_index(names)][:, s0.test]
        b = np.asarray(back.scores)[back.model_index(names)][:, s1.test]
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def mmlu_pro(shared_data):
    """The real MMLU-Pro records (31 models x 12,032 questions), read directly with pyarrow."""
    import pyarrow.compute as pc
    import pyarrow.csv as pv

    t = pv.read_csv(shared_data / "mmlu_pro" / "mmlu_pro_correctness_long.csv.gz",
                    convert_options=pv.ConvertOptions(include_columns=["model", "question_id", "category", "correct"]))
    models = np.array(pc.unique(t["model"]).to_pylist(), dtype=object)
    models.sort()
    q = t["question_id"].to_numpy()
    qids, qcol = np.unique(q, return_inverse=True)
    mrow = np.searchsorted(models, np.array(t["model"].to_pylist(), dtype=object))
    S = np.full((len(models), len(qids)), np.nan, dtype=np.float32)
    S[mrow, qcol] = t["correct"].to_numpy()
    cat = np.empty(len(qids), dtype=object)
    cat[qcol] = np.array(t["category"].to_pylist(), dtype=object)
    return Benchmark("mmlu_pro", models=models, prompt_ids=[str(x) for x in qids], subsets=cat, scores=S)


def test_real_mmlu_pro_full_pool_oracle(mmlu_pro):
    assert mmlu_pro.shape == (31, 12032)
    # the 31-model pool under the 'prompts' policy: all prompts where every model was evaluated
    pol = missing_policy(mmlu_pro, "prompts")
    p = make_pool(mmlu_pro, m=31, group="random", missing="prompts")
    got = oracle_score(np.concatenate(pool_scores(mmlu_pro, p)))
    # independent: straight from the dense matrix
    S = np.asarray(mmlu_pro.scores)
    full = ~np.isnan(S).any(axis=0)
    assert np.array_equal(np.flatnonzero(full), pol.prompts) and full.sum() < 12032
    want = float(np.nanmax(S[:, full], axis=0).astype(np.float64).mean())
    assert got == pytest.approx(want, abs=1e-12)
    assert 0.72 < want < 1.0  # above the best model (GPT-4o, 0.72)
    # the default policy keeps every prompt and drops the partially evaluated models
    auto = missing_policy(mmlu_pro)
    assert auto.name == "models" and len(auto.models) == 27 and len(auto.prompts) == 12032


def test_real_mmlu_pro_random_pool_oracle_grows_with_m(mmlu_pro):
    b = PoolBuilder(mmlu_pro)
    means = []
    for m in (1, 3, 5, 10, 20):
        vals = [oracle_score(pool_scores(mmlu_pro, b.pool(m, "random", draw=d))[2]) for d in range(8)]
        means.append(np.mean(vals))
    assert all(x < y for x, y in zip(means, means[1:])), means
    # stratified split over the 14 categories: each category cut 80/10/10
    sp = b.split
    cats = mmlu_pro.subsets
    for c in set(cats.tolist()):
        n = int((cats == c).sum())
        assert int((cats[sp.train] == c).sum()) == int(0.8 * n)
