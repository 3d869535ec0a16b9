"""The scaling-up study: its maths against naive references, the real MMLU-Pro facts, the CLI and bad input."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from routereval.cli.main import run
from routereval.data import bits as _bits
from routereval.data.model import Benchmark
from routereval.experiments.scaling import maths

ROOT = Path(__file__).resolve().parents[1]


def _bench(binary: bool, n_models: int = 12, n_prompts: int = 203, seed: int = 0) -> Benchmark:
    rng = np.random.default_rng(seed)
    skill = rng.uniform(0.1, 0.9, n_models)
    S = rng.random((n_models, n_prompts)) < skill[:, None]
    scores = S.astype(np.float32) if binary else (rng.random((n_models, n_prompts)) * S).astype(np.float32)
    kw = {"bits": _bits.pack(S)} if binary else {"scores": scores}
    return Benchmark("b", models=[f"m{i}" for i in range(n_models)], prompt_ids=[f"p{i}" for i in range(n_prompts)], **kw)


# ----------------------------------------------------------------------------- maths vs naive
@pytest.mark.parametrize("binary", [True, False])
def test_block_oracle_random_mix_match_naive(binary):
    b = _bench(binary)
    rng = np.random.default_rng(1)
    rows = np.array([0, 2, 3, 5, 7, 8, 9, 11])
    prompts = np.sort(rng.choice(b.n_prompts, 77, replace=False))
    block = maths.make_block(b, rows, prompts)
    dense = np.asarray(b.scores, dtype=np.float64)[rows][:, prompts]
    np.testing.assert_allclose(block.dense(), dense)
    np.testing.assert_allclose(block.means, dense.mean(axis=1))
    picks = np.array([rng.choice(len(rows), 4, replace=False) for _ in range(9)])
    oracle = maths.pool_oracles(block, picks)
    rnd = maths.random_expected(block, picks)
    for i, p in enumerate(picks):
        np.testing.assert_allclose(oracle[i], dense[p].max(axis=0).mean())
        # random routing: the mean over prompts of a uniformly drawn model's score
        np.testing.assert_allclose(rnd[i], np.mean([dense[p][:, j].mean() for j in range(len(dense[0]))]))
        for q in (0.0, 0.3, 1.0):
            naive = np.mean(q * dense[p].max(axis=0) + (1 - q) * dense[p].mean(axis=0))
            np.testing.assert_allclose(maths.mix_expected(oracle[i:i + 1], rnd[i:i + 1], q)[0], naive)
    order = np.array([3, 0, 6])
    np.testing.assert_allclose(maths.prefix_oracles(block, order),
                               [dense[order[:k]].max(axis=0).mean() for k in (1, 2, 3)])


def test_mix_expected_matches_simulated_router():
    # r_o(p) in expectation equals the long-run mean of actually flipping the coin per prompt
    b = _bench(True, n_models=5, n_prompts=400)
    block = maths.make_block(b, np.arange(5), np.arange(400))
    dense = block.dense()
    rng = np.random.default_rng(3)
    sims = []
    for _ in range(300):
        use_oracle = rng.random(400) < 0.4
        pick = np.where(use_oracle, dense.argmax(axis=0), rng.integers(0, 5, 400))
        sims.append(dense[pick, np.arange(400)].mean())
    exact = maths.mix_expected(maths.pool_oracles(block, [np.arange(5)]), maths.random_expected(block, [np.arange(5)]), 0.4)
    assert abs(np.mean(sims) - exact[0]) < 0.005


@pytest.mark.parametrize("binary,per_prompt", [(True, False), (True, True), (False, False), (False, True)])
def test_oracle_costs_match_naive(binary, per_prompt):
    b = _bench(binary, n_models=7, n_prompts=61)
    block = maths.make_block(b, np.arange(7), np.arange(61))
    dense = block.dense()
    rng = np.random.default_rng(2)
    cost = rng.uniform(0.1, 2.0, (7, 61)) if per_prompt else rng.uniform(0.1, 2.0, 7)
    picks = np.array([rng.choice(7, 3, replace=False) for _ in range(6)])
    got = maths.oracle_costs(block, picks, cost)
    C = cost if per_prompt else np.repeat(cost[:, None], 61, axis=1)
    for i, p in enumerate(picks):
        paid = []
        for j in range(61):  # the cheapest model among the prompt's best in the pool
            best = max(dense[k, j] for k in p)
            paid.append(min(C[k, j] for k in p if dense[k, j] == best))
        assert got[i] == pytest.approx(np.mean(paid))


def test_pareto_band_default_ms():
    cost = np.array([1.0, 2.0, 2.0, 3.0, 0.5])
    score = np.array([0.5, 0.7, 0.6, 0.65, 0.4])
    brute = [not any((cost[j] <= cost[i] and score[j] >= score[i]) and (cost[j] < cost[i] or score[j] > score[i])
                     for j in range(5)) for i in range(5)]
    assert maths.pareto_mask(cost, score).tolist() == brute
    mean, lo, hi = maths.band(np.arange(1, 101)[:, None].astype(float))
    assert mean[0] == 50.5 and lo[0] == pytest.approx(3.475) and hi[0] == pytest.approx(97.525)
    assert maths.default_ms(31) == [1, 2, 3, 5, 7, 10, 15, 20, 30, 31]
    assert maths.default_ms(5000, 1000)[-3:] == [500, 700, 1000]
    assert maths.default_ms(1) == [1]
    from routereval.experiments.scaling.plots import m_ticks

    assert m_ticks(31) == [1, 2, 3, 5, 10, 31] and m_ticks(1000) == [1, 3, 10, 30, 100, 300, 1000]


# ----------------------------------------------------------------------------- the CLI
def _run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _point(rows, **key) -> float:
    hit = [r for r in rows if all(r[k] == str(v) for k, v in key.items())]
    assert len(hit) == 1, key
    return float(hit[0]["score"])


def _import_real(name: str, tmp_path_factory) -> Path:
    """Import one real data folder (../shared/data) with its example spec into a temporary corpus."""
    out = tmp_path_factory.mktemp(name) / "corpus"
    code, _, err = _run("data", "import", ROOT / f"examples/sources/{name}.toml", "--out", out, "--json")
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def mmlu_pro(tmp_path_factory, shared_data):
    return _import_real("mmlu_pro", tmp_path_factory)


def test_mmlu_pro_reproduces_the_real_facts(mmlu_pro, tmp_path):
    out = tmp_path / "scaling"
    code, stdout, err = _run("scaling", mmlu_pro, "--benchmark", "mmlu_pro", "--groups", "random,all_weak",
                             "--protocol", "both", "--out", out, "--json")
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["benchmarks"][0]["eligible"] == 31  # missing-records policy: every model, complete prompts
    assert doc["benchmarks"][0]["split_name"] == "random" and doc["benchmarks"][0]["split"][2] == 1039
    rows = _csv(out / "curves.csv")
    assert list(rows[0]) == ["benchmark", "protocol", "group", "curve", "m", "score", "lo", "hi", "cost"]
    key = dict(benchmark="mmlu_pro", protocol="clean", group="random", curve="oracle")
    assert 0.39 <= _point(rows, m=1, **key) <= 0.46
    assert 0.76 <= _point(rows, m=5, **key) <= 0.82
    assert 0.94 <= _point(rows, m=31, **key) <= 0.955
    best = _point(rows, m=31, benchmark="mmlu_pro", protocol="clean", group="random", curve="best_single")
    assert 0.70 <= best <= 0.76
    # the oracle grows with m, and r_o(0.5) sits between random routing and the oracle
    curve = [_point(rows, m=m, **key) for m in (1, 2, 3, 5, 7, 10, 15, 20, 30, 31)]
    assert all(a < b for a, b in zip(curve, curve[1:]))
    mix = _point(rows, m=10, benchmark="mmlu_pro", protocol="clean", group="random", curve="r_o(0.5)")
    rnd = _point(rows, m=10, benchmark="mmlu_pro", protocol="clean", group="random", curve="random")
    assert mix == pytest.approx((curve[5] + rnd) / 2)
    weak = [r for r in _csv(out / "weak.csv") if r["protocol"] == "clean"]
    assert all(float(r["choice_score"]) <= 0.3 for r in weak) and len(weak) >= 4
    final = float(weak[-1]["oracle"])
    assert 0.55 <= final <= 0.65 and final < best
    assert weak[-1]["reaches_target"] == "false"
    summary = (out / "summary.md").read_text()
    assert "not reached" in summary and "prompts every model was evaluated on" in summary
    assert (out / "scaling_mmlu_pro.png").stat().st_size > 10_000 and (out / "scaling_mmlu_pro.svg").exists()
    assert (out / "grid.png").exists() and not (out / "frontier.csv").exists()  # no costs in MMLU-Pro


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from routereval.sources.synth import synth_corpus

    path = tmp_path_factory.mktemp("synth") / "tiny"
    synth_corpus(path, scale="tiny", seed=0)
    return path


def test_synthetic_study_with_routers_costs_and_both_protocols(tiny, tmp_path):
    out = tmp_path / "study"
    code, stdout, err = _run("scaling", tiny, "--benchmark", "arc,truthfulqa", "--m", "1,3,5,100", "--draws", "5",
                             "--protocol", "both", "--routers", "knn", "--router-m", "3", "--weak", "0.5", "--no-plots",
                             "--out", out, "--json")
    assert code == 0, err
    rows = _csv(out / "curves.csv")
    curves = {r["curve"] for r in rows}
    assert {"oracle", "random", "best_single", "r_o(0.25)", "r_o(0.5)", "r_o(0.75)", "weak_oracle", "knn"} <= curves
    assert {r["group"] for r in rows} == {"all_strong", "all_weak", "strong_to_weak", "random", "weak"}
    assert {r["protocol"] for r in rows} == {"clean", "paper"}
    # m = 100 exceeds the 24 models: skipped and listed, not an error
    assert not [r for r in rows if r["m"] == "100"]
    summary = (out / "summary.md").read_text()
    assert "Skipped points" in summary and "m = 100: only" in summary
    for r in rows:
        if r["curve"] != "weak_oracle":
            assert 0.0 <= float(r["score"]) <= 1.0 and r["cost"] != ""  # synthetic models have prices
    # the paper protocol chooses the best single on test: never below the clean choice
    for b in ("arc", "truthfulqa"):
        assert _point(rows, benchmark=b, protocol="paper", group="random", curve="best_single", m=5) >= \
            _point(rows, benchmark=b, protocol="clean", group="random", curve="best_single", m=5) - 1e-12
    front = _csv(out / "frontier.csv")
    assert any(r["on_frontier"] == "true" for r in front) and {r["curve"] for r in front} == {"oracle", "knn"}
    knn = [p for b in json.loads(stdout)["benchmarks"] for p in b["points"] if p["curve"] == "knn"]
    assert len(knn) == 2 * 4 * 2 and all(p["score"] <= p["pool_oracle"] + 1e-12 for p in knn)
    assert len(_csv(out / "weak.csv")) > 0


def test_plots_with_routers_frontier_and_replacing_a_study(tiny, tmp_path):
    import matplotlib

    backend, style = matplotlib.get_backend(), dict(matplotlib.rcParams)
    matplotlib.use("svg")  # a caller's own backend (the default here is agg, which a matplotlib.use("Agg") would keep)
    out = tmp_path / "plots"
    try:
        code, _, err = _run("scaling", tiny, "--benchmark", "arc", "--groups", "random,all_strong", "--m", "1,3",
                            "--draws", "3", "--routers", "knn", "--router-m", "3", "--weak", "0.5", "--out", out)
        after = matplotlib.get_backend()
    finally:
        matplotlib.use(backend)
    assert code == 0, err
    for name in ("scaling_arc.png", "scaling_arc.svg", "grid.png", "grid.svg", "frontier.csv", "summary.md"):
        assert (out / name).stat().st_size > 300, name
    assert "<svg" in (out / "grid.svg").read_text()[:500] and "![arc](scaling_arc.png)" in (out / "summary.md").read_text()
    # the figures' style is theirs: SVG text kept as text there, and the caller's backend and rcParams untouched
    # (it once leaked into every later figure of the process, a cold-start study's SVGs among them)
    assert ">random pools" in (out / "scaling_arc.svg").read_text()
    assert after == "svg"
    # (the test's own matplotlib.use turns backend_fallback off)
    assert {k for k, v in matplotlib.rcParams.items() if style[k] != v} - {"backend_fallback"} == set()
    # a second run replaces the study in place
    code, _, err = _run("scaling", tiny, "--benchmark", "truthfulqa", "--m", "1,2", "--no-plots", "--out", out)
    assert code == 0, err
    assert not (out / "scaling_arc.png").exists()
    assert {r["benchmark"] for r in _csv(out / "curves.csv")} == {"truthfulqa"}


@pytest.fixture(scope="module")
def routerbench(tmp_path_factory, shared_data):
    return _import_real("routerbench", tmp_path_factory)


def test_routerbench_cost_frontier(routerbench, tmp_path):
    out = tmp_path / "rb"
    code, stdout, err = _run("scaling", routerbench, "--benchmark", "routerbench.mbpp", "--groups", "random",
                             "--out", out, "--json")
    assert code == 0, err
    doc = json.loads(stdout)["benchmarks"][0]
    assert doc["cost"] == "records" and doc["split_name"] == "publisher"  # RouterBench ships train/test files
    cheap = doc["cheapest_reaching_best_single"]["clean"]
    front = _csv(out / "frontier.csv")
    on = sorted((r for r in front if r["on_frontier"] == "true"), key=lambda r: float(r["cost"]))
    assert len(on) >= 2 and all(float(a["score"]) < float(b["score"]) for a, b in zip(on, on[1:]))
    # the cheapest pool reaching the best single model is no dearer than it, and really reaches it
    best = doc["best_single"]["clean"]
    assert cheap["score"] >= best["score"] and cheap["cost"] <= best["cost"] + 1e-12
    assert "Cheapest pool reaching the best single model (clean)" in (out / "summary.md").read_text()


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("args,needle", [
    (["--benchmark", "nope"], "benchmarks (--benchmark): 'nope' is not in the corpus; available: arc"),
    (["--benchmark", "arc", "--p", "0.5,1.5"], "ps (--p): 1.5 is not an oracle probability of r_o(p); each must lie in [0, 1]"),
    (["--benchmark", "arc", "--p", "x"], "--p: 'x' is not a number"),
    (["--benchmark", "arc", "--m", "500,900"], "nothing to compute: every requested pool size is too large"),
    (["--benchmark", "arc", "--draws", "0"], "draws (--draws) must be an int >= 1"),
    (["--benchmark", "arc", "--m", "0,3"], "ms (--m) must be an int >= 1"),
    (["--benchmark", "arc", "--weak", "2"], "weak (--weak) must be a score in [0, 1]"),
    (["--benchmark", "arc", "--protocol", "both,x"], "--protocol 'both,x': expected clean, paper or both"),
    (["--benchmark", "arc", "--groups", "best"], "unknown group 'best'"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tiny, tmp_path, args, needle):
    out = tmp_path / "out"
    code, _, err = _run("scaling", tiny, *args, "--out", out)
    assert code == 2 and needle in err and err.count("\n") == 1, err
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_out_that_is_a_file_or_foreign_dir_is_refused(tiny, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    code, _, err = _run("scaling", tiny, "--benchmark", "arc", "--out", f)
    assert code == 2 and "exists and is not a directory" in err
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("keep me")
    code, _, err = _run("scaling", tiny, "--benchmark", "arc", "--out", d)
    assert code == 2 and "not a scaling study" in err and (d / "notes.txt").read_text() == "keep me"


def test_weak_threshold_no_model_meets_is_a_summary_entry(tiny, tmp_path):
    out = tmp_path / "w"
    code, stdout, err = _run("scaling", tiny, "--benchmark", "arc", "--m", "1,2", "--weak", "0.01", "--no-plots",
                             "--out", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["benchmarks"][0]["weak"]["clean"]["n_weak"] == 0
    assert "no model scores at most 0.01: no weak pool" in (out / "summary.md").read_text()
    assert len(_csv(out / "weak.csv")) == 0


def test_group_without_pools_is_skipped_not_fatal(tmp_path):
    # every model at or under the windows' floor (0.1): the window groups have no pools, random still does
    from routereval.data.model import Corpus
    from routereval.experiments.scaling import run_scaling

    rng = np.random.default_rng(0)
    S = rng.random((8, 120)) < 0.05
    b = Benchmark("hard", models=[f"m{i}" for i in range(8)], prompt_ids=[f"p{i}" for i in range(120)],
                  bits=_bits.pack(S))
    res = run_scaling(Corpus.from_benchmarks([b]), ms=[1, 2], draws=3, weak=0.3)
    assert {r["group"] for r in res.curves} == {"random", "weak"}
    reasons = {k["group"]: k["reason"] for k in res.skipped}
    assert set(reasons) == {"all_strong", "all_weak", "strong_to_weak"} and "no eligible model" in reasons["all_weak"]


def test_run_scaling_takes_a_corpus_directory_as_an_open_corpus(tiny):
    from routereval.data.store import open_corpus
    from routereval.experiments.scaling import run_scaling

    by_path = run_scaling(tiny, benchmarks=["arc"], ms=[1, 2], draws=2)
    by_corpus = run_scaling(open_corpus(tiny), benchmarks=["arc"], ms=[1, 2], draws=2)
    assert by_path.curves == by_corpus.curves and len(by_path.curves) > 0
