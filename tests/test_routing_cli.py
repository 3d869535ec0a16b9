"""routereval eval | fit | routers | check-router, end to end on a stored corpus."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from routereval.data.store import write_corpus
from routereval.evaluate import RESULT_KEYS
from routereval.routers.persist import load_router

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    from test_evaluate import structured_corpus

    out = tmp_path_factory.mktemp("c") / "corpus"
    write_corpus(structured_corpus(n_prompts=600, n_models=10), out)
    return out


@pytest.fixture
def user_routers(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    broken = tmp_path / "broken_router.py"
    broken.write_text(
        "import numpy as np\n"
        "from routereval.routers import Router\n"
        "class Leaky(Router):\n"
        "    name = 'leaky'\n"
        "    def __init__(self, *, k=3):\n"
        "        self.k = k\n"
        "    def _fit(self, X, Y, *, X_val, Y_val, cost):\n"
        "        self.w_ = Y.mean(axis=0)\n"
        "        self.calls = 0\n"  # learned state without '_'
        "    def _predict_scores(self, X):\n"
        "        return np.tile(self.w_, (len(X), 1)) + np.random.random((len(X), len(self.w_)))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for mod in ("my_router", "broken_router"):
        sys.modules.pop(mod, None)


def test_eval_json_has_the_issues_keys(cli, corpus_dir):
    r = cli("eval", corpus_dir, "--benchmark", "mmlu", "--router", "knn", "--param", "k=7", "--m", "5",
            "--group", "strong_to_weak", "--seed", "42", "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["benchmark"] == "mmlu" and doc["split"] == "random" and len(doc["results"]) == 1
    res = doc["results"][0]
    assert set(RESULT_KEYS) <= set(res) and res["split"] == "random"
    assert res["router"] == "knn" and res["params"] == {"k": 7} and res["m"] == 5 and res["protocol"] == "clean"
    assert len(res["mu_ci"]) == 2 and res["mu_ci"][0] <= res["mu"] <= res["mu_ci"][1]
    assert sum(res["selection"].values()) == pytest.approx(1.0)
    assert res["oracle"] >= res["mu"]
    table = cli("eval", corpus_dir, "-b", "mmlu", "-r", "knn", "-p", "k=7", "--m", "5", "-g", "strong_to_weak")
    assert table.code == 0 and "V_B" in table.out and f"{res['mu']:.4f}" in table.out


@pytest.mark.parametrize("args, message", [
    (["--router", "knn", "--param", "k=0"], "error: The 'k' parameter of knn must be an int in [1, inf). Got 0.\n"),
    (["--router", "knn", "--param", "kk=3"], "error: unknown parameter 'kk' for router knn; expected one of: k, tie_break\n"),
    (["--router", "nope"], "error: unknown router 'nope'"),
    (["--router", "knn", "--param", "k"], "error: --param 'k': expected NAME=VALUE"),
    (["--router", "mix", "--param", "p=1.5"], "error: The 'p' parameter of mix must be a float in [0, 1]. Got 1.5.\n"),
    (["--router", "knn", "--m", "0"], "error: m (--m) must be an int >= 1; got 0\n"),
    (["--router", "knn", "--group", "best"], "error: unknown group 'best' (--group); expected one of: "),
    (["--router", "knn", "--embedding", "nope-encoder"], "error: "),
    (["--router", "knn,random", "--param", "kn.k=3"], "error: --param names router 'kn', which is not in --router "
                                                        "(knn, random)\n"),
    (["--router", "knn", "--param", "kmeans.k=3"], "error: --param names router 'kmeans'"),
    (["--router", "collections:OrderedDict"], "error: router 'collections:OrderedDict' is not a router: subclass "
                                             "routereval.routers.Router\n"),
])
def test_bad_input_is_one_line_and_exit_2(cli, corpus_dir, args, message):
    base = ["eval", corpus_dir, "--benchmark", "mmlu", "--group", "all_strong"]
    if "--m" not in args:
        base += ["--m", "5"]
    r = cli(*base, *args)
    assert r.code == 2
    assert r.err.startswith(message) and r.err.count("\n") == 1, r.err
    assert r.out == ""


def test_fit_saves_a_router_that_loads_and_routes_like_eval(cli, corpus_dir, tmp_path):
    out = tmp_path / "router"
    r = cli("fit", corpus_dir, "-b", "mmlu", "-r", "kmeans", "-p", "k=4", "--m", "5", "-g", "all_strong",
            "--save", out, "--json")
    assert r.code == 0, r.err
    doc = r.json()
    saved = load_router(out)
    assert saved.spec == "kmeans" and saved.router.k == 4 and saved.encoder == "synth"
    assert saved.pool["models"] == doc["pool"]["models"] and saved.metadata["embedding_dim"] == 16
    ev = cli("eval", corpus_dir, "-b", "mmlu", "-r", "kmeans", "-p", "k=4", "--m", "5", "-g", "all_strong",
             "--json").json()["results"][0]
    from routereval.data.store import open_corpus
    from routereval.pools import make_split

    b = open_corpus(corpus_dir)["mmlu"]
    routes = saved.router.route(b.embeddings["synth"][make_split(b).test])
    shares = np.bincount(routes, minlength=5) / len(routes)
    assert shares == pytest.approx([ev["selection"][n] for n in saved.pool["models"]])
    # the text output names the split with its sizes, as eval's does
    again = cli("fit", corpus_dir, "-b", "mmlu", "-r", "kmeans", "-p", "k=4", "--m", "5", "-g", "all_strong", "--save", out)
    sizes = f"{ev['n_train']}/{ev['n_val']}/{ev['n_test']}"
    assert again.code == 0 and f"random split {sizes}" in again.out and doc["metadata"]["n_test"] == ev["n_test"]
    assert "pool: " + ", ".join(doc["pool"]["models"]) in " ".join(again.out.split())  # the models it routes among
    # nothing half-written on failure
    bad = cli("fit", corpus_dir, "-b", "mmlu", "-r", "knn", "-p", "k=-1", "--m", "5", "-g", "all_strong",
              "--save", tmp_path / "bad")
    assert bad.code == 2 and not (tmp_path / "bad").exists()


def test_routers_lists_names_parameters_defaults_constraints(cli):
    r = cli("routers", "--json")
    assert r.code == 0
    by_name = {x["name"]: x for x in r.json()}
    assert {"oracle", "mix", "random", "best_single", "knn", "kmeans"} <= set(by_name)
    assert by_name["knn"]["parameters"] == [
        {"name": "k", "default": 5, "constraint": "an int in [1, inf)"},
        {"name": "tie_break", "default": "train_mean", "constraint": "one of 'train_mean', 'first'"}]
    assert by_name["oracle"]["oracle"] is True and by_name["knn"]["oracle"] is False
    p = {x["name"]: x for x in by_name["mix"]["parameters"]}
    assert p["p"] == {"name": "p", "default": 0.5, "constraint": "a float in [0, 1]"}
    table = cli("routers")
    assert table.code == 0 and "kmeans" in table.out and "k=3" in table.out


def test_user_router_works_in_check_router_eval_and_fit(cli, corpus_dir, tmp_path, user_routers):
    r = cli("check-router", "my_router:RidgeRouter")
    assert r.code == 0, r.out
    assert r.out.count("PASS") == 15 and "15/15 checks passed" in r.out
    ev = cli("eval", corpus_dir, "-b", "mmlu", "-r", "my_router:RidgeRouter", "-p", "alpha=0.5", "--m", "5",
             "-g", "strong_to_weak", "--json")
    assert ev.code == 0, ev.err
    rnd = cli("eval", corpus_dir, "-b", "mmlu", "-r", "random", "--m", "5", "-g", "strong_to_weak", "--json").json()
    [mine], [rnd] = ev.json()["results"], rnd["results"]
    assert mine["router"] == "my_router:RidgeRouter" and mine["mu"] > rnd["mu"]
    bad = cli("eval", corpus_dir, "-b", "mmlu", "-r", "my_router:RidgeRouter", "-p", "alpha=0", "--m", "5", "-g", "all_strong")
    assert bad.code == 2 and bad.err == "error: The 'alpha' parameter of ridge must be a float in (0, inf). Got 0.\n"
    fit = cli("fit", corpus_dir, "-b", "mmlu", "-r", "my_router:RidgeRouter", "--m", "5", "-g", "all_strong",
              "--save", tmp_path / "ridge")
    assert fit.code == 0, fit.err
    saved = load_router(tmp_path / "ridge", trust_modules=("my_router",))
    assert type(saved.router).__name__ == "RidgeRouter" and saved.spec == "my_router:RidgeRouter"


def test_check_router_fails_a_broken_router_with_exit_2(cli, user_routers):
    r = cli("check-router", "broken_router:Leaky")
    assert r.code == 2
    fails = {line.split()[1].rstrip(":") for line in r.out.splitlines() if line.startswith("FAIL")}
    assert fails == {"learned_state", "shapes", "deterministic", "prompt_order", "state_round_trip", "pickle",
                     "bad_params"}, r.out
    assert "FAIL  bad_params: hyperparameters ['k'] have no constraints" in r.out
    assert "8/15 checks passed" in r.out  # the 7 failures above, of 15 checks
    assert cli("check-router", "json:loads").code == 2


def test_eval_several_routers_gives_one_row_each_with_their_own_params(cli, corpus_dir):
    base = ("eval", corpus_dir, "-b", "mmlu", "--m", "5", "-g", "strong_to_weak", "--n-boot", "50")
    r = cli(*base, "-r", "random,knn,kmeans", "-p", "knn.k=7", "-p", "kmeans.k=4", "--json")
    assert r.code == 0, r.err
    doc = r.json()
    rows = doc["results"]
    assert [x["router"] for x in rows] == ["random", "knn", "kmeans"]
    assert rows[1]["params"] == {"k": 7} and rows[2]["params"] == {"k": 4} and rows[0]["params"] == {}
    alone_doc = cli(*base, "-r", "knn", "-p", "k=7", "--json").json()
    # one JSON shape for one router or several: the same cell keys, a list of results
    assert set(alone_doc) == set(doc) and len(alone_doc["results"]) == 1
    assert {k: v for k, v in alone_doc.items() if k != "results"} == {k: v for k, v in doc.items() if k != "results"}
    alone = alone_doc["results"][0]
    assert set(alone) == set(rows[1])
    assert alone["mu"] == rows[1]["mu"]  # the same cell, whether evaluated alone or with others
    table = cli(*base, "-r", "random,knn")
    assert table.code == 0 and "knn" in table.out and "random" in table.out
    bad = cli(*base, "-r", "knn,kmeans", "-p", "k=0")
    assert bad.code == 2 and bad.err.count("\n") == 1 and "'k' parameter of knn" in bad.err


def test_fit_save_never_replaces_what_is_not_a_saved_router(cli, corpus_dir, tmp_path, monkeypatch):
    args = ["fit", corpus_dir, "-b", "mmlu", "-r", "knn", "--m", "3", "-g", "all_strong", "--save"]
    f = tmp_path / "results.csv"
    f.write_text("a,b\n")
    r = cli(*args, f)
    assert r.code == 2 and r.err == f"error: {f}: exists and is not a directory; refusing to replace it (choose a new or empty directory)\n"
    assert f.read_text() == "a,b\n"
    d = tmp_path / "work"
    d.mkdir()
    (d / "data.txt").write_text("keep")
    r = cli(*args, d)
    assert r.code == 2 and "is a non-empty directory that is not a saved router" in r.err and r.err.count("\n") == 1
    assert (d / "data.txt").read_text() == "keep"
    # "." resolves to the (empty) working directory; a saved router there can be replaced
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    assert cli(*args, ".").code == 0
    assert cli(*args, ".", "-p", "k=2").code == 0
    assert load_router(empty).router.k == 2


def test_eval_reference_score_overrides_v_r(cli, corpus_dir):
    base = ["eval", corpus_dir, "-b", "mmlu", "-r", "random", "--m", "3", "-g", "all_strong", "--n-boot", "10"]
    [res] = cli(*base, "--reference-score", "0.5", "--json").json()["results"]
    assert res["v_r"] == pytest.approx(res["mu"] / 0.5)
    bad = cli(*base, "--reference-score", "0")
    assert bad.code == 2 and bad.err == "error: reference_score (--reference-score) must be a float in (0, 1] (the reference model's score). Got 0.0.\n"
