"""``score_rule`` in source specs (issue 11): publishers' non-linear scoring conventions, applied on import."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from routereval.data.store import open_corpus

from test_import_errors import LONG

SCORES_JSON = """
[[benchmark]]
name = "mc"
format = "scores-json"
path = "records.json"
prompt = "id"
"""



def _routerdc_like(tmp_path: Path, n: int = 60) -> np.ndarray:
    """RouterDC's multiple-choice convention: the probability given to the answer when right, else 0."""
    rng = np.random.default_rng(1)
    right = rng.random((3, n)) < np.array([[0.3], [0.55], [0.8]])
    raw = np.where(right, np.round(rng.uniform(0.05, 1.0, (3, n)), 4), 0.0)
    rows = [{"id": f"q{j}", "question": f"question {j}?", "scores": {f"m{i}": float(raw[i, j]) for i in range(3)}}
            for j in range(n)]
    (tmp_path / "records.json").write_text(json.dumps(rows))
    return raw


def _import(cli, tmp_path: Path, body: str):
    spec = tmp_path / "spec.toml"
    spec.write_text(body)
    out = tmp_path / "corpus"
    return cli("data", "import", spec, "--out", out, "--json"), out


def test_nonzero_makes_routerdc_scores_binary_and_bit_packed(cli, tmp_path):
    raw = _routerdc_like(tmp_path)
    graded, out = _import(cli, tmp_path, SCORES_JSON)
    assert graded.code == 0, graded.err
    graded_means = open_corpus(out)["mc"].model_means()
    r, out = _import(cli, tmp_path, SCORES_JSON + 'score_rule = "nonzero"\n')
    assert r.code == 0, r.err
    bench = open_corpus(out)["mc"]
    assert bench.binary and (out / "cache" / "mc" / "bits.npy").is_file()
    assert not (out / "cache" / "mc" / "scores.npy").exists()
    np.testing.assert_array_equal(bench.scores, (raw > 0).astype(np.float32))
    accuracy = (raw > 0).mean(axis=1)  # the publisher's accuracies
    np.testing.assert_allclose(bench.model_means(), accuracy)
    assert (graded_means < accuracy - 0.05).all()  # read as graded scores they fall well below them
    assert r.json()["benchmarks"]["mc"]["binary"] is True


def _long(tmp_path: Path, scores: list[str]) -> None:
    rows = ["model,prompt,score"] + [f"m{i % 2},p{i // 2},{s}" for i, s in enumerate(scores)]
    (tmp_path / "records.csv").write_text("\n".join(rows) + "\n")


def test_threshold_counts_scores_at_or_above_t(cli, tmp_path):
    _long(tmp_path, ["0.2", "0.5", "0.49", "1", "0", "0.75"])
    r, out = _import(cli, tmp_path, LONG + 'score_rule = "threshold:0.5"\n')
    assert r.code == 0, r.err
    bench = open_corpus(out)["b"]
    assert bench.binary
    np.testing.assert_array_equal(bench.scores, [[0, 0, 0], [1, 1, 1]])  # m0: .2 .49 0; m1: .5 1 .75


def test_the_rule_applies_after_scale_and_offset(cli, tmp_path):
    _long(tmp_path, ["1.0", "1.5", "1.7", "2.0"])  # AlpacaEval-style preferences in [1, 2]
    r, out = _import(cli, tmp_path, LONG + 'score_offset = -1.0\nscore_rule = "threshold:0.6"\n')
    assert r.code == 0, r.err
    np.testing.assert_array_equal(open_corpus(out)["b"].scores, [[0, 1], [0, 1]])


@pytest.mark.parametrize("rule", ["round", "threshold", "threshold:", "threshold:abc", "threshold:1.5",
                                  "threshold:0", "threshold:-0.1", "threshold:nan", "nonzero:0.5"])
def test_bad_rules_are_one_line_exit_2(cli, tmp_path, rule):
    _long(tmp_path, ["0.2", "0.7"])
    r, out = _import(cli, tmp_path, LONG + f'score_rule = "{rule}"\n')
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
    assert r.err == (f"error: {tmp_path / 'spec.toml'}: [[benchmark]] 'b': key 'score_rule' is {rule!r}; expected "
                     "\"nonzero\" or \"threshold:T\" with T a number in (0, 1], e.g. \"threshold:0.5\"\n")
    assert not out.exists()


@pytest.mark.parametrize("value, match", [
    ("", "records.csv: row 2: column 'score': score is empty or NaN; expected a number in [0, 1]"),
    ("nan", "records.csv: row 2: column 'score': score is empty or NaN"),
    ("1.3", "records.csv: row 2: column 'score': score 1.3 is outside [0, 1]; expected a score in [0, 1] "
            "(score_rule 'nonzero' reads scores in [0, 1])"),
    ("-0.2", "records.csv: row 2: column 'score': score -0.2 is outside [0, 1]"),
])
def test_nan_and_out_of_range_inputs_are_one_line_exit_2(cli, tmp_path, value, match):
    _long(tmp_path, ["0.2", value, "0.3", "0.9"])
    r, out = _import(cli, tmp_path, LONG + 'score_rule = "nonzero"\n')
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and match in r.err, r.err
    assert not out.exists()


def test_a_score_on_another_scale_is_told_how_the_spec_maps_it(cli, tmp_path):
    _long(tmp_path, ["1.2", "1.7", "1.5", "1.9"])  # a preference in [1, 2], as AlpacaEval records it
    r, out = _import(cli, tmp_path, LONG)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and not out.exists()
    assert "score 1.2 is outside [0, 1]; expected a score in [0, 1] (scores on another scale are mapped by " \
           "score_scale and score_offset in the spec, e.g. score_offset = -1 for a preference in [1, 2])" in r.err
    r, out = _import(cli, tmp_path, LONG + "score_offset = -1\n")
    assert r.code == 0, r.err
    assert np.allclose(np.sort(open_corpus(out)["b"].scores.ravel()), [0.2, 0.5, 0.7, 0.9])


def test_a_skipped_nan_stays_missing_not_zero(cli, tmp_path):
    _long(tmp_path, ["0.2", "nan", "0", "0.9"])
    r, out = _import(cli, tmp_path, LONG + 'score_rule = "nonzero"\nmissing = "skip"\n')
    assert r.code == 0, r.err
    s = open_corpus(out)["b"].scores
    assert s[0].tolist() == [1, 0] and s[1, 0] != s[1, 0] and s[1, 1] == 1  # m1 on p0: NaN, not evaluated


def test_pickle_formats_refuse_score_rule(cli, tmp_path):
    r, _ = _import(cli, tmp_path, '[[benchmark]]\nformat = "router-dataset-pickle"\npath = "x.pkl"\n'
                                  'score_rule = "nonzero"\n')
    assert r.code == 2 and "score_rule" in r.err and len(r.err.strip().splitlines()) == 1


def test_data_info_models_gives_per_model_means_and_record_counts(cli, tmp_path, shared_data):
    """Set beside the raw MMLU-Pro file: every model's mean and number of records."""
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "mmlu"
    assert cli("data", "import", root / "examples" / "sources" / "mmlu_pro.toml", "--out", out).code == 0
    with gzip.open(shared_data / "mmlu_pro" / "mmlu_pro_correctness_long.csv.gz", "rt", newline="") as f:
        want: dict[str, list[float]] = {}
        for row in csv.DictReader(f):
            want.setdefault(row["model"], []).append(float(row["correct"]))
    r = cli("data", "info", out, "--json", "--models")
    assert r.code == 0, r.err
    rows = r.json()["benchmarks"]["mmlu_pro"]["per_model"]
    assert {x["model"] for x in rows} == set(want) and len(rows) == 31
    for x in rows:
        assert x["records"] == len(want[x["model"]])
        assert x["mean"] == pytest.approx(np.mean(want[x["model"]]), abs=1e-12)
    assert [x["mean"] for x in rows] == sorted((x["mean"] for x in rows), reverse=True)
    assert min(x["records"] for x in rows) == 10351  # DeepSeek-Coder-V2 misses some questions
    assert "per_model" not in cli("data", "info", out, "--json").json()["benchmarks"]["mmlu_pro"]
    text = cli("data", "info", out, "--models")
    assert text.code == 0 and "mmlu_pro: models" in text.out and "10,351" in text.out


def test_the_rule_applies_to_averaged_duplicates_so_the_benchmark_stays_binary(cli, tmp_path):
    """duplicates = "mean" (as AlpacaEval's spec) with a rule: the mean of a (model, prompt)'s
    records is what the rule reads; ruling each record first would average 0 and 1 into 0.5."""
    rows = ["model,prompt,score", "m0,p0,0.3", "m0,p0,0.8", "m1,p0,0.9", "m0,p1,0.2", "m0,p1,0.4", "m1,p1,0.1",
            "m0,p2,0.9", "m1,p2,0.6", "m1,p2,0.2"]
    (tmp_path / "records.csv").write_text("\n".join(rows) + "\n")
    r, out = _import(cli, tmp_path, LONG + 'duplicates = "mean"\nscore_rule = "threshold:0.5"\n')
    assert r.code == 0, r.err
    bench = open_corpus(out)["b"]
    assert bench.binary and r.json()["benchmarks"]["b"]["binary"] is True
    # means: m0 = .55 .3 .9, m1 = .9 .1 .4 -> >= 0.5
    np.testing.assert_array_equal(bench.scores, [[1, 0, 1], [1, 0, 0]])


def test_apply_score_rule_against_a_naive_loop():
    from routereval.sources.tabular import apply_score_rule

    s = np.random.default_rng(0).choice([0.0, 0.25, 0.5, 0.5000001, 0.75, 1.0], 200)
    for rule in (("nonzero", 0.0), ("threshold", 0.5), ("threshold", 1.0)):
        want = [1.0 if (v > 0 if rule[0] == "nonzero" else v >= rule[1]) else 0.0 for v in s]
        assert apply_score_rule(s, rule).tolist() == want
