"""Tabular and scores-json readers on small files written here, checked against naive loops."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest

from routereval.errors import InputError
from routereval.sources import import_spec
from routereval.sources.spec import load_spec


def _long_rows(seed: int = 0, n_models: int = 5, n_prompts: int = 40, graded: bool = False):
    """Random long records with some missing; prompt ids that look like numbers with leading zeros."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_prompts):
        for m in range(n_models):
            if rng.random() < 0.15:
                continue
            s = float(np.round(rng.random(), 6)) if graded else float(rng.random() < 0.5)
            rows.append({"model": f"model-{m}", "prompt": f"{p:03d}", "score": s, "subset": f"s{p % 3}",
                         "cost": float(np.round(rng.random() * 1e-3, 9))})
    rng.shuffle(rows)
    return rows


def _naive_matrix(rows):
    models = list(dict.fromkeys(r["model"] for r in rows))
    prompts = list(dict.fromkeys(r["prompt"] for r in rows))
    s = np.full((len(models), len(prompts)), np.nan)
    c = np.full_like(s, np.nan)
    for r in rows:
        s[models.index(r["model"]), prompts.index(r["prompt"])] = r["score"]
        c[models.index(r["model"]), prompts.index(r["prompt"])] = r["cost"]
    return models, prompts, s, c


def _write(rows, path: Path) -> None:
    cols = list(rows[0])
    name = path.name
    if name.endswith((".csv", ".csv.gz")):
        text = ",".join(cols) + "\n" + "".join(",".join(str(r[c]) for c in cols) + "\n" for r in rows)
        (gzip.open(path, "wt") if name.endswith(".gz") else open(path, "w")).write(text)
    elif name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    elif name.endswith(".json"):
        path.write_text(json.dumps(rows))
    else:
        text = "".join(json.dumps(r) + "\n" for r in rows)
        (gzip.open(path, "wt") if name.endswith(".gz") else open(path, "w")).write(text)


LONG_SPEC = """
[[benchmark]]
name = "b"
format = "long"
path = "{path}"
model = "model"
prompt = "prompt"
score = "score"
subset = "subset"
cost = "cost"
"""


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet", ".json", ".jsonl", ".jsonl.gz"])
def test_long_every_file_type_matches_naive(tmp_path, suffix):
    rows = _long_rows(graded=suffix == ".parquet")
    _write(rows, tmp_path / f"r{suffix}")
    (tmp_path / "spec.toml").write_text(LONG_SPEC.format(path=f"r{suffix}"))
    b = import_spec(tmp_path / "spec.toml")["b"]
    models, prompts, s, c = _naive_matrix(rows)
    assert b.models.tolist() == models
    assert b.prompt_ids.tolist() == prompts  # "007" stays "007", order of first appearance
    np.testing.assert_array_equal(np.isnan(b.scores), np.isnan(s))
    np.testing.assert_allclose(b.scores[~np.isnan(s)], s[~np.isnan(s)], rtol=1e-6)
    np.testing.assert_allclose(b.cost[~np.isnan(c)], c[~np.isnan(c)], rtol=1e-12)
    assert b.binary == (suffix != ".parquet")
    assert b.subsets.tolist() == [f"s{int(p) % 3}" for p in prompts]


def test_long_several_files_concatenated_and_row_numbers(tmp_path):
    rows = _long_rows()
    _write(rows[:100], tmp_path / "a.csv")
    _write(rows[100:], tmp_path / "b.csv")
    (tmp_path / "spec.toml").write_text(LONG_SPEC.replace('path = "{path}"', 'path = ["a.csv", "b.csv"]'))
    b = import_spec(tmp_path / "spec.toml")["b"]
    assert b.n_records == len(rows)
    # a duplicate across the two files names both
    _write(rows[100:] + [rows[0]], tmp_path / "b.csv")
    with pytest.raises(InputError) as e:
        import_spec(tmp_path / "spec.toml")
    # rows are 1-based data rows of each file, header not counted
    assert str(e.value).startswith(f"{tmp_path / 'b.csv'}: row {len(rows) - 100 + 1}:")
    assert f"also at {tmp_path / 'a.csv'} row 1" in str(e.value)


def test_duplicates_mean_and_score_offset(tmp_path):
    (tmp_path / "r.csv").write_text("m,p,s\na,1,1.5\na,1,1.9\nb,1,1.0\na,2,2.0\n")
    (tmp_path / "spec.toml").write_text('[[benchmark]]\nname = "x"\nformat = "long"\npath = "r.csv"\nmodel = "m"\n'
                                        'prompt = "p"\nscore = "s"\nscore_offset = -1.0\nduplicates = "mean"\n')
    b = import_spec(tmp_path / "spec.toml")["x"]
    np.testing.assert_allclose(b.scores, [[0.7, 1.0], [0.0, np.nan]], rtol=1e-6)
    assert not b.binary


def test_contradicting_subset_of_one_prompt(tmp_path):
    (tmp_path / "r.csv").write_text("m,p,s,sub\na,1,1,x\nb,1,0,y\n")
    (tmp_path / "spec.toml").write_text('[[benchmark]]\nname = "x"\nformat = "long"\npath = "r.csv"\nmodel = "m"\n'
                                        'prompt = "p"\nscore = "s"\nsubset = "sub"\n')
    with pytest.raises(InputError, match=r"r.csv: row 2: column 'sub': prompt '1' has 'y' here but 'x' at row 1"):
        import_spec(tmp_path / "spec.toml")


def test_prompt_table_join_order_and_benchmark_split(tmp_path):
    (tmp_path / "r.csv").write_text("m,p,s,task\na,q2,1,t1\na,q1,0,t1\nb,q1,1,t1\na,q3,1,t2\nb,q4,0,t2\n")
    (tmp_path / "q.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "text": f"text {i}", "gold": "A"}) + "\n"
                                              for i in (4, 3, 1, 2, 9)))
    (tmp_path / "spec.toml").write_text(
        '[[benchmark]]\nformat = "long"\npath = "r.csv"\nmodel = "m"\nprompt = "p"\nscore = "s"\nbenchmark = "task"\n'
        '[benchmark.prompts]\npath = "q.jsonl"\nid = "id"\ntext = "text"\ngold = "gold"\n')
    c = import_spec(tmp_path / "spec.toml")
    assert list(c.benchmarks) == ["t1", "t2"]
    t1, t2 = c["t1"], c["t2"]
    assert t1.prompt_ids.tolist() == ["q1", "q2"]  # prompt-table order, only prompts with records
    assert t1.texts.tolist() == ["text 1", "text 2"] and t1.gold.tolist() == ["A", "A"]
    np.testing.assert_array_equal(t1.scores, [[0, 1], [1, np.nan]])
    assert t2.prompt_ids.tolist() == ["q4", "q3"] and t2.models.tolist() == ["a", "b"]
    np.testing.assert_array_equal(t2.scores, [[np.nan, 1], [0, np.nan]])
    assert sorted(c.models.ids.tolist()) == ["a", "b"]


WIDE = """
[[benchmark]]
name = "w"
format = "wide"
path = "w.csv"
prompt = "id"
text = "prompt"
text_parser = "python-list"
cost_suffix = "|cost"
ignore = ["", "*|response"]
missing = "skip"
"""


def test_wide_auto_models_cost_python_list_and_split_rows(tmp_path):
    (tmp_path / "w.csv").write_text(
        ',id,prompt,m1,m2,m1|response,m1|cost,m2|cost\n'
        '0,a,"[\'Hello\\nthere\']",1,0,"x",0.5,0.25\n'
        '1,b,"[\'two\', \'parts\']",,1,"y",0.1,0.2\n'
        '2,b,"[\'two\', \'parts\']",0,,"z",0.3,0.4\n')
    b = import_spec(_spec(tmp_path, WIDE))["w"]
    assert b.models.tolist() == ["m1", "m2"] and b.prompt_ids.tolist() == ["a", "b"]
    np.testing.assert_array_equal(b.scores, [[1, 0], [0, 1]])
    # each cell's cost comes from the row its score came from
    np.testing.assert_array_equal(b.cost, [[0.5, 0.3], [0.25, 0.2]])
    assert b.texts.tolist() == ["Hello\nthere", "two\nparts"]


def test_wide_explicit_models_and_text_column_taken_as_model(tmp_path):
    (tmp_path / "w.csv").write_text("id,m1,m2,note\na,1,0,hi\nb,0,1,ho\n")
    spec = '[[benchmark]]\nname = "w"\nformat = "wide"\npath = "w.csv"\nprompt = "id"\n'
    with pytest.raises(InputError, match=r"w.csv: column 'note': holds text; expected 0/1 or graded scores"):
        import_spec(_spec(tmp_path, spec))
    b = import_spec(_spec(tmp_path, spec + 'models = ["m2"]\n'))["w"]
    assert b.models.tolist() == ["m2"] and b.scores.tolist() == [[0.0, 1.0]]
    with pytest.raises(InputError, match=r"column 'm3': is not in the file"):
        import_spec(_spec(tmp_path, spec + 'models = ["m2", "m3"]\n'))


def _spec(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "spec.toml"
    p.write_text(body)
    return p


def test_scores_json(tmp_path):
    data = [
        {"question": "q one", "scores": {"a": 1, "b": 0}, "costs": {"a": 0.01, "b": 0.002}, "task": "x"},
        {"question": "q two", "scores": {"a": 0.25}, "costs": {"a": 0.03}, "task": "x"},
    ]
    (tmp_path / "s.json").write_text(json.dumps(data))
    b = import_spec(_spec(tmp_path, '[[benchmark]]\nname = "j"\nformat = "scores-json"\npath = "s.json"\n'
                                    'costs = "costs"\nsubset = "task"\n'))["j"]
    assert b.prompt_ids.tolist() == ["1", "2"] and b.texts.tolist() == ["q one", "q two"]
    np.testing.assert_array_equal(b.scores, [[1, 0.25], [0, np.nan]])
    np.testing.assert_allclose(b.cost, [[0.01, 0.03], [0.002, np.nan]])
    assert not b.binary and b.subsets.tolist() == ["x", "x"]


def test_scores_json_custom_keys_jsonl_and_bad_score(tmp_path):
    lines = [{"id": 7, "input": "hi", "res": {"a": True}}, {"id": 8, "input": "yo", "res": {"a": "1"}}]
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    spec = ('[[benchmark]]\nname = "j"\nformat = "scores-json"\npath = "s.jsonl"\n'
            'question = "input"\nscores = "res"\nprompt = "id"\n')
    with pytest.raises(InputError, match=r"s.jsonl: row 1: column 'res.a': True is not a number"):
        import_spec(_spec(tmp_path, spec))
    lines[0]["res"]["a"] = 1
    lines[1]["res"]["a"] = 0
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    b = import_spec(_spec(tmp_path, spec))["j"]
    assert b.prompt_ids.tolist() == ["7", "8"] and b.scores.tolist() == [[1.0, 0.0]] and b.binary


def test_missing_skip_keeps_nan_and_binary_inferred(tmp_path):
    (tmp_path / "r.csv").write_text("m,p,s\na,1,1\na,2,\nb,1,0\nb,2,1\n")
    base = '[[benchmark]]\nname = "x"\nformat = "long"\npath = "r.csv"\nmodel = "m"\nprompt = "p"\nscore = "s"\n'
    b = import_spec(_spec(tmp_path, base + 'missing = "skip"\n'))["x"]
    assert np.isnan(b.scores[0, 1]) and b.n_records == 3 and b.binary


def test_bad_benchmark_name_from_split_column(tmp_path):
    (tmp_path / "r.csv").write_text("m,p,s,t\na,1,1,ok\na,2,0,bad/name\n")
    spec = ('[[benchmark]]\nformat = "long"\npath = "r.csv"\nmodel = "m"\nprompt = "p"\nscore = "s"\n'
            'benchmark = "t"\n')
    with pytest.raises(InputError, match=r"r.csv: row 2: column 't': benchmark name 'bad/name' is not valid"):
        import_spec(_spec(tmp_path, spec))


def test_wide_files_with_different_model_columns_missing_skip(tmp_path):
    # missing = "skip": a model column absent from a file means "not evaluated on its prompts"
    (tmp_path / "w1.csv").write_text("prompt,a,b\np1,1,0\np2,0,1\n")
    (tmp_path / "w2.csv").write_text("prompt,a,c\np3,1,1\np4,0,0\n")
    spec = '[[benchmark]]\nname = "w"\nformat = "wide"\npath = ["w1.csv", "w2.csv"]\nprompt = "prompt"\n'
    with pytest.raises(InputError, match=r"w1.csv: .*lacks model column\(s\) 'c', which .*w2.csv has"):
        import_spec(_spec(tmp_path, spec))
    b = import_spec(_spec(tmp_path, spec + 'missing = "skip"\n'))["w"]
    assert b.models.tolist() == ["a", "b", "c"] and b.prompt_ids.tolist() == ["p1", "p2", "p3", "p4"]
    nan = np.nan
    np.testing.assert_array_equal(b.scores, [[1, 0, 1, 0], [0, 1, nan, nan], [nan, nan, 1, 0]])
    assert b.n_records == 8
    # models = [...] naming only the shared columns: the files agree, nothing is missing
    b = import_spec(_spec(tmp_path, spec + 'models = ["a"]\n'))["w"]
    assert b.models.tolist() == ["a"] and b.scores.tolist() == [[1, 0, 1, 0]]


def test_load_spec_path_of_a_wrong_type_is_one_line(tmp_path):
    for bad, got in ((None, "None"), (["spec.toml"], "['spec.toml']"), ("", "''")):
        with pytest.raises(InputError, match="^path \\(the spec file\\) must be a path \\(a str or pathlib.Path\\); "
                                             f"got {re.escape(got)}$"):
            load_spec(bad)
    _write(_long_rows(), tmp_path / "r.csv")
    (tmp_path / "spec.toml").write_text(LONG_SPEC.format(path="r.csv"))
    assert [t["name"] for t in load_spec(str(tmp_path / "spec.toml"))] == ["b"]


def test_import_spec_path_of_a_wrong_type_is_one_line():
    from routereval.sources import import_spec

    for bad in (None, ["spec.toml"]):
        with pytest.raises(InputError, match=r"^path \(the spec file\) must be a path"):
            import_spec(bad)
