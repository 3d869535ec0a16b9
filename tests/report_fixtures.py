"""Inputs of the report tests: results stores made by real sweeps (``routereval sweep`` on a small
structured corpus) and study directories with real matplotlib plots."""

from __future__ import annotations

import numpy as np

from routereval.data.model import Benchmark, Corpus

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


SWEEP = """
benchmarks = ["arc", "mmlu"]
protocols = ["paper", "clean"]
m = [3, 5]
groups = ["all_strong", "all_weak", "strong_to_weak"]
seeds = [42, 7]
n_boot = 200
[routers.oracle]
[routers.mix]
p = [0.5]
[routers.random]
[routers.best_single]
[routers.knn]
k = [5, 15]
"""


def sweep_results(tmp_path, corpus: Corpus | None, config: str = SWEEP, *sets: str):
    """Write ``corpus`` to ``tmp_path/corpus`` (None: it is there) and run a real ``routereval sweep``
    of ``config`` (with ``--set`` overrides) on it into ``tmp_path/RESULTS``; returns that path."""
    from routereval.cli.main import run
    from routereval.data.store import write_corpus

    if corpus is not None:
        write_corpus(corpus, tmp_path / "corpus")
    cfg = tmp_path / "sweep.toml"
    cfg.write_text('corpus = "corpus"\n' + config)
    out = tmp_path / "RESULTS"
    code = run(["sweep", str(cfg), "--out", str(out), "--json", *[a for s in sets for a in ("--set", s)]])
    assert code == 0, f"sweep failed ({code})"
    return out


def make_study_dir(path, *, kind: str = "scaling", svg: bool = True):
    """A study directory as `routereval scaling`/`coldstart` writes it: curves.csv (coldstart.csv), real matplotlib
    plots (PNG and SVG of the same figure, plus one PNG only) and summary.md (with a table and an
    image link to one of the plots)."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.mkdir(parents=True, exist_ok=True)
    ms = np.array([1, 2, 3, 5, 10, 20, 31])
    curves = {"oracle": 1 - 0.6 * np.exp(-ms / 6), "r_o(0.5)": 0.7 - 0.3 * np.exp(-ms / 6), "random": np.full(7, 0.4)}
    # each command's own data file: report tells the two kinds of study apart by it
    with open(path / ("coldstart.csv" if kind == "coldstart" else "curves.csv"), "w", newline="") as f:
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
        + f"\n![oracle curve]({kind}_mmlu_pro.png)\n\nSkipped points: none. <script>alert(1)</script>\n"
        # a table wider than a laptop screen, as coldstart's (11 columns with long headers): it must scroll in place
        + "\n| " + " | ".join(f"a long column header number {i}" for i in range(14)) + " |\n"
        + "|" + "---:|" * 14 + "\n| " + " | ".join(f"0.{i:04d} ± 0.0012" for i in range(14)) + " |\n",
        encoding="utf-8")
    return path
