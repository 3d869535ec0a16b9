"""A saved router whose router.json contradicts its state.safetensors is refused at load, in one line.

The checksum in router.json covers the arrays only; an edited hyperparameter (``params.dim = 8`` over
16-wide IRT abilities) or learned size (``n_models_``) is caught by the shape check of every built-in
router that saves arrays, naming router.json, the value and the arrays' size.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from routereval.data.model import Benchmark, Corpus
from routereval.data.store import sha256_file, write_corpus
from routereval.errors import InputError
from routereval.routers import Router, make_router
from routereval.routers.base import Interval
from routereval.routers.persist import load_router, save_router

TAIL = "the file was edited or belongs to another state"

# router -> (hyperparameters fitted with, a shape hyperparameter edited to another value, what the message says)
KINDS = {
    "irt": ({"dim": 3, "max_epochs": 2, "random_state": 0}, ("dim", 5), "params.dim = 5 but state.safetensors holds "
            "3-wide arrays (ability_ (4, 3), loading_weights_ (6, 3), loading_bias_ (3,))"),
    "mf": ({"dim": 3, "max_epochs": 2, "random_state": 0}, ("dim", 8),
           "params.dim = 8 but state.safetensors holds 3-wide arrays (projection_ (6, 3), model_embeddings_ (4, 3))"),
    "mlp": ({"hidden_size": 7, "max_epochs": 2, "random_state": 0}, ("hidden_size", 5),
            "params.hidden_size = 5 but state.safetensors holds 7-wide arrays (coef0_ (6, 7), intercept0_ (7,), "
            "coef1_ (7, 7), intercept1_ (7,), coef2_ (7, 4))"),
    "kmeans": ({"k": 3, "n_init": 1}, ("k", 2), "params.k = 2 but state.safetensors holds arrays for 3 clusters "
               "(cluster_centers_ (3, 6), cluster_means_ (3, 4), cluster_model_ (3,))"),
    "knn": ({"k": 3}, ("k", 2), "params.k = 2 but state_values.k_ = 3 (k capped at the 60 training prompts of "
            "state.safetensors would be 2)"),
    "linear": ({"max_epochs": 2, "random_state": 0}, None, None),  # no shape hyperparameter: n_features_in_ below
    "best_single": ({}, None, None),
}


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 6))
    Y = (rng.random((60, 4)) < np.array([0.8, 0.3, 0.5, 0.6])).astype(float)
    return X, Y


@pytest.fixture(scope="module")
def fitted(xy):
    X, Y = xy
    return {name: make_router(name, **params).fit(X, Y) for name, (params, _, _) in KINDS.items()}


def _edit(d, change):
    doc = json.loads((d / "router.json").read_text())
    change(doc)
    (d / "router.json").write_text(json.dumps(doc, indent=2))


def _refused(d, *needles, file="router.json"):
    with pytest.raises(InputError) as e:
        load_router(d)
    msg = str(e.value)
    assert msg.startswith(f"{d / file}: ") and "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg
    return msg


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_normal_round_trip_still_loads_and_routes_alike(fitted, xy, tmp_path, name):
    X, _ = xy
    r = fitted[name]
    back = load_router(save_router(r, tmp_path / name, pool={"models": ["a", "b", "c", "d"]})).router
    assert back.get_params() == r.get_params()
    assert np.array_equal(back.route(X), r.route(X))


@pytest.mark.parametrize("name", sorted(n for n, (_, edit, _) in KINDS.items() if edit))
def test_an_edited_shape_hyperparameter_is_refused_in_one_line(fitted, tmp_path, name):
    _, (param, value), message = KINDS[name]
    d = save_router(fitted[name], tmp_path / name)
    _edit(d, lambda doc: doc["params"].__setitem__(param, value))
    assert _refused(d) == f"{d / 'router.json'}: {message}; {TAIL}"


def test_the_reported_case_irt_dim_8_over_16_wide_abilities(xy, tmp_path):
    X, Y = xy
    r = make_router("irt", max_epochs=2, random_state=0).fit(X, Y)  # the default dim: 16
    d = save_router(r, tmp_path / "irt")
    copy = tmp_path / "copy"
    shutil.copytree(d, copy)
    _edit(copy, lambda doc: doc["params"].__setitem__("dim", 8))
    _refused(copy, "params.dim = 8 but state.safetensors holds 16-wide arrays (ability_ (4, 16)", TAIL)
    assert load_router(d).router.ability_.shape == (4, 16)  # the original still loads


@pytest.mark.parametrize("name", sorted(n for n in KINDS if n != "knn"))
def test_an_edited_model_count_is_refused(fitted, tmp_path, name):
    d = save_router(fitted[name], tmp_path / name)
    _edit(d, lambda doc: doc["state_values"].__setitem__("n_models_", 5))
    _refused(d, "state_values.n_models_ = 5 but state.safetensors holds arrays for 4 models (", TAIL)


def test_knn_model_count_and_every_neural_feature_count(fitted, tmp_path):
    d = save_router(fitted["knn"], tmp_path / "knn")
    _edit(d, lambda doc: doc["state_values"].__setitem__("n_models_", 3))
    _refused(d, "state_values.n_models_ = 3 but state.safetensors holds arrays for 4 models "
                "(train_Y_ (60, 4), prior_ (4,))")
    for name in ("linear", "mlp", "mf", "irt", "knn", "kmeans"):
        d = save_router(fitted[name], tmp_path / f"{name}-d")
        _edit(d, lambda doc: doc["state_values"].__setitem__("n_features_in_", 384))
        _refused(d, "state_values.n_features_in_ = 384 but state.safetensors holds arrays for 6-dimensional "
                    "embeddings (", TAIL)


def test_run_time_settings_stay_editable(fitted, xy, tmp_path):
    """Hyperparameters no array depends on (device, threads, training settings, knn's tie rule) may be edited."""
    X, _ = xy
    for name, change in [("irt", {"n_jobs": 2, "max_epochs": 50, "lr": 0.1}), ("mlp", {"device": "auto"}),
                         ("knn", {"tie_break": "first"}), ("kmeans", {"n_init": 5})]:
        d = save_router(fitted[name], tmp_path / name)
        _edit(d, lambda doc: doc["params"].update(change))
        back = load_router(d).router
        assert {k: back.get_params()[k] for k in change} == change
        if name != "knn":
            assert np.array_equal(back.route(X), fitted[name].route(X))


def test_knn_k_above_the_training_prompts_is_capped_not_refused(xy, tmp_path):
    X, Y = xy
    d = save_router(make_router("knn", k=500).fit(X, Y), tmp_path / "knn")
    _edit(d, lambda doc: doc["params"].__setitem__("k", 100))  # still capped at the 60 prompts: k_ = 60 either way
    assert load_router(d).router.k_ == 60


def _rewrite_arrays(d, change):
    """Rewrite state.safetensors with ``change(arrays)`` and make router.json agree (listing and checksum)."""
    from safetensors.numpy import load_file, save_file

    arrays = load_file(str(d / "state.safetensors"))
    change(arrays)
    save_file(arrays, str(d / "state.safetensors"))
    _edit(d, lambda doc: doc.update(
        sha256=sha256_file(d / "state.safetensors"),
        state_arrays={k: {"dtype": str(a.dtype), "shape": list(a.shape)} for k, a in arrays.items()}))


def test_arrays_that_disagree_among_themselves_are_refused_naming_the_arrays_file(fitted, tmp_path):
    d = save_router(fitted["irt"], tmp_path / "irt")
    _rewrite_arrays(d, lambda a: a.__setitem__("loading_bias_", np.zeros(5, dtype=np.float32)))
    _refused(d, "router irt: arrays disagree on their dim size (ability_ (4, 3), loading_weights_ (6, 3), "
                "loading_bias_ (5,))", file="state.safetensors")

    d = save_router(fitted["irt"], tmp_path / "irt-rank")
    _rewrite_arrays(d, lambda a: a.__setitem__("difficulty_bias_", np.zeros(2, dtype=np.float32)))
    _refused(d, "array 'difficulty_bias_' has shape (2,), expected (1)", file="state.safetensors")

    d = save_router(fitted["linear"], tmp_path / "linear")
    _rewrite_arrays(d, lambda a: a.__setitem__("coef_", a["coef_"][None]))
    _refused(d, "array 'coef_' has shape (1, 6, 4), expected 2 axes (d, m)", file="state.safetensors")

    # consistent arrays, consistently resized, still contradict the hyperparameter in router.json
    d = save_router(fitted["mf"], tmp_path / "mf")
    _rewrite_arrays(d, lambda a: a.update(projection_=a["projection_"][:, :2],
                                          model_embeddings_=a["model_embeddings_"][:, :2]))
    _refused(d, "params.dim = 3 but state.safetensors holds 2-wide arrays", TAIL)


def test_mlc_weight_shapes_must_add_up_to_its_weights(tmp_path):
    """MLC (fine-tuned encoder) keeps a flat weight vector and each tensor's shape: they must agree."""
    r = make_router("mlc")
    r.load_state_dict({"weights_": np.zeros(10, dtype=np.float32), "weight_names_": ["a", "b"],
                       "weight_shapes_": [[2, 3], [4]], "n_steps_": 1, "loss_curve_": [0.5], "fit_s_": 0.1,
                       "n_models_": 4})
    d = save_router(r, tmp_path / "mlc")
    assert load_router(d).router.weight_shapes_ == [[2, 3], [4]]
    _edit(d, lambda doc: doc["state_values"].__setitem__("weight_shapes_", [[2, 3], [5]]))
    _refused(d, "state_values.weight_shapes_ add up to 11 weights but state.safetensors' weights_ holds 10", TAIL)
    _edit(d, lambda doc: doc["state_values"].__setitem__("weight_shapes_", [[10]]))
    _refused(d, "weight_names_ and weight_shapes_ must be lists of equal length")


# --------------------------------------------------------------------------- the CLI: one line, exit 2


@pytest.fixture(scope="module")
def fit_saved_irt(tmp_path_factory):
    """An irt router written by `fit --save` on a small corpus (as add-model and serve find them)."""
    from routereval.evaluate import fit_router

    rng = np.random.default_rng(1)
    n, n_models = 240, 10
    X = rng.normal(size=(n, 6))
    S = (rng.random((n_models, n)) < rng.random((n_models, 1))).astype(float)
    b = Benchmark("mmlu", models=[f"org/model-{i:02d}" for i in range(n_models)],
                  prompt_ids=[f"p{i}" for i in range(n)], subsets=[f"t{i % 3}" for i in range(n)],
                  texts=[f"question {i}" for i in range(n)], scores=S, embeddings={"synth": X})
    root = tmp_path_factory.mktemp("persist")
    write_corpus(Corpus.from_benchmarks([b]), root / "corpus")
    fit_router(root / "corpus", benchmark="mmlu", router="irt", params={"dim": 4, "max_epochs": 3}, m=4,
               group="all_strong", save=root / "irt")
    return root / "irt"


def _one_line_exit_2(res, *needles):
    assert res.code == 2, (res.code, res.err)
    assert res.err.startswith("error: ") and res.err.count("\n") == 1, res.err
    for n in needles:
        assert n in res.err, res.err


def test_cli_add_model_and_serve_refuse_an_edited_dim_with_one_line(fit_saved_irt, tmp_path, cli):
    import socket

    assert load_router(fit_saved_irt).router.ability_.shape == (4, 4)  # the router as fit saved it loads
    d = tmp_path / "edited"
    shutil.copytree(fit_saved_irt, d)
    _edit(d, lambda doc: doc["params"].__setitem__("dim", 8))
    (tmp_path / "answers.csv").write_text("prompt_id,score\np0,1\n")
    want = (f"{d / 'router.json'}: params.dim = 8 but state.safetensors holds 4-wide arrays (ability_ (4, 4)", TAIL)
    _one_line_exit_2(cli("add-model", d, "--name", "acme/new", "--answers", tmp_path / "answers.csv",
                         "--out", tmp_path / "v2"), *want)
    assert not (tmp_path / "v2").exists()
    with socket.socket() as s:  # a port held here: a regression fails on it instead of serving forever
        s.bind(("127.0.0.1", 0))
        s.listen()
        _one_line_exit_2(cli("serve", d, "--port", s.getsockname()[1]), *want)


# ---- the layout is each router class's own: every built-in declares one, a plugin may


class Prototypes(Router):
    """A plugin router: ``width`` prototype directions, each model's mean score per prototype."""

    parameters = {"width": (Interval(int, 1, None),)}
    state_keys = ("directions_", "means_")
    state_layout = {"directions_": ("d", "width"), "means_": ("width", "m")}

    def __init__(self, *, width: int = 2):
        self.width = width

    def _fit(self, X, Y, *, X_val, Y_val, cost):
        self.directions_ = np.linalg.svd(X, full_matrices=False)[2][: self.width].T.copy()
        side = (X @ self.directions_).argmax(axis=1)
        self.means_ = np.stack([Y[side == j].mean(axis=0) if (side == j).any() else Y.mean(axis=0)
                                for j in range(self.width)])

    def _predict_scores(self, X):
        return self.means_[(X @ self.directions_).argmax(axis=1)]


class Unchecked(Prototypes):
    state_layout = None  # a plugin that declares nothing: loading cannot check its shapes


def test_every_registered_router_declares_its_state_layout():
    from routereval.routers import available_routers

    undeclared = [n for n in available_routers() if type(make_router(n)).state_layout is None]
    assert not undeclared


def test_a_plugin_router_is_checked_by_its_own_state_layout(xy, tmp_path):
    X, Y = xy
    spec = f"{__name__}:Prototypes"
    d = save_router(Prototypes(width=3).fit(X, Y), tmp_path / "r", spec=spec)
    assert load_router(d, trust_modules=(__name__,)).router.means_.shape == (3, 4)
    _edit(d, lambda doc: doc["params"].update(width=2))
    with pytest.raises(InputError) as e:
        load_router(d, trust_modules=(__name__,))
    assert str(e.value) == (f"{d / 'router.json'}: params.width = 2 but state.safetensors holds 3-wide arrays "
                            f"(directions_ (6, 3), means_ (3, 4)); {TAIL}")
    # without a declared layout the same edit loads (and would fail later): that is the plugin's choice
    u = save_router(Unchecked(width=3).fit(X, Y), tmp_path / "u", spec=f"{__name__}:Unchecked")
    _edit(u, lambda doc: doc["params"].update(width=2))
    assert load_router(u, trust_modules=(__name__,)).router.width == 2


def test_the_contract_check_catches_a_layout_that_misses_or_misstates_an_array():
    from routereval.routers.checks import ContractViolation, check_state_layout

    check_state_layout(Prototypes)
    check_state_layout(Unchecked)

    class Forgets(Prototypes):
        state_layout = {"directions_": ("d", "width")}

    class Misstates(Prototypes):
        state_layout = {"directions_": ("width", "d"), "means_": ("width", "m")}

    with pytest.raises(ContractViolation, match=r"does not name the learned arrays \['means_'\]"):
        check_state_layout(Forgets)
    with pytest.raises(ContractViolation, match="contradicts state_layout"):
        check_state_layout(Misstates)


# ---- subclasses of built-in routers: the layout is inherited, and may be replaced or switched off

from routereval.routers.irt import IRTRouter  # noqa: E402
from routereval.routers.linear import LinearR  # noqa: E402
from routereval.routers.mf import MatrixFactorizationRouter  # noqa: E402


class NoLayoutMF(MatrixFactorizationRouter):
    state_layout = None  # switched off: loading does not check the shapes


class TemperedIRT(IRTRouter):
    """An array beside the trained weights (set after training): described, not trained."""

    state_layout = {**IRTRouter.state_layout, "temperature_": ("m",)}
    state_keys = (*IRTRouter.state_keys, "temperature_")

    def _fit(self, X, Y, *, X_val, Y_val, cost):
        super()._fit(X, Y, X_val=X_val, Y_val=Y_val, cost=cost)
        self.temperature_ = np.ones(Y.shape[1])


class FoldedLinear(LinearR):
    """The bias folded into coef_ (d + 1, m): an inherited array with another shape."""

    _weights = ("coef_",)
    state_keys = ("coef_", *LinearR._record)

    def _init_params(self, rng, X, Y):
        return {"coef_": np.zeros((X.shape[1] + 1, Y.shape[1]), dtype=np.float32)}

    @staticmethod
    def _forward(p, x, relu):
        return x @ p["coef_"][:-1] + p["coef_"][-1]


class FoldedLinearDeclared(FoldedLinear):
    state_layout = {"coef_": ("d_plus_1", "m")}


def test_subclasses_inherit_replace_or_switch_off_the_layout(xy, tmp_path):
    from routereval.routers.checks import check_state_layout

    X, Y = xy
    mod = (__name__,)
    for cls in (NoLayoutMF, TemperedIRT, FoldedLinearDeclared):
        check_state_layout(cls)  # the contract holds
        r = cls(max_epochs=2, random_state=0).fit(X, Y)
        d = save_router(r, tmp_path / cls.__name__, spec=f"{__name__}:{cls.__name__}")
        back = load_router(d, trust_modules=mod).router
        np.testing.assert_array_equal(back.predict_scores(X), r.predict_scores(X))
    assert TemperedIRT._weights == IRTRouter._weights  # the extra array is described, not trained
    # switched off: an edited model count is not caught at load (the plugin's choice)
    _edit(tmp_path / "NoLayoutMF", lambda doc: doc["state_values"].update(n_models_=9))
    assert load_router(tmp_path / "NoLayoutMF", trust_modules=mod).router.n_models_ == 9
    # an inherited layout that does not fit: refused when saving, in one line that says what to do
    with pytest.raises(InputError) as e:
        save_router(FoldedLinear(max_epochs=2).fit(X, Y), tmp_path / "folded", spec=f"{__name__}:FoldedLinear")
    msg = str(e.value)
    assert "\n" not in msg and not (tmp_path / "folded").exists()
    assert msg.startswith("cannot save router FoldedLinear") and "contradict the state_layout of LinearR" in msg
    assert "arrays for 7-dimensional embeddings (coef_ (7, 4))" in msg and "edited" not in msg
    assert msg.endswith("a subclass that changes an array's shape declares its own state_layout")


class PlainIRT(IRTRouter):
    """Inherits IRTRouter's layout unchanged."""


def test_an_inherited_layout_says_whose_it_is_and_a_malformed_one_is_one_line(xy, tmp_path):
    X, Y = xy
    d = save_router(PlainIRT(dim=3, max_epochs=2, random_state=0).fit(X, Y), tmp_path / "p",
                    spec=f"{__name__}:PlainIRT")
    _edit(d, lambda doc: doc["params"].update(dim=5))
    with pytest.raises(InputError) as e:
        load_router(d, trust_modules=(__name__,))
    assert str(e.value).startswith(f"{d / 'router.json'}: params.dim = 5 but state.safetensors holds 3-wide arrays")
    assert str(e.value).endswith("(the layout is IRTRouter's, which PlainIRT inherits: a subclass that changes an "
                                 "array's shape declares its own state_layout)")
    PlainIRT.state_layout = ["ability_"]  # a plugin's mistake: a list
    try:
        with pytest.raises(InputError, match=r"PlainIRT.state_layout must be a dict of array name -> axes or None, "
                                             r"got list$"):
            load_router(d, trust_modules=(__name__,))
    finally:
        del PlainIRT.state_layout
