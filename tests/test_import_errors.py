"""Bad input to ``routereval data import``: exit 2, one line naming where and what, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest


def _spec(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "spec.toml"
    p.write_text(body)
    return p


LONG = """
[[benchmark]]
name = "b"
format = "long"
path = "records.csv"
model = "model"
prompt = "prompt"
score = "score"
"""


def _records(tmp_path: Path, rows: list[str], header: str = "model,prompt,score") -> None:
    (tmp_path / "records.csv").write_text("\n".join([header, *rows]) + "\n")


@pytest.fixture
def fail(cli, tmp_path):
    """Run the import, assert exit 2, one stderr line, no --out; return that line."""
    def run(spec: Path) -> str:
        out = tmp_path / "corpus"
        r = cli("data", "import", spec, "--out", out)
        assert r.code == 2, (r.code, r.out, r.err)
        lines = r.err.strip().splitlines()
        assert len(lines) == 1, r.err
        assert not out.exists()
        assert not any(p.name.startswith(".corpus") or p.name.startswith("corpus") for p in tmp_path.iterdir())
        return lines[0]
    return run


def test_data_file_missing(tmp_path, fail):
    line = fail(_spec(tmp_path, LONG))
    assert "records.csv" in line and "does not exist" in line


def test_spec_file_missing(tmp_path, fail):
    line = fail(tmp_path / "nope.toml")
    assert "nope.toml" in line and "does not exist" in line
    (tmp_path / "adir").mkdir()
    line = fail(tmp_path / "adir")
    assert "adir: is a directory; expected a TOML file" in line
    line = fail(_spec(tmp_path, LONG.replace('"records.csv"', '"adir"')))
    assert "data file 'adir' is a directory" in line


def test_unknown_format(tmp_path, fail):
    _records(tmp_path, ["m1,p1,1"])
    line = fail(_spec(tmp_path, LONG.replace('"long"', '"longg"')))
    assert "spec.toml" in line and "'longg'" in line and "expected one of: long, wide" in line


def test_column_not_there(tmp_path, fail):
    _records(tmp_path, ["m1,p1,1"], header="model,prompt,correct")
    line = fail(_spec(tmp_path, LONG))
    assert "records.csv" in line and "column 'score'" in line and "is not in the file" in line
    assert "'correct'" in line  # the columns it does have


def test_a_file_separated_by_semicolons_is_named_so(tmp_path, fail):
    _records(tmp_path, ["m1;p1;1", "m2;p1;0"], header="model;prompt;score")
    line = fail(_spec(tmp_path, LONG))
    assert ("column 'model': is not in the file" in line
            and "the header is one column holding ';': a file separated by ';'? expected commas" in line)
    _records(tmp_path, ["m1;p1;0,5", "m2;p1;1"], header="model;prompt;score")  # a decimal comma: 2 fields
    line = fail(_spec(tmp_path, LONG))
    assert ("row 1: has 2 fields; expected 1, as many as the header (the header is one column: a file separated by "
            "';' or tabs? expected commas)") in line
    _records(tmp_path, ["m1,p1,1,9"])  # a wide header does not get the hint
    assert (line := fail(_spec(tmp_path, LONG))).endswith("has 4 fields; expected 3, as many as the header")


def test_duplicate_record(tmp_path, fail):
    _records(tmp_path, ["m1,p1,1", "m1,p2,0", "m2,p1,1", "m1,p1,0"])
    line = fail(_spec(tmp_path, LONG))
    assert "records.csv: row 4:" in line and "also at row 1" in line and "duplicate record" in line
    assert "'m1'" in line and "'p1'" in line and 'duplicates = "mean"' in line


def test_score_outside_unit_interval(tmp_path, fail):
    _records(tmp_path, ["m1,p1,1", "m1,p2,1.5"])
    line = fail(_spec(tmp_path, LONG))
    assert "records.csv: row 2: column 'score'" in line and "1.5" in line and "[0, 1]" in line


def test_negative_or_infinite_cost(tmp_path, fail):
    _records(tmp_path, ["m1,p1,1,0.002", "m1,p2,0,-0.5"], header="model,prompt,score,usd")
    line = fail(_spec(tmp_path, LONG + 'cost = "usd"\n'))
    assert "records.csv: row 2: column 'usd'" in line and "-0.5" in line and "cost in USD >= 0" in line
    (tmp_path / "wide.csv").write_text("id,m1,m1|cost\np1,1,0.01\np2,0,inf\n")
    line = fail(_spec(tmp_path, '[[benchmark]]\nname = "w"\nformat = "wide"\npath = "wide.csv"\nprompt = "id"\n'
                                'cost_suffix = "|cost"\n'))
    assert "wide.csv: row 2: column 'm1|cost'" in line and "inf" in line


def test_score_nan(tmp_path, fail):
    _records(tmp_path, ["m1,p1,1", "m1,p2,0", "m2,p1,"])
    line = fail(_spec(tmp_path, LONG))
    assert "records.csv: row 3: column 'score'" in line and "empty or NaN" in line


def test_score_not_a_number(tmp_path, fail):
    _records(tmp_path, ["m1,p1,1", "m1,p2,yes"])
    line = fail(_spec(tmp_path, LONG))
    assert "records.csv: row 2: column 'score'" in line and "'yes' is not a number" in line


def test_prompt_table_does_not_cover_ids(tmp_path, fail):
    _records(tmp_path, ["m1,p1,1", "m1,p2,0", "m1,p3,1"])
    (tmp_path / "prompts.jsonl").write_text('{"id": "p1", "text": "a"}\n{"id": "p2", "text": "b"}\n')
    line = fail(_spec(tmp_path, LONG + '[benchmark.prompts]\npath = "prompts.jsonl"\nid = "id"\ntext = "text"\n'))
    assert "records.csv: row 3: column 'prompt'" in line and "'p3' is not in the prompt table" in line


def test_wide_row_of_another_length(tmp_path, fail):
    (tmp_path / "wide.csv").write_text("id,m1,m2\np1,1,0\np2,1\np3,0,0\n")
    line = fail(_spec(tmp_path, '[[benchmark]]\nname = "w"\nformat = "wide"\npath = "wide.csv"\nprompt = "id"\n'))
    assert "wide.csv: row 2:" in line and "has 2 fields; expected 3" in line


def test_empty_benchmark(tmp_path, fail):
    _records(tmp_path, [])
    line = fail(_spec(tmp_path, LONG))
    assert "records.csv" in line and "no records" in line and "expected at least one" in line


def test_malformed_toml(tmp_path, fail):
    line = fail(_spec(tmp_path, LONG.replace('name = "b"', 'name = "b')))
    assert "spec.toml" in line and "invalid TOML" in line and "line 3" in line


def test_missing_required_key(tmp_path, fail):
    _records(tmp_path, ["m1,p1,1"])
    line = fail(_spec(tmp_path, LONG.replace('score = "score"\n', "")))
    assert "spec.toml" in line and "[[benchmark]] 'b'" in line and "missing required key 'score'" in line


def test_unknown_key(tmp_path, fail):
    _records(tmp_path, ["m1,p1,1"])
    line = fail(_spec(tmp_path, LONG + 'scroe = "x"\n'))
    assert "spec.toml" in line and "unknown key 'scroe'" in line


def test_unsafe_python_list_text(tmp_path, fail):
    # text_parser = "python-list" reads literals only: a call is refused, never run
    marker = tmp_path / "pwned"
    (tmp_path / "wide.csv").write_text(f'id,text,m1\np1,"[\'ok\']",1\np2,"__import__(\'os\').mkdir(\'{marker}\')",0\n')
    line = fail(_spec(tmp_path, '[[benchmark]]\nname = "w"\nformat = "wide"\npath = "wide.csv"\nprompt = "id"\n'
                                'text = "text"\ntext_parser = "python-list"\n'))
    assert "wide.csv: row 2: column 'text'" in line and "list of strings" in line
    assert not marker.exists()


def test_excluded_model_not_in_data(tmp_path, fail):
    _records(tmp_path, ["m1,p1,1"])
    line = fail(_spec(tmp_path, LONG + 'exclude_models = ["m9"]\n'))
    assert "'m9'" in line and "not a model in the data" in line


WIDE2 = '[[benchmark]]\nname = "w"\nformat = "wide"\npath = ["w1.csv", "w2.csv"]\nprompt = "prompt"\n'


def test_wide_files_with_different_model_columns(tmp_path, fail):
    # w1 has models a, b; w2 has a, c: padding b and c with NaN would invent "not evaluated" cells
    (tmp_path / "w1.csv").write_text("prompt,a,b\np1,1,0\np2,0,1\n")
    (tmp_path / "w2.csv").write_text("prompt,a,c\np3,1,1\np4,0,0\n")
    line = fail(_spec(tmp_path, WIDE2))
    assert "w1.csv" in line and "lacks model column(s) 'c'" in line and "w2.csv has" in line
    assert 'missing = "skip"' in line


def test_wide_benchmark_split_compares_files_per_benchmark(tmp_path, cli):
    # each benchmark's files agree on their models: no error, and no padding
    (tmp_path / "w1.csv").write_text("prompt,task,a,b\np1,x,1,0\np2,x,0,1\n")
    (tmp_path / "w2.csv").write_text("prompt,task,a,c\np3,y,1,1\np4,y,0,0\n")
    spec = _spec(tmp_path, WIDE2.replace('name = "w"\n', 'benchmark = "task"\n'))
    r = cli("data", "import", spec, "--out", tmp_path / "ok")
    assert r.code == 0, r.err
    from routereval.sources import import_spec

    c = import_spec(spec)
    assert c["x"].models.tolist() == ["a", "b"] and c["y"].models.tolist() == ["a", "c"]
    # but once w2 also feeds benchmark x, x has model c, which w1 lacks
    (tmp_path / "w2.csv").write_text("prompt,task,a,c\np3,y,1,1\np4,x,0,0\n")
    out = tmp_path / "bad"
    r = cli("data", "import", spec, "--out", out)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and not out.exists()
    assert "w1.csv: [[benchmark]]: lacks model column(s) 'c', which" in r.err and "w2.csv has" in r.err
    assert "of benchmark 'x'" in r.err
