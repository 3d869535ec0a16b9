"""Import the three real data folders through the CLI and check figures against the raw files."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest

from routereval.cli.main import run
from routereval.data.store import open_corpus

ROOT = Path(__file__).resolve().parents[1]


def _import(name: str, out: Path) -> tuple[dict, object]:
    buf_out, buf_err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf_out), contextlib.redirect_stderr(buf_err):
        code = run(["data", "import", str(ROOT / "examples" / "sources" / f"{name}.toml"), "--out", str(out), "--json"])
    assert code == 0, buf_err.getvalue()
    return json.loads(buf_out.getvalue()), open_corpus(out)


@pytest.fixture(scope="module")
def mmlu_pro(tmp_path_factory, shared_data):
    return _import("mmlu_pro", tmp_path_factory.mktemp("mmlu_pro") / "corpus")


@pytest.fixture(scope="module")
def routerbench(tmp_path_factory, shared_data):
    return _import("routerbench", tmp_path_factory.mktemp("routerbench") / "corpus")


@pytest.fixture(scope="module")
def alpaca(tmp_path_factory, shared_data):
    return _import("alpaca_eval", tmp_path_factory.mktemp("alpaca") / "corpus")


def test_mmlu_pro_shape_and_means(mmlu_pro):
    info, corpus = mmlu_pro
    assert info["models"] == 31
    b = corpus["mmlu_pro"]
    assert b.shape == (31, 12032)
    assert b.binary
    assert len(b.subset_names) == 14 and "law" in b.subset_names
    means = dict(zip(b.models.tolist(), b.model_means()))
    assert round(float(means["gpt4o_2024-05_history"]), 4) == 0.7207
    assert round(float(means["Llama-2-7b-hf_5shots"]), 4) == 0.1834


def test_mmlu_pro_missing_stays_missing(mmlu_pro, shared_data):
    _, corpus = mmlu_pro
    b = corpus["mmlu_pro"]
    observed = dict(zip(b.models.tolist(), b.observed_matrix().sum(axis=1)))
    assert observed["DeepSeek-Coder-V2_5shots"] == 10351
    assert observed["gpt4o_2024-05_history"] == 12032
    assert b.n_records == 371244  # every row of the long file, none invented


def test_mmlu_pro_records_and_prompts_match_files(mmlu_pro, shared_data):
    _, corpus = mmlu_pro
    b = corpus["mmlu_pro"]
    col = {p: j for j, p in enumerate(b.prompt_ids.tolist())}
    row = {m: i for i, m in enumerate(b.models.tolist())}
    with gzip.open(shared_data / "mmlu_pro" / "mmlu_pro_correctness_long.csv.gz", "rt") as f:
        for k, r in enumerate(csv.DictReader(f)):
            if k % 997 == 0:  # a sample of raw rows, each found in the matrix
                assert b.scores[row[r["model"]], col[r["question_id"]]] == float(r["correct"])
                assert b.subsets[col[r["question_id"]]] == r["category"]
    with gzip.open(shared_data / "mmlu_pro" / "mmlu_pro_questions.jsonl.gz", "rt") as f:
        q = json.loads(f.readline())
    j = col[str(q["question_id"])]
    assert b.texts[j] == q["question"] and b.gold[j] == q["answer"]


def test_routerbench_models_benchmarks_cost(routerbench, shared_data):
    info, corpus = routerbench
    assert info["models"] == 11
    assert sorted(corpus.benchmarks) == ["routerbench.arc-challenge", "routerbench.mbpp", "routerbench.winogrande"]
    # unique sample ids: ARC's 14 split rows merge into their prompts
    assert {n: b.n_prompts for n, b in corpus.benchmarks.items()} == {
        "routerbench.arc-challenge": 1470, "routerbench.winogrande": 1267, "routerbench.mbpp": 427}
    for b in corpus:
        assert b.has_cost and b.binary and b.is_complete and b.n_models == 11
    with open(shared_data / "routerbench" / "mbpp_test.csv", newline="") as f:
        csv.field_size_limit(1 << 30)
        r = next(csv.DictReader(f))
    b = corpus["routerbench.mbpp"]
    j = b.prompt_ids.tolist().index(r["sample_id"])
    i = b.models.tolist().index("gpt-4-1106-preview")
    assert b.cost[i, j] == pytest.approx(float(r["gpt-4-1106-preview|total_cost"]), rel=1e-12)
    assert b.scores[i, j] == float(r["gpt-4-1106-preview"])
    assert b.texts[j] == "\n".join(__import__("ast").literal_eval(r["prompt"]))


def test_routerbench_split_rows_merge(routerbench, shared_data):
    # arc-challenge.val.172 comes as two rows of arc_challenge_test.csv: gpt-3.5 in one, the rest in the other
    _, corpus = routerbench
    b = corpus["routerbench.arc-challenge"]
    with open(shared_data / "routerbench" / "arc_challenge_test.csv", newline="") as f:
        csv.field_size_limit(1 << 30)
        rows = [r for r in csv.DictReader(f) if r["sample_id"] == "arc-challenge.val.172"]
    assert len(rows) == 2
    j = b.prompt_ids.tolist().index("arc-challenge.val.172")
    for i, m in enumerate(b.models.tolist()):
        given = [float(r[m]) for r in rows if r[m] != ""]
        assert given == [b.scores[i, j]]


def test_alpaca_eval_graded_57_models_match_leaderboard(alpaca, shared_data):
    info, corpus = alpaca
    b = corpus["alpaca_eval"]
    assert info["models"] == 57 and b.n_models == 57 and b.n_prompts == 805
    assert not b.binary
    assert np.nanmin(b.scores) >= 0 and np.nanmax(b.scores) <= 1
    for m in ("NullModel", "gpt4_turbo", "gpt4_1106_preview", "llama-2-7b-chat-hf", "vicuna-33b-v1.3"):
        assert m not in b.models.tolist()
    assert len(b.subset_names) == 5
    # the official win rate is the mean of preference - 1 (x100); the two doubled vicuna runs are averaged
    with open(shared_data / "alpaca_eval" / "leaderboard.csv", newline="") as f:
        win_rate = {r[""]: float(r["win_rate"]) for r in csv.DictReader(f)}
    means = dict(zip(b.models.tolist(), 100 * b.model_means()))
    for m in ("vicuna-7b-v1.5", "vicuna-13b-v1.5", "claude-2", "FuseChat-Gemma-2-9B-Instruct", "phi-2"):
        assert means[m] == pytest.approx(win_rate[m], abs=1e-3)
    # partial runs keep their missing instructions missing
    assert dict(zip(b.models.tolist(), b.observed_matrix().sum(axis=1)))["phi-2"] == 803
