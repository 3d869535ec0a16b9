"""The Python entry points take one name where they take names, and refuse the wrong kind of argument in one line."""

from __future__ import annotations

import numpy as np
import pytest

from routereval.errors import InputError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from routereval.sources.synth import synth_corpus

    out = tmp_path_factory.mktemp("api") / "tiny"
    synth_corpus(out, scale="tiny", seed=0)
    return out


def test_one_name_is_one_name_not_its_characters(tiny):
    from routereval.data.store import open_corpus
    from routereval.experiments.scaling import run_scaling
    from routereval.pools import make_pools

    c = open_corpus(tiny, benchmarks="mmlu")
    assert list(c.benchmarks) == ["mmlu"] and "mmlu" in c and "arc" not in c
    pools = make_pools(c["mmlu"], ms=3, groups="all_strong")
    assert [(p.m, p.group) for p in pools] == [(3, "all_strong")]
    res = run_scaling(c, benchmarks="mmlu", groups="random", protocols="paper", ms=2, ps=0.5, draws=2)
    assert {r["group"] for r in res.curves} == {"random"} and {r["protocol"] for r in res.curves} == {"paper"}
    assert {r["m"] for r in res.curves if r["curve"] == "oracle"} == {2}
    with pytest.raises(InputError, match="groups: expected one value or a list"):
        make_pools(c["mmlu"], ms=3, groups=object())


def test_corpus_and_pool_print_in_a_line(tiny):
    from routereval.data.store import open_corpus
    from routereval.pools import make_pools

    c = open_corpus(tiny)
    assert repr(c).startswith("Corpus(40 models; benchmarks: arc, ") and "(12 in all)" in repr(c)
    pool = make_pools(c["mmlu"], ms=5, groups="all_strong")[0]
    assert "\n" not in repr(pool) and "m=5 all_strong" in repr(pool) and "(5 in all)" in repr(pool)


def test_result_objects_print_in_a_line(tiny, tmp_path):
    # a notebook cell ending with one showed its every row: a study's 23,000 characters, a scaling result's 92,000
    from pathlib import Path

    from routereval.coldstart import run_study, select_anchors
    from routereval.coldstart.anchors import AdaptiveTest
    from routereval.data.store import open_corpus
    from routereval.experiments.scaling import run_scaling
    from routereval.experiments.sweep import SweepPlan
    from routereval.pools import make_split
    from routereval.reports.tables import Report

    c = open_corpus(tiny)
    split = make_split(c["mmlu"])
    study = run_study(tiny, benchmark="mmlu", router="irt", params={"max_epochs": 5}, m=4, group="random",
                      anchors=(5,), methods=("random",), seeds=1, models=1)
    shown = {
        "split": (split, f"Split(random of 'mmlu': train {len(split.train)}, val {len(split.val)}, test "
                         f"{len(split.test)} prompts, seed 42)"),
        "anchors": (select_anchors(c["mmlu"], 7, "random"), "Anchors(random, k=7, weighted; index ["),
        "models": (c.models, "ModelTable(40 models: "),
        "adaptive": (AdaptiveTest(np.ones((6, 2)), np.zeros(6), np.zeros(2), np.eye(2)),
                     "AdaptiveTest(6 candidates, 0 asked, D-optimal)"),
        "scaling": (run_scaling(c, benchmarks="mmlu", groups="random", ms=2, draws=2), "ScalingResult(mmlu: "),
        "study": (study, "StudyResult('mmlu', router irt, m=4 random: 1 rows, 1 held-out models x methods random x k 5 "
                         "x 1 seed; pretrain pool)"),
        "report": (Report([], ["clean"], ["mmlu"], [], [0], [], [], 0, 0, "R", 1000), "Report(0 tables from 'R': "),
        "plan": (SweepPlan(None, Path("c"), "x", [], Path("o"), [], {"mmlu": 100}), "SweepPlan(0 cells, 0 rows over mmlu"),
    }
    for what, (obj, start) in shown.items():
        text = repr(obj)
        assert text.startswith(start) and "\n" not in text and len(text) < 300, (what, text)
    # built by hand: a list of indices, a partial meta, a publisher split's seed of None, a report of studies alone
    from routereval.coldstart.anchors import Anchors
    from routereval.coldstart.study import StudyResult

    assert repr(Anchors([1, 2, 3], None, "random")) == "Anchors(random, k=3, no weights; index [1, 2, 3])"
    assert repr(StudyResult([{}], {"benchmark": "mmlu"})) == "StudyResult(1 rows)"
    assert repr(split.__class__(split.train, split.val, split.test, seed=None, name="publisher")).endswith("prompts)")
    assert repr(Report([], [], [], [], [], [], [], 0, 0, "", 1000, [object()])) == "Report(1 studies, no sweep results)"
    from routereval.coldstart.output import write_study

    write_study(study, tmp_path / "study")
    assert "the train prompts; seed 0; pre-training pool" in (tmp_path / "study" / "summary.md").read_text()  # not 0-0


def test_evaluate_checks_n_boot_and_one_document_holds_one_cell(tiny):
    from routereval.errors import ParameterError
    from routereval.evaluate import evaluate, results_document

    kw = dict(benchmark="mmlu", m=3, group="all_strong", n_boot=20)
    a = evaluate(tiny, router="random", **kw)
    b = evaluate(tiny, router="best_single", **kw)
    assert [r["router"] for r in results_document([a, b])["results"]] == ["random", "best_single"]
    other = evaluate(tiny, router="random", **{**kw, "m": 5})
    with pytest.raises(InputError, match="results of different cells"):
        results_document([a, other])
    with pytest.raises(InputError, match="non-empty list"):
        results_document(a)
    for bad in (0, -1, 10.5):
        with pytest.raises(ParameterError, match="n_boot"):
            evaluate(tiny, router="random", **{**kw, "n_boot": bad})
    with pytest.raises(InputError, match="non-empty list of evaluate"):
        results_document([{}])


def test_evaluate_takes_numpy_scalars_and_refuses_the_wrong_kind_of_argument(tiny, tmp_path):
    import json

    from routereval.errors import ParameterError
    from routereval.evaluate import evaluate, fit_router
    from routereval.pools import make_split
    from routereval.data.store import open_corpus
    from routereval.routers import load_router

    kw = dict(benchmark="mmlu", m=3, group="all_strong", n_boot=20)
    res = evaluate(tiny, router="knn", params={"k": np.int64(3)}, seed=np.int64(3), **kw)
    doc = json.loads(json.dumps(res))  # plain JSON: numpy scalars came back as Python numbers
    assert doc["seed"] == 3 and doc["params"] == {"k": 3}
    saved = fit_router(tiny, router="knn", params={"k": np.int64(3)}, seed=np.int64(1), save=tmp_path / "r",
                       benchmark="mmlu", m=3, group="all_strong")
    assert saved["pool"]["seed"] == 1 and load_router(tmp_path / "r").router.k == 3
    split = make_split(open_corpus(tiny)["mmlu"])
    for bad, err, msg in ((dict(params="k=7"), ParameterError, "params must be a dict of the router's hyperparameters"),
                          (dict(router=["knn", "mlp"]), ParameterError, "router must be a registry name"),
                          (dict(seed=-1), InputError, r"seed \(--seed\) must be an int"),
                          (dict(split=split), InputError, "^split must be a split name: auto, publisher or random; got Split$"),
                          (dict(progress="yes"), InputError, "progress must be a function")):
        with pytest.raises(err, match=msg):
            evaluate(tiny, **{"router": "knn", **kw, **bad})


@pytest.mark.parametrize("name", ["oracle", "mix"])
def test_oracles_refuse_missing_scores(name):
    from routereval.routers import make_router

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(20, 3)), (rng.random((20, 4)) < 0.5).astype(float)
    r = make_router(name).fit(X, Y)
    S = Y[:5].copy()
    S[0] = [np.nan, 0, 1, 0]
    with pytest.raises(InputError, match=r"scores\[0, 0\] is nan"):
        r.route(X[:5], scores=S)


def test_run_scaling_refuses_router_params_it_would_drop_and_records_them(tiny):
    from routereval.errors import ParameterError
    from routereval.experiments.scaling import run_scaling

    kw = dict(benchmarks="mmlu", groups="random", ms=2, draws=1, routers="knn", router_ms=2, n_boot=10)
    for bad in ({"k": 1}, {"KNN": {"k": 1}}):
        with pytest.raises(ParameterError, match="router_params"):
            run_scaling(tiny, router_params=bad, **kw)
    res = run_scaling(tiny, router_params={"knn": {"k": 1}}, **kw)
    assert res.settings["router_params"] == {"knn": {"k": 1}}


def test_write_corpus_takes_one_benchmark_and_refuses_other_things(tmp_path):
    from routereval.data.store import open_corpus, write_corpus
    from routereval.sources.synth import synth_benchmarks

    arc = next(synth_benchmarks("tiny", seed=0, names=["arc"]))
    write_corpus(arc, tmp_path / "one")
    assert list(open_corpus(tmp_path / "one").benchmarks) == ["arc"]
    with pytest.raises(InputError, match="takes a Corpus or Benchmarks; got a ndarray"):
        write_corpus([np.zeros(3)], tmp_path / "two")
    assert not (tmp_path / "two").exists()


def test_run_scaling_and_write_outputs_refuse_what_they_would_ignore(tiny, tmp_path):
    from routereval.errors import ParameterError
    from routereval.experiments.scaling import run_scaling, write_outputs

    kw = dict(benchmarks="mmlu", groups="random", ms=2, draws=2)
    for bad, msg in ((dict(ms=[]), r"ms \(--m\) must name at least one pool size"),
                     (dict(router_ms=[2]), r"router_ms \(--router-m\) applies to the learned routers' curves"),
                     (dict(embedding="tfidf"), r"embedding \(--embedding\) applies to the learned routers")):
        with pytest.raises(ParameterError, match=msg):
            run_scaling(tiny, **{**kw, **bad})
    res = run_scaling(tiny, target=np.float32(0.5), **kw)  # numpy floats are numbers
    assert res.settings["target"] == 0.5
    with pytest.raises(ParameterError, match="plots must be True or False; got 'no'"):
        write_outputs(res, tmp_path / "s", plots="no")
    with pytest.raises(InputError, match="result must be the ScalingResult of run_scaling; got NoneType"):
        write_outputs(None, tmp_path / "s")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("call", ["corpus_info", "download", "load_config", "plan_sweep", "run_study",
                                  "add_model_to_saved"])
def test_flags_refuse_a_truthy_string(tiny, tmp_path, call):
    from routereval.coldstart.saved import add_model_to_saved
    from routereval.coldstart.study import run_study
    from routereval.data.info import corpus_info
    from routereval.errors import ParameterError
    from routereval.experiments.config import load_config
    from routereval.experiments.sweep import plan_sweep
    from routereval.sources.download import download

    calls = {
        "corpus_info": (lambda: corpus_info(tiny, models="no"), "models"),
        "download": (lambda: download(tmp_path / "d", progress="no"), "progress"),
        "load_config": (lambda: load_config(tmp_path / "sweep.toml", trust_code="no"), "trust_code"),
        "plan_sweep": (lambda: plan_sweep(tmp_path / "sweep.toml", out=tmp_path / "r", force="no"), "force"),
        "run_study": (lambda: run_study(tiny, benchmark="mmlu", m=3, group="all_strong", calibrate_test="no"),
                      "calibrate_test"),
        "add_model_to_saved": (lambda: add_model_to_saved(tmp_path / "r", name="x", answers=tmp_path / "a.csv",
                                                          allow_new_prompts="no"), "allow_new_prompts"),
    }
    fn, name = calls[call]
    with pytest.raises(ParameterError, match=rf"^{name}( \(--[a-z-]+\))? must be True or False; got 'no'$"):
        fn()
    assert list(tmp_path.iterdir()) == []  # refused before anything was read or written


def test_read_results_refuses_a_directory_that_is_no_sweep(tmp_path):
    from routereval.experiments.results import read_results

    for bad in (tmp_path, tmp_path / "missing"):
        with pytest.raises(InputError, match="not a results directory"):
            read_results(bad)
    with pytest.raises(InputError, match="path must be a path"):
        read_results(None)


def test_a_path_of_none_is_named(tiny):
    import numpy as np

    from routereval.evaluate import fit_router
    from routereval.experiments.scaling import run_scaling, write_outputs
    from routereval.routers import make_router
    from routereval.routers.persist import load_router, save_router
    from routereval.serve import create_app

    r = make_router("knn").fit(np.eye(3), np.eye(3))
    res = run_scaling(tiny, benchmarks="mmlu", groups="random", ms=2, draws=2)
    for call, name in ((lambda: save_router(r, None), "path"), (lambda: load_router(None), "path"),
                       (lambda: create_app(None), "router_dir"), (lambda: write_outputs(res, None), r"out \(--out\)"),
                       (lambda: fit_router(tiny, benchmark="mmlu", router="knn", m=3, group="all_strong", save=None),
                        r"save \(--save\)")):
        with pytest.raises(InputError, match=rf"^{name} must be a path \(a str or pathlib.Path\); got None$"):
            call()
