"""Synthetic IRT worlds for the cold-start tests: prompts with embeddings, 2PL items, models with abilities."""

from __future__ import annotations

import numpy as np


def sig(z):
    return 1 / (1 + np.exp(-z))


def irt_world(n_prompts=1600, n_models=40, d=8, k=2, seed=0, guess=0.0, topics=4, graded=False):
    """Prompts with embeddings x (around ``topics`` centres), loadings softplus(x A), difficulty x w + item noise;
    models with abilities theta; ``guess``: every prompt's guessing floor.

    Returns
    -------
    X : (n_prompts, d) float32, S : (n_prompts, n_models) float32 scores, P : their probabilities, topic : (n_prompts,)
        ``S`` is 0/1 draws, or with ``graded`` the probabilities plus noise in quarter steps.
    """
    rng = np.random.default_rng(seed)
    topic = np.arange(n_prompts) % topics
    centres = rng.normal(size=(topics, d))
    X = (centres[topic] + 0.7 * rng.normal(size=(n_prompts, d))).astype(np.float32)
    A = rng.normal(size=(d, k)) * 0.6
    w = rng.normal(size=d) * 0.8
    a = np.log1p(np.exp(X @ A + 0.5))
    b = X @ w + 0.3 * rng.normal(size=n_prompts)
    theta = rng.normal(size=(n_models, k)) * 1.2 + 0.5
    P = guess + (1 - guess) * sig(a @ theta.T - b[:, None])  # (n_prompts, n_models)
    if graded:
        S = np.clip(np.round((P + 0.1 * rng.normal(size=P.shape)) * 4) / 4, 0, 1).astype(np.float32)
    else:
        S = (rng.random(P.shape) < P).astype(np.float32)
    return X, S, P, topic


def world_benchmark(X, S, topic=None, *, texts=None, names=None, width=2):
    """A world as benchmark ``mmlu``: models ``org/model-NN`` (``width`` digits) unless ``names``, prompts ``pN``,
    subsets ``tT`` from ``topic`` and ``texts`` where given, the scores, and ``X`` as the stored embedding ``synth``."""
    from routereval.data.model import Benchmark

    names = names or [f"org/model-{i:0{width}d}" for i in range(S.shape[1])]
    kw = {} if topic is None else {"subsets": [f"t{t}" for t in topic]}
    if texts is not None:
        kw["texts"] = texts
    return Benchmark("mmlu", models=names, prompt_ids=[f"p{i}" for i in range(len(X))], scores=S.T.copy(),
                     embeddings={"synth": X}, **kw)
