"""``embed_texts`` and ``embed_prompts``: pick the encoder of a spec, use the cache, embed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from routereval.embed import cache, neural, tfidf
from routereval.embed.spec import parse_encoder
from routereval.embed.stored import stored_embedding
from routereval.errors import InputError, ParameterError

if TYPE_CHECKING:  # pragma: no cover
    from routereval.data.model import Benchmark

Progress = Callable[[str, int, int], None]


def embed_texts(texts: Sequence[str] | np.ndarray, encoder: str = "minilm", *, fit_texts: Sequence[str] | None = None,
                cache_dir: str | os.PathLike | None = None, batch_size: int = 64,
                progress: Progress | None = None, **options) -> np.ndarray:
    """Embed prompt texts with an encoder (see the module docstring for encoder specs).

    Parameters
    ----------
    texts
        (n,) prompt texts.
    encoder
        ``"minilm"``, ``"tfidf"`` or a local encoder directory with options.
    fit_texts
        Texts TF-IDF is fitted on (the train prompts); all ``texts`` when None.
    cache_dir
        Directory of the embedding cache; no caching when None.
    batch_size
        Texts per forward pass.
    progress
        Called as ``progress("embed", done, total)``.
    **options
        Encoder options (``pooling``, ``layer``, ``normalize``, ``max_length``).

    Returns
    -------
    np.ndarray
        (n, dim) float32.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ParameterError(f"The 'batch_size' parameter of embed_texts must be an int in [1, inf). Got {batch_size!r}.")
    texts = [str(t) for t in (texts.tolist() if isinstance(texts, np.ndarray) else texts)]
    spec = parse_encoder(encoder, **options)
    if spec.kind == "tfidf":
        fit_texts = texts if fit_texts is None else [str(t) for t in fit_texts]
        if not fit_texts:
            raise InputError("the tfidf encoder needs at least one text to fit on")
    cache_file = None
    if cache_dir is not None:
        digest = cache.texts_hash(texts, fit_texts if spec.kind == "tfidf" else None)
        cache_file = Path(cache_dir) / spec.key / f"{digest}.npy"
        cached = cache.load_cached(cache_file, len(texts), tfidf.TFIDF_DIM if spec.kind == "tfidf" else None)
        if cached is not None:
            return cached
    if not texts:
        return np.zeros((0, tfidf.TFIDF_DIM if spec.kind == "tfidf" else 0), dtype=np.float32)
    if spec.kind == "tfidf":
        arr = tfidf.encode_tfidf(texts, fit_texts)
    elif spec.pooling is None:
        arr = neural.encode_sentence_transformers(texts, spec.path, batch_size, progress, keep_tail=spec.kind == "minilm")
    else:
        arr = neural.encode_hf(texts, spec, batch_size, progress)
    if cache_file is not None:
        cache.save_atomic(cache_file, arr)
    return arr


def embed_prompts(bench: "Benchmark", encoder: str = "minilm", *, corpus_path: str | os.PathLike | None = None,
                  fit_prompts: np.ndarray | Sequence[int] | None = None, batch_size: int = 64,
                  progress: Progress | None = None, **options) -> np.ndarray:
    """Embeddings of every prompt of ``bench``.

    Parameters
    ----------
    bench
        The benchmark.
    encoder
        A stored embedding key (``"official/RoBERTa"``, ``"synth"``), ``"minilm"``,
        ``"tfidf"`` or a local encoder directory with options.
    corpus_path
        The corpus directory; embeddings are cached under ``corpus_path/embeddings-cache``.
    fit_prompts
        (k,) indices of the prompts TF-IDF is fitted on (the train split); all when None.
    batch_size, progress, **options
        As in :func:`embed_texts`.

    Returns
    -------
    np.ndarray
        (n_prompts, dim) float32, row i for prompt i of ``bench``.
    """
    stored = stored_embedding(bench, encoder)
    if stored is not None and not options:
        return np.asarray(stored, dtype=np.float32)
    if bench.texts is None:
        have = ", ".join(repr(k) for k in bench.embeddings) or "none"
        raise InputError(
            f"benchmark {bench.name!r} has no prompt texts, so encoder {encoder!r} cannot embed it; "
            f"stored embeddings that would work: {have}")
    fit_texts = None
    if fit_prompts is not None:
        idx = np.asarray(fit_prompts)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() >= bench.n_prompts:
            raise InputError(f"fit_prompts must be a non-empty 1-D array of prompt indices in [0, {bench.n_prompts})")
        fit_texts = bench.texts[idx].tolist()
    cache_dir = None if corpus_path is None else Path(corpus_path) / cache.CACHE_DIR
    return embed_texts(bench.texts, encoder, fit_texts=fit_texts, cache_dir=cache_dir, batch_size=batch_size,
                       progress=progress, **options)
