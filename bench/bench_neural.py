"""Learned routers and embeddings: MLPR training time at paper scale, the reference's batch-size-1
regime, mf/irt at m = 1000, MLC steps, MiniLM and TF-IDF throughput.

Run alone with ``python bench/bench_neural.py``.
"""

from __future__ import annotations

import gzip
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _task(n, d, m, seed=0):
    """Prompts on the unit sphere, model j succeeds with probability sigmoid(4 x . w_j)."""
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, d)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = (r.random((n, m)) < 1 / (1 + np.exp(-4 * (X @ r.standard_normal((d, m)))))).astype(float)
    return X, Y


def _timed(fn, repeat):
    out, times = None, []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _questions(n):
    out = []
    with gzip.open(DATA / "mmlu_pro" / "mmlu_pro_questions.jsonl.gz", "rt") as f:
        for line in f:
            out.append(json.loads(line)["question"])
            if len(out) == n:
                break
    return out


def main() -> str:
    from routereval.embed import embed_texts
    from routereval.routers import make_router

    rows = []
    make_router("linear", max_epochs=1).fit(*_task(50, 8, 2))  # import torch outside the timings
    # --- MLPR at the paper's scale: 11,000 train prompts (MMLU's 80%), 384-dim MiniLM-size embeddings
    for m in (5, 10):
        X, Y = _task(13_750, 384, m)
        Xtr, Ytr, Xv, Yv = X[:11_000], Y[:11_000], X[11_000:12_375], Y[11_000:12_375]
        t, r = _timed(lambda: make_router("mlp", random_state=0).fit(Xtr, Ytr, X_val=Xv, Y_val=Yv), 3)
        rows.append(f"| `mlp` fit, 11,000 x 384, m = {m}, early stopping on 1,375 val | {t:.2f} s (median of 3) | "
                    f"{r.n_epochs_} epochs of batch 256; target < 30 s: {'met' if t < 30 else 'NOT met'} |")
    X, Y = _task(11_000, 384, 10)
    t100, _ = _timed(lambda: make_router("mlp", random_state=0, max_epochs=100).fit(X, Y), 1)
    rows.append(f"| `mlp` fit, 11,000 x 384, m = 10, 100 epochs, no val | {t100:.2f} s (1 run) | worst case: no early stopping |")
    # --- the reference's regime: batch size 1 (one optimiser step per prompt); per-epoch time on a subset
    Xs, Ys = X[:1000], Y[:1000]
    t1, _ = _timed(lambda: make_router("mlp", random_state=0, max_epochs=1, batch_size=1).fit(Xs, Ys), 3)
    t256, _ = _timed(lambda: make_router("mlp", random_state=0, max_epochs=1, batch_size=256).fit(Xs, Ys), 3)
    rows.append(f"| one epoch on 1,000 prompts, batch 1 (reference regime) | {t1:.3f} s (median of 3) | "
                f"extrapolated 100 epochs x 11,000 prompts: {t1 * 11 * 100 / 60:.0f} min |")
    rows.append(f"| one epoch on 1,000 prompts, batch 256 | {t256:.4f} s (median of 3) | {t1 / t256:.0f}x faster per epoch |")
    # --- mf and irt at m = 1000
    X, Y = _task(2_500, 384, 1000, seed=1)
    for name in ("mf", "irt"):
        t, r = _timed(lambda: make_router(name, random_state=0, lr=0.02).fit(X[:2000], Y[:2000], X_val=X[2000:], Y_val=Y[2000:]), 3)
        acc = Y[2000:][np.arange(500), r.route(X[2000:])].mean()
        rows.append(f"| `{name}` fit, 2,000 x 384, m = 1000, early stopping on 500 val | {t:.2f} s (median of 3) | "
                    f"{r.n_epochs_} epochs; routed mean {acc:.3f} vs pool mean {Y[2000:].mean():.3f} |")
    # --- embeddings of real MMLU-Pro questions
    qs = _questions(2000)
    embed_texts(qs[:8], "minilm")  # load the model outside the timing
    t, _ = _timed(lambda: embed_texts(qs[:256], "minilm"), 3)
    rows.append(f"| `minilm` embedding, 256 MMLU-Pro questions | {t:.2f} s (median of 3) | {256 / t:.0f} prompts/s (expected ~250/s) |")
    short = [q[:80] for q in qs[256:512]]
    t, _ = _timed(lambda: embed_texts(short, "minilm"), 3)
    rows.append(f"| `minilm` embedding, 256 questions cut to 80 characters | {t:.2f} s (median of 3) | {256 / t:.0f} prompts/s |")
    t, _ = _timed(lambda: embed_texts(qs, "tfidf", fit_texts=qs[:1600]), 3)
    rows.append(f"| `tfidf` fit on 1,600 + embed 2,000 MMLU-Pro questions | {t:.2f} s (median of 3) | {2000 / t:.0f} prompts/s |")
    # --- MLC: CPU time per fine-tuning step (batch 10 as in the reference, max_length 256)
    texts = np.array(qs[:200], dtype=object)
    Ym = _task(200, 4, 5)[1]
    make_router("mlc", max_steps=1, batch_size=2, max_length=8).fit(texts[:4], Ym[:4])  # load weights once
    t2, _ = _timed(lambda: make_router("mlc", max_steps=2, random_state=0).fit(texts, Ym), 1)
    t12, r = _timed(lambda: make_router("mlc", max_steps=12, random_state=0).fit(texts, Ym), 1)
    step = (t12 - t2) / 10
    rows.append(f"| `mlc` (MiniLM) fine-tuning step, batch 10, max_length 256 | {step:.2f} s per step | "
                f"the reference's 10 epochs of MMLU (11,000 prompts) would take {step * 11_000 / 10 * 10 / 3600:.1f} h on this CPU: bound it with `max_steps` |")
    head = ("## neural: learned routers and embeddings\n\n"
            "Synthetic embeddings (unit vectors, logistic success model) for router timings; "
            "real MMLU-Pro question texts for the encoders. CPU, one torch thread (`n_jobs=1`).\n\n"
            "| run | time | note |\n|---|---|---|\n")
    return head + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(main())
