"""Cold start: the estimate's error and the routing recovery, and the speed of adding a model.

1. ``synth --scale full`` MMLU (14,042 prompts, 5,000 models; generated in memory): the prompt
   side of ``irt`` is pre-trained on every corpus model but the held-out ones (``--pretrain
   corpus`` with one fold; the issue asks for thousands of models to learn it from;
   ``ROUTEREVAL_BENCH_CS_MODELS=N`` samples N corpus models instead), then ``HELD_OUT`` pool models are added back
   from k anchors per method and seed (``SEEDS`` anchor draws per model, each model its own
   draw). Every figure carries its standard error clustered by held-out model and the signed
   bias; the error against the whole-benchmark mean (all 14,042 prompts) is an extra table. The
   corpus is ``synth --scale full --seed 0``; the estimator was tuned on ``--seed 1`` (another
   corpus), never on these figures. Targets: 100 ``irt`` anchors give a mean absolute
   error of the estimated score <= 0.02 and beat the plain mean of 100 random answers;
   ``adaptive`` with half the anchors is at least as good as ``irt``.
2. Real MMLU-Pro (31 models, all prompts every model answered; TF-IDF embeddings): the full
   leave-one-model-out study (31 models x 5 k x 5 methods x 5 seeds), one run, timed. Targets:
   with 100 anchors the error beats the plain mean of 100 random answers; the added model
   recovers >= 80% of the full refit's gain; the study takes < 5 minutes.
   The other MMLU-sized benchmarks of the corpus (HellaSwag, 10,042 prompts; MMLU-Pro, 12,032)
   get the same protocol for ``random``, ``irt``, ``fisher`` and ``adaptive`` at k = 50 and 100.
3. Adding one model from 100 anchors (``router.add_model``, irt and mf on MMLU-Pro): median
   of 50 calls, against refitting the router with the model (the baseline it replaces).
4. The adaptive test from the CLI (``coldstart anchors --method adaptive --answers``) on a
   router saved from 20 MMLU-Pro models: the time of one call (opening the router's context,
   replaying N answers, the estimate so far, the next prompt; median of 5), against the same
   context with 100 ``irt`` anchors (the non-adaptive command), and one whole CLI process.
5. Memory of the study's data (``_load_data`` on synth full MMLU, 1,000 fitted models and the
   other 4,000 as references of the neighbours' correction), peak RSS of a fresh process,
   median of 3: the references unpacked in chunks (the code) against unpacking them whole,
   val and test included (the first version, b572bcf), and against no further references.

The machine is shared: the load average is recorded beside the figures.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from _common import PEAK_KIB_SOURCE, commit

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "sources" / "mmlu_pro.toml"
_CS_MODELS = os.environ.get("ROUTEREVAL_BENCH_CS_MODELS", "all")
CORPUS_MODELS = None if _CS_MODELS == "all" else int(_CS_MODELS)  # None: every corpus model
PRETRAINED_ON = "every corpus model" if CORPUS_MODELS is None else f"a seeded sample of {CORPUS_MODELS:,} corpus models"
HELD_OUT = int(os.environ.get("ROUTEREVAL_BENCH_CS_HELD_OUT", "30"))
SEEDS = int(os.environ.get("ROUTEREVAL_BENCH_CS_SEEDS", "5"))
OUT = Path(os.environ.get("ROUTEREVAL_BENCH_DIR", "/tmp/routereval-bench")) / "coldstart"


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _table(summary, ks, methods, pretrain, what: str = "mae") -> list[str]:
    """Rows per method, a column per k: ``mae`` (MAE ± SE), ``bias`` (mean signed error ± SE), ``mae_all`` or
    ``mae_gp`` (gp-IRT without the neighbours' correction)."""
    by = {(s["method"], s["k"]): s for s in summary if s["pretrain"] == pretrain}
    cell = {"mae": lambda s: f"{s['mae']:.4f} ± {s['mae_se']:.4f}",
            "bias": lambda s: f"{s['bias']:+.4f} ± {s['bias_se']:.4f}",
            "mae_all": lambda s: f"{s['mae_all']:.4f}", "mae_gp": lambda s: f"{s['mae_gp']:.4f}"}[what]
    lines = ["| method | " + " | ".join(f"k={k}" for k in ks) + " |", "|---|" + "---:|" * len(ks)]
    for meth in methods:
        lines.append(f"| {meth} | " + " | ".join(cell(by[(meth, k)]) for k in ks) + " |")
    if what == "mae":
        plain = [by[("random", k)]["mae_plain"] for k in ks]
        lines.append("| plain mean of k random answers | " + " | ".join(f"{p:.4f}" for p in plain) + " |")
    return lines


def _synth_full() -> list[str]:
    from routereval.coldstart.output import write_study
    from routereval.coldstart.study import run_study, summarise
    from routereval.data.model import Corpus
    from routereval.sources.synth import synth_benchmarks

    t0 = time.perf_counter()
    bench = next(synth_benchmarks("full", seed=0, names=["mmlu"]))
    gen_s = time.perf_counter() - t0
    ks, methods = [25, 50, 100, 200], ["random", "stratified", "irt", "fisher", "adaptive"]
    load0 = _load()
    res = run_study(Corpus.from_benchmarks([bench]), benchmark="mmlu", router="irt", params={"dim": 4}, m=HELD_OUT,
                    group="strong_to_weak", anchors=ks, methods=methods, seeds=SEEDS, pretrain=("pool", "corpus"),
                    folds=1, corpus_models=CORPUS_MODELS)
    write_study(res, OUT / "synth-full-mmlu")
    summ = summarise(res.rows)
    by = {(s["pretrain"], s["method"], s["k"]): s for s in summ}
    irt100, rnd100 = by[("corpus", "irt", 100)], by[("corpus", "random", 100)]
    ad50, fi100 = by[("corpus", "adaptive", 50)], by[("corpus", "fisher", 100)]
    rec = "-" if irt100["recovered"] is None else f"{100 * irt100['recovered']:.0f}%"
    lines = [f"### synth --scale full, MMLU: prompt side from {res.meta['n_corpus_models'] - HELD_OUT} models, "
             f"{HELD_OUT} held-out models x {SEEDS} anchor draws",
             "",
             f"{bench.n_prompts:,} prompts, {bench.n_models:,} models (generated in {gen_s:.0f} s); router `irt` "
             f"(`dim=4`; on the validation corpus, seed 1, 2, 4 and 8 dimensions gave 100 `irt` anchors about the same "
             f"error, 0.027 / 0.026 / 0.027); "
             f"the pool is m = {HELD_OUT} `strong_to_weak`, each pool model held out "
             f"(corpus pre-training: one fold without all {HELD_OUT}, on {PRETRAINED_ON}); {SEEDS} anchor draws "
             f"per held-out model ({HELD_OUT * SEEDS} rows per method and k); "
             f"{res.meta['n_train']:,} train / {res.meta['n_test']:,} test prompts. Mean absolute "
             f"error of the estimated test mean (gp-IRT with the neighbours' correction) ± its standard error "
             f"(clustered by held-out model), `corpus` pre-training:",
             "", *_table(summ, ks, methods, "corpus"), "",
             "gp-IRT alone (without the neighbours' correction), `corpus`:", "",
             *_table(summ, ks, methods, "corpus", "mae_gp"), "",
             "Mean signed error (estimate - true test mean) ± standard error, `corpus`:", "",
             *_table(summ, ks, methods, "corpus", "bias"), "",
             "Extra, not the target: the same estimator aimed at the model's mean over all "
             f"{bench.n_prompts:,} prompts (what tinyBenchmarks reports), error against that mean, `corpus`:", "",
             *_table(summ, ks, methods, "corpus", "mae_all"), "",
             f"Same as the first table with `pool` pre-training (the prompt side from the other {HELD_OUT - 1} pool "
             f"models only):", "",
             *_table(summ, ks, methods, "pool"), "",
             f"- 100 `irt` anchors: MAE **{irt100['mae']:.4f} ± {irt100['mae_se']:.4f}** (target <= 0.02: "
             f"{'met' if irt100['mae'] <= 0.02 else 'NOT met'}; minus two standard errors: "
             f"{irt100['mae'] - 2 * irt100['mae_se']:.4f}); plain mean of 100 random answers "
             f"{rnd100['mae_plain']:.4f} ({'beaten' if irt100['mae'] < rnd100['mae_plain'] else 'NOT beaten'}).",
             f"- 100 `fisher` anchors (the population design): MAE {fi100['mae']:.4f} ± {fi100['mae_se']:.4f} "
             f"({'<= 0.02' if fi100['mae'] <= 0.02 else '> 0.02'}).",
             f"- `adaptive` with 50 anchors: MAE {ad50['mae']:.4f} vs `irt` with 100: {irt100['mae']:.4f} "
             f"({'at least as good' if ad50['mae'] <= irt100['mae'] else 'NOT as good'}).",
             f"- routing (corpus, irt, k = 100): µ added {irt100['mu_added']:.4f}, upper {irt100['mu_upper']:.4f}, "
             f"lower {irt100['mu_lower']:.4f}; recovered {rec} over the {irt100['n_matter']} held-out models whose "
             f"removal costs the full refit >= 0.005 and which it routes to.",
             f"- {res.meta['n_fits']} fits ({res.meta['fit_s']:.0f} s), study {res.meta['total_s']:.0f} s; "
             f"load average before {load0}, after {_load()}.", ""]
    return lines


def _mmlu_pro_corpus(tmp: Path) -> tuple[Path, float]:
    """The real MMLU-Pro corpus with its TF-IDF embedding cached, and the seconds the embedding took."""
    from routereval.data.store import open_corpus, write_corpus
    from routereval.embed import embed_prompts
    from routereval.pools import make_split
    from routereval.sources import import_spec

    corpus = write_corpus(import_spec(SPEC), tmp / "mmlu_pro")
    b = open_corpus(corpus)["mmlu_pro"]
    t = time.perf_counter()
    embed_prompts(b, "tfidf", corpus_path=corpus, fit_prompts=make_split(b, missing="prompts").train)
    return corpus, time.perf_counter() - t


def _mmlu_pro(tmp: Path) -> tuple[list[str], object]:
    from routereval.coldstart.output import write_study
    from routereval.coldstart.study import run_study, summarise

    corpus, emb_s = _mmlu_pro_corpus(tmp)
    ks, methods = [10, 25, 50, 100, 200], ["random", "stratified", "irt", "fisher", "adaptive"]
    load0 = _load()
    t = time.perf_counter()
    res = run_study(corpus, benchmark="mmlu_pro", router="irt", m=31, group="random", anchors=ks, methods=methods,
                    seeds=5, embedding="tfidf", missing="prompts")
    wall = time.perf_counter() - t
    load1 = _load()
    write_study(res, OUT / "mmlu_pro-irt")
    summ = summarise(res.rows)
    by = {(s["method"], s["k"]): s for s in summ}
    rec = [(m, by[(m, 100)]) for m in methods]
    lines = ["### Real MMLU-Pro: 31 models, leave-one-model-out", "",
             f"Router `irt` on TF-IDF embeddings (fitted on the train prompts; computed once in {emb_s:.0f} s and "
             f"cached in the corpus), pool = all 31 models (`--m 31 --group random --missing prompts`: the "
             f"{res.meta['n_train']:,} train / {res.meta['n_test']:,} test prompts every model answered), "
             f"5 k x {len(methods)} methods x 5 seeds (each model its own anchor draws). Mean absolute error of the "
             f"estimated test mean (gp-IRT with the neighbours' correction) ± its standard error (clustered by "
             f"held-out model):", "",
             *_table(summ, ks, methods, "pool"), "",
             "gp-IRT alone (without the neighbours' correction), mean absolute error:", "",
             *_table(summ, ks, methods, "pool", "mae_gp"), "",
             "Mean signed error ± standard error:", "", *_table(summ, ks, methods, "pool", "bias"), "",
             "With 100 anchors (recovered: share of the full refit's gain over the pool without the model, summed "
             "over the models whose removal costs the full refit >= 0.005 and which it routes to; for the others "
             "it is refit noise):", "",
             "| method | MAE | 95% coverage | µ added | recovered (models) | recovered vs same prompt side (models) |",
             "|---|---:|---:|---:|---:|---:|"]
    for m, s in rec:
        r1 = "-" if s["recovered"] is None else f"{100 * s['recovered']:.0f}%"
        r2 = "-" if s["recovered_full"] is None else f"{100 * s['recovered_full']:.0f}%"
        lines.append(f"| {m} | {s['mae']:.4f} | {100 * s['coverage']:.0f}% | {s['mu_added']:.4f} | {r1} "
                     f"({s['n_matter']}) | {r2} ({s['n_matter_full']}) |")
    lines += ["", f"Bounds: upper µ {by[('irt', 100)]['mu_upper']:.4f}, lower µ (mean over held-out models) "
              f"{by[('irt', 100)]['mu_lower']:.4f}. Plain mean of 100 random answers: MAE "
              f"{by[('random', 100)]['mae_plain']:.4f}.",
              f"- whole study: **{wall:.0f} s** wall ({res.meta['n_fits']} router fits, {res.meta['fit_s']:.0f} s of "
              f"them; target < 300 s: {'met' if wall < 300 else 'NOT met'}); one run (it takes minutes); load "
              f"average before {load0}, after {load1}.", ""]
    return lines, corpus


def _add_speed(corpus) -> list[str]:
    from threadpoolctl import threadpool_limits

    from routereval.data.store import open_corpus
    from routereval.embed import embed_prompts
    from routereval.pools import make_pool, make_split, pool_scores
    from routereval.routers import make_router

    b = open_corpus(corpus)["mmlu_pro"]
    split = make_split(b, missing="prompts")
    pool = make_pool(b, m=31, group="random", split=split, missing="prompts")
    Ytr, Yva, _ = pool_scores(b, pool)
    X = embed_prompts(b, "tfidf", corpus_path=corpus, fit_prompts=split.train)
    Xtr, Xva = X[split.train], X[split.val]
    lines = ["### Adding one model from 100 anchors", "",
             "`router.add_model(name, X_anchor, y_anchor)` on MMLU-Pro (TF-IDF, 256 dims; 30 models fitted, the 31st "
             "added from 100 random train prompts), median of 50 calls, against refitting the router on the 31 "
             "models (median of 3):", "", "| router | add_model (ms) | refit (s) | refit / add |", "|---|---:|---:|---:|"]
    anchors = np.random.default_rng(0).permutation(len(split.train))[:100]
    for name in ("irt", "mf"):
        base = make_router(name, random_state=0).fit(Xtr, Ytr[:, 1:], X_val=Xva, Y_val=Yva[:, 1:])
        state = base.state_dict()
        times = []
        with threadpool_limits(1):
            for i in range(50):
                r = make_router(name, random_state=0).load_state_dict(dict(state))
                t = time.perf_counter()
                r.add_model("new", Xtr[anchors], Ytr[anchors, 0])
                times.append(time.perf_counter() - t)
        refit = []
        for _ in range(3):
            t = time.perf_counter()
            make_router(name, random_state=0).fit(Xtr, Ytr, X_val=Xva, Y_val=Yva)
            refit.append(time.perf_counter() - t)
        a, f = statistics.median(times), statistics.median(refit)
        lines.append(f"| {name} | {1000 * a:.2f} | {f:.2f} | {f / a:,.0f}x |")
    lines += ["", f"Target: under 50 ms. Load average {_load()}.", ""]
    return lines


def _adaptive_cli(corpus: Path, tmp: Path) -> list[str]:
    import csv
    import subprocess
    import sys

    from routereval.coldstart.anchors import select_anchors
    from routereval.coldstart.context import open_router_context, prompt_floors
    from routereval.coldstart.saved import adaptive_next, anchor_table
    from routereval.data.store import open_corpus
    from routereval.evaluate import fit_router

    router = tmp / "router"
    fit_router(corpus, benchmark="mmlu_pro", router="irt", m=20, group="random", embedding="tfidf", save=router)
    ctx = open_router_context(router)
    b = open_corpus(corpus)["mmlu_pro"]
    S = np.asarray(b.scores, dtype=np.float64)
    pool = set(map(str, ctx.saved.pool["models"]))
    row = next(i for i, m in enumerate(b.models) if str(m) not in pool and not np.isnan(S[i]).any())
    # the prompts the test asks, in order (one CLI call per answer asks the same: tests/test_coldstart.py)
    asked = select_anchors(ctx.saved.router, 100, "adaptive", X=ctx.X, candidates=ctx.askable,
                           delta=np.nan_to_num(ctx.delta), target=np.arange(b.n_prompts),
                           calibration=prompt_floors(ctx), answers=S[row], random_state=0).index

    def timed(fn, n=5):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times), out

    lines = ["### The adaptive test from the CLI", "",
             f"`coldstart anchors --method adaptive --answers SO_FAR.csv` on a router saved by `fit` from 20 MMLU-Pro "
             f"models (`irt`, TF-IDF); the new model {b.models[row]} (true mean {S[row].mean():.3f}), its answers "
             "the prompts the test asks. One call in-process (open the router's context, replay the answers, "
             "estimate, choose the next prompt), median of 5; the baseline is the same context with 100 `irt` "
             "anchors (the non-adaptive command):", "",
             "| answers so far | call (s) | estimate [interval] |", "|---:|---:|---|"]
    base, _ = timed(lambda: anchor_table(open_router_context(router), 100, "irt"))
    for n in (0, 25, 50, 100):
        path = tmp / f"answers-{n}.csv"
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "score"])
            w.writerows([str(b.texts[i]), f"{S[row, i]:g}"] for i in asked[:n])
        sec, doc = timed(lambda: adaptive_next(open_router_context(router), answers=path if n else None))
        e = doc["estimate"]
        lines.append(f"| {n} | {sec:.2f} | " + ("(none yet)" if e is None else
                                                 f"{e['mean']:.3f} [{e['low']:.3f}, {e['high']:.3f}]") + " |")
        if n == 100:
            cli = [sys.executable, "-m", "routereval", "coldstart", "anchors", str(router), "--method", "adaptive",
                   "--answers", str(path), "--json"]
            whole, _ = timed(lambda: subprocess.run(cli, capture_output=True, check=True), n=3)
    lines += ["", f"Baseline, 100 `irt` anchors from the same context: {base:.2f} s. One whole CLI process with 100 "
              f"answers (Python's start and imports included, median of 3): {whole:.2f} s. Load average {_load()}.", ""]
    return lines + _adaptive_calibrated(tmp)


def _adaptive_calibrated(tmp: Path) -> list[str]:
    """The same call where the pool pins every prompt's floor and slope (3PL): the calibration computed (the
    first call on a corpus), against read back from the corpus's cache (every later call)."""
    import shutil

    from routereval.coldstart.context import FLOORS_CACHE, open_router_context
    from routereval.coldstart.saved import adaptive_next
    from routereval.data.model import Corpus
    from routereval.data.store import write_corpus
    from routereval.evaluate import fit_router
    from routereval.sources.synth import synth_benchmarks

    bench = next(synth_benchmarks("full", seed=0, names=["mmlu"]))
    corpus = write_corpus(Corpus.from_benchmarks([bench]), tmp / "synth-mmlu")
    router = tmp / "synth-router"
    fit_router(corpus, benchmark="mmlu", router="irt", params={"dim": 4}, m=120, group="random", save=router)

    def call() -> float:
        t = time.perf_counter()
        doc = adaptive_next(open_router_context(router))
        assert doc["anchors"]
        return time.perf_counter() - t

    first = []
    for _ in range(3):
        shutil.rmtree(corpus / FLOORS_CACHE, ignore_errors=True)
        first.append(call())
    later = statistics.median(call() for _ in range(5))
    return [f"With the pool's 3PL calibration (`synth --scale full` MMLU, {bench.n_prompts:,} prompts, a router fitted "
            f"on 120 pool models, which pin every prompt's floor and slope): the first call on a corpus computes it "
            f"and caches it in the corpus, {statistics.median(first):.2f} s (median of 3, the cache removed before "
            f"each); every later call reads it back, {later:.2f} s (median of 5). Load average {_load()}.", ""]


_LOAD_CHILD = PEAK_KIB_SOURCE + r'''
import json, sys, time
import numpy as np
import routereval.coldstart.study as S
mode, path = sys.argv[1], sys.argv[2]
chunked = S._reference_scores
if mode == "whole":  # b572bcf: every further reference unpacked at once (float64, val and test too), then cast
    def whole(bench, pool, rows, chunk=256):
        tr, va, te = S._scores(bench, pool, rows)
        return tr, S._known_means(tr, va, te)
    S._reference_scores = whole
elif mode == "fitted":  # no further references: the fitted models only (before b572bcf)
    S._reference_scores = lambda bench, pool, rows, chunk=256: chunked(bench, pool, rows[:0])
t = time.perf_counter()
d = S._load_data(path, "mmlu", m=30, group="strong_to_weak", protocol="clean", seed=0, missing="auto",
                 split="auto", embedding=None, pretrain=["corpus"], corpus_models=1000, k_max=100, progress=None)
print(json.dumps({"seconds": time.perf_counter() - t, "peak_mb": _peak_kib() / 1024,
                  "fitted": int(len(d.corpus_rows)), "extra": int(len(d.extra_rows))}))
'''


def _load_memory() -> list[str]:
    """Peak RSS of the study's data loading in fresh processes: chunked references against the baselines."""
    import json
    import subprocess
    import sys

    from routereval.data.model import Corpus
    from routereval.data.store import write_corpus
    from routereval.sources.synth import synth_benchmarks

    lines = ["### Memory of the study's data: 5,000 models, 1,000 fitted, the rest references", "",
             "`_load_data` on synth full MMLU (m = 30 `strong_to_weak`, `--pretrain corpus --corpus-models 1000`: "
             "1,000 fitted models and 4,000 further references of the neighbours' correction), peak RSS (VmHWM) of a "
             "fresh process that opens the stored corpus, median of 3:", "",
             "| further references | peak RSS (MB) | load (s) |", "|---|---:|---:|"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as d:
        path = write_corpus(Corpus.from_benchmarks([next(synth_benchmarks("full", seed=0, names=["mmlu"]))]),
                            Path(d) / "corpus")
        for mode, label in (("chunked", "unpacked 256 at a time, train prompts kept (the code)"),
                            ("whole", "unpacked whole, val and test too (b572bcf; baseline)"),
                            ("fitted", "none: the fitted models only (before b572bcf)")):
            runs = [json.loads(subprocess.run([sys.executable, "-c", _LOAD_CHILD, mode, str(path)], env=env,
                                              capture_output=True, text=True, check=True).stdout.splitlines()[-1])
                    for _ in range(3)]
            peak = statistics.median(r["peak_mb"] for r in runs)
            secs = statistics.median(r["seconds"] for r in runs)
            each = " / ".join(f"{r['peak_mb']:.0f}" for r in runs)
            lines.append(f"| {label} | {peak:,.0f} ({each}) | {secs:.1f} |")
    lines += ["", f"Load average {_load()}.", ""]
    return lines


SIZED = ("hellaswag", "mmlu_pro")  # the corpus's other MMLU-sized benchmarks (10-12k prompts)


def _synth_sized() -> list[str]:
    """The same study on the other MMLU-sized benchmarks of synth full: k = 50 and 100, four methods."""
    from routereval.coldstart.study import run_study, summarise
    from routereval.data.model import Corpus
    from routereval.sources.synth import synth_benchmarks

    ks, methods = [50, 100], ["random", "irt", "fisher", "adaptive"]
    lines = ["### synth --scale full: the other MMLU-sized benchmarks", "",
             f"Same protocol as MMLU above (`corpus` pre-training on {PRETRAINED_ON}, "
             f"m = {HELD_OUT} `strong_to_weak` held out, {SEEDS} anchor draws each), four methods, k = 50 and 100. "
             "Mean absolute error of the estimated test mean ± its standard error (clustered by held-out model); "
             "gp-IRT alone and the error against the whole-benchmark mean at k = 100 beside it:", "",
             "| benchmark | method | k=50 | k=100 | gp-IRT alone, k=100 | whole benchmark, k=100 |",
             "|---|---|---:|---:|---:|---:|"]
    notes = []
    for name in SIZED:
        bench = next(synth_benchmarks("full", seed=0, names=[name]))
        load0 = _load()
        res = run_study(Corpus.from_benchmarks([bench]), benchmark=name, router="irt", params={"dim": 4},
                        m=HELD_OUT, group="strong_to_weak", anchors=ks, methods=methods, seeds=SEEDS,
                        pretrain=("corpus",), folds=1, corpus_models=CORPUS_MODELS)
        by = {(s["method"], s["k"]): s for s in summarise(res.rows)}
        label = (f"{name} ({bench.n_prompts:,} prompts; {res.meta['n_train']:,} train / "
                 f"{res.meta['n_test']:,} test)")
        for meth in methods:
            a, b = by[(meth, 50)], by[(meth, 100)]
            lines.append(f"| {label} | {meth} | {a['mae']:.4f} ± {a['mae_se']:.4f} | {b['mae']:.4f} ± "
                         f"{b['mae_se']:.4f} | {b['mae_gp']:.4f} | {b['mae_all']:.4f} |")
            label = ""
        plain = [by[("random", k)]["mae_plain"] for k in ks]
        lines.append(f"| | plain mean of k random answers | {plain[0]:.4f} | {plain[1]:.4f} | | |")
        irt100, ad50 = by[("irt", 100)], by[("adaptive", 50)]
        notes.append(f"- {name}: 100 `irt` anchors **{irt100['mae']:.4f} ± {irt100['mae_se']:.4f}** (target <= 0.02: "
                     f"{'met' if irt100['mae'] <= 0.02 else 'NOT met'}; plain mean of 100 random answers "
                     f"{plain[1]:.4f}: {'beaten' if irt100['mae'] < plain[1] else 'NOT beaten'}); `adaptive` with 50 "
                     f"{ad50['mae']:.4f} ({'at least as good' if ad50['mae'] <= irt100['mae'] else 'NOT as good'}); "
                     f"study {res.meta['total_s']:.0f} s, load average before {load0}, after {_load()}.")
    return lines + [""] + notes + [""]


# the recipe's methods; adaptive with target= the test prompts (what the README passes) and with the default target
# (the candidates' mean: the train prompts)
RECIPE_METHODS = ("random", "irt", "fisher", "adaptive", "adaptive default")


def _recipe(corpus: Path) -> list[str]:
    """README's Python recipe on real MMLU-Pro: the bare estimate, calibrated, and calibrated with the references."""
    import collections

    from routereval.coldstart import calibrate_prompts, estimate_mean, select_anchors
    from routereval.data.store import open_corpus
    from routereval.embed import embed_prompts
    from routereval.evaluate import make_router_from
    from routereval.pools import make_pool

    bench = open_corpus(corpus)["mmlu_pro"]
    pool = make_pool(bench, m=31, group="random", missing="prompts")
    split = pool.split
    X = embed_prompts(bench, "tfidf", corpus_path=corpus, fit_prompts=split.train)
    S = np.asarray(bench.scores, dtype=np.float64)[pool.models].T  # (n_prompts, 31)
    res: dict = collections.defaultdict(list)
    t0 = time.perf_counter()
    held = list(range(0, S.shape[1], 2))
    for h in held:
        keep = [j for j in range(S.shape[1]) if j != h]
        Y = S[:, keep]
        router = make_router_from("irt", {}, seed=42).fit(X[split.train], Y[split.train], X_val=X[split.val],
                                                          Y_val=Y[split.val])
        cal = calibrate_prompts(router, X[split.train], Y[split.train])
        cal_test = calibrate_prompts(router, X[split.test], Y[split.test], like=cal)
        delta = np.zeros(len(X))
        delta[split.train], delta[split.test] = cal.delta, cal_test.delta
        truth = S[split.test, h].mean()
        for method in RECIPE_METHODS:
            for seed in range(2):
                for how in ("bare", "calibrated", "references"):
                    src = bench if method == "random" else router
                    kind, _, aim = method.partition(" ")  # "adaptive default": no target=, the candidates' mean
                    more = {} if kind != "adaptive" else {"answers": S[:, h], **(
                        {} if aim == "default" else {"target": split.test})}
                    a = select_anchors(src, 100, kind, X=X, candidates=split.train, random_state=seed,
                                       **({} if how == "bare" else {"delta": delta}), **more)
                    y_new = S[a.index, h]
                    kw = {} if how == "bare" else dict(anchor_delta=delta[a.index], target_delta=cal_test.delta,
                                                       spread=cal.spread)
                    if how == "references":
                        kw["references"] = (Y[a.index], Y[split.test].mean(axis=0))
                        kw["adaptive"] = kind == "adaptive"  # the references matched to its level on the test
                    est = estimate_mean(router, X[a.index], y_new, X[split.test], weights=a.weights, **kw)
                    res[(method, how)].append((abs(est.mean - truth), est.low <= truth <= est.high,
                                               abs(y_new.mean() - truth)))
    wall = time.perf_counter() - t0
    lines = ["### README's Python recipe: calibrated or bare", "",
             f"Real MMLU-Pro (`--m 31 --group random --missing prompts`), an `irt` router on TF-IDF fitted on the "
             f"other 30 models for each of {len(held)} held-out models, 2 anchor draws of 100 per method; the "
             f"README's calls (`calibrate_prompts`, `select_anchors`, `estimate_mean`). Mean absolute error of the "
             f"estimated test mean (95% coverage):", "",
             "| anchors | bare | calibrated | calibrated + references | plain mean of the same answers |",
             "|---|---:|---:|---:|---:|"]
    for method in RECIPE_METHODS:
        cells = []
        for how in ("bare", "calibrated", "references"):
            v = np.asarray(res[(method, how)], dtype=np.float64)
            cells.append(f"{v[:, 0].mean():.4f} ({100 * v[:, 1].mean():.0f}%)")
        plain = np.asarray(res[(method, "bare")], dtype=np.float64)[:, 2].mean()
        lines.append(f"| `{method}` | " + " | ".join(cells) + f" | {plain:.4f} |")
    lines += ["", f"{wall:.0f} s, load average {_load()}.", ""]
    return lines


def main() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = ["## Cold start (bench_coldstart.py)", "",
            f"{stamp}, commit {commit()}, 2 cores shared with other engineers (load average at start "
            f"{_load()}). Outputs (coldstart.csv, plots, summary.md) under `{OUT}`.", ""]
    with tempfile.TemporaryDirectory() as d:
        real, corpus = _mmlu_pro(Path(d))
        speed = _add_speed(corpus) + _adaptive_cli(corpus, Path(d)) + _recipe(corpus)
    synth = _synth_full() + _synth_sized()
    return "\n".join(head + real + speed + synth + _load_memory())


if __name__ == "__main__":
    import sys

    # `python bench_coldstart.py memory` / `adaptive`: that section alone (a minute, not a quarter of an hour);
    # `synth`: the synth full studies alone (MMLU, then HellaSwag and MMLU-Pro); `real`: the real MMLU-Pro study;
    # `recipe`: README's Python recipe on real MMLU-Pro, bare and calibrated
    if sys.argv[1:] == ["real"]:  # the real MMLU-Pro study alone
        with tempfile.TemporaryDirectory() as d:
            print("\n".join([f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}, commit {commit()}, load average "
                              f"{_load()}", ""] + _mmlu_pro(Path(d))[0]))
    elif sys.argv[1:] == ["synth"]:
        print("\n".join([f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}, commit {commit()}, load average "
                          f"{_load()}", ""] + _synth_full() + _synth_sized()))
    elif sys.argv[1:] == ["recipe"]:
        with tempfile.TemporaryDirectory() as d:
            print("\n".join([f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}, commit {commit()}", ""]
                             + _recipe(_mmlu_pro_corpus(Path(d))[0])))
    elif sys.argv[1:] == ["adaptive"]:
        with tempfile.TemporaryDirectory() as d:
            print("\n".join(_adaptive_cli(_mmlu_pro_corpus(Path(d))[0], Path(d))))
    else:
        print("\n".join(_load_memory()) if sys.argv[1:] == ["memory"] else main())
