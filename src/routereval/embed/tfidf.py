"""The TF-IDF encoder: word 1-2 grams, TruncatedSVD to 256 dims, L2 normalisation (scikit-learn, no weights)."""

from __future__ import annotations

import numpy as np

from routereval.errors import InputError

TFIDF_DIM = 256


def encode_tfidf(texts: list[str], fit_texts: list[str]) -> np.ndarray:
    """(len(texts), TFIDF_DIM) float32, fitted on ``fit_texts`` (at least 2 texts, with at least 2 distinct terms)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, dtype=np.float64)
    try:
        fitted = vec.fit_transform(fit_texts)
    except ValueError:  # "empty vocabulary": no word of 2+ characters
        fitted = None
    terms = 0 if fitted is None else fitted.shape[1]
    if terms < 2:  # TruncatedSVD needs two features
        raise InputError(f"the tfidf encoder needs at least 2 distinct terms (words of 2+ characters) in the texts "
                         f"it is fitted on (fit_texts or fit_prompts; by default every text); found {terms}")
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
