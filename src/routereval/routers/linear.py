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

from routereval.errors import ParameterError
from routereval.routers.base import RANDOM_STATE, Interval, Options, Router, register, rng_from

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

    _weights: tuple[str, ...] = ()  # learned arrays, in the order forward() uses them
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

    def _fit(self, X, Y, *, X_val, Y_val, cost) -> None:
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
    _weights = ("coef_", "intercept_")
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
    _weights = ("coef0_", "intercept0_", "coef1_", "intercept1_", "coef2_", "intercept2_")
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
