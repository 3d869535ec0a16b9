"""The router contract as executable checks, for built-in and users' routers alike.

``run_checks("module:Class")`` (what ``routereval check-router`` runs, and what
tests/test_router_contract.py runs over every registered router) fits the router on
small random data with learnable structure and checks the contract of
:mod:`routereval.routers.base`. Each check raises :class:`ContractViolation` with what
went wrong; :func:`run_checks` collects pass/fail per check.
"""

from __future__ import annotations

import inspect
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from routereval.errors import InputError, NotFittedError, ParameterError


class ContractViolation(AssertionError):
    """A router breaks the contract."""


@dataclass
class CheckResult:
    check: str
    ok: bool
    message: str = ""


_TOPICS = ("algebra equation solve", "poem rhyme verse", "python code function", "history war empire")


def _data(cls=None, m: int = 4, n_train: int = 64, n_test: int = 24, d: int = 8, seed: int = 0):
    """Prompts in 4 clusters; in each cluster a different model is best: learnable structure.

    Routers with ``input_kind = "text"`` get prompt texts (n,) instead of embeddings (n, d).
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, d)) * 3
    n = n_train + n_test
    c = np.arange(n) % 4
    X = centres[c] + rng.normal(size=(n, d))
    p = np.full((4, m), 0.25)
    p[np.arange(4), np.arange(4) % m] = 0.9
    Y = (rng.random((n, m)) < p[c]).astype(np.float64)
    if getattr(cls, "input_kind", "embedding") == "text":
        X = np.array([f"{_TOPICS[k]} question {i}" for i, k in enumerate(c)], dtype=object)
    return X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]


def _make(cls, **extra):
    params = dict(getattr(cls, "check_params", {}) or {})
    params.update(extra)
    return cls(**params)


def _scores_kw(router, Y):
    return {"scores": Y} if getattr(router, "requires_scores", False) else {}


def _fit(router, X, Y, Xv=None, Yv=None):
    out = router.fit(X, Y, X_val=Xv, Y_val=Yv) if Xv is not None else router.fit(X, Y)
    return out


@dataclass
class _Fit:
    """One real fit: the router before and after, what fit returned, and its pickle (None if that failed)."""

    router: Any
    returned: Any
    before: dict
    params: dict
    blob: bytes | None
    pickle_error: str = ""


_FIT_CACHE: dict[tuple, _Fit] = {}


def _record(cls, m: int = 4) -> _Fit:
    """Fit ``cls`` once per (class, m) on ``_data(m)`` (with validation data) and remember it.

    Neural routers take seconds per fit: the checks that only need *a* fitted router share
    this one; only the determinism check fits again.
    """
    key = (cls, m)
    if key not in _FIT_CACHE:
        X, Y, Xt, Yt = _data(cls, m=m)
        r = _make(cls, **_seeded(cls))
        before, params = dict(vars(r)), dict(r.get_params())
        returned = _fit(r, X, Y, Xt[:8], Yt[:8])
        try:
            blob, err = pickle.dumps(r), ""
        except Exception as e:  # noqa: BLE001 - reported by the pickle check
            blob, err = None, f"{type(e).__name__}: {e}"
        _FIT_CACHE[key] = _Fit(r, returned, before, params, blob, err)
    return _FIT_CACHE[key]


def _seeded(cls) -> dict:
    """``random_state=7`` where the default is None (fresh randomness), so fits can be compared."""
    params = _make(cls).get_params()
    return {"random_state": 7} if "random_state" in params and params["random_state"] is None else {}


def _fitted(cls, m: int = 4):
    """A fresh copy of the recorded fitted router (the original when it cannot be pickled)."""
    rec = _record(cls, m)
    return rec.router if rec.blob is None else pickle.loads(rec.blob)  # our own bytes, made in _record


def _expect(cond: bool, msg: str) -> None:
    if not cond:
        raise ContractViolation(msg)


# --------------------------------------------------------------------------- the checks


def check_init_stores_params(cls) -> None:
    if cls.__init__ is not object.__init__:  # no __init__ anywhere: a router without hyperparameters
        sig = inspect.signature(cls.__init__)
        bad = [("*" if p.kind == p.VAR_POSITIONAL else "") + p.name for p in sig.parameters.values()
               if p.name != "self" and p.kind not in (p.KEYWORD_ONLY, p.VAR_KEYWORD)]
        _expect(not bad, f"hyperparameters must be keyword-only arguments of __init__ (def __init__(self, *, "
                         f"name=default, ...)); positional: {', '.join(bad)}")
    r = _make(cls)
    params = r.get_params()
    for k, v in (getattr(cls, "check_params", {}) or {}).items():
        _expect(params.get(k) is v or params.get(k) == v, f"__init__ changed parameter {k!r}: got {params.get(k)!r}, gave {v!r}")
    for k in params:
        _expect(not k.endswith("_"), f"hyperparameter {k!r} ends in '_' (reserved for learned state)")
    extra = [k for k in vars(r) if k.endswith("_") and not k.startswith("_")]
    _expect(not extra, f"__init__ sets learned state {extra}; only fit may")


def check_fit_returns_self(cls) -> None:
    rec = _record(cls)
    _expect(rec.returned is rec.router, "fit must return self")


def check_learned_state(cls) -> None:
    rec = _record(cls)
    r = rec.router
    new = [k for k in vars(r) if k not in rec.before and not k.startswith("_")]
    _expect(new, "fit learned no state (attributes ending in '_')")
    bad = [k for k in new if not k.endswith("_")]
    _expect(not bad, f"fit set public attributes {bad} that do not end in '_'")
    after = r.get_params()
    changed = [k for k in rec.params if not (after[k] is rec.params[k] or _same(after[k], rec.params[k]))]
    _expect(not changed, f"fit changed hyperparameters {changed}")


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - arrays and odd objects
        return False


def check_shapes(cls) -> None:
    X, Y, Xt, Yt = _data(cls)
    r = _fitted(cls)
    kw = _scores_kw(r, Yt)
    s = np.asarray(r.predict_scores(Xt, **kw))
    _expect(s.shape == Yt.shape, f"predict_scores returned shape {s.shape}, expected {Yt.shape}")
    _expect(np.isfinite(s).all(), "predict_scores returned NaN or infinite values")
    routes = np.asarray(r.route(Xt, **kw))
    _expect(routes.shape == (len(Xt),), f"route returned shape {routes.shape}, expected ({len(Xt)},)")
    _expect(np.issubdtype(routes.dtype, np.integer), f"route returned dtype {routes.dtype}, expected integers")
    _expect(routes.min() >= 0 and routes.max() < Y.shape[1], "route returned indices outside [0, m)")
    picked = s[np.arange(len(Xt)), routes]
    _expect(np.all(picked >= s.max(axis=1) - 1e-12), "route must pick a model with the highest predicted score")
    p = np.asarray(r.selection_probabilities(Xt, **kw))
    _expect(p.shape == Yt.shape, f"selection_probabilities returned shape {p.shape}, expected {Yt.shape}")
    _expect(bool((p >= -1e-12).all()) and np.allclose(p.sum(axis=1), 1.0, atol=1e-6),
            "selection_probabilities rows must be non-negative and sum to 1")
    if getattr(cls, "input_kind", "embedding") == "text":
        return
    try:
        r.predict_scores(np.hstack([Xt, Xt[:, :1]]), **kw)
    except InputError:
        pass
    else:
        raise ContractViolation("predict_scores accepted X with a different number of features than in fit")


def check_not_fitted(cls) -> None:
    X, Y, Xt, Yt = _data(cls)
    r = _make(cls)
    for meth in ("predict_scores", "route"):
        try:
            getattr(r, meth)(Xt, **_scores_kw(r, Yt))
        except NotFittedError:
            continue
        except Exception as e:  # noqa: BLE001
            raise ContractViolation(f"{meth} before fit raised {type(e).__name__}, expected NotFittedError") from None
        raise ContractViolation(f"{meth} before fit did not raise NotFittedError")


def check_deterministic(cls) -> None:
    X, Y, Xt, Yt = _data(cls)
    a = _record(cls).router
    b = _fit(_make(cls, **_seeded(cls)), X, Y, Xt[:8], Yt[:8])
    kw = _scores_kw(a, Yt)
    _expect(np.array_equal(a.predict_scores(Xt, **kw), b.predict_scores(Xt, **kw)),
            "two fits with the same parameters (random_state) give different predict_scores")
    _expect(np.array_equal(a.route(Xt, **kw), a.route(Xt, **kw)), "route is not deterministic")


def check_prompt_order(cls) -> None:
    X, Y, Xt, Yt = _data(cls)
    r = _fitted(cls)
    perm = np.random.default_rng(3).permutation(len(Xt))
    kw, kwp = _scores_kw(r, Yt), _scores_kw(r, Yt[perm])
    _expect(np.array_equal(r.route(Xt[perm], **kwp), r.route(Xt, **kw)[perm]),
            "routing a permuted X does not give the permuted routes")
    _expect(np.allclose(r.predict_scores(Xt[perm], **kwp), r.predict_scores(Xt, **kw)[perm], atol=1e-9),
            "predict_scores of a permuted X are not the permuted scores")


def check_state_round_trip(cls) -> None:
    from routereval.routers.persist import load_router, save_router

    X, Y, Xt, Yt = _data(cls)
    r = _fitted(cls)
    kw = _scores_kw(r, Yt)
    want_s, want_r = r.predict_scores(Xt, **kw), r.route(Xt, **kw)
    fresh = _make(cls).load_state_dict(r.state_dict())
    _expect(fresh is not None, "load_state_dict must return the router")
    _expect(np.array_equal(fresh.predict_scores(Xt, **kw), want_s), "state_dict round trip changes predict_scores")
    with tempfile.TemporaryDirectory() as d:
        spec = f"{cls.__module__}:{cls.__qualname__}"
        save_router(r, f"{d}/r", pool={"m": Y.shape[1]}, encoder="test", spec=spec)
        loaded = load_router(f"{d}/r", trust_modules=(cls.__module__,)).router  # the class the user named
    _expect(type(loaded) is cls, f"loading gave a {type(loaded).__name__}")
    _expect(np.array_equal(loaded.predict_scores(Xt, **kw), want_s), "save/load round trip changes predict_scores")
    _expect(np.array_equal(loaded.route(Xt, **kw), want_r), "save/load round trip changes routes")


def check_pickle(cls) -> None:
    _, _, Xt, Yt = _data(cls)
    rec = _record(cls)
    _expect(rec.blob is not None, f"the fitted router cannot be pickled: {rec.pickle_error}")
    kw = _scores_kw(rec.router, Yt)
    back = pickle.loads(rec.blob)  # our own bytes, made in _record
    _expect(np.array_equal(back.predict_scores(Xt, **kw), rec.router.predict_scores(Xt, **kw)),
            "pickling round trip changes predict_scores")


def _check_m(cls, m: int) -> None:
    X, Y, Xt, Yt = _data(cls, m=m)
    r = _fitted(cls, m)
    kw = _scores_kw(r, Yt)
    s = np.asarray(r.predict_scores(Xt, **kw))
    routes = np.asarray(r.route(Xt, **kw))
    _expect(s.shape == (len(Xt), m), f"m = {m}: predict_scores shape {s.shape}")
    _expect(routes.shape == (len(Xt),) and routes.min() >= 0 and routes.max() < m, f"m = {m}: bad routes")
    p = np.asarray(r.selection_probabilities(Xt, **kw))
    _expect(p.shape == (len(Xt), m) and np.allclose(p.sum(axis=1), 1.0, atol=1e-6), f"m = {m}: bad selection_probabilities")


def check_m1(cls) -> None:
    _check_m(cls, 1)


def check_m2(cls) -> None:
    _check_m(cls, 2)


def check_test_scores(cls) -> None:
    X, Y, Xt, Yt = _data(cls)
    r = _fitted(cls)
    if getattr(r, "requires_scores", False):
        try:
            r.route(Xt)
        except InputError:
            pass
        else:
            raise ContractViolation("an oracle router routed without being given scores=")
        flipped = 1.0 - Yt
        _expect(not np.array_equal(r.route(Xt, scores=Yt), r.route(Xt, scores=flipped)) or Yt.shape[1] == 1,
                "an oracle router ignores the scores it is given")
    else:
        for meth in ("predict_scores", "route"):
            try:
                getattr(r, meth)(Xt, scores=Yt)
            except (InputError, TypeError):
                continue
            raise ContractViolation(f"{meth} of a non-oracle router accepted the test scores (scores=)")


_BAD_CANDIDATES: tuple = (0, -1, -0.5, 1.5, 10**12, "invalid", None, 2.5, True)


def check_bad_params(cls) -> None:
    constraints = getattr(cls, "parameters", {}) or {}
    label = getattr(cls, "name", "") or cls.__name__
    unchecked = [p for p in _make(cls).get_params() if p not in constraints]
    _expect(not unchecked, f"hyperparameters {unchecked} have no constraints in the class's `parameters`")
    X, Y, _, _ = _data(cls)
    tested = 0
    for pname, cons in constraints.items():
        bad = next((v for v in _BAD_CANDIDATES if not any(c.accepts(v) for c in cons)), "no-bad-value")
        if bad == "no-bad-value":
            continue
        tested += 1
        r = _make(cls, **{pname: bad})
        _expect(r.get_params()[pname] is bad, f"__init__ changed or validated {pname!r}; validate in fit")
        try:
            r.fit(X, Y)
        except ParameterError as e:
            want = f"The {pname!r} parameter of {label} must be "
            _expect(str(e).startswith(want) and str(e).endswith(f"Got {bad!r}."),
                    f"message for {pname}={bad!r} is {str(e)!r}, expected {want}... Got {bad!r}.")
        else:
            raise ContractViolation(f"fit accepted {pname}={bad!r}, outside {cons}")
    from routereval.routers.base import make_router

    try:
        make_router(f"{cls.__module__}:{cls.__qualname__}", no_such_parameter_xyz=1)
    except ParameterError:
        pass
    else:
        raise ContractViolation("an unknown hyperparameter was accepted")


def check_add_model(cls) -> None:
    """``supports_add_model`` is declared; add_model adds one model with the prompt side fixed, or refuses in one line."""
    from routereval.routers.base import CapabilityError

    declared = getattr(cls, "supports_add_model", None)
    _expect(isinstance(declared, bool), f"supports_add_model must be a class attribute True or False, got {declared!r}")
    X, Y, Xt, Yt = _data(cls)
    r = _fitted(cls)
    kw = _scores_kw(r, Yt)
    before = np.asarray(r.predict_scores(Xt, **kw))
    m = Y.shape[1]
    if not declared:
        state = pickle.dumps(r.state_dict())
        try:
            r.add_model("new", X[:16], Y[:16, 0])
        except CapabilityError as e:
            _expect(bool(str(e)) and "\n" not in str(e), f"add_model's refusal must be one line, got {str(e)!r}")
        except Exception as e:  # noqa: BLE001
            raise ContractViolation(f"add_model of a router without the capability raised {type(e).__name__}, "
                                    f"expected CapabilityError") from None
        else:
            raise ContractViolation("supports_add_model is False but add_model succeeded")
        _expect(pickle.dumps(r.state_dict()) == state, "a refused add_model changed the router's learned state")
        return
    out = r.add_model("new", X[:16], Y[:16, 0])
    _expect(out is r, "add_model must return self")
    _expect(r.n_models_ == m + 1, f"after add_model n_models_ is {r.n_models_}, expected {m + 1}")
    s = np.asarray(r.predict_scores(Xt, **kw))
    _expect(s.shape == (len(Xt), m + 1), f"after add_model predict_scores has shape {s.shape}, expected {(len(Xt), m + 1)}")
    _expect(np.isfinite(s).all(), "after add_model predict_scores has NaN or infinite values")
    _expect(np.allclose(s[:, :m], before, rtol=0, atol=1e-9),
            "add_model changed the predictions of the pool's models (the prompt side must stay fixed)")
    routes = np.asarray(r.route(Xt, **kw))
    _expect(routes.min() >= 0 and routes.max() <= m, "after add_model route returned indices outside [0, m + 1)")
    again = _fitted(cls).add_model("new", X[:16], Y[:16, 0])
    _expect(np.array_equal(np.asarray(again.predict_scores(Xt, **kw)), s), "add_model is not deterministic")
    with tempfile.TemporaryDirectory() as d:
        from routereval.routers.persist import load_router, save_router

        save_router(r, f"{d}/r", spec=f"{cls.__module__}:{cls.__qualname__}")
        loaded = load_router(f"{d}/r", trust_modules=(cls.__module__,)).router
    _expect(np.array_equal(np.asarray(loaded.predict_scores(Xt, **kw)), s),
            "save/load of a router with an added model changes predict_scores")
    for bad_y, what in ((np.full(16, 1.5), "scores outside [0, 1]"), (Y[:15, 0], "fewer scores than prompts")):
        try:
            _fitted(cls).add_model("bad", X[:16], bad_y)
        except InputError:
            continue
        raise ContractViolation(f"add_model accepted {what}")


def check_state_layout(cls) -> None:
    """The fitted state fits the class's ``state_layout``; one the class declares itself names every learned array.

    An inherited layout may leave arrays a subclass adds undescribed (they are not checked), but
    the arrays it describes must keep their shapes: loading checks them.
    """
    from routereval.routers.persist import check_state_layout as check

    layout = getattr(cls, "state_layout", None)
    if layout is None:  # undeclared: loading cannot check the arrays' shapes, which is allowed
        return
    _expect(isinstance(layout, dict) and all(isinstance(v, tuple) for v in layout.values()),
            f"state_layout must map array names to tuples of axes, got {layout!r}")
    router = _fitted(cls)
    state = router.state_dict()
    if "state_layout" in vars(cls):
        arrays = {k for k, v in state.items() if isinstance(v, np.ndarray)}
        _expect(not arrays - set(layout), f"state_layout does not name the learned arrays {sorted(arrays - set(layout))}")
        _expect(not set(layout) - set(state), f"state_layout names {sorted(set(layout) - set(state))}, not learned by fit")
    try:
        check(router, state, meta_file=Path("router.json"), arr_file=Path("state.safetensors"))
    except InputError as e:
        raise ContractViolation(f"the fitted state contradicts state_layout: {e}") from None


CHECKS: dict[str, Callable[[type], None]] = {
    "init_stores_params": check_init_stores_params,
    "fit_returns_self": check_fit_returns_self,
    "learned_state": check_learned_state,
    "shapes": check_shapes,
    "not_fitted": check_not_fitted,
    "deterministic": check_deterministic,
    "prompt_order": check_prompt_order,
    "state_round_trip": check_state_round_trip,
    "pickle": check_pickle,
    "m1": check_m1,
    "m2": check_m2,
    "test_scores": check_test_scores,
    "bad_params": check_bad_params,
    "add_model": check_add_model,
    "state_layout": check_state_layout,
}


def run_check(cls_or_spec: Any, check: str) -> CheckResult:
    """Run one named check; a failure or an unexpected exception is a failed result."""
    from routereval.routers.base import get_router_class

    cls = get_router_class(cls_or_spec) if isinstance(cls_or_spec, str) else cls_or_spec
    try:
        CHECKS[check](cls)
    except ContractViolation as e:
        return CheckResult(check, False, str(e))
    except Exception as e:  # noqa: BLE001 - any crash is a contract failure, reported per check
        return CheckResult(check, False, f"{type(e).__name__}: {e}")
    return CheckResult(check, True)


def run_checks(cls_or_spec: Any) -> list[CheckResult]:
    """Every contract check on a router class (or a registry name / ``module:Class``)."""
    from routereval.routers.base import get_router_class

    cls = get_router_class(cls_or_spec) if isinstance(cls_or_spec, str) else cls_or_spec
    return [run_check(cls, name) for name in CHECKS]
