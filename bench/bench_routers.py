"""Routers: evaluate every non-finetuning router on one cell of the small synthetic corpus, and
PRknn's vectorised prediction against the reference's way (sklearn NearestNeighbors + a loop)."""

from __future__ import annotations

import statistics
import tempfile
import time

import numpy as np

RUNS = 3


def _median_time(fn, runs: int = RUNS) -> float:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def _cell_table() -> str:
    from routereval.data.store import open_corpus
    from routereval.evaluate import evaluate
    from routereval.routers import available_routers
    from routereval.sources.synth import synth_corpus

    names = [n for n, c in available_routers().items() if getattr(c, "input_kind", "embedding") != "text"]
    with tempfile.TemporaryDirectory() as d:
        synth_corpus(f"{d}/small", scale="small", seed=0)
        corpus = open_corpus(f"{d}/small")
        bench, m, group = "mmlu", 5, "strong_to_weak"
        rows, total = [], 0.0
        for name in names:
            res = {}

            def run():
                res.update(evaluate(corpus, benchmark=bench, router=name, m=m, group=group, n_boot=1000))

            wall = _median_time(run)
            total += wall
            rows.append(f"| {name} | {res['mu']:.3f} | {res['v_b']:.3f} | {res['e_p']:.3f} | {res['e_sel']:.3f} "
                        f"| {res['fit_s'] * 1e3:.1f} | {res['route_s'] * 1e3:.2f} | {wall * 1e3:.0f} |")
        n_test = res["n_test"]
    head = (f"Cell: small synthetic corpus (seed 0), `{bench}`, m = {m}, `{group}`, clean protocol, "
            f"stored `synth` embeddings, {n_test} test prompts; evaluate() including 1,000 bootstrap resamples; "
            f"median of {RUNS} runs.\n\n"
            "| router | µ | V_B | E_p | selection entropy | fit ms | route ms | evaluate() ms |\n|---|---|---|---|---|---|---|---|\n")
    return head + "\n".join(rows) + f"\n\nAll {len(names)} routers together: {total:.2f} s (median run each).\n"


def _knn_vs_reference() -> str:
    from sklearn.neighbors import NearestNeighbors

    from routereval.routers import make_router

    rng = np.random.default_rng(0)
    n_train, n_test, d, m, k = 9600, 1200, 384, 5, 5  # MMLU-Pro-sized split with MiniLM dims
    X = rng.normal(size=(n_train, d)).astype(np.float32)
    Y = (rng.random((n_train, m)) < 0.5).astype(np.float64)
    Xt = rng.normal(size=(n_test, d)).astype(np.float32)
    router = make_router("knn", k=k).fit(X, Y)

    def reference():
        nn = NearestNeighbors(n_neighbors=k, metric="cosine").fit(X)
        _, idx = nn.kneighbors(Xt)
        out = np.zeros((n_test, m))
        for i in range(n_test):  # the reference's per-prompt loop
            out[i] = Y[idx[i]].mean(axis=0)
        return out

    ours = _median_time(lambda: router.predict_scores(Xt))
    ref = _median_time(reference)
    same = np.allclose(router.predict_scores(Xt), reference())
    return (f"PRknn prediction, {n_train:,} training x {n_test:,} test prompts, {d} dims, k = {k}, m = {m} "
            f"(median of {RUNS}): routereval {ours * 1e3:.0f} ms, reference way (sklearn NearestNeighbors "
            f"cosine + per-prompt loop) {ref * 1e3:.0f} ms, ratio {ref / ours:.1f}x; same predictions: {same}.\n")


def main() -> str:
    return "## Routers (bench_routers.py)\n\n" + _cell_table() + "\n" + _knn_vs_reference()


if __name__ == "__main__":
    print(main())
