"""Results stores for the report tests, made by real computations.

Each cell is prepared and evaluated with :func:`routereval.evaluate.prepare_cell` /
:func:`~routereval.evaluate.evaluate_cell` (real routers on a small structured corpus) and
written with the sweep's own writer, :func:`routereval.experiments.results.write_rows`, in the
store's schema.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np

from routereval.data.model import Benchmark, Corpus
from routereval.evaluate import evaluate_cell, make_router_from, prepare_cell
from routereval.experiments.results import canonical_json, write_rows

ROUTERS = (("oracle", {}), ("mix", {"p": 0.5}), ("random", {}), ("best_single", {}), ("knn", {"k": 5}),
           ("knn", {"k": 15}))
GROUPS = ("all_strong", "all_weak", "strong_to_weak")


def topic_corpus(n_prompts: int = 600, n_models: int = 30, seed: int = 0, names=("mmlu", "arc"),
                 cost: bool = False) -> Corpus:
    """Benchmarks whose prompts fall in 4 topics (embeddings near a topic centre); each model is
    strong on one topic, with a spread of overall skill so the pool groups differ. ``cost``: a
    cost matrix (stronger models cost more per prompt, longer prompts cost more)."""
    rng = np.random.default_rng(seed)
    benches = []
    for b, name in enumerate(names):
        n = n_prompts // (b + 1)
        topic = np.arange(n) % 4
        centres = rng.normal(size=(4, 8)) * 2
        emb = (centres[topic] + rng.normal(size=(n, 8))).astype(np.float32)
        base = np.linspace(0.15, 0.75, n_models)[:, None] + rng.uniform(-0.05, 0.05, size=(n_models, 4))
        base[np.arange(n_models), np.arange(n_models) % 4] += 0.2
        S = (rng.random((n_models, n)) < np.clip(base, 0, 1)[:, topic]).astype(np.float32)
        C = (np.linspace(1e-4, 3e-3, n_models)[:, None] * rng.uniform(0.5, 2.0, size=n)[None, :]) if cost else None
        benches.append(Benchmark(name, models=[f"m{i:02d}" for i in range(n_models)],
                                 prompt_ids=[f"p{i}" for i in range(n)], subsets=[f"t{t}" for t in topic],
                                 scores=S, cost=C, embeddings={"synth": emb}))
    return Corpus.from_benchmarks(benches)


def cell_rows(corpus, *, benchmark: str, protocol: str, m: int, group: str, seed: int, n_boot: int,
              routers=ROUTERS, draw: int = 0) -> list[dict]:
    """The store's rows of one prepared cell: every router fitted, routed and measured."""
    cell = prepare_cell(corpus, benchmark=benchmark, m=m, group=group, protocol=protocol, seed=seed, draw=draw)
    test = np.asarray(cell.pool.split.test)
    best = cell.Y_test[:, cell.pool.best_single]
    rows = []
    for name, params in routers:
        started = dt.datetime.now(dt.timezone.utc)
        r = make_router_from(name, params, seed=seed, protocol=protocol)
        res = evaluate_cell(r, cell, router_name=name, n_boot=n_boot, seed=seed, params=params)
        kw = {"scores": cell.Y_test} if getattr(r, "requires_scores", False) else {}
        routes = np.asarray(r.route(cell.X_test, **kw))
        routed = cell.Y_test[np.arange(len(routes)), routes]
        assert abs(routed.mean() - res["mu"]) < 1e-12  # the stored routes are the evaluated ones
        rows.append({
            "benchmark": benchmark, "protocol": protocol, "split": "random", "m": m, "group": group, "seed": seed,
            "draw": draw, "embedding": res["embedding"], "router": name, "params": canonical_json(params),
            "mu": res["mu"], "mu_lo": res["mu_ci"][0], "mu_hi": res["mu_ci"][1], "v_r": res["v_r"],
            "v_b": res["v_b"], "v_b_lo": res["v_b_ci"][0], "v_b_hi": res["v_b_ci"][1], "e_p": res["e_p"],
            "e_sel": res["e_sel"], "oracle": res["oracle"], "best_single": res["best_single"],
            "oracle_recall": res["oracle_recall"], "p_beats_best_single": res["p_beats_best_single"],
            "fit_s": res["fit_s"], "route_s": res["route_s"], "n_train": res["n_train"], "n_val": res["n_val"],
            "n_test": res["n_test"], "selection": json.dumps(res["selection"]), "models": res["models"],
            "best_single_model": res["best_single_model"], "test_prompts": test.tolist(),
            "routes": routes.tolist(), "routed_scores": routed.tolist(), "best_single_scores": best.tolist(),
            "oracle_scores": cell.Y_test.max(axis=1).tolist(),
            "cell_hash": f"{benchmark}-{protocol}-{m}-{group}-{seed}-{draw}-{name}-{canonical_json(params)}",
            "status": "ok", "error": None, "version": "test", "started": started,
            "ended": dt.datetime.now(dt.timezone.utc), "worker": "test",
            **{k: (res["cost"] or {}).get(k) for k in ("mean_cost", "best_single_cost", "aiq", "apgr")}})
    return rows


def fabricate_results(path, corpus, *, benchmarks=("mmlu", "arc"), protocols=("paper", "clean"), ms=(3, 5),
                      seeds=(42, 7), n_boot: int = 200, routers=ROUTERS, failed: bool = True) -> list[dict]:
    """Write a results store (one file per cell) at ``path``; returns every row written.

    ``failed`` adds one failed cell (m too large), as a sweep records it.
    """
    path.mkdir(parents=True, exist_ok=True)
    all_rows = []
    for b in benchmarks:
        for p in protocols:
            for m in ms:
                for g in GROUPS:
                    for s in seeds:
                        rows = cell_rows(corpus, benchmark=b, protocol=p, m=m, group=g, seed=s, n_boot=n_boot,
                                         routers=routers)
                        write_rows(path, rows, stem=f"{b}-{p}-{m}-{g}-{s}")
                        all_rows += rows
    if failed:
        now = dt.datetime.now(dt.timezone.utc)
        row = {"benchmark": benchmarks[0], "protocol": protocols[0], "split": "random", "m": 99, "group": GROUPS[0],
               "seed": seeds[0], "draw": 0, "embedding": "synth", "router": "knn", "params": '{"k":5}',
               "cell_hash": "failed-cell", "status": "failed", "error": "m=99 is larger than the group's window",
               "version": "test", "started": now, "ended": now, "worker": "test"}
        write_rows(path, [row], stem="failed")
        all_rows.append(row)
    return all_rows


def make_study_dir(path, *, kind: str = "scaling", svg: bool = True):
    """A study directory as `routereval scaling`/`coldstart` writes it: curves.csv, real matplotlib
    plots (PNG and SVG of the same figure, plus one PNG only) and summary.md (with a table and an
    image link to one of the plots)."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.mkdir(parents=True, exist_ok=True)
    ms = np.array([1, 2, 3, 5, 10, 20, 31])
    curves = {"oracle": 1 - 0.6 * np.exp(-ms / 6), "r_o(0.5)": 0.7 - 0.3 * np.exp(-ms / 6), "random": np.full(7, 0.4)}
    with open(path / "curves.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["benchmark", "protocol", "group", "curve", "m", "score", "lo", "hi", "cost"])
        for name, ys in curves.items():
            for m, y in zip(ms, ys):
                w.writerow(["mmlu_pro", "clean", "random", name, m, f"{y:.4f}", "", "", ""])
    for stem, formats in ((f"{kind}_mmlu_pro", ("png", "svg") if svg else ("png",)), (f"{kind}_grid", ("png",))):
        fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
        for (name, ys), color in zip(curves.items(), ("#0072B2", "#E69F00", "#009E73")):
            ax.plot(ms, ys, marker="o", label=name, color=color)
        ax.set_xscale("log")
        ax.set_xlabel("pool size m")
        ax.set_ylabel("test score")
        ax.set_title(f"{kind}: mmlu_pro (clean)")
        ax.legend()
        fig.tight_layout()
        for fmt in formats:
            fig.savefig(path / f"{stem}.{fmt}")
        plt.close(fig)
    (path / "summary.md").write_text(
        f"# {kind.title()} study\n\n"
        "The oracle rises from **0.40** at m = 1 to 0.99 at m = 31.\n\n"
        "| curve | m = 1 | m = 31 |\n|---|---:|---:|\n"
        + "".join(f"| {n} | {ys[0]:.3f} | {ys[-1]:.3f} |\n" for n, ys in curves.items())
        + f"\n![oracle curve]({kind}_mmlu_pro.png)\n\nSkipped points: none. <script>alert(1)</script>\n",
        encoding="utf-8")
    return path
