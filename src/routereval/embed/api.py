"""``embed_texts`` and ``embed_prompts``: pick the encoder of a spec, use the cache, embed."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from routereval.embed import cache, neural, tfidf
from routereval.embed.spec import as_encoder, check_options, parse_encoder
from routereval.embed.stored import stored_embedding
from routereval.errors import InputError
from routereval.validate import as_list, as_path, check_int

if TYPE_CHECKING:  # pragma: no cover
    from routereval.data.model import Benchmark

Progress = Callable[[str, int, int], None]


def _as_texts(texts: object, what: str) -> list[str]:
    """``texts`` (one str, or a sequence or 1-D array of str) as a list of str, else an :class:`InputError`."""
    out = as_list(texts, what)
    if out is None:
        raise InputError(f"{what} must be a prompt text or a list of them; got None")
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InputError(f"{what} must be strings (prompt texts); item {i} is {type(t).__name__}")
    return [str(t) for t in out]  # numpy's str_ as str


def embed_texts(texts: str | Sequence[str] | np.ndarray, encoder: str = "minilm", *,
                fit_texts: Sequence[str] | None = None, cache_dir: str | os.PathLike | None = None,
                batch_size: int = 64, progress: Progress | None = None, **options) -> np.ndarray:
    """Embed prompt texts with an encoder (see the module docstring for encoder specs).

    Parameters
    ----------
    texts
        (n,) prompt texts; one str is one text (n = 1).
    encoder
        ``"minilm"``, ``"tfidf"`` or a local encoder directory with options.
    fit_texts
        Texts TF-IDF is fitted on (the train prompts); all ``texts`` when None. TF-IDF needs at
        least 2 of them and at least 2 distinct terms (words of 2+ characters) among them.
    cache_dir
        Directory of the embedding cache; no caching when None.
    batch_size
        Texts per forward pass (an int >= 1).
    progress
        Called as ``progress("embed", done, total)``.
    **options
        Encoder options (``pooling``, ``layer``, ``normalize``, ``max_length``) of ``"minilm"`` or a
        local encoder directory; None means not given.

    Returns
    -------
    np.ndarray
        (n, dim) float32; (0, dim) for no texts.
    """
    batch_size = check_int(batch_size, "batch_size", low=1)
    texts = _as_texts(texts, "texts")
    fit_texts = None if fit_texts is None else _as_texts(fit_texts, "fit_texts")
    spec = parse_encoder(encoder, **options)
    cache_dir = None if cache_dir is None else as_path(cache_dir, "cache_dir")
    if spec.kind == "tfidf":
        if not texts:
            return np.zeros((0, tfidf.TFIDF_DIM), dtype=np.float32)
        fit_texts = texts if fit_texts is None else fit_texts
        if len(fit_texts) < 2:
            raise InputError("the tfidf encoder needs at least 2 texts to fit on (fit_texts or fit_prompts; by default "
                             f"every text); got {len(fit_texts)}")
    cache_file = None
    if cache_dir is not None and texts:
        digest = cache.texts_hash(texts, fit_texts if spec.kind == "tfidf" else None)
        cache_file = cache_dir / spec.key / f"{digest}.npy"
        cached = cache.load_cached(cache_file, len(texts), tfidf.TFIDF_DIM if spec.kind == "tfidf" else None)
        if cached is not None:
            return cached
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
        The benchmark (a :class:`~routereval.data.model.Benchmark`).
    encoder
        A stored embedding key (``"official/RoBERTa"``, ``"synth"``), ``"minilm"``,
        ``"tfidf"`` or a local encoder directory with options.
    corpus_path
        The corpus directory the benchmark comes from (it holds ``manifest.json``); embeddings are
        cached under ``corpus_path/embeddings-cache``. No caching when None.
    fit_prompts
        (k,) indices of the prompts TF-IDF is fitted on (the train split); all when None.
    batch_size, progress, **options
        As in :func:`embed_texts`; a stored embedding takes no options.

    Returns
    -------
    np.ndarray
        (n_prompts, dim) float32, row i for prompt i of ``bench``.
    """
    from routereval.data.model import check_benchmark
    from routereval.data.store import MANIFEST

    check_benchmark(bench)
    encoder = as_encoder(encoder)
    batch_size = check_int(batch_size, "batch_size", low=1)
    if corpus_path is not None:
        corpus_path = as_path(corpus_path, "corpus_path")
        if not (corpus_path / MANIFEST).is_file():
            raise InputError(f"corpus_path must be a routereval corpus directory (holding {MANIFEST}); "
                             f"got {str(corpus_path)!r}")
    stored = stored_embedding(bench, encoder)
    if stored is not None:
        check_options(encoder, options, none_for=f"the stored embedding {encoder!r}")
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
    cache_dir = None if corpus_path is None else corpus_path / cache.CACHE_DIR
    return embed_texts(bench.texts, encoder, fit_texts=fit_texts, cache_dir=cache_dir, batch_size=batch_size,
                       progress=progress, **options)
