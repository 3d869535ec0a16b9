"""The cold-start study's option checks and the honesty of its summary: options it would ignore or bend are
refused, summary.md's prose follows the results it ran (never a k it did not run; singular and plural), the
plain mean's standard error follows the answers' spread, and the plots and tables say which models a figure is
over. Small synthetic corpora (a few hundred prompts, a handful of models) keep every study to a second or two."""

from __future__ import annotations

import copy
import csv
import math
import re

import numpy as np
import pytest

from routereval.coldstart.study import StudyResult, random_mean_se, run_study, summarise
from routereval.data.model import Corpus
from routereval.data.store import open_corpus, write_corpus
from routereval.errors import ParameterError

from coldstart_worlds import irt_world, world_benchmark

FAST = {"dim": 2, "max_epochs": 10}


def _world_corpus(out, *, n_prompts=300, n_models=6, subsets=1, graded=False, seed=0):
    """An IRT world (embeddings x, loadings and difficulties linear in x, model abilities) written as a corpus
    of one benchmark ``mmlu``: 0/1 answers, or ``graded`` ones in quarter steps; ``subsets`` topics."""
    X, S, _, topic = irt_world(n_prompts, n_models, d=6, k=2, seed=seed, topics=subsets, graded=graded)
    bench = world_benchmark(X, S, topic, texts=[f"question {i} on topic {t}" for i, t in enumerate(topic)])
    write_corpus(Corpus.from_benchmarks([bench]), out)
    return out


@pytest.fixture(scope="module")
def one_subset(tmp_path_factory):
    """0/1 answers, every prompt in one subset."""
    return _world_corpus(tmp_path_factory.mktemp("checks-one") / "corpus")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Graded answers (0, .25, .5, .75, 1) over four subsets."""
    return _world_corpus(tmp_path_factory.mktemp("checks-graded") / "corpus", subsets=4, graded=True, seed=1)


@pytest.fixture(scope="module")
def three_models(one_subset, tmp_path_factory):
    """A study of a pool of three models (the fewest `pool` pre-training takes; k = 5 and 10), written out:
    (result, doc, directory)."""
    from routereval.coldstart.output import write_study

    res = run_study(one_subset, benchmark="mmlu", router="irt", params=FAST, m=3, group="random", anchors=(5, 10),
                    methods=("random", "stratified", "irt"), seeds=2)
    out = tmp_path_factory.mktemp("checks-two") / "study"
    return res, write_study(res, out), out


def _summary_md(res, rows=None):
    """summary.md of ``res`` with its rows replaced by ``rows`` (no plots)."""
    from routereval.coldstart.output import summary_markdown

    rows = res.rows if rows is None else rows
    result = StudyResult(rows, res.meta)
    summary = summarise(rows)
    ks = sorted({r["k"] for r in rows})
    baseline = {s["k"]: s["mae_plain"] for s in summary if s["method"] == "random" and s["pretrain"] == "pool"}
    return summary_markdown(result, summary, baseline, {k: random_mean_se(rows, k) for k in ks}, [])


# --------------------------------------------------------------------------- 1. options ignored or bent


@pytest.mark.parametrize("args, message", [
    (("--anchors", "5,,10"), "--anchors has an empty item in '5,,10'"),
    (("--anchors", "5,"), "--anchors has an empty item"),
    (("--method", "random,,irt"), "--method has an empty item"),
    (("--folds", "2"), "folds (--folds): applies only to corpus pre-training"),
    (("--corpus-models", "6"), "corpus_models (--corpus-models): applies only to corpus pre-training"),
    (("--folds", "100", "--pretrain", "corpus"), "must be an int in [1, 3]; got 100"),
    (("--folds", "3", "--models", "2", "--pretrain", "corpus"), "folds of the 2 held-out models) must be an int in [1, 2]"),
    (("--corpus-models", "2", "--pretrain", "corpus"), "the pool's 3 always among them) must be an int >= 3; got 2"),
])
def test_study_refuses_options_it_would_ignore_or_bend(one_subset, tmp_path, cli, args, message):
    res = cli("coldstart", one_subset, "--benchmark", "mmlu", "--m", "3", "--group", "random", "--anchors", "5",
              "--method", "random", "--seeds", "1", "--param", "dim=2", "--param", "max_epochs=5",
              "--out", tmp_path / "o", *args)
    assert res.code == 2 and message in res.err and res.err.count("\n") == 1, res.err
    assert not (tmp_path / "o").exists()


def test_run_study_refuses_folds_without_corpus_pretraining(one_subset):
    with pytest.raises(ParameterError, match=re.escape("folds (--folds): applies only to corpus pre-training")):
        run_study(one_subset, benchmark="mmlu", m=3, group="random", anchors=(5,), methods=("random",), seeds=1,
                  folds=2)


# --------------------------------------------------------------------------- 2. the summary follows the results


def test_summary_prose_follows_a_three_model_pool(three_models):
    _, _, out = three_models
    text = (out / "summary.md").read_text()
    for wrong in ("1 models", "1 points", "1 answers", "That many respondents", "about 100 answers", "k = 100",
                  "the other 1 "):
        assert wrong not in text, wrong
    assert "What 3 models allow" in text and "pre-training the prompt side" in text
    assert "learned from the other 2 models' answers" in text
    assert "2 answers per prompt are a noisy label" in text and "The population prior is 2 points" in text
    assert "lowest MAE at k = 10 (the largest k run)" in text and "plain mean of 10 random answers" in text


def test_summary_says_whether_random_anchors_beat_the_model_based_ones(three_models):
    res = three_models[0]

    def with_errors(errors):
        rows = copy.deepcopy(res.rows)
        for r in rows:
            r["abs_error"] = errors[r["method"]]
            r["estimate"] = r["true_mean"] + errors[r["method"]]
        return _summary_md(res, rows)

    text = with_errors({"random": 0.01, "stratified": 0.01, "irt": 0.1})
    assert ("`random` anchors (MAE 0.0100) do as well as or better than the model-based methods (best: `irt`, "
            "MAE 0.1000)") in text
    assert "that was not enough to choose anchors" in text and "learned from the other 2 models' answers" in text
    text = with_errors({"random": 0.1, "stratified": 0.1, "irt": 0.01})
    assert "lowest MAE at k = 10 (the largest k run): `irt`, MAE 0.0100. `random` anchors: MAE 0.1000." in text
    assert "do as well as or better" not in text and "that was enough to choose anchors: `irt`" in text
    # stratified anchors equal to random ones (one subset; their means summed in another order): named random
    text = with_errors({"random": 0.05, "stratified": 0.05 - 5e-14, "irt": 0.1})
    assert "lowest MAE at k = 10 (the largest k run): `random`, MAE 0.0500." in text
    text = with_errors({"random": 0.05, "stratified": 0.04, "irt": 0.1})  # a real difference: stratified
    assert "lowest MAE at k = 10 (the largest k run): `stratified`, MAE 0.0400." in text
    assert "Within two standard errors of it" not in text  # every model the same errors: no spread, a real difference


def test_summary_hedges_differences_within_noise_and_reports_bias_by_strength(three_models):
    """A runner-up within a paired standard error of the best is named, the adaptive-vs-irt claim says "within a
    standard error" when it is, and the signed errors of the strongest and weakest held-out models are shown."""
    from routereval.coldstart.output import paired_difference, strength_bias

    res = three_models[0]
    rows = copy.deepcopy(res.rows)
    models = sorted({r["model"] for r in rows})
    noise = dict(zip(models, (0.03, -0.03, 0.0)))  # stratified 0.01 worse on average, by model: +0.04, -0.02, +0.01
    for r in rows:
        r["abs_error"] = {"random": 0.05, "irt": 0.2}.get(r["method"], 0.06 + noise[r["model"]])
    d = paired_difference(rows, ("stratified", 10), ("random", 10))
    # naive reference: per-model differences, their mean and standard error
    per = [0.01 + noise[m] for m in models]
    assert d[0] == pytest.approx(np.mean(per)) and d[1] == pytest.approx(np.std(per, ddof=1) / math.sqrt(3))
    one = [r for r in rows if r["model"] == models[0]]  # one held-out model: no standard error, no such claim
    assert "Within two standard errors" not in _summary_md(res, one)
    text = _summary_md(res, rows)
    assert "`random`, MAE 0.0500. Within two standard errors of it (paired difference of MAE over the held-out " \
           "models): `stratified` (0.0100 ± 0.0173)." in text
    truth = {r["model"]: r["true_mean"] for r in rows}
    strong, weak = max(truth, key=truth.get), min(truth, key=truth.get)
    for r in rows:  # the strongest estimated 0.05 low, the weakest 0.02 high, the middle one right; random exact
        r["estimate"] = r["true_mean"] + (0.0 if r["method"] == "random" else
                                          -0.05 if r["model"] == strong else 0.02 if r["model"] == weak else 0.0)
    assert strength_bias(rows, 10)["irt"] == pytest.approx((-0.05, 0.02))
    text = _summary_md(res, rows)
    assert "irt -0.0500 / +0.0200" in text and "Every method underestimates the strongest" not in text  # random: 0
    for r in rows:
        r["estimate"] = r["true_mean"] + (-0.05 if r["model"] == strong else 0.02 if r["model"] == weak else 0.0)
    assert "irt -0.0500 / +0.0200" in _summary_md(res, rows)
    assert "Every method underestimates" not in _summary_md(res, rows)  # thirds of one model: no general claim
    six = rows + [dict(r, model=r["model"] + "-twin") for r in rows]  # six held-out models, two per third
    assert "Every method underestimates the strongest and overestimates the weakest" in _summary_md(res, six)
    assert strength_bias([r for r in rows if r["model"] != weak], 10) == {}  # two models: no thirds
    assert strength_bias(rows, 10)["random"] == pytest.approx((-0.05, 0.02))


# --------------------------------------------------------------------------- 3. the plain mean's standard error


def _train_sd(corpus, m, held):
    """Sample standard deviation (ddof 1) of each held-out model's train scores, computed independently."""
    from routereval.pools import make_pool, make_split

    bench = open_corpus(corpus)["mmlu"]
    split = make_split(bench)
    pool = make_pool(bench, m=m, group="random", split=split)
    S = np.asarray(bench.scores, dtype=np.float64)
    rows = {str(n): i for n, i in zip(pool.model_names, pool.models)}
    return {h: S[rows[h], split.train].std(ddof=1) for h in held}, S, split, rows


def test_plain_mean_standard_error_follows_the_answers_spread(graded, tmp_path):
    from routereval.coldstart.output import write_study

    res = run_study(graded, benchmark="mmlu", router="irt", params=FAST, m=3, group="random", anchors=(16,),
                    methods=("random", "stratified"), seeds=1)
    sd, S, split, rows = _train_sd(graded, 3, res.meta["held_out"])
    want = float(np.mean([v / 4 for v in sd.values()]))
    binary = float(np.mean([math.sqrt(p * (1 - p) / 16) for p in (S[rows[h], split.test].mean() for h in sd)]))
    assert want < 0.8 * binary  # graded answers spread less than 0/1 ones of the same mean
    assert random_mean_se(res.rows, 16) == pytest.approx(want, rel=1e-6)
    write_study(res, tmp_path / "g")
    text = (tmp_path / "g" / "summary.md").read_text()
    assert "plain mean of 16 random answers: MAE " in text and f"(standard error about {want:.3f})" in text
    assert "one subset" not in text  # four subsets: stratified anchors are not random ones


def test_plain_mean_standard_error_of_binary_answers_is_the_binomial_one(one_subset, three_models):
    res = three_models[0]
    sd, S, split, rows = _train_sd(one_subset, 3, res.meta["held_out"])
    n = len(split.train)
    for h in sd:
        p = S[rows[h], split.train].mean()
        assert sd[h] == pytest.approx(math.sqrt(p * (1 - p) * n / (n - 1)), rel=1e-9)
    assert random_mean_se(res.rows, 10) == pytest.approx(float(np.mean([v / math.sqrt(10) for v in sd.values()])),
                                                         rel=1e-6)


# --------------------------------------------------------------------------- 4. cosmetics


def test_shares_never_print_minus_zero_and_one_answer_is_singular(three_models):
    from routereval.coldstart.output import percent

    assert percent(-0.004) == "0%" and percent(0.004) == "0%" and percent(-0.02) == "-2%" and percent(None) == "-"
    res = three_models[0]
    rows = copy.deepcopy(res.rows)
    for r in rows:
        if r["k"] == 5:
            r["k"] = 1
        # the added model a hair below the pool without it: a recovered share of about -0.1%
        r["mu_upper"], r["mu_lower"], r["mu_added"] = 0.8, 0.7, 0.6999
    text = _summary_md(res, [r for r in rows if r["k"] == 1])
    assert "-0%" not in text and "| 0% (" in text
    assert "plain mean of 1 random answer:" in text and "1 answers" not in text


def test_mu_plot_says_one_model_that_matters_in_the_singular(three_models, tmp_path):
    from routereval.coldstart.plots import plot_study

    summary = copy.deepcopy(three_models[1]["summary"])
    for s in summary:
        s["n_matter"] = 1
    plot_study(summary, tmp_path, title="t", baseline={})
    svg = (tmp_path / "mu_vs_k.svg").read_text()
    assert "routing µ on test (1 model that matters)" in svg and "1 models" not in svg
    assert "<!-- lower: the pool without the model (1 model that matters) -->" in svg


def test_stratified_identical_to_random_is_said_in_the_summary_and_the_plots(three_models):
    res, doc, out = three_models
    assert res.meta["n_subsets"] == 1
    strat = {(r["model"], r["k"], r["seed"]): r["estimate"] for r in res.rows if r["method"] == "stratified"}
    rand = {(r["model"], r["k"], r["seed"]): r["estimate"] for r in res.rows if r["method"] == "random"}
    assert strat == rand  # one subset: the same draws
    assert "one subset, so `stratified` anchors are `random` ones" in (out / "summary.md").read_text()
    for stem in ("error_vs_k", "mu_vs_k"):
        assert "<!-- stratified (= random: one subset) -->" in (out / f"{stem}.svg").read_text()


def test_console_table_shows_how_many_models_the_recovered_share_is_over(one_subset, tmp_path, cli):
    res = cli("coldstart", one_subset, "--benchmark", "mmlu", "--m", "3", "--group", "random", "--anchors", "5",
              "--method", "random", "--seeds", "1", "--param", "dim=2", "--param", "max_epochs=5",
              "--out", tmp_path / "o")
    assert res.code == 0, res.err
    assert "recovered (n)" in res.out
    row = next(line for line in res.out.splitlines() if "random" in line and "pool" in line)
    assert re.search(r"(\d+%|-) \(\d+\)", row), row


# --------------------------------------------------------------------------- 5. which models "lower" is over


def test_lower_bound_labels_say_which_models_they_average(three_models):
    res, doc, out = three_models
    text = (out / "summary.md").read_text()
    n = doc["summary"][0]["n_matter"]
    assert "the mean over all 3 held-out models" in text
    assert ("the µ plot's lower line" in text) if n else ("no model matters: the µ plot shows them all" in text)
    svg = (out / "mu_vs_k.svg").read_text()
    assert "<!-- lower: the pool without the model" in svg
    assert "µ added and the lower bound's µ below are means over all held-out models" in text


# --------------------------------------------------------------------------- 6. refused before any fit


def test_a_pool_of_two_under_pool_pretraining_and_a_bad_level_are_refused(one_subset, tmp_path, cli):
    """A fit on one model is no population (measured: errors of 0.1-0.4, intervals covering half the truths): pool
    pre-training alone is refused; beside corpus pre-training (the CLI's --pretrain corpus runs both) it is skipped
    and the summary says so."""
    with pytest.raises(ParameterError, match="pretrain.* pool: the router would be fitted on 1 model"):
        run_study(one_subset, benchmark="mmlu", router="irt", params=FAST, m=2, group="random", anchors=(5,),
                  methods=("random",), seeds=1)
    res = cli("coldstart", one_subset, "--benchmark", "mmlu", "--m", "2", "--group", "random", "--anchors", "5",
              "--method", "random", "--seeds", "1", "--param", "dim=2", "--param", "max_epochs=5", "--pretrain",
              "corpus", "--out", tmp_path / "o", "--json")
    assert res.code == 0, res.err
    meta = res.json()["meta"]
    assert meta["pretrain"] == ["corpus"] and "`pool` pre-training was skipped" in meta["skipped"]
    assert {r["pretrain"] for r in csv.DictReader(open(tmp_path / "o" / "coldstart.csv"))} == {"corpus"}
    assert "`pool` pre-training was skipped: the pool of 2" in (tmp_path / "o" / "summary.md").read_text()
    # corpus pre-training on no more than the pool, one fold holding every model out: nothing left to fit on
    thin = dict(benchmark="mmlu", router="irt", params=FAST, m=3, group="random", anchors=(5,), methods=("random",),
                seeds=1, corpus_models=3, folds=1)
    with pytest.raises(ParameterError, match="pretrain.* corpus: the router would be fitted on 0 models"):
        run_study(one_subset, pretrain=("corpus",), **thin)
    res = run_study(one_subset, pretrain=("pool", "corpus"), **thin)
    assert res.meta["pretrain"] == ["pool"] and "`corpus` pre-training was skipped" in res.meta["skipped"]
    assert {r["pretrain"] for r in res.rows} == {"pool"}
    for level in (1.5, float("nan"), 0, "0.9"):
        with pytest.raises(ParameterError, match=r"level \(the intervals' coverage\) must be a number in \(0, 1\)"):
            run_study(one_subset, benchmark="mmlu", router="irt", params=FAST, m=3, group="random", anchors=(5,),
                      methods=("random",), seeds=1, level=level)


def test_a_model_the_full_refit_never_routes_to_does_not_matter(three_models):
    """The recovered share sums over models whose removal costs the full refit at least MIN_GAIN and which the
    refit routes some test prompt to: a gain from refitting alone (the model never picked) is noise. Rows of a
    study written before upper_share was kept count by the gain alone."""
    res, _, _ = three_models
    assert all(0 <= r["upper_share"] <= 1 for r in res.rows)
    base = [dict(r, pretrain="pool", method="random", k=5, seed=0) for r in res.rows[:1]]
    a = dict(base[0], model="a", mu_upper=0.70, mu_lower=0.60, mu_added=0.65, upper_share=0.3)  # matters, 50%
    b = dict(base[0], model="b", mu_upper=0.70, mu_lower=0.68, mu_added=0.60, upper_share=0.0)  # refit noise only
    s = summarise([a, b])[0]
    assert s["n_matter"] == 1 and s["recovered"] == pytest.approx(0.5)
    s = summarise([a, dict(b, upper_share=0.1)])[0]  # routed to: it matters, and its loss counts
    assert s["n_matter"] == 2 and s["recovered"] == pytest.approx((0.05 - 0.08) / (0.10 + 0.02))
    s = summarise([a, {k: v for k, v in b.items() if k != "upper_share"}])[0]  # an older study's rows
    assert s["n_matter"] == 2


def test_summary_says_whether_adaptive_with_half_the_anchors_is_as_good_as_irt(three_models):
    res, _, _ = three_models
    rows = [dict(r, method="adaptive") if (r["method"], r["k"]) == ("stratified", 5) else r for r in res.rows]
    verdicts = set()
    for scale in (0.0, 0.5, 50.0):
        crafted = [dict(r, abs_error=r["abs_error"] * scale) if r["method"] == "adaptive" else r for r in rows]
        summ = {(s["method"], s["k"]): s["mae"] for s in summarise(crafted) if s["pretrain"] == "pool"}
        # naive paired difference: each model's mean error with adaptive at k = 5 less its mean with irt at 10
        per = [np.mean([r["abs_error"] for r in crafted if r["model"] == m and (r["method"], r["k"]) == ("adaptive", 5)])
               - np.mean([r["abs_error"] for r in crafted if r["model"] == m and (r["method"], r["k"]) == ("irt", 10)])
               for m in res.meta["held_out"]]
        mean, se = np.mean(per), np.std(per, ddof=1) / math.sqrt(len(per))
        verdict = "within two standard errors of" if abs(mean) <= 2 * se else "better than" if mean < 0 else "worse than"
        verdicts.add(verdict)
        line = (f"- adaptive with k = 5: MAE {summ[('adaptive', 5)]:.4f}, {verdict} irt with 10 "
                f"({summ[('irt', 10)]:.4f}; paired difference {mean:.4f} ± {se:.4f} over the held-out models).")
        assert line in _summary_md(res, crafted)
    assert {"better than", "worse than"} <= verdicts


def test_coldstart_csv_writes_no_negative_zero(three_models):
    from routereval.coldstart.output import rows_csv

    res, _, _ = three_models
    rows = [dict(res.rows[0], correction=-0.0)]
    text = rows_csv(rows)
    cells = text.splitlines()[1].split(",")
    header = text.splitlines()[0].split(",")
    assert cells[header.index("correction")] == "0" and "-0" not in cells


def test_the_designed_footnote_names_only_the_designed_methods_run():
    from routereval.coldstart.output import designed_note

    assert designed_note(["random", "stratified"]) == ""
    assert designed_note(["random", "irt"]).startswith("† irt chooses its anchors by design (clusters): ")
    assert designed_note(m for m in ("adaptive", "random", "irt")).startswith(
        "† irt and adaptive choose their anchors by design (clusters, the model's own answers): ")


def test_the_whole_benchmark_columns_say_which_prompts_they_cover(three_models):
    """Under a missing-records policy that drops prompts, the whole-benchmark mean is over the split's prompts,
    not the benchmark's: the summary says how many, and what the policy left out (a trial took it for all)."""
    res = three_models[0]
    n = res.meta["n_train"] + res.meta["n_val"] + res.meta["n_test"]
    assert res.meta["n_benchmark_prompts"] == n and res.meta["missing_note"] == ""
    text = _summary_md(res)
    assert f"every prompt of the split ({n}: train, val and test; what tinyBenchmarks reports)" in text
    meta = dict(res.meta, n_benchmark_prompts=n + 40, missing_note="prompts: 40 prompts some model misses left out")
    text = _summary_md(StudyResult(res.rows, meta))
    assert (f"({n}: train, val and test; what tinyBenchmarks reports; the benchmark holds {n + 40}, of which the "
            "missing-records policy left out 40: prompts: 40 prompts some model misses left out)") in text


def test_the_summary_gives_the_intervals_mean_half_width_beside_their_coverage(three_models):
    """Coverage alone reads better than it is when intervals are wide (a trial: 100% coverage with half-widths
    three times the errors): the mean half-width stands beside it."""
    res = three_models[0]
    summ = {(s["method"], s["k"]): s for s in summarise(res.rows) if s["pretrain"] == "pool"}
    for (meth, k), s in summ.items():
        rs = [r for r in res.rows if r["method"] == meth and r["k"] == k and r["pretrain"] == "pool"]
        assert s["half_width"] == pytest.approx(np.mean([(r["high"] - r["low"]) / 2 for r in rs]), abs=1e-12)
    text = _summary_md(res)
    s = summ[("irt", 10)]
    assert "95% coverage (mean half-width)" in text
    assert f"| {100 * s['coverage']:.0f}% ({s['half_width']:.3f}) |" in text
