"""The router contract, its parameter validation and the registry of routers.

Every router follows one contract, in the spirit of scikit-learn estimators:

- ``__init__`` only stores keyword hyperparameters, unchanged;
- ``fit(X, Y, *, X_val=None, Y_val=None, cost=None)`` validates its inputs and
  parameters, learns state in attributes ending in ``_`` and returns ``self``;
- ``predict_scores(X)`` returns (n, m), higher is better; ``route(X)`` returns (n,)
  model indices (the argmax of ``predict_scores``, first index on ties);
- randomness only comes from ``random_state``;
- oracle-type routers (``requires_scores = True``) are given the scores of the
  prompts they route through the explicit ``scores=`` argument, never through
  hidden state.
"""

from __future__ import annotations

import importlib
import inspect
import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np

from routereval.errors import InputError, NotFittedError, ParameterError
from routereval.validate import float_array


class CapabilityError(ParameterError):
    """A router asked for something it cannot do (e.g. ``add_model`` without per-model parameters)."""

# --------------------------------------------------------------------------- constraints


@dataclass(frozen=True)
class Interval:
    """A number of ``kind`` (int or float) in [left, right] (``closed`` says which ends)."""

    kind: type
    left: float | None
    right: float | None
    closed: str = "both"  # both | left | right | neither

    def accepts(self, v: Any) -> bool:
        if isinstance(v, bool):
            return False
        if self.kind is int:
            if not isinstance(v, numbers.Integral):
                return False
        elif not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
            return False
        lo_ok = self.left is None or (v >= self.left if self.closed in ("both", "left") else v > self.left)
        hi_ok = self.right is None or (v <= self.right if self.closed in ("both", "right") else v < self.right)
        return lo_ok and hi_ok

    def __str__(self) -> str:
        lb = "[" if self.closed in ("both", "left") and self.left is not None else "("
        rb = "]" if self.closed in ("both", "right") and self.right is not None else ")"
        lo = "-inf" if self.left is None else f"{self.left:g}"
        hi = "inf" if self.right is None else f"{self.right:g}"
        return f"{'an int' if self.kind is int else 'a float'} in {lb}{lo}, {hi}{rb}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: tuple

    def accepts(self, v: Any) -> bool:
        return v in self.values

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class OfType:
    """An instance of one of ``types`` (``None`` allowed when listed as ``type(None)``)."""

    types: tuple

    def accepts(self, v: Any) -> bool:
        return isinstance(v, self.types) and not (isinstance(v, bool) and bool not in self.types)

    def __str__(self) -> str:
        names = ["None" if t is type(None) else t.__name__ for t in self.types]
        return "of type " + " or ".join(names)


# numpy seeds are non-negative integers (numpy's own included); None draws fresh entropy
RANDOM_STATE = (Interval(int, 0, None), OfType((type(None), np.random.Generator)))


def _describe(constraints: tuple) -> str:
    return " or ".join(str(c) for c in constraints)


# --------------------------------------------------------------------------- base class


class Router:
    """Base class of every router.

    Subclasses set ``name`` (the registry name), ``parameters`` (name -> tuple of
    constraints, one of which each value must satisfy) and implement ``_fit`` and
    ``_predict_scores``. Hyperparameters are the keyword arguments of ``__init__``.
    """

    name: ClassVar[str] = ""
    parameters: ClassVar[dict[str, tuple]] = {}
    requires_scores: ClassVar[bool] = False  # oracle-type routers see the scores of routed prompts
    # E_p threshold of the reference for this router (terms with p <= threshold count 0; None: all p > 0)
    ep_threshold: ClassVar[float | None] = 1e-10
    # names of the learned state; when set, load_state_dict refuses other or missing keys
    state_keys: ClassVar[tuple[str, ...] | None] = None
    # what evaluate() fits the router on: "labels" (the 0.95-of-best rule on graded benchmarks, as
    # the reference trains) or "scores" (the raw scores: best_single must be the pool's best model)
    fit_target: ClassVar[str] = "labels"
    # defaults evaluate() uses under the paper protocol for hyperparameters the user did not give
    paper_defaults: ClassVar[dict[str, Any]] = {}
    # hyperparameters the contract checks use to keep them fast (e.g. a few training steps)
    check_params: ClassVar[dict[str, Any]] = {}
    # cold start: True when the router has a per-model parameter vector that add_model() can
    # estimate from a few answers with the prompt side fixed (see routereval.coldstart)
    supports_add_model: ClassVar[bool] = False
    # learned state that may be absent from a saved router (e.g. the names of models added later)
    optional_state_keys: ClassVar[tuple[str, ...]] = ()
    # each learned array's axes, one symbol per axis: "m" (pool models), "d" (embedding features),
    # a hyperparameter's name, an int, or a size the arrays share among themselves; a loaded
    # router's arrays are checked against it (persist.check_state_layout). None: not checked
    state_layout: ClassVar[dict[str, tuple[str | int, ...]] | None] = None

    # ---- hyperparameters (scikit-learn style)
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind == p.KEYWORD_ONLY]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        sig = inspect.signature(cls.__init__)
        return {n: sig.parameters[n].default for n in cls._param_names()}

    def get_params(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in self._param_names()}

    def set_params(self, **params: Any) -> "Router":
        valid = set(self._param_names())
        for k, v in params.items():
            if k not in valid:
                raise ParameterError(
                    f"unknown parameter {k!r} for router {self._label()}; expected one of: {', '.join(sorted(valid)) or '(none)'}")
            setattr(self, k, v)
        return self

    @classmethod
    def describe_parameters(cls) -> list[dict[str, Any]]:
        """Name, default and allowed values of each hyperparameter (what ``routereval routers`` lists)."""
        d = cls.defaults()
        return [{"name": n, "default": d[n],
                 "constraint": _describe(cls.parameters[n]) if n in cls.parameters else "any"}
                for n in cls._param_names()]

    def validate_params(self) -> None:
        """Raise :class:`ParameterError` (scikit-learn style message) for a value outside its constraints."""
        self._validate_params()

    def _label(self) -> str:
        return self.name or type(self).__name__

    def _validate_params(self) -> None:
        for pname, constraints in self.parameters.items():
            v = getattr(self, pname)
            if not any(c.accepts(v) for c in constraints):
                raise ParameterError(
                    f"The {pname!r} parameter of {self._label()} must be {_describe(constraints)}. Got {v!r}.")

    def __repr__(self) -> str:
        d = self.defaults()
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v is not d.get(k) and v != d.get(k))
        return f"{type(self).__name__}({args})"

    @classmethod
    def warm_up(cls) -> None:
        """Import the heavy modules ``fit`` needs (torch, scikit-learn), so timing a fit leaves them out."""

    # ---- the contract
    def fit(self, X: np.ndarray, Y: np.ndarray, *, X_val: np.ndarray | None = None,
            Y_val: np.ndarray | None = None, cost: np.ndarray | None = None) -> "Router":
        """Learn from prompts ``X`` (n, d) and the pool's scores ``Y`` (n, m) in [0, 1].

        ``X_val``/``Y_val`` tune (early stopping, model selection); ``cost`` (n, m) or (m,)
        is the cost of each model, for cost-aware routers. Returns ``self``.
        """
        self._validate_params()
        X, Y = check_XY(X, Y)
        check_cost(cost, Y.shape)
        if X_val is not None or Y_val is not None:
            if X_val is None or Y_val is None:
                raise InputError("give both X_val and Y_val, or neither")
            X_val, Y_val = check_XY(X_val, Y_val, what="validation ")
            if X_val.shape[1] != X.shape[1] or Y_val.shape[1] != Y.shape[1]:
                raise InputError(
                    f"validation data has {X_val.shape[1]} features and {Y_val.shape[1]} models, "
                    f"expected {X.shape[1]} and {Y.shape[1]} as in training")
        self.n_features_in_ = X.shape[1]
        self.n_models_ = Y.shape[1]
        self._fit(X, Y, X_val=X_val, Y_val=Y_val, cost=cost)
        return self

    def predict_scores(self, X: np.ndarray, *, scores: np.ndarray | None = None) -> np.ndarray:
        """(n, m) predicted quality of each pool model on each prompt of ``X`` (n, d)."""
        self._check_fitted()
        X = check_X(X, n_features=self.n_features_in_)
        if self.requires_scores:
            if scores is None:
                raise InputError(f"router {self._label()} is an oracle: pass the scores of the routed prompts as scores=")
            scores = np.asarray(scores, dtype=np.float64)
            if scores.shape != (X.shape[0], self.n_models_):
                raise InputError(f"scores have shape {scores.shape}, expected {(X.shape[0], self.n_models_)}")
            if not np.isfinite(scores).all():
                bad = np.argwhere(~np.isfinite(scores))[0]
                raise InputError(f"scores[{bad[0]}, {bad[1]}] is {scores[tuple(bad)]}: an oracle needs every pool "
                                 "model's score on each routed prompt (drop the prompts with missing records)")
            return self._predict_scores(X, scores=scores)
        if scores is not None:
            raise InputError(f"router {self._label()} is not an oracle: it must not be given the scores of routed prompts")
        return self._predict_scores(X)

    def route(self, X: np.ndarray, *, scores: np.ndarray | None = None) -> np.ndarray:
        """(n,) index of the chosen model for each prompt of ``X``."""
        return np.argmax(self.predict_scores(X, scores=scores), axis=1)

    def selection_probabilities(self, X: np.ndarray, *, scores: np.ndarray | None = None) -> np.ndarray:
        """(n, m) per-prompt selection probabilities as the reference code computes them for E_p.

        The default is a softmax of :meth:`predict_scores` (what the reference does for
        PRknn); routers whose reference computes E_p differently override it.
        """
        s = self.predict_scores(X, scores=scores)
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    # ---- cold start
    def add_model(self, name: str, X_anchor: np.ndarray, y_anchor: np.ndarray, **kwargs: Any) -> "Router":
        """Add a model to the fitted pool from its scores ``y_anchor`` (k,) on prompts ``X_anchor`` (k, d).

        Only routers with ``supports_add_model = True`` can; the others raise
        :class:`CapabilityError` saying why, in one line. Those that can take keyword options:
        ``offsets`` (k,), the anchors' calibrated residual difficulties
        (:func:`~routereval.coldstart.calibrate_prompts`' ``delta``; what ``add-model`` and the study
        fit the new column with), ``weights`` (k,), relative weights of the answers, and
        ``prior_scale`` (see ``posterior_model`` of :mod:`routereval.routers.linear`).
        """
        raise CapabilityError(
            f"router {self._label()} cannot add a model from a few answers: it has no per-model parameter "
            f"vector to estimate with the prompt side fixed (routers that can: {routers_that_add_models()}); "
            f"refit it with the new model's training answers")

    # ---- to implement
    def _fit(self, X, Y, *, X_val, Y_val, cost) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict_scores(self, X, **kwargs) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_models_"):
            raise NotFittedError(f"this {self._label()} router is not fitted yet; call fit(X, Y) first")

    # ---- persistence: arrays + JSON, never a pickle that could run code
    def state_dict(self) -> dict[str, np.ndarray | int | float | str | list]:
        """Learned state (attributes ending in ``_``) as arrays and JSON values."""
        out = {}
        for k, v in vars(self).items():
            if k.endswith("_") and not k.startswith("_"):
                out[k] = v
        return out

    def load_state_dict(self, state: dict) -> "Router":
        for k in state:
            if not k.endswith("_") or k.startswith("_"):
                raise InputError(f"router state key {k!r} is not learned state (it must end in '_')")
        if self.state_keys is not None:
            expected = set(self.state_keys) | {"n_models_"}
            if getattr(self, "input_kind", "embedding") != "text":  # text routers have no feature count
                expected.add("n_features_in_")
            optional = set(self.optional_state_keys)
            unknown, missing = sorted(set(state) - expected - optional), sorted(expected - set(state))
            if unknown or missing:
                raise InputError(
                    f"router {self._label()}: state has unknown keys {unknown} and lacks {missing}; "
                    f"expected exactly {sorted(expected)}")
        for k, v in state.items():
            setattr(self, k, v)
        return self


def check_X(X: np.ndarray, *, n_features: int | None = None, what: str = "") -> np.ndarray:
    if not (isinstance(X, np.ndarray) and X.dtype == np.float32):
        X = float_array(X, f"{what}X", expected="(n_prompts, n_features) of prompt embeddings", finite=False)
    if X.ndim != 2:
        raise InputError(f"{what}X must be 2-D (n_prompts, n_features), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise InputError(f"{what}X has NaN or infinite values")
    if n_features is not None and X.shape[1] != n_features:
        raise InputError(f"{what}X has {X.shape[1]} features (embedding dimension), expected {n_features} as in fit")
    return X


def check_XY(X: np.ndarray, Y: np.ndarray, *, what: str = "") -> tuple[np.ndarray, np.ndarray]:
    X = check_X(X, what=what)
    Y = float_array(Y, f"{what}Y", expected="(n_prompts, n_models) of scores", finite=False)
    if Y.ndim != 2:
        raise InputError(f"{what}Y must be 2-D (n_prompts, n_models), got shape {Y.shape}")
    if Y.shape[0] != X.shape[0]:
        raise InputError(f"{what}X has {X.shape[0]} prompts but Y has {Y.shape[0]}")
    if Y.shape[1] < 1:
        raise InputError(f"{what}Y has no models; a pool needs m >= 1")
    if X.shape[0] < 1:
        raise InputError(f"{what}X has no prompts")
    if not np.isfinite(Y).all() or (Y < 0).any() or (Y > 1).any():
        raise InputError(f"{what}Y must hold scores in [0, 1] with no NaN")
    return X, Y


def check_cost(cost: Any, shape: tuple[int, int]) -> None:
    """``cost`` (n, m) per prompt and model or (m,) per model, finite and >= 0; None passes."""
    if cost is None:
        return
    c = float_array(cost, "cost", expected="(n_prompts, n_models) or (n_models,)", finite=False)
    if c.shape not in (shape, shape[1:]):
        raise InputError(f"cost must have shape {shape} (per prompt and model) or {shape[1:]} (per model); "
                         f"got {c.shape}")
    if not np.isfinite(c).all() or (c < 0).any():
        raise InputError("cost must hold finite costs >= 0 (USD); it has NaN, infinite or negative values")


def rng_from(random_state) -> np.random.Generator:
    """A numpy Generator from an int seed, None or a Generator (the only source of randomness)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def prompt_uniforms(X: np.ndarray, m: int, random_state) -> np.ndarray:
    """(n, m) uniforms in [0, 1) that depend only on each prompt's embedding and ``random_state``.

    Randomised routers draw from these rather than from a stream, so routing a permuted
    ``X`` gives the permuted routes and a prompt always gets the same draw. The rows' bytes
    are hashed with seeded random odd multipliers (wrapping uint64 arithmetic) and a
    splitmix64 finaliser per model column.
    """
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
    words = (X + 0.0).view(np.uint64)  # + 0.0 folds -0.0 into 0.0
    seed = random_state if isinstance(random_state, (int, np.integer)) else (
        0 if random_state is None else int(rng_from(random_state).integers(2**63)))
    seed = int(seed)
    # numpy seeds are non-negative: a negative seed gets its own entropy, never that of -seed
    gen = np.random.default_rng(seed if seed >= 0 else [1, -seed])
    mult = gen.integers(1, 2**63, size=X.shape[1], dtype=np.uint64) | np.uint64(1)
    salt = gen.integers(0, 2**63, size=m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = (words * mult).sum(axis=1, dtype=np.uint64)[:, None] ^ salt[None, :]
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h = h ^ (h >> np.uint64(31))
    return (h >> np.uint64(11)).astype(np.float64) / float(2**53)


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, type[Router]] = {}
_BROKEN_PLUGINS: set[str] = set()  # entry points that failed to load (warned about once)
# built-in router modules, imported on first use of the registry (keeps `import routereval` light)
_BUILTIN_MODULES: tuple[str, ...] = tuple(
    f"routereval.routers.{m}" for m in ("oracle", "knn", "kmeans", "linear", "mlc", "mf", "irt")
)


def register(cls: type[Router]) -> type[Router]:
    """Class decorator adding a router to the registry under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtins() -> None:
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)
    from importlib.metadata import entry_points

    for ep in entry_points(group="routereval.routers"):
        if ep.name in _REGISTRY or ep.name in _BROKEN_PLUGINS:
            continue
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Router)):
                raise TypeError(f"{ep.value} is not a subclass of routereval.routers.Router")
        except Exception as e:  # a broken plugin must not break every other router
            _BROKEN_PLUGINS.add(ep.name)
            warnings.warn(f"routereval.routers entry point {ep.name!r} ({ep.value}) is skipped: {e}", stacklevel=2)
            continue
        _REGISTRY[ep.name] = cls


def available_routers() -> dict[str, type[Router]]:
    """Registry name -> router class, built-ins and entry points."""
    _load_builtins()
    return dict(sorted(_REGISTRY.items()))


def routers_that_add_models() -> str:
    """The registered routers with a per-model parameter vector (``supports_add_model``), comma-separated."""
    return ", ".join(n for n, c in available_routers().items() if getattr(c, "supports_add_model", False))


def require_add_model(router: Any) -> None:
    """Raise :class:`CapabilityError` in one line unless ``router`` has a per-model parameter vector.

    What cold start needs: adding a model, and the ``irt``, ``fisher`` and ``adaptive`` anchors
    (they read the prompt side through ``model_design``).
    """
    if not getattr(router, "supports_add_model", False) or not hasattr(router, "model_design"):
        label = getattr(router, "name", "") or type(router).__name__
        raise CapabilityError(f"router {label} has no per-model parameter vector: cold start (adding a model, and "
                              f"the irt, fisher and adaptive anchors) needs a router that supports add_model "
                              f"({routers_that_add_models()})")


def get_router_class(spec: str) -> type[Router]:
    """A router class by registry name or ``module:Class`` (which must subclass :class:`Router`).

    ``module:Class`` imports ``module`` (its code runs): pass only specs the user gave.
    """
    if not isinstance(spec, str):
        raise ParameterError(f"router must be a registry name such as 'knn' or 'module:Class'; got {spec!r}")
    if ":" in spec:
        mod, _, attr = spec.partition(":")
        try:
            obj = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as e:
            raise ParameterError(f"cannot load router {spec!r}: {e}") from None
        if not isinstance(obj, type):
            raise ParameterError(f"router {spec!r} is not a class")
        if not issubclass(obj, Router):  # never instantiate an arbitrary class named by a file
            raise ParameterError(f"router {spec!r} is not a router: subclass routereval.routers.Router")
        return obj
    routers = available_routers()
    if spec not in routers:
        raise ParameterError(f"unknown router {spec!r}; expected one of: {', '.join(routers)} or module:Class")
    return routers[spec]


def make_router(spec: str, **params: Any) -> Router:
    """Instantiate a router by name or ``module:Class`` with keyword hyperparameters.

    Unknown parameter names are refused here (:class:`ParameterError`); values are checked by
    ``fit``, as scikit-learn estimators do. ``module:Class`` imports that module (its code runs).

    Returns
    -------
    Router
        Unfitted.
    """
    cls = get_router_class(spec)
    valid = set(cls._param_names())
    for k in params:
        if k not in valid:
            raise ParameterError(
                f"unknown parameter {k!r} for router {spec}; expected one of: {', '.join(sorted(valid)) or '(none)'}")
    return cls(**params)


ParamParser = Callable[[str], Any]
