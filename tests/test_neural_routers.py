"""The learned routers: linear, mlp, mf, irt (embeddings) and mlc (texts)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from routereval.errors import InputError, ParameterError
from routereval.routers import make_router

EMB_ROUTERS = ["linear", "mlp", "mf", "irt"]


def logistic_task(n, d, m, *, seed=0, graded=False):
    """Prompts on the unit sphere; model j succeeds with probability sigmoid(x . w_j * 4)."""
    r = np.random.default_rng(seed)
    W = r.standard_normal((d, m)) * 4
    X = r.standard_normal((n, d)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    P = 1 / (1 + np.exp(-(X @ W)))
    Y = P if graded else (r.random((n, m)) < P).astype(float)
    return X, Y


@pytest.fixture(scope="module")
def task():
    X, Y = logistic_task(2000, 32, 5)
    return X[:1400], Y[:1400], X[1400:1600], Y[1400:1600], X[1600:], Y[1600:]


def mu(Y, picks):
    return Y[np.arange(len(Y)), picks].mean()


@pytest.mark.parametrize("name", EMB_ROUTERS)
def test_learns_and_approaches_the_oracle(task, name):
    Xtr, Ytr, Xv, Yv, Xte, Yte = task
    r = make_router(name, random_state=0).fit(Xtr, Ytr, X_val=Xv, Y_val=Yv)
    oracle, random_, best = Yte.max(1).mean(), Yte.mean(), Yte[:, Ytr.mean(0).argmax()].mean()
    got = mu(Yte, r.route(Xte))
    assert got > best + 0.2
    assert (got - random_) / (oracle - random_) > 0.7, (got, random_, oracle)
    s = r.predict_scores(Xte)
    assert s.shape == (len(Xte), 5) and ((s >= 0) & (s <= 1)).all()
    # predicted success probabilities are calibrated-ish: they track the true means
    assert abs(s.mean() - Yte.mean()) < 0.05
    assert r.stopped_early_ == (r.n_epochs_ < 100) and len(r.loss_curve_) == r.n_epochs_


def test_linear_and_mlp_e_p_is_softmax_of_logits(task):
    Xtr, Ytr, *_, Xte, _ = task
    for name in ("linear", "mlp"):
        r = make_router(name, random_state=1, max_epochs=3).fit(Xtr, Ytr)
        z = r.decision_function(Xte)
        p = r.selection_probabilities(Xte)
        e = np.exp(z - z.max(1, keepdims=True))
        np.testing.assert_allclose(p, e / e.sum(1, keepdims=True), rtol=1e-10)
        np.testing.assert_array_equal(r.route(Xte), z.argmax(1))


@pytest.mark.parametrize("name", EMB_ROUTERS)
def test_early_stopping_on_noise(name):
    r = np.random.default_rng(3)
    X = r.standard_normal((600, 64)).astype(np.float32)
    Y = (r.random((600, 4)) < 0.5).astype(float)
    router = make_router(name, random_state=0, max_epochs=200, patience=3, lr=0.01)
    router.fit(X[:400], Y[:400], X_val=X[400:], Y_val=Y[400:])
    assert router.stopped_early_ and router.n_epochs_ < 60
    # the kept weights are the best epoch's: their validation loss is the recorded best
    p = np.clip(router.predict_scores(X[400:]), 1e-12, 1 - 1e-12)
    bce = -np.mean(Y[400:] * np.log(p) + (1 - Y[400:]) * np.log(1 - p))
    assert bce == pytest.approx(router.best_val_loss_, rel=1e-4)


@pytest.mark.parametrize("name", ["linear", "mlp"])
def test_patience_none_trains_every_epoch_on_train_only(name):
    """The reference's training (patience=None): validation data change nothing, every epoch runs."""
    r = np.random.default_rng(3)
    X = r.standard_normal((300, 16)).astype(np.float32)
    Y = (r.random((300, 4)) < 0.5).astype(float)
    kw = dict(random_state=0, max_epochs=30, patience=None, lr=0.01)
    with_val = make_router(name, **kw).fit(X[:200], Y[:200], X_val=X[200:], Y_val=Y[200:])
    without = make_router(name, **kw).fit(X[:200], Y[:200])
    assert with_val.n_epochs_ == 30 and not with_val.stopped_early_ and with_val.best_val_loss_ is None
    np.testing.assert_array_equal(with_val.decision_function(X[200:]), without.decision_function(X[200:]))
    # with patience the same noise stops early
    assert make_router(name, **{**kw, "patience": 2}).fit(X[:200], Y[:200], X_val=X[200:], Y_val=Y[200:]).stopped_early_


@pytest.mark.parametrize("name", EMB_ROUTERS)
def test_determinism_and_state_round_trip(task, name):
    Xtr, Ytr, *_, Xte, _ = task
    kw = dict(random_state=7, max_epochs=4)
    a = make_router(name, **kw).fit(Xtr[:300], Ytr[:300])
    b = make_router(name, **kw).fit(Xtr[:300], Ytr[:300])
    c = make_router(name, **{**kw, "random_state": 8}).fit(Xtr[:300], Ytr[:300])
    for k in a._weights:
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    assert not np.array_equal(a.predict_scores(Xte), c.predict_scores(Xte))
    state = a.state_dict()
    assert all(isinstance(v, (np.ndarray, int, float, str, list, bool, type(None))) for v in state.values())
    loaded = make_router(name).load_state_dict(state)
    np.testing.assert_array_equal(loaded.predict_scores(Xte), a.predict_scores(Xte))


@pytest.mark.parametrize("name", EMB_ROUTERS)
def test_graded_scores_are_soft_targets(name):
    X, P = logistic_task(900, 16, 4, seed=5, graded=True)
    r = make_router(name, random_state=0, max_epochs=40).fit(X[:700], P[:700])
    s = r.predict_scores(X[700:])
    assert np.corrcoef(s.ravel(), P[700:].ravel())[0, 1] > 0.8
    assert mu(P[700:], r.route(X[700:])) > P[700:].mean() + 0.1


@pytest.mark.parametrize("name", ["mf", "irt"])
def test_pools_of_1000_models(name):
    X, Y = logistic_task(400, 32, 1000, seed=2)
    r = make_router(name, random_state=0, max_epochs=50, lr=0.02).fit(X[:300], Y[:300])
    s = r.predict_scores(X[300:])
    assert s.shape == (100, 1000)
    assert mu(Y[300:], r.route(X[300:])) > Y[300:].mean() + 0.2


def test_irt_parts_have_their_meaning(task):
    Xtr, Ytr, *_, Xte, _ = task
    r = make_router("irt", random_state=0, dim=4, max_epochs=10).fit(Xtr, Ytr)
    assert r.ability_.shape == (5, 4) and (r.discrimination(Xte) >= 0).all()
    z = r.discrimination(Xte) @ r.ability_.T - r.difficulty(Xte)[:, None]
    np.testing.assert_allclose(r.predict_scores(Xte), 1 / (1 + np.exp(-z)), rtol=1e-5)


def test_parameter_and_input_errors(task):
    Xtr, Ytr, *_ = task
    with pytest.raises(ParameterError, match=r"^The 'hidden_size' parameter of mlp must be an int in \[1, inf\). Got 0.$"):
        make_router("mlp", hidden_size=0).fit(Xtr, Ytr)
    with pytest.raises(ParameterError, match="'device' parameter of mf must be one of 'cpu', 'cuda', 'auto'"):
        make_router("mf", device="gpu").fit(Xtr, Ytr)
    r = make_router("linear", max_epochs=1).fit(Xtr, Ytr)
    with pytest.raises(InputError, match="X has 3 features .* expected 32"):
        r.predict_scores(np.zeros((2, 3)))
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="no CUDA device"):
            make_router("irt", device="cuda").fit(Xtr, Ytr)
    else:
        assert make_router("irt", device="cuda", max_epochs=1).fit(Xtr, Ytr).predict_scores(Xtr).shape == Ytr.shape


# ---------------------------------------------------------------------- mlc (texts)


@pytest.fixture(scope="module")
def mmlu_texts(shared_data):
    """64 real MMLU-Pro questions, half law and half math; 'model 0' solves law, 'model 1' math."""
    law, math = [], []
    with gzip.open(shared_data / "mmlu_pro" / "mmlu_pro_questions.jsonl.gz", "rt") as f:
        for line in f:
            q = json.loads(line)
            bucket = law if q["category"] == "law" else math if q["category"] == "math" else None
            if bucket is not None and len(bucket) < 32:
                bucket.append(q["question"])
            if len(law) == len(math) == 32:
                break
    texts = np.array(law + math, dtype=object)
    Y = np.zeros((64, 2))
    Y[:32, 0] = 1
    Y[32:, 1] = 1
    return texts, Y


def test_mlc_fine_tunes_on_texts_and_round_trips(mmlu_texts):
    texts, Y = mmlu_texts
    kw = dict(max_steps=6, batch_size=8, max_length=32, lr=1e-3, random_state=0)
    r = make_router("mlc", **kw).fit(texts, Y)
    assert r.n_steps_ == 6 and r.weights_.dtype == np.float32 and len(r.weight_names_) == len(r.weight_shapes_)
    assert mu(Y, r.route(texts)) > 0.8  # separates law from math after 6 steps
    p = r.selection_probabilities(texts)
    z = r.decision_function(texts)
    assert (p >= 0).all() and np.allclose(p.sum(1), 1)
    pos = (z > 0).any(1)
    np.testing.assert_allclose(p[pos], np.maximum(z[pos], 0) / np.maximum(z[pos], 0).sum(1, keepdims=True))
    # state: arrays and JSON values only; a fresh router rebuilt from it predicts the same
    state = r.state_dict()
    assert all(isinstance(v, (np.ndarray, int, float, str, list)) for v in state.values())
    loaded = make_router("mlc", **kw).load_state_dict(state)
    np.testing.assert_allclose(loaded.predict_scores(texts[::-1]), r.predict_scores(texts)[::-1], atol=1e-5)
    again = make_router("mlc", **kw).fit(texts, Y)
    np.testing.assert_array_equal(again.weights_, r.weights_)  # deterministic under random_state


def test_mlc_wants_texts(mmlu_texts):
    texts, Y = mmlu_texts
    with pytest.raises(InputError, match="prompt texts"):
        make_router("mlc", max_steps=1).fit(np.zeros((64, 3)), Y)
    with pytest.raises(ParameterError, match="'encoder' parameter of mlc must be a local encoder directory"):
        make_router("mlc", encoder="/nonexistent").fit(texts, Y)
    assert make_router("mlc").input_kind == "text"


def test_mlc_warmup_steps_and_gradient_clipping_shrink_the_first_step(mmlu_texts):
    """The reference's Trainer settings act: warmup_steps=500 makes step 1's rate lr / 500, and a
    gradient clipped to a tiny norm (below Adam's eps) barely moves the weights."""
    texts, Y = mmlu_texts
    kw = dict(max_steps=1, batch_size=4, max_length=16, lr=1e-3, random_state=0)

    def moved(**extra):
        return make_router("mlc", **{**kw, **extra}).fit(texts[:8], Y[:8]).weights_

    start = moved(lr=1e-30)  # the initial weights (the same seed draws the same head)
    full = np.linalg.norm(moved(warmup_steps=0) - start)
    warm = np.linalg.norm(moved(warmup_steps=500) - start)
    clipped = np.linalg.norm(moved(warmup_steps=0, max_grad_norm=1e-12) - start)
    assert full > 0 and warm == pytest.approx(full / 500, rel=0.05)
    assert clipped < full / 100
