"""Prompt encoders for serving: the saved router's encoder, loaded once, fast on short prompts.

MiniLM (``"minilm"``) is run directly on its transformer with the same tokenisation
(256 tokens, a longer prompt keeps its last 256), mean pooling and L2 normalisation as
:func:`routereval.embed.embed_texts`, so served embeddings equal the ones the router was
fitted on (within float rounding; ``bench/bench_serve.py`` checks the routes). Three things
make it fast on a CPU:

- a batch runs packed (:class:`routereval.embed.packed.PackedBert`): the linear layers see
  only the prompts' real tokens, no padding, as one large matrix product per chunk of about
  ``CHUNK_TOKENS`` tokens;
- the chunks of a batch run on ``threads`` worker threads at once, each with one torch
  thread (small matrix products scale badly over torch's own threads);
- ``backend="bf16"`` runs the transformer under bfloat16 autocast (less CPU where the CPU
  has AVX512-BF16 or AMX; embeddings within a cosine of 1e-4 of fp32);
  ``backend="int8"`` quantises the linear layers to int8 (per channel, dynamic
  activations), but its embeddings move enough to change some routes.
  ``bench/bench_serve.py`` measures, on real prompts, how often each routes like fp32.
  ``"fp32"`` (the embeddings the router was fitted on) is the default.

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
from routereval.validate import option

BACKENDS = ("fp32", "bf16", "int8")
CHUNK_TOKENS = 768  # tokens per forward pass: large matrix products whose activations stay in cache
# a batch splits over the threads only into chunks of at least this many tokens: every chunk
# streams all the weights (42 MB in fp32) through the cache, worth it for real work only
MIN_SPLIT_TOKENS = 64


class PromptEncoder:
    """Embeds prompt texts with a saved router's encoder.

    Parameters
    ----------
    encoder
        The encoder name saved with the router (``"minilm"``, a local directory, or
        ``"text"`` for routers that read the texts themselves).
    backend
        ``"fp32"``, ``"bf16"`` or ``"int8"`` (MiniLM only).
    threads
        Cores the encoder uses (worker threads sharing a batch); None: torch's default
        thread count (the machine's cores). MiniLM's :meth:`load` sets torch's own
        intra-op threads to 1 for the whole process: the encoder's threads are its parallelism.
    """

    def __init__(self, encoder: str, *, backend: str = "fp32", threads: int | None = None) -> None:
        check_encoder(encoder, backend=backend)
        self.encoder = encoder
        self.backend = backend
        self.threads = threads
        self._model = None
        self._tok = None
        self._pool = None
        self._workers = 1
        self._lock = threading.Lock()  # one batch at a time where no thread pool bounds the work

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
        from routereval.embed.packed import PackedBert

        st = _load_sentence_transformer(str(minilm_path().resolve()))
        tok = st.tokenizer
        # a private copy of the tokenizer settings: keep the prompt's tail like embed_texts does
        tok.truncation_side = "left"
        self._max_length = int(st.max_seq_length)
        model = PackedBert.from_hf(st[0].auto_model)
        if self.backend == "int8":
            import warnings

            from torch.ao import quantization as q

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao's deprecation notice
                model = q.quantize_dynamic(model, {torch.nn.Linear: q.per_channel_dynamic_qconfig})
        cores = self.threads or torch.get_num_threads()
        torch.set_num_threads(1)  # the process serves this encoder: its chunk threads are the parallelism
        if cores > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(cores, thread_name_prefix="routereval-encoder")
        self._workers = cores
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
        lengths = [len(ids) for ids in enc]
        parts = max(1, min(self._workers, sum(lengths) // MIN_SPLIT_TOKENS))
        chunks = token_chunks(lengths, budget=CHUNK_TOKENS, parts=parts)
        out = np.empty((len(texts), self._model.layers[0].hidden), dtype=np.float32)

        def run(rows: range) -> None:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.backend == "bf16"):
                out[rows.start:rows.stop] = self._model([enc[i] for i in rows]).numpy()

        if self._pool is None:
            with self._lock:
                for rows in chunks:
                    run(rows)
        else:  # at most one chunk per thread runs at a time, from this batch or a concurrent one
            list(self._pool.map(run, chunks))  # torch releases the GIL: the threads use every core
        return out

    @property
    def concurrency(self) -> int:
        """Batches that can usefully run at once (the encoder's threads; 1 before :meth:`load`)."""
        return self._workers


def token_chunks(lengths: Sequence[int], *, budget: int, parts: int = 1) -> list[range]:
    """Consecutive row ranges of a batch with about equal token counts, for ``parts`` threads.

    The batch is cut into ``k = max(parts, ceil(tokens / budget))`` pieces (at most one per
    prompt), each cut at the prompt boundary nearest to an equal share of the tokens: equal
    pieces finish together on parallel threads. A prompt is never split.

    Parameters
    ----------
    lengths
        (n,) token count of each prompt.
    budget
        Most tokens per piece on average (a forward pass's working set).
    parts
        Least number of pieces (threads to keep busy).
    """
    n = len(lengths)
    if n == 0:
        return []
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])  # (n,) token offset of each prompt
    total = int(starts[-1] + lengths[-1])
    k = int(min(n, max(parts, -(-total // max(1, budget)))))
    targets = total * np.arange(1, k) / k
    cuts = np.abs(starts[None, :] - targets[:, None]).argmin(axis=1)  # (k - 1,) nearest prompt boundaries
    bounds = np.unique(np.concatenate([[0], cuts, [n]]))
    return [range(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]


def check_encoder(encoder: str | None, *, backend: str = "fp32") -> None:
    """Refuse, with one line, an encoder that cannot embed a new prompt, or an unknown backend."""
    if backend not in BACKENDS:
        raise InputError(f"{option('encoder_backend')} must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend != "fp32" and encoder != "minilm":
        raise InputError(f"encoder backend {backend!r} exists for the minilm encoder only; this router uses {encoder!r}")
    if encoder in ("minilm", "text"):
        return
    if encoder is None or encoder == "tfidf" or encoder == "synth" or encoder.startswith("official/"):
        raise InputError(f"the router was fitted on {encoder!r} embeddings, which cannot embed a new prompt; "
                         "fit it with --embedding minilm (or a local encoder directory) to serve it")
    from routereval.embed import parse_encoder

    parse_encoder(encoder)  # a local directory: must still exist
