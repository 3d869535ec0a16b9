"""LinearR and MLPR: multi-label logistic regression of the pool's scores on prompt embeddings.

As in the reference (``router/MLPR_LinearR``): a linear layer (LinearR) or a network with
two ReLU hidden layers (MLPR) maps a prompt embedding to one logit per pool model, trained
with the multi-label logistic loss (``BCEWithLogits`` against the scores, so graded scores
are soft targets), Adam and a cosine learning-rate schedule. Unlike the reference it trains
with mini-batches, stops early on the validation loss when validation data are given, runs
on the CPU by default and keeps its weights as numpy arrays (``predict`` is a numpy forward
pass: no torch needed to route). E_p is the reference's: the entropy of the softmax of the
logits.

The training loop :func:`fit_bce` is shared with the ``mf`` and ``irt`` routers.
"""

from __future__ import annotations

import math
import time
from typing import Callable, ClassVar

import numpy as np

from routereval.errors import InputError, ParameterError
from routereval.routers.base import RANDOM_STATE, Interval, Options, Router, register, rng_from
from routereval.validate import is_real

DEVICE = (Options(("cpu", "cuda", "auto")),)


def resolve_device(device: str, label: str) -> str:
    """``"cpu"``, or ``"cuda"`` when asked for (``"cuda"``) or available (``"auto"``)."""
    if device == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise ParameterError(f"The 'device' parameter of {label} is 'cuda' but no CUDA device is available; use 'cpu' or 'auto'.")
    return "cpu"


def uniform_init(rng: np.random.Generator, fan_in: int, shape: tuple[int, ...]) -> np.ndarray:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), torch's default for linear layers, drawn from ``rng``."""
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def mean_logit(Y: np.ndarray, axis: int | None = 0) -> np.ndarray:
    """logit of the clipped mean score: a starting bias that makes the first epochs useful."""
    p = np.clip(Y.mean(axis=axis), 1e-3, 1 - 1e-3)
    return np.log(p / (1 - p)).astype(np.float32)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow warnings for large |z|


def fit_bce(params: dict[str, np.ndarray], forward: Callable, X: np.ndarray, Y: np.ndarray,
            X_val: np.ndarray | None, Y_val: np.ndarray | None, *, lr: float, weight_decay: float,
            batch_size: int, max_epochs: int, patience: int, rng: np.random.Generator,
            device: str = "cpu", n_jobs: int = 1, min_delta: float = 1e-4) -> tuple[dict[str, np.ndarray], dict]:
    """Train ``forward(params, x) -> logits`` with BCE-with-logits, Adam and a cosine schedule.

    Parameters
    ----------
    params
        Initial parameters, name -> float32 array (drawn by the caller from ``rng``).
    forward
        ``forward(p, x)`` with ``p`` a dict of torch tensors and ``x`` (b, d): (b, m) logits.
    X, Y
        (n, d) inputs and (n, m) targets in [0, 1].
    X_val, Y_val
        Validation data; when given, training stops after ``patience`` epochs without a
        validation-loss improvement of ``min_delta`` and the best epoch's parameters are kept.
    rng
        Source of the shuffling order (the only randomness: no dropout).
    n_jobs
        torch CPU threads while training (restored afterwards).

    Returns
    -------
    (params, info)
        Trained parameters as float32 numpy arrays, and ``{"n_epochs", "best_val_loss",
        "loss_curve", "stopped_early", "fit_s"}``.
    """
    import torch

    t0 = time.perf_counter()
    prev_threads = torch.get_num_threads()
    # small ops: extra intra-op threads mostly spin against each other (30x slower on a busy 2-core box)
    torch.set_num_threads(n_jobs)
    try:
        return _fit_bce(params, forward, X, Y, X_val, Y_val, lr=lr, weight_decay=weight_decay,
                        batch_size=batch_size, max_epochs=max_epochs, patience=patience, rng=rng,
                        device=device, min_delta=min_delta, t0=t0)
    finally:
        torch.set_num_threads(prev_threads)


def _fit_bce(params, forward, X, Y, X_val, Y_val, *, lr, weight_decay, batch_size, max_epochs, patience, rng,
             device, min_delta, t0):
    import torch

    dev = torch.device(device)
    p = {k: torch.tensor(v, dtype=torch.float32, device=dev, requires_grad=True) for k, v in params.items()}
    Xt = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32), device=dev)
    Yt = torch.as_tensor(np.ascontiguousarray(Y, dtype=np.float32), device=dev)
    has_val = X_val is not None
    if has_val:
        Xv = torch.as_tensor(np.ascontiguousarray(X_val, dtype=np.float32), device=dev)
        Yv = torch.as_tensor(np.ascontiguousarray(Y_val, dtype=np.float32), device=dev)
    opt = torch.optim.Adam(list(p.values()), lr=lr, weight_decay=weight_decay)
    loss_fn = torch.nn.functional.binary_cross_entropy_with_logits
    n = X.shape[0]
    bs = min(batch_size, n)
    steps_per_epoch = -(-n // bs)
    total = max_epochs * steps_per_epoch
    step, best, best_state, since_best, curve = 0, math.inf, None, 0, []
    epoch = 0
    for epoch in range(1, max_epochs + 1):
        perm = torch.as_tensor(rng.permutation(n), device=dev)
        run_loss = 0.0
        for s in range(0, n, bs):
            idx = perm[s:s + bs]
            for g in opt.param_groups:  # the reference's cosine schedule, per step
                g["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / total))
            loss = loss_fn(forward(p, Xt[idx]), Yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            run_loss += float(loss.detach()) * len(idx)
            step += 1
        curve.append(run_loss / n)
        if has_val:
            with torch.no_grad():
                vloss = float(loss_fn(forward(p, Xv), Yv))
            if vloss < best - min_delta:
                best, since_best = vloss, 0
                best_state = {k: v.detach().cpu().numpy().copy() for k, v in p.items()}
            else:
                since_best += 1
                if since_best >= patience:
                    break
    if best_state is None:
        best_state = {k: v.detach().cpu().numpy().copy() for k, v in p.items()}
    info = {"n_epochs": epoch, "best_val_loss": None if not has_val else float(best),
            "loss_curve": [float(c) for c in curve], "stopped_early": bool(has_val and epoch < max_epochs),
            "fit_s": time.perf_counter() - t0}
    return best_state, info


class _BCERouter(Router):
    """Shared fit/predict of routers trained by :func:`fit_bce` whose weights are numpy arrays."""

    _weights: tuple[str, ...] = ()  # the arrays training learns, in the order forward() uses them
    check_params = {"max_epochs": 20}  # cheap settings for the contract checks
    _record: ClassVar[tuple[str, ...]] = ("n_epochs_", "best_val_loss_", "loss_curve_", "stopped_early_")

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # the learned state is the weights plus the training record: a saved router lacking a weight is refused
        if "state_keys" not in cls.__dict__:
            cls.state_keys = tuple(cls._weights) + cls._record

    def _init_params(self, rng: np.random.Generator, X: np.ndarray, Y: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @staticmethod
    def _forward(p: dict, x, relu: Callable):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def warm_up(cls) -> None:
        import torch  # noqa: F401

    def _fit_weights(self, X, Y, *, X_val, Y_val) -> None:
        import torch

        rng = rng_from(self.random_state)
        device = resolve_device(self.device, self._label())
        init = self._init_params(rng, X, Y)
        fwd = type(self)._forward
        if self.patience is None:  # no early stopping: train every epoch on train only, as the reference
            X_val = Y_val = None
        trained, info = fit_bce(init, lambda p, x: fwd(p, x, torch.relu), X, Y, X_val, Y_val,
                                lr=self.lr, weight_decay=self.weight_decay, batch_size=self.batch_size,
                                max_epochs=self.max_epochs, patience=self.patience, rng=rng, device=device,
                                n_jobs=self.n_jobs)
        for k in self._weights:
            setattr(self, k, trained[k])
        self.n_epochs_ = info["n_epochs"]
        self.best_val_loss_ = info["best_val_loss"]
        self.loss_curve_ = info["loss_curve"]
        self.stopped_early_ = info["stopped_early"]

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """(n, m) logits of the pool models on prompts ``X`` (n, d); a numpy forward pass."""
        self._check_fitted()
        from routereval.routers.base import check_X

        X = check_X(X, n_features=self.n_features_in_).astype(np.float32, copy=False)
        p = {k: np.asarray(getattr(self, k), dtype=np.float32) for k in self._weights}
        return np.asarray(self._forward(p, X, lambda a: np.maximum(a, 0)), dtype=np.float64)

    def _predict_scores(self, X, **kwargs) -> np.ndarray:
        """Predicted probability that each model answers each prompt well (sigmoid of the logits)."""
        return sigmoid(self.decision_function(X))

    # ---- cold start: logit_ij = z(x_i) . phi_j + o(x_i), the prompt side z, o fixed
    # per-model arrays -> the axis along which the models lie, in the order of the design columns
    _model_axes: ClassVar[dict[str, int]] = {}
    optional_state_keys = ("added_models_",)

    @staticmethod
    def _design(p: dict, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def model_design(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prompt side of the logits: (n, p) design rows ``z(x)`` and (n,) offsets ``o(x)`` of prompts ``X`` (n, d).

        ``logit_ij = z(x_i) . phi_j + o(x_i)`` with ``phi_j`` row j of :meth:`model_vectors`.
        """
        if not self._model_axes:
            return super().add_model("", X, np.zeros(0))  # raises CapabilityError
        self._check_fitted()
        from routereval.routers.base import check_X

        X = check_X(X, n_features=self.n_features_in_).astype(np.float32, copy=False)
        p = {k: np.asarray(getattr(self, k), dtype=np.float32) for k in self._weights}
        Z, o = self._design(p, X)
        return np.asarray(Z, dtype=np.float64), np.asarray(o, dtype=np.float64)

    def model_vectors(self) -> np.ndarray:
        """(m, p) parameter vector of each pool model (the columns of :meth:`model_design`)."""
        self._check_fitted()
        parts = [np.moveaxis(np.asarray(getattr(self, k)), ax, 0).reshape(self.n_models_, -1)
                 for k, ax in self._model_axes.items()]
        return np.hstack(parts).astype(np.float64)

    def posterior_model(self, X_anchor: np.ndarray, y_anchor: np.ndarray, *, weights: np.ndarray | None = None,
                        prior_scale: float = 1.0, offsets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mode (p,) and Laplace covariance (p, p) of a new model's vector from its anchor answers.

        The prior is the fitted pool's population (:func:`~routereval.routers.newmodel.population_prior`),
        its covariance scaled by ``prior_scale`` (large: closer to maximum likelihood). ``weights`` (k,)
        weigh the answers' likelihood terms relative to one another (rescaled to mean 1: the anchors'
        design weights, which sum to 1, weigh k answers as k); ``offsets`` (k,) are added to the
        anchors' logits (the prompts' residual difficulties, see :mod:`routereval.coldstart.calibrate`:
        what ``add-model`` and the study fit the new column with).
        """
        from routereval.routers.newmodel import check_answers, map_logistic, population_prior

        self._check_fitted()
        if not (is_real(prior_scale) and prior_scale > 0):
            raise ParameterError(f"prior_scale must be a positive finite float. Got {prior_scale!r}.")
        X, y, w = check_answers(X_anchor, y_anchor, n_features=self.n_features_in_, weights=weights)
        Z, o = self.model_design(X)
        if offsets is not None:
            offsets = np.asarray(offsets, dtype=np.float64)
            if offsets.shape != o.shape or not np.isfinite(offsets).all():
                raise InputError(f"offsets must be {len(o)} finite numbers, one per anchor")
            o = o + offsets
        mean, cov = population_prior(self.model_vectors())
        return map_logistic(Z, o, y, mean, cov * float(prior_scale), weights=w)

    def append_model_vector(self, phi: np.ndarray, name: str) -> "_BCERouter":
        """Append a model with parameter vector ``phi`` (p,) under ``name``; the prompt side is untouched."""
        phi = np.asarray(phi, dtype=np.float64).ravel()
        parts = []  # (attribute, array, axis, shape of one model's slice): checked whole before anything changes
        for k, ax in self._model_axes.items():
            arr = np.asarray(getattr(self, k))
            parts.append((k, arr, ax, tuple(n for i, n in enumerate(arr.shape) if i != ax)))
        total = sum(int(np.prod(shape)) for *_, shape in parts)
        if phi.size != total:
            raise InputError(f"a model vector of this router has {total} values, got {phi.size}")
        at = 0
        for k, arr, ax, shape in parts:
            size = int(np.prod(shape))
            piece = phi[at:at + size].reshape(shape).astype(arr.dtype)
            setattr(self, k, np.concatenate([arr, np.expand_dims(piece, ax)], axis=ax))
            at += size
        self.n_models_ = int(self.n_models_) + 1
        self.added_models_ = [*getattr(self, "added_models_", []), name]
        return self

    def add_model(self, name: str, X_anchor: np.ndarray, y_anchor: np.ndarray, *, weights: np.ndarray | None = None,
                  prior_scale: float = 1.0, offsets: np.ndarray | None = None) -> "_BCERouter":
        """Add a model from its scores ``y_anchor`` (k,) in [0, 1] on anchor prompts ``X_anchor`` (k, d).

        The prompt-side parameters stay fixed; the new model's vector is the posterior mode of a
        logistic regression on its answers with the fitted population of models as a Gaussian
        prior, so that a handful of answers already gives a sensible model (a population-average
        one, pulled towards the answers). ``route`` then chooses among m + 1 models; the new one
        is the last. ``weights``, ``prior_scale`` and ``offsets`` as in :meth:`posterior_model`.
        Returns ``self``.
        """
        if not self._model_axes:
            return super().add_model(name, X_anchor, y_anchor)
        self._check_fitted()
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"the new model's name must be a non-empty string. Got {name!r}.")
        if name in getattr(self, "added_models_", []):
            raise InputError(f"a model named {name!r} was already added to this router")
        phi, _ = self.posterior_model(X_anchor, y_anchor, weights=weights, prior_scale=prior_scale, offsets=offsets)
        return self.append_model_vector(phi, name)

    def select_models(self, models: np.ndarray) -> "_BCERouter":
        """A copy of the fitted router restricted to the pool models ``models`` (indices, in that order).

        An empty ``models`` keeps only the prompt side: append models (:meth:`append_model_vector`) before routing.
        """
        import copy

        self._check_fitted()
        idx = np.asarray(models, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_models_):
            raise InputError(f"models must be indices in [0, {self.n_models_})")
        out = copy.copy(self)
        for k, ax in self._model_axes.items():
            setattr(out, k, np.take(np.asarray(getattr(self, k)), idx, axis=ax))
        out.n_models_ = int(idx.size)
        out.__dict__.pop("added_models_", None)
        return out

    def _fit(self, X, Y, *, X_val, Y_val, cost) -> None:
        self.__dict__.pop("added_models_", None)  # a refit forgets models added earlier
        self._fit_weights(X, Y, X_val=X_val, Y_val=Y_val)


_COMMON = {
    "lr": (Interval(float, 0, None, closed="neither"),),
    "weight_decay": (Interval(float, 0, None, closed="left"),),
    "batch_size": (Interval(int, 1, None),),
    "max_epochs": (Interval(int, 1, None),),
    "patience": (Interval(int, 1, None), Options((None,))),
    "device": DEVICE,
    "n_jobs": (Interval(int, 1, None),),
    "random_state": RANDOM_STATE,
}


@register
class LinearR(_BCERouter):
    """LinearR: one linear layer from the embedding to the m models' logits.

    Parameters
    ----------
    lr
        Adam learning rate (cosine-annealed over ``max_epochs``).
    weight_decay
        L2 penalty of Adam.
    batch_size
        Prompts per step (the reference used 1 for MLPR in the paper's setting).
    max_epochs
        Epochs at most.
    patience
        Epochs without validation-loss improvement before stopping (only with ``X_val``);
        None: no early stopping, the validation data are not used (the reference's training).
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when present).
    n_jobs
        torch CPU threads while training (1 is fastest for these small layers on a shared machine).
    random_state
        Seed of the initial weights and the shuffling order.

    Under ``evaluate(..., protocol="paper")`` the defaults are the reference's
    (``test_router.py``: ``train.py --lr 0.01 --model linear --epoch 10 --train-batch 1``, Adam,
    weight decay 0, no validation): ``lr=0.01, max_epochs=10, batch_size=1, weight_decay=0,
    patience=None``. (Its bias starts at torch's uniform init, here at the logit of the mean
    score; its shuffling and init come from torch's unseeded generator.)

    Attributes
    ----------
    coef_ : (d, m) float32
    intercept_ : (m,) float32
    n_epochs_, best_val_loss_, loss_curve_, stopped_early_
        Training record.
    """

    name = "linear"
    parameters = dict(_COMMON)
    ep_threshold = None  # the reference's E_p for LinearR/MLPR keeps every softmax term (train.py:132-134)
    state_layout = {"coef_": ("d", "m"), "intercept_": ("m",)}
    _weights = tuple(state_layout)  # all of them trained (a subclass keeps these unless it sets its own)
    # test_router.py:20 (train.py with argsparser.py's defaults: adam, wd 0, coslr; train.py never reads val)
    paper_defaults: ClassVar[dict] = {"lr": 0.01, "max_epochs": 10, "batch_size": 1, "weight_decay": 0.0,
                                      "patience": None}

    def __init__(self, *, lr: float = 0.01, weight_decay: float = 0.0, batch_size: int = 256,
                 max_epochs: int = 100, patience: int = 5, device: str = "cpu", n_jobs: int = 1, random_state=None) -> None:
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _init_params(self, rng, X, Y):
        d, m = X.shape[1], Y.shape[1]
        return {"coef_": uniform_init(rng, d, (d, m)), "intercept_": mean_logit(Y)}

    @staticmethod
    def _forward(p, x, relu):
        return x @ p["coef_"] + p["intercept_"]

    supports_add_model = True  # phi_j = (w_j, c_j), z(x) = (x, 1)
    _model_axes = {"coef_": 1, "intercept_": 0}

    @staticmethod
    def _design(p, x):
        return np.hstack([x, np.ones((len(x), 1), dtype=x.dtype)]), np.zeros(len(x))

    def selection_probabilities(self, X: np.ndarray, *, scores: np.ndarray | None = None) -> np.ndarray:
        """(n, m) softmax of the logits: the reference's E_p for LinearR and MLPR."""
        return softmax(self.decision_function(X))


@register
class MLPR(LinearR):
    """MLPR: two ReLU hidden layers (``hidden_size`` units each) and a linear output layer.

    Parameters are those of :class:`LinearR` plus ``hidden_size`` (default 256).
    Under ``evaluate(..., protocol="paper")`` the defaults are the reference's
    (``test_router.py``: ``train.py --lr 0.0001 --model FNN --epoch 100 --hidden_size 256
    --train-batch 1``): ``hidden_size=256, lr=1e-4, max_epochs=100, batch_size=1,
    weight_decay=0, patience=None``.

    Attributes
    ----------
    coef0_ : (d, h), intercept0_ : (h,), coef1_ : (h, h), intercept1_ : (h,),
    coef2_ : (h, m), intercept2_ : (m,)
        The three layers' weights, float32.
    """

    name = "mlp"
    parameters = {**_COMMON, "hidden_size": (Interval(int, 1, None),)}
    state_layout = {"coef0_": ("d", "hidden_size"), "intercept0_": ("hidden_size",),
                    "coef1_": ("hidden_size", "hidden_size"), "intercept1_": ("hidden_size",),
                    "coef2_": ("hidden_size", "m"), "intercept2_": ("m",)}
    _weights = tuple(state_layout)  # all of them trained (a subclass keeps these unless it sets its own)
    paper_defaults: ClassVar[dict] = {"hidden_size": 256, "lr": 1e-4, "max_epochs": 100, "batch_size": 1,
                                      "weight_decay": 0.0, "patience": None}  # test_router.py:22

    def __init__(self, *, hidden_size: int = 256, lr: float = 0.001, weight_decay: float = 0.0,
                 batch_size: int = 256, max_epochs: int = 100, patience: int = 5, device: str = "cpu",
                 n_jobs: int = 1, random_state=None) -> None:
        self.hidden_size = hidden_size
        super().__init__(lr=lr, weight_decay=weight_decay, batch_size=batch_size, max_epochs=max_epochs,
                         patience=patience, device=device, n_jobs=n_jobs, random_state=random_state)

    def _init_params(self, rng, X, Y):
        d, m, h = X.shape[1], Y.shape[1], self.hidden_size
        return {"coef0_": uniform_init(rng, d, (d, h)), "intercept0_": uniform_init(rng, d, (h,)),
                "coef1_": uniform_init(rng, h, (h, h)), "intercept1_": uniform_init(rng, h, (h,)),
                "coef2_": uniform_init(rng, h, (h, m)), "intercept2_": mean_logit(Y)}

    @staticmethod
    def _forward(p, x, relu):
        z = relu(x @ p["coef0_"] + p["intercept0_"])
        z = relu(z @ p["coef1_"] + p["intercept1_"])
        return z @ p["coef2_"] + p["intercept2_"]

    _model_axes = {"coef2_": 1, "intercept2_": 0}  # phi_j = the output layer's column j and bias

    @staticmethod
    def _design(p, x):
        z = np.maximum(x @ p["coef0_"] + p["intercept0_"], 0)
        z = np.maximum(z @ p["coef1_"] + p["intercept1_"], 0)
        return np.hstack([z, np.ones((len(z), 1), dtype=z.dtype)]), np.zeros(len(x))
