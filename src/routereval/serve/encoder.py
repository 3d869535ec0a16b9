"""Prompt encoders for serving: the saved router's encoder, loaded once, fast on short prompts.

MiniLM (``"minilm"``) is run directly on its transformer with the same tokenisation
(256 tokens, a longer prompt keeps its last 256), mean pooling and L2 normalisation as
:func:`routereval.embed.embed_texts`, so served embeddings equal the ones the router was
fitted on. Two things make it fast on a CPU:

- a batch is sorted by length and run in sub-batches of similar length, so short prompts
  are not padded to the longest one of the batch;
- ``backend="bf16"`` runs the transformer under bfloat16 autocast (about 1.7x less CPU
  where the CPU has AVX512-BF16 or AMX; embeddings within a cosine of 1e-4 of fp32);
  ``backend="int8"`` quantises the linear layers to int8 (per channel, dynamic
  activations), about 2.3x less CPU, but its embeddings move enough to change some routes.
  ``bench/bench_serve.py`` measures, on real prompts, how often each routes like fp32.
  ``"fp32"`` (exactly the embeddings the router was fitted on) is the default.

Other local encoder directories go through :func:`routereval.embed.embed_texts`; TF-IDF
(fitted per corpus, not saved) and stored embeddings (``synth``, ``official/...``) cannot
embed a new prompt and are refused when the server starts.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Sequence

import numpy as np

from routereval.errors import InputError

BACKENDS = ("fp32", "bf16", "int8")
SUB_BATCH = 8  # prompts per forward pass after sorting by length (less padding)


class PromptEncoder:
    """Embeds prompt texts with a saved router's encoder.

    Parameters
    ----------
    encoder
        The encoder name saved with the router (``"minilm"``, a local directory, or
        ``"text"`` for routers that read the texts themselves).
    backend
        ``"fp32"`` or ``"int8"`` (MiniLM only).
    threads
        Torch intra-op threads; None leaves torch's default.
    """

    def __init__(self, encoder: str, *, backend: str = "fp32", threads: int | None = None) -> None:
        check_encoder(encoder, backend=backend)
        self.encoder = encoder
        self.backend = backend
        self.threads = threads
        self._model = None
        self._tok = None
        self._lock = threading.Lock()  # one forward pass at a time: torch already uses every core

    def load(self) -> "PromptEncoder":
        """Load the weights (seconds); called once when the server starts."""
        if self.encoder != "minilm" or self._model is not None:
            return self
        if "torch" not in sys.modules:
            # idle OpenMP threads sleep instead of spinning (read when torch loads): on a busy machine
            # spinning threads wait on each other for whole scheduler slices (20x slower, measured)
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import torch

        from routereval.embed import minilm_path
        from routereval.embed.neural import _load_sentence_transformer

        if self.threads is not None:
            torch.set_num_threads(self.threads)
        st = _load_sentence_transformer(str(minilm_path().resolve()))
        tok = st.tokenizer
        # a private copy of the tokenizer settings: keep the prompt's tail like embed_texts does
        tok.truncation_side = "left"
        self._max_length = int(st.max_seq_length)
        self._pad_id = int(tok.pad_token_id or 0)
        model = st[0].auto_model.eval()
        if self.backend == "int8":
            import copy
            import warnings

            from torch.ao import quantization as q

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao's deprecation notice
                model = q.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear: q.per_channel_dynamic_qconfig})
        self._tok, self._model = tok, model
        return self

    @property
    def ready(self) -> bool:
        return self.encoder != "minilm" or self._model is not None

    def encode(self, texts: Sequence[str]) -> np.ndarray | list[str]:
        """(n, d) float32 embeddings of ``texts`` (the texts themselves for a text router)."""
        texts = [str(t) for t in texts]
        if self.encoder == "text":
            return texts
        if self.encoder != "minilm":
            from routereval.embed import embed_texts

            with self._lock:
                return embed_texts(texts, self.encoder)
        if self._model is None:
            self.load()
        return self._encode_minilm(texts)

    def _encode_minilm(self, texts: list[str]) -> np.ndarray:
        import torch

        enc = self._tok(texts, truncation=True, max_length=self._max_length)["input_ids"]
        lengths = np.fromiter((len(ids) for ids in enc), dtype=np.int64, count=len(enc))
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), self._model.config.hidden_size), dtype=np.float32)
        with self._lock, torch.inference_mode():
            for s in range(0, len(texts), SUB_BATCH):
                idx = order[s:s + SUB_BATCH]
                width = int(lengths[idx].max())
                ids = torch.full((len(idx), width), self._pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    ids[row, :lengths[i]] = torch.as_tensor(enc[i])
                    mask[row, :lengths[i]] = 1
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.backend == "bf16"):
                    hidden = self._model(input_ids=ids, attention_mask=mask).last_hidden_state
                out[idx] = mean_pool_normalise(hidden.float(), mask).numpy()
        return out


def mean_pool_normalise(hidden, mask):
    """(b, d) L2-normalised mean of ``hidden`` (b, t, d) over the tokens where ``mask`` (b, t) is 1."""
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


def check_encoder(encoder: str | None, *, backend: str = "fp32") -> None:
    """Refuse, with one line, an encoder that cannot embed a new prompt, or an unknown backend."""
    if backend not in BACKENDS:
        raise InputError(f"encoder backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend != "fp32" and encoder != "minilm":
        raise InputError(f"encoder backend {backend!r} exists for the minilm encoder only; this router uses {encoder!r}")
    if encoder in ("minilm", "text"):
        return
    if encoder is None or encoder == "tfidf" or encoder == "synth" or encoder.startswith("official/"):
        raise InputError(f"the router was fitted on {encoder!r} embeddings, which cannot embed a new prompt; "
                         "fit it with --embedding minilm (or a local encoder directory) to serve it")
    from routereval.embed import parse_encoder

    parse_encoder(encoder)  # a local directory: must still exist
