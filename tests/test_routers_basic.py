"""The non-neural routers against the reference's algorithms written as plain loops, and persistence."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from routereval import metrics as M
from routereval.errors import InputError, NotFittedError, ParameterError
from routereval.routers import make_router
from routereval.routers.persist import load_router, save_router


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 6)) * 3
    c = np.arange(150) % 3
    X = centres[c] + rng.normal(size=(150, 6))
    p = np.array([[0.9, 0.2, 0.3, 0.4], [0.2, 0.9, 0.3, 0.4], [0.3, 0.2, 0.9, 0.4]])
    Y = (rng.random((150, 4)) < p[c]).astype(float)
    return X[:120], Y[:120], X[120:], Y[120:]


def test_knn_is_the_mean_of_the_k_most_cosine_similar(xy):
    X, Y, Xt, Yt = xy
    r = make_router("knn", k=7).fit(X, Y)
    got = r.predict_scores(Xt)
    for i in range(len(Xt)):
        sims = [float(Xt[i] @ X[j] / (np.linalg.norm(Xt[i]) * np.linalg.norm(X[j]))) for j in range(len(X))]
        nn = sorted(range(len(X)), key=lambda j: -sims[j])[:7]
        assert got[i] == pytest.approx(Y[nn].mean(axis=0))
    # the reference's E_p: softmax of the means, terms above 1e-10
    soft = np.exp(got) / np.exp(got).sum(axis=1, keepdims=True)
    naive = np.mean([-sum(p * math.log2(p) for p in row if p > 1e-10) for row in soft])
    assert M.e_p(r.selection_probabilities(Xt), threshold=r.ep_threshold) == pytest.approx(naive)
    assert (M.mu(Yt, r.route(Xt)) > M.mu(Yt, np.zeros(len(Yt), dtype=int)))


def test_knn_k_larger_than_training_set_uses_all(xy):
    X, Y, Xt, _ = xy
    r = make_router("knn", k=10_000).fit(X[:10], Y[:10])
    assert np.allclose(r.predict_scores(Xt), Y[:10].mean(axis=0))


def test_kmeans_routes_to_the_best_model_of_the_nearest_cluster(xy):
    from sklearn.cluster import KMeans

    X, Y, Xt, Yt = xy
    r = make_router("kmeans", k=3, random_state=0).fit(X, Y)
    km = KMeans(n_clusters=3, n_init=10, random_state=0).fit(X)
    best = {}
    for k in range(3):
        rows = [i for i in range(len(X)) if km.labels_[i] == k]
        best[k] = int(np.argmax(Y[rows].mean(axis=0)))
    want = [best[int(k)] for k in km.predict(Xt)]
    assert r.route(Xt).tolist() == want
    # the clusters are the three topics: each goes to its specialist
    assert sorted(set(want)) == [0, 1, 2]
    # reference E_p: inverse distances, normalised, summed per cluster model, terms above 1e-4
    d = np.array([[np.linalg.norm(x - cc) for cc in km.cluster_centers_] for x in Xt])
    w = 1 / (d + 1e-10)
    w /= w.sum(axis=1, keepdims=True)
    P = np.zeros((len(Xt), 4))
    for k in range(3):
        P[:, best[k]] += w[:, k]
    naive = np.mean([-sum(p * math.log2(p) for p in row if p > 1e-4) for row in P])
    assert M.e_p(r.selection_probabilities(Xt), threshold=r.ep_threshold) == pytest.approx(naive)


def test_kmeans_k_above_training_prompts_is_a_parameter_error(xy):
    X, Y, _, _ = xy
    with pytest.raises(ParameterError, match=r"^The 'k' parameter of kmeans must be at most the number of training prompts \(5\)\. Got 9\.$"):
        make_router("kmeans", k=9).fit(X[:5], Y[:5])


def test_oracle_reaches_the_oracle_and_its_reference_e_p(xy):
    X, Y, Xt, Yt = xy
    r = make_router("oracle").fit(X, Y)
    routes = r.route(Xt, scores=Yt)
    assert M.mu(Yt, routes) == pytest.approx(M.oracle(Yt))
    # ties among best models go to the best on train
    train_best = int(Y.mean(axis=0).argmax())
    allzero = Yt.max(axis=1) == 0
    allone = Yt.min(axis=1) == 1
    assert np.all(routes[allzero | allone] == train_best)
    naive = []
    for row in Yt:
        p = row / row.sum() if row.sum() > 0 else np.full(4, 0.25)
        naive.append(-sum(v * math.log2(v) for v in p if v > 1e-10))
    assert M.e_p(r.selection_probabilities(Xt, scores=Yt)) == pytest.approx(np.mean(naive))
    with pytest.raises(InputError, match="oracle"):
        r.route(Xt)


def test_mix_interpolates_between_random_and_oracle(xy):
    X, Y, Xt, Yt = xy
    mus = [M.mu(Yt, make_router("mix", p=p).fit(X, Y).route(Xt, scores=Yt)) for p in (0.0, 1.0)]
    assert mus[1] == pytest.approx(M.oracle(Yt))
    rand = make_router("random").fit(X, Y)
    assert M.mu(Yt, make_router("mix", p=0.0).fit(X, Y).route(Xt, scores=Yt)) <= mus[1]
    # reference E_p: p * normalised scores + (1 - p) / m
    r = make_router("mix", p=0.3).fit(X, Y)
    naive = []
    for row in Yt:
        o = row / row.sum() if row.sum() > 0 else np.full(4, 0.25)
        p = 0.3 * o + 0.7 / 4
        naive.append(-sum(v * math.log2(v) for v in p if v > 1e-10))
    assert M.e_p(r.selection_probabilities(Xt, scores=Yt)) == pytest.approx(np.mean(naive))
    assert M.e_p(rand.selection_probabilities(Xt)) == pytest.approx(2.0)  # log2 m


def test_random_is_uniform_and_seeded():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4000, 5))
    Y = np.zeros((4000, 5))
    a = make_router("random", random_state=1).fit(X[:10], Y[:10])
    shares = M.selection_shares(a.route(X), 5)
    assert np.all(np.abs(shares - 0.2) < 0.03)
    b = make_router("random", random_state=2).fit(X[:10], Y[:10])
    assert np.mean(a.route(X) == b.route(X)) < 0.4
    assert np.array_equal(a.route(X), make_router("random", random_state=1).fit(X[:10], Y[:10]).route(X))


def test_best_single_uses_train_and_val(xy):
    X, Y, Xt, Yt = xy
    Yv = np.zeros((30, 4))
    Yv[:, 3] = 1.0
    r = make_router("best_single").fit(X, Y)
    assert set(r.route(Xt)) == {int(Y.mean(axis=0).argmax())}
    assert M.selection_entropy(r.route(Xt), 4) == 0.0 and M.e_p(r.selection_probabilities(Xt)) == 0.0
    r2 = make_router("best_single").fit(X, Y, X_val=Xt[:30] if len(Xt) >= 30 else X[:30], Y_val=Yv)
    want = int(np.concatenate([Y, Yv]).mean(axis=0).argmax())
    assert set(r2.route(Xt)) == {want}


def test_not_fitted_and_wrong_dimension(xy):
    X, Y, Xt, _ = xy
    with pytest.raises(NotFittedError):
        make_router("knn").route(Xt)
    r = make_router("knn").fit(X, Y)
    with pytest.raises(InputError, match="has 3 features .* expected 6"):
        r.route(Xt[:, :3])
    with pytest.raises(InputError, match="not an oracle"):
        r.route(Xt, scores=np.zeros((len(Xt), 4)))


def test_persist_round_trip_and_refusals(xy, tmp_path):
    X, Y, Xt, _ = xy
    r = make_router("kmeans", k=3).fit(X, Y)
    d = save_router(r, tmp_path / "r", pool={"models": ["a", "b", "c", "d"]}, encoder="synth", metadata={"seed": 1})
    assert sorted(p.name for p in d.iterdir()) == ["router.json", "state.safetensors"]
    back = load_router(d)
    assert back.spec == "kmeans" and back.encoder == "synth" and back.pool["models"] == ["a", "b", "c", "d"]
    assert np.array_equal(back.router.route(Xt), r.route(Xt))

    doc = json.loads((d / "router.json").read_text())
    doc["state_values"]["evil_"] = 1
    (d / "router.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"unknown keys \['evil_'\]"):
        load_router(d)

    d2 = save_router(r, tmp_path / "r2")
    raw = bytearray((d2 / "state.safetensors").read_bytes())
    raw[-1] ^= 1
    (d2 / "state.safetensors").write_bytes(bytes(raw))
    with pytest.raises(InputError, match="checksum"):
        load_router(d2)

    d3 = save_router(r, tmp_path / "r3")
    doc = json.loads((d3 / "router.json").read_text())
    doc["spec"] = "os:system"
    (d3 / "router.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="not a registered router.*trust_modules=\\('os',\\)"):
        load_router(d3)
    with pytest.raises(ParameterError, match="not a class"):
        load_router(d3, trust_code=True)
    doc["spec"], doc["params"] = "subprocess:Popen", {"args": ["false"]}
    (d3 / "router.json").write_text(json.dumps(doc))
    with pytest.raises(ParameterError, match="is not a router: subclass routereval.routers.Router"):
        load_router(d3, trust_modules=("subprocess",))
    with pytest.raises(InputError, match="missing"):
        load_router(tmp_path / "nothing")


def test_knn_breaks_ties_by_training_mean_or_like_the_reference():
    # two models tie on every neighbourhood (same labels); model 1 is better on the other prompts
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    Y = np.array([[1, 1, 0], [1, 1, 0], [0, 1, 0], [0, 1, 0]], dtype=float)
    Xt = np.array([[1.0, 0.05]])
    prior = make_router("knn", k=2).fit(X, Y)
    assert prior.predict_scores(Xt)[0].tolist() == [1.0, 1.0, 0.0]
    assert prior.route(Xt).tolist() == [1]  # tie -> the better model on train
    first = make_router("knn", k=2, tie_break="first").fit(X, Y)
    assert first.route(Xt).tolist() == [0]  # the reference's argmax: first in pool order


def _ran_module(tmp_path, monkeypatch, name: str) -> Path:
    """A module ``name`` whose import leaves a marker file; it re-exports the knn router as KNN."""
    marker = tmp_path / f"{name}.imported"
    (tmp_path / f"{name}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "from routereval.routers.knn import KNNRouter as KNN\n"
        "class NotARouter:\n"
        "    def fit(self, X, Y): return self\n"
        "    def predict_scores(self, X): return X\n"
        "    def route(self, X): return X\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return marker


def _saved_naming_module(xy, tmp_path, monkeypatch, name: str) -> tuple[Path, Path]:
    """A saved knn router whose spec names ``name:KNN`` (a module that leaves a marker when imported)."""
    X, Y, _, _ = xy
    marker = _ran_module(tmp_path, monkeypatch, name)
    d = save_router(make_router("knn", k=3).fit(X, Y), tmp_path / "r")
    doc = json.loads((d / "router.json").read_text())
    doc["spec"] = f"{name}:KNN"
    (d / "router.json").write_text(json.dumps(doc))
    return d, marker


def test_load_router_imports_a_module_only_when_trusted(xy, tmp_path, monkeypatch):
    d, marker = _saved_naming_module(xy, tmp_path, monkeypatch, "plugin_mod_a")
    with pytest.raises(InputError, match=r"router\.json: router class 'plugin_mod_a:KNN' is not a registered router"):
        load_router(d)
    assert not marker.exists()  # refused before any import
    with pytest.raises(InputError, match="not a registered router"):
        load_router(d, trust_modules=("plugin_mod",))  # a prefix of the name is not its package
    back = load_router(d, trust_modules=("plugin_mod_a",))
    assert marker.exists() and type(back.router).__name__ == "KNNRouter"
    assert load_router(d, trust_code=True).router.k == 3


def test_trust_code_must_be_a_bool(xy, tmp_path, monkeypatch):
    d, marker = _saved_naming_module(xy, tmp_path, monkeypatch, "plugin_mod_c")
    for bad in ("no", "False", 1):  # truthy, but no permission to run code
        with pytest.raises(ParameterError, match=f"^trust_code must be True or False; got {bad!r}$"):
            load_router(d, trust_code=bad)
    with pytest.raises(InputError, match="trust_modules must be module names"):
        load_router(d, trust_modules=[5])
    assert not marker.exists()


def test_save_router_refuses_what_load_router_would(xy, tmp_path):
    X, Y, _, _ = xy
    r = make_router("knn", k=np.int64(3)).fit(X, Y)  # numpy scalars are saved as JSON numbers
    for kw, msg in ((dict(pool="mmlu"), "pool must be a dict of JSON values; got str"),
                    (dict(metadata=[1]), "metadata must be a dict"),
                    (dict(encoder=5), "encoder must be the encoder's name"),
                    (dict(metadata={"a": {"b": float("nan")}}), r"metadata\['a'\]\['b'\] = nan: not a JSON value"),
                    (dict(pool={"models": ["a"]}), r"pool\['models'\] must list the router's 4 models"),
                    (dict(spec="mlp"), "spec 'mlp' names another router class than KNNRouter"),
                    (dict(spec="nope"), "unknown router 'nope'")):
        with pytest.raises(InputError, match=msg):
            save_router(r, tmp_path / "bad", **kw)
        assert not (tmp_path / "bad").exists()
    with pytest.raises(InputError, match="router must be a fitted routereval Router; got str"):
        save_router("knn", tmp_path / "bad")
    d = save_router(r, tmp_path / "ok", pool={"models": ["a", "b", "c", "d"]}, metadata={"seed": np.int64(7)})
    back = load_router(d)
    assert back.metadata == {"seed": 7} and back.router.get_params()["k"] == 3


def test_a_module_class_must_subclass_router(tmp_path, monkeypatch):
    _ran_module(tmp_path, monkeypatch, "plugin_mod_b")
    with pytest.raises(ParameterError, match="^router 'plugin_mod_b:NotARouter' is not a router: subclass "
                                             "routereval.routers.Router$"):
        make_router("plugin_mod_b:NotARouter")


def test_save_replaces_only_missing_empty_or_saved_router_dirs(xy, tmp_path, monkeypatch):
    X, Y, Xt, _ = xy
    r = make_router("knn", k=3).fit(X, Y)
    user = tmp_path / "mine"
    user.mkdir()
    (user / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="mine: is a non-empty directory that is not a saved router"):
        save_router(r, user)
    assert (user / "thesis.tex").read_text() == "precious"
    f = tmp_path / "notes.txt"
    f.write_text("keep")
    with pytest.raises(InputError, match="notes.txt: exists and is not a directory"):
        save_router(r, f)
    assert f.read_text() == "keep"
    # a saved router plus a stray file is not only a saved router
    d = save_router(r, tmp_path / "r")
    (d / "extra").write_text("x")
    with pytest.raises(InputError, match="not a saved router"):
        save_router(r, d)
    (d / "extra").unlink()
    assert save_router(make_router("knn", k=2).fit(X, Y), d) == d.resolve()
    assert load_router(d).router.k == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    assert save_router(r, ".") == empty.resolve()
    assert load_router(empty).router.k == 3
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no leftovers


@pytest.mark.parametrize("field, value, message", [
    ("params", [1], "'params' must be an object, got list"),
    ("state_values", "x", "'state_values' must be an object, got str"),
    ("encoder", 3, "'encoder' must be a string or null, got int"),
    ("spec", None, "'spec' must be a string, got NoneType"),
    ("pool", {"a": float("nan")}, None),
    ("state_arrays", {"train_X_": [1, 2]}, r"state_arrays\['train_X_'\] must be"),
    ("state_arrays", {"train_X_": {"dtype": "float64", "shape": [-1]}}, r"state_arrays\['train_X_'\] must be"),
    ("params", {"k": 0, "tie_break": "train_mean"}, "The 'k' parameter of knn must be an int in \\[1, inf\\). Got 0."),
    ("params", {"k": "3", "tie_break": "train_mean"}, "The 'k' parameter of knn must be an int"),
])
def test_malformed_router_json_is_one_input_error_naming_the_file(xy, tmp_path, field, value, message):
    X, Y, _, _ = xy
    d = save_router(make_router("knn", k=3).fit(X, Y), tmp_path / "r")
    doc = json.loads((d / "router.json").read_text())
    doc[field] = value
    (d / "router.json").write_text(json.dumps(doc))
    with pytest.raises(InputError) as e:
        load_router(d)
    assert str(e.value).startswith(str(d / "router.json") + ": ") and "\n" not in str(e.value)
    if message:
        assert re.search(message, str(e.value)), str(e.value)


def test_a_neural_router_missing_a_weight_is_refused_at_load(xy, tmp_path):
    X, Y, _, _ = xy
    r = make_router("linear", max_epochs=2, random_state=0).fit(X, Y)
    del r.coef_  # saved without its weight matrix
    d = save_router(r, tmp_path / "r")
    with pytest.raises(InputError, match=r"router\.json: router linear: state has unknown keys \[\] and lacks \['coef_'\]"):
        load_router(d)


def test_a_broken_entry_point_plugin_is_skipped_with_a_warning(tmp_path, monkeypatch):
    from routereval.routers import available_routers

    (tmp_path / "crashing_plugin.py").write_text("raise RuntimeError('plugin bug')\n")
    dist = tmp_path / "crashing_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: crashing-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[routereval.routers]\ncrash = crashing_plugin:Router\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(UserWarning, match=r"entry point 'crash' \(crashing_plugin:Router\) is skipped: plugin bug"):
        names = available_routers()
    assert "crash" not in names and "knn" in names
    assert make_router("knn", k=2).k == 2


def test_negative_and_positive_seeds_route_differently():
    from routereval.routers.base import prompt_uniforms

    X = np.random.default_rng(0).normal(size=(50, 4))
    a, b = prompt_uniforms(X, 3, 1), prompt_uniforms(X, 3, -1)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(prompt_uniforms(X, 3, -1), b)  # still deterministic


@pytest.mark.parametrize("name", ["kmeans", "mlp", "random"])
def test_random_state_is_a_non_negative_seed_numpy_ints_included(xy, name):
    X, Y, Xt, _ = xy
    a = make_router(name, random_state=np.int64(3)).fit(X, Y).route(Xt)
    np.testing.assert_array_equal(a, make_router(name, random_state=3).fit(X, Y).route(Xt))
    for bad in (-1, "x", 1.0):
        with pytest.raises(ParameterError, match=rf"'random_state' parameter of {name} must be an int in \[0, inf\)"):
            make_router(name, random_state=bad).fit(X, Y)


def test_fit_checks_cost_and_route_refuses_text(xy):
    X, Y, Xt, _ = xy
    n, m = Y.shape
    make_router("knn").fit(X, Y, cost=np.ones(m))
    make_router("knn").fit(X, Y, cost=np.ones((n, m)))
    for bad, msg in (("cheap", "cost must be a numeric array"), (np.ones(m + 1), "cost must have shape"),
                     (np.full(m, np.nan), "finite costs >= 0"), (-np.ones((n, m)), "finite costs >= 0")):
        with pytest.raises(InputError, match=msg):
            make_router("knn").fit(X, Y, cost=bad)
    r = make_router("knn").fit(X, Y)
    with pytest.raises(InputError, match="X must be a numeric array .* of prompt embeddings; got str"):
        r.route("hello")
