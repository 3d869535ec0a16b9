"""Neural encoders: sentence-transformers directories (MiniLM) and Hugging Face encoders with pooling options.

torch, transformers and sentence-transformers are imported inside the functions: loading this
module costs nothing.
"""

from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from routereval.embed.spec import EncoderSpec
from routereval.errors import ParameterError

Progress = Callable[[str, int, int], None]


_QUIET_LOCK = threading.Lock()
_QUIET: dict = {"depth": 0, "saved": None}


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Keep transformers' weight-loading progress bars and warnings off stderr in the block, then restore them.

    Every load passes ``local_files_only=True``: none reaches the hub, so nothing here sets
    ``HF_HUB_OFFLINE``, which huggingface_hub reads once, at its import: set for good by a
    library, it kept the caller's process offline until a restart (``routereval download``
    among the victims).
    """
    from transformers.utils import logging as hf_logging

    with _QUIET_LOCK:  # loads that overlap in threads: the first in saves the caller's settings, the last out restores
        if not _QUIET["depth"]:
            _QUIET["saved"] = (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled())
            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
        _QUIET["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET["depth"] -= 1
            if not _QUIET["depth"]:
                verbosity, bars = _QUIET["saved"]
                hf_logging.set_verbosity(verbosity)
                if bars:
                    hf_logging.enable_progress_bar()


@functools.lru_cache(maxsize=2)
def _load_sentence_transformer(path: str):
    from sentence_transformers import SentenceTransformer

    with quiet_transformers():
        return SentenceTransformer(path, device="cpu", local_files_only=True)


@functools.lru_cache(maxsize=2)
def _load_hf(path: str):
    from transformers import AutoModel, AutoTokenizer

    with quiet_transformers():
        return (AutoTokenizer.from_pretrained(path, local_files_only=True),
                AutoModel.from_pretrained(path, local_files_only=True).eval())


def encode_sentence_transformers(texts: list[str], path: Path, batch_size: int, progress: Progress | None,
                                  *, keep_tail: bool = False) -> np.ndarray:
    model = _load_sentence_transformer(str(path.resolve()))
    # Few-shot prompts (RouterBench's, say) share a long prefix and put the question last; cut
    # from the left so that a prompt longer than max_seq_length keeps its own question.
    model.tokenizer.truncation_side = "left" if keep_tail else "right"
    if not texts:  # (0, dim): the width of one embedding, whatever the model
        return model.encode([""], convert_to_numpy=True, show_progress_bar=False)[:0].astype(np.float32)
    out = []
    if progress is not None:
        progress("embed", 0, len(texts))  # started: a log hears of a long embedding before its first chunk
    for start in range(0, len(texts), batch_size * 16):  # chunks, so progress can be reported
        chunk = texts[start:start + batch_size * 16]
        out.append(model.encode(chunk, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False))
        if progress is not None:
            progress("embed", start + len(chunk), len(texts))
    return np.concatenate(out).astype(np.float32, copy=False)


def encode_hf(texts: list[str], spec: EncoderSpec, batch_size: int, progress: Progress | None) -> np.ndarray:
    import torch

    tok, model = _load_hf(str(spec.path.resolve()))
    n_layers = model.config.num_hidden_layers
    if not -(n_layers + 1) <= spec.layer <= n_layers:
        raise ParameterError(f"The 'layer' option of encoder {spec.path} must be an int in [{-(n_layers + 1)}, {n_layers}]. Got {spec.layer}.")
    max_length = min(spec.max_length, getattr(tok, "model_max_length", spec.max_length) or spec.max_length)
    # longest first, so batches hold texts of similar length (less padding)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            hidden = model(**enc, output_hidden_states=True).hidden_states[spec.layer]
            if spec.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out[idx] = pooled.float().numpy()
            if progress is not None:
                progress("embed", min(start + batch_size, len(texts)), len(texts))
    if spec.normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out
