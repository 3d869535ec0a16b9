"""Publisher splits (issue 11): stored with the benchmark, the default, never changed by a seed.

RouterBench's real ``*_train.csv`` / ``*_test.csv`` files, a router dataset's ``split_index``,
split columns and per-file labels in source specs, corpora written before named splits, and
``--split random`` against the seeded splits recorded before this change.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from routereval.data.store import open_corpus
from routereval.data.splits import carve_val, make_split, publisher_split
from routereval.errors import InputError
from routereval.pools import make_pools

from test_import_errors import LONG as LONG_SPEC

ROOT = Path(__file__).resolve().parents[1]
RB_FILES = {"routerbench.arc-challenge": "arc_challenge", "routerbench.winogrande": "winograde",
            "routerbench.mbpp": "mbpp"}


def _sample_ids(path: Path) -> set[str]:
    """The prompt ids of one RouterBench file, read with the csv module (not the importer's pyarrow)."""
    csv.field_size_limit(1 << 30)
    with open(path, newline="") as f:
        return {row["sample_id"] for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def rb(tmp_path_factory, shared_data):
    """RouterBench imported with examples/sources/routerbench.toml (its publisher split)."""
    from routereval.data.store import write_corpus
    from routereval.sources import import_spec

    out = tmp_path_factory.mktemp("rb") / "corpus"
    write_corpus(import_spec(ROOT / "examples" / "sources" / "routerbench.toml"), out)
    return out


# --------------------------------------------------------------------------- RouterBench, real data
def test_routerbench_publisher_split_is_the_publishers_files(rb, shared_data):
    corpus = open_corpus(rb, texts=False)
    manifest = json.loads((rb / "manifest.json").read_text())
    for name, stem in RB_FILES.items():
        bench = corpus[name]
        test_ids = _sample_ids(shared_data / "routerbench" / f"{stem}_test.csv")
        train_ids = _sample_ids(shared_data / "routerbench" / f"{stem}_train.csv")
        for seed in (42, 1):
            sp = make_split(bench, seed=seed)
            assert sp.name == "publisher"
            ids = lambda idx: set(bench.prompt_ids[idx].tolist())  # noqa: E731
            assert ids(sp.test) == test_ids  # exactly the test files' prompts
            # train and val partition the train files' prompts (those also in a test file stay in test)
            assert not ids(sp.train) & ids(sp.val)
            assert ids(sp.train) | ids(sp.val) == train_ids - test_ids
            assert len(sp.val) == int(np.floor(0.1 * len(train_ids - test_ids) + 0.5))  # one subset per task
        assert "val carved from train" in sp.note
        meta = manifest["benchmarks"][name]
        assert meta["splits"]["publisher"] == f"splits/{name}/publisher.npz"
        assert meta["publisher_split"]["test"] == len(test_ids)
    arc = corpus["routerbench.arc-challenge"]
    assert "6 prompts had records under several split labels" in publisher_split(arc).note


def test_routerbench_eval_reports_the_publishers_test_set_and_seeds_leave_it(cli, rb, shared_data):
    n_test = len(_sample_ids(shared_data / "routerbench" / "winograde_test.csv"))
    base = ["eval", rb, "-b", "routerbench.winogrande", "-r", "random,knn", "--m", "3", "-g", "strong_to_weak",
            "--embedding", "tfidf", "--n-boot", "20", "--json"]
    docs = {seed: cli(*base, "--seed", str(seed)) for seed in (42, 1)}
    for r in docs.values():
        assert r.code == 0, r.err
    a, b = docs[42].json(), docs[1].json()
    for doc in (a, b):
        assert doc["split"] == "publisher" and doc["n_test"] == n_test
        assert all(r["split"] == "publisher" and r["n_test"] == n_test for r in doc["results"])
    assert (a["n_train"], a["n_val"]) == (b["n_train"], b["n_val"])
    # a seed changes the pools' draws and the routers, never the publisher split
    pools = {s: cli("pools", rb, "-b", "routerbench.winogrande", "--m", "3", "--groups", "random", "--draws", "3",
                    "--seed", str(s), "--json").json() for s in (42, 1)}
    assert pools[42]["split"] == pools[1]["split"] == "publisher"
    assert [p["models"] for p in pools[42]["results"]] != [p["models"] for p in pools[1]["results"]]
    assert a["results"][0]["selection"] != b["results"][0]["selection"]  # the random router re-drew
    # the table says which split it used
    table = cli(*base[:-1])
    assert table.code == 0 and f"publisher split {a['n_train']}/{a['n_val']}/{n_test}" in table.out
    # RouterBench has per-query costs: the comparison table shows them for every router, as the JSON has them
    assert "mean cost (USD)" in table.out and "AIQ / APGR" in table.out
    assert all(f"{r['cost']['mean_cost']:.6f}" in table.out for r in a["results"])
    # --split random: the seeded 80/10/10 of the same prompts
    rnd = cli(*base, "--split", "random").json()
    assert rnd["split"] == "random" and rnd["n_test"] != n_test
    assert rnd["n_train"] + rnd["n_val"] + rnd["n_test"] == 1267


def test_fit_records_the_split(cli, rb, tmp_path):
    r = cli("fit", rb, "-b", "routerbench.mbpp", "-r", "kmeans", "--m", "3", "-g", "all_strong", "--embedding", "tfidf",
            "--save", tmp_path / "r", "--json")
    assert r.code == 0, r.err
    assert r.json()["pool"]["split"] == "publisher"
    assert json.loads((tmp_path / "r" / "router.json").read_text())["pool"]["split"] == "publisher"


# --------------------------------------------------------------------------- router-dataset pickles
def _router_dataset_corpus(tmp_path: Path, cli) -> tuple[Path, dict]:
    from official_fixtures import build_router_dataset, write_router_dataset

    rng = np.random.default_rng(0)
    sizes = [60, 40]  # two subsets
    n = sum(sizes)
    scores = (rng.random((12, n)) < np.linspace(0.2, 0.8, 12)[:, None]).astype(np.float64)
    models = [f"org/model-{i}" for i in range(12)]
    # the publisher drew its split with seed 7: it is not the seeded split of any seed used below
    raw = build_router_dataset(scores, models, subset_sizes=sizes, texts=[f"prompt {i}" for i in range(n)],
                               embeddings=rng.normal(size=(n, 4)).astype(np.float32), seed=7)
    path = write_router_dataset(tmp_path / "data", "gpqa", raw)
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[[benchmark]]\nformat = "router-dataset-pickle"\npath = "{path.relative_to(tmp_path)}"\n'
                    'name = "custom_rd"\n')
    r = cli("data", "import", spec, "--out", tmp_path / "corpus")
    assert r.code == 0, r.err
    return tmp_path / "corpus", raw["split_index"]


def test_router_dataset_keeps_its_split_index_under_every_seed(cli, tmp_path):
    corpus, si = _router_dataset_corpus(tmp_path, cli)
    bench = open_corpus(corpus)["custom_rd"]
    for seed in (42, 1, 5):
        sp = make_split(bench, seed=seed)
        assert sp.name == "publisher"
        for part in ("train", "val", "test"):
            np.testing.assert_array_equal(np.sort(getattr(sp, part)), np.sort(si[f"{part}_indices"]))
        assert not np.array_equal(np.sort(make_split(bench, seed=seed, split="random").test),
                                  np.sort(si["test_indices"]))
    r = cli("eval", corpus, "-b", "custom_rd", "-r", "knn", "--m", "3", "-g", "all_strong", "--seed", "1",
            "--embedding", "official/router_dataset", "--n-boot", "10", "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["split"] == "publisher" and doc["n_test"] == len(si["test_indices"])
    assert "split_index" in doc["split_note"]


def test_a_corpus_written_before_named_splits_keeps_its_imported_split(cli, tmp_path):
    """Before named splits, an imported split_index was stored as the seed-42 split: it is the publisher's."""
    corpus, si = _router_dataset_corpus(tmp_path, cli)
    # rewrite the corpus as the previous version stored it
    mf_path = corpus / "manifest.json"
    mf = json.loads(mf_path.read_text())
    meta = mf["benchmarks"]["custom_rd"]
    with np.load(corpus / meta["splits"]["publisher"]) as z:
        np.savez(corpus / meta["splits"]["42"], train=z["train"], val=z["val"], test=z["test"],
                 policy=np.array("complete"))
    (corpus / meta["splits"].pop("publisher")).unlink()
    del meta["publisher_split"]
    mf_path.write_text(json.dumps(mf))
    bench = open_corpus(corpus)["custom_rd"]
    for seed in (1, 42):
        sp = make_split(bench, seed=seed)
        assert sp.name == "publisher" and "before named splits" in sp.note
        np.testing.assert_array_equal(np.sort(sp.test), np.sort(si["test_indices"]))
    # data info says so too: the split eval will use by default is listed
    info = cli("data", "info", corpus, "--json").json()["benchmarks"]["custom_rd"]
    assert info["splits"] == ["publisher", "random"] and info["publisher_split"]["test"] == len(si["test_indices"])
    # and its random split is the seeded one, not the imported one
    fresh = make_split(open_corpus(tmp_path / "corpus")["custom_rd"], seed=42, split="random")
    np.testing.assert_array_equal(make_split(bench, seed=42, split="random").test, fresh.test)


# --------------------------------------------------------------------------- --split random == before
def _hashes(sp) -> dict:
    h = lambda a: hashlib.sha256(np.asarray(a, dtype=np.int64).tobytes()).hexdigest()[:16]  # noqa: E731
    return {"train": h(sp.train), "val": h(sp.val), "test": h(sp.test), "sizes": [len(sp.train), len(sp.val), len(sp.test)]}


def test_split_random_reproduces_the_seeded_splits_and_pools_recorded_before(tmp_path, shared_data):
    """tests/golden/random_splits_before_issue11.json was written by the code before this change."""
    from routereval.data.store import write_corpus
    from routereval.sources import import_spec
    from routereval.sources.synth import synth_corpus

    golden = json.loads((ROOT / "tests" / "golden" / "random_splits_before_issue11.json").read_text())
    synth_corpus(tmp_path / "tiny", scale="tiny", seed=0)
    write_corpus(import_spec(ROOT / "examples" / "sources" / "mmlu_pro.toml"), tmp_path / "mmlu")
    cases = [(b, seed, "auto", f"{b.name}/{seed}") for b in open_corpus(tmp_path / "tiny", texts=False)
             for seed in (42, 1, 7)]
    mmlu = open_corpus(tmp_path / "mmlu", texts=False)["mmlu_pro"]
    cases += [(mmlu, seed, missing, f"mmlu_pro/{seed}/{missing}") for seed in (42, 1) for missing in ("auto", "prompts")]
    assert len(cases) == len(golden)
    for bench, seed, missing, key in cases:
        for choice in ("random", "auto"):  # no publisher split here: auto is random
            sp = make_split(bench, seed=seed, missing=missing, split=choice)
            assert sp.name == "random" and {**_hashes(sp), "pools": golden[key]["pools"]} == golden[key], key
        pools = make_pools(bench, ms=(3,), protocol="clean", seed=seed, missing=missing, split="random")
        assert {p.group: p.model_names.tolist() for p in pools} == golden[key]["pools"], key


# --------------------------------------------------------------------------- specs: columns and file labels
LONG = LONG_SPEC + 'subset = "subset"\n'


def _long_records(tmp_path: Path, labels: dict[int, str] | None = None, n_prompts: int = 40,
                  name: str = "records.csv", start: int = 0) -> None:
    rng = np.random.default_rng(start)
    rows = ["model,prompt,score,subset" + (",split" if labels is not None else "")]
    for j in range(start, start + n_prompts):
        for m in range(4):
            row = f"m{m},p{j},{int(rng.random() < 0.3 + 0.15 * m)},{'ab'[j % 2]}"
            rows.append(row + (f",{labels[j]}" if labels is not None else ""))
    (tmp_path / name).write_text("\n".join(rows) + "\n")


def _import(cli, tmp_path: Path, spec_body: str):
    spec = tmp_path / "spec.toml"
    spec.write_text(spec_body)
    out = tmp_path / "corpus"
    r = cli("data", "import", spec, "--out", out)
    return r, out


def test_split_column_with_val_is_used_as_given(cli, tmp_path):
    labels = {j: ("train", "train", "train", "val", "test")[j % 5] for j in range(40)}
    _long_records(tmp_path, labels)
    r, out = _import(cli, tmp_path, LONG + 'split = "split"\n')
    assert r.code == 0, r.err
    bench = open_corpus(out)["b"]
    sp = make_split(bench, seed=3)
    want = {lab: {f"p{j}" for j in range(40) if labels[j] == lab} for lab in ("train", "val", "test")}
    assert {lab: set(bench.prompt_ids[getattr(sp, lab)].tolist()) for lab in want} == want
    assert sp.seed is None and "carved" not in sp.note and "column 'split'" in sp.note


def test_per_file_labels_carve_val_from_train_with_the_spec_fraction(cli, tmp_path):
    _long_records(tmp_path, name="train.csv", n_prompts=60)
    _long_records(tmp_path, name="test.csv", n_prompts=20, start=60)
    body = LONG.replace('path = "records.csv"', 'path = [{file = "train.csv", split = "train"}, '
                                                 '{file = "test.csv", split = "test"}]')
    r, out = _import(cli, tmp_path, body + "val_fraction = 0.2\nsplit_seed = 9\n")
    assert r.code == 0, r.err
    assert "val carved from train (0.2 of each subset's train prompts, seed 9)" in r.out
    bench = open_corpus(out)["b"]
    sp = make_split(bench)
    ids = lambda idx: {int(p[1:]) for p in bench.prompt_ids[idx].tolist()}  # noqa: E731
    assert ids(sp.test) == set(range(60, 80)) and ids(sp.train) | ids(sp.val) == set(range(60))
    for sub in "ab":  # stratified: 0.2 of each subset's 30 train prompts
        assert (bench.subsets[sp.val] == sub).sum() == 6
    assert sp.seed == 9


def test_carve_val_is_stratified_seeded_and_a_partition():
    from test_pools import _bench

    b = _bench(5, 97, subsets=["x"] * 50 + ["y"] * 30 + ["z"] * 17)
    train = np.arange(0, 97, 1)[np.arange(97) % 4 != 0]  # 72 train prompts
    tr, va = carve_val(b, train, fraction=0.15, seed=4)
    assert np.array_equal(np.sort(np.concatenate([tr, va])), train) and not set(tr) & set(va)
    for sub in "xyz":  # naive count per subset: round half up of fraction * n
        n = int((b.subsets[train] == sub).sum())
        assert (b.subsets[va] == sub).sum() == int(0.15 * n + 0.5)
    again, other = carve_val(b, train, fraction=0.15, seed=4)[1], carve_val(b, train, fraction=0.15, seed=5)[1]
    assert np.array_equal(again, va) and not np.array_equal(other, va)
    assert len(carve_val(b, train, fraction=0.0)[1]) == 0
    with pytest.raises(InputError, match="val_fraction"):
        carve_val(b, train, fraction=1.0)


@pytest.mark.parametrize("extra, labels, match", [
    ('split = "split"\n', "dev", "records.csv: row 17: column 'split': split label 'dev'; expected one of: train, val, test"),
    ('split = "split"\n', "train", "records.csv: benchmark 'b': the publisher split (column 'split') has no test prompts"),
    ("val_fraction = 0.1\n", None, "key 'val_fraction' is only used with a publisher split"),
    ('split = "split"\nval_fraction = 1.0\n', "test", "key 'val_fraction' is 1.0; expected a number in [0, 1)"),
    ('split = "split"\nsplit_seed = -1\n', "test", "key 'split_seed' is -1; expected an integer in [0, 2**32 - 1]"),
])
def test_bad_publisher_split_specs_are_one_line_exit_2(cli, tmp_path, extra, labels, match):
    lab = None if labels is None else {j: ("train" if j % 3 else "test") for j in range(40)}
    if labels == "dev":
        lab[4] = "dev"  # prompt 4 of model m0 is data row 17 (4 models per prompt, from row 1)
    elif labels == "train":
        lab = {j: "train" for j in range(40)}
    _long_records(tmp_path, lab)
    r, out = _import(cli, tmp_path, LONG + extra)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
    assert match in r.err and not out.exists()


@pytest.mark.parametrize("path, match", [
    ('[{file = "records.csv", split = "training"}]', "path entry 1 is {'file': 'records.csv', 'split': 'training'}"),
    ('[{file = "records.csv", split = "train"}, "records.csv"]', "path entry 2 has no split label but others do"),
    ('[{file = "records.csv"}]', "expected a file name or a table {file = \"...\", split = \"train\"}"),
    ('[{file = "records.csv", split = "train"}]',
     "records.csv: benchmark 'b': the publisher split (per-file labels) has no test prompts"),
])
def test_bad_file_labels_are_one_line_exit_2(cli, tmp_path, path, match):
    _long_records(tmp_path)
    r, out = _import(cli, tmp_path, LONG.replace('path = "records.csv"', f"path = {path}"))
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and match in r.err, r.err
    assert not out.exists()


def test_both_a_split_column_and_file_labels_is_refused(cli, tmp_path):
    _long_records(tmp_path, {j: "train" for j in range(40)})
    body = LONG.replace('path = "records.csv"', 'path = [{file = "records.csv", split = "train"}]')
    r, _ = _import(cli, tmp_path, body + 'split = "split"\n')
    assert r.code == 2 and "both a split column" in r.err


def test_a_missing_publisher_split_is_one_line_exit_2(cli, tmp_path):
    _long_records(tmp_path)
    r, out = _import(cli, tmp_path, LONG)
    assert r.code == 0, r.err
    for cmd in (["pools", out, "-b", "b", "--m", "3"],
                ["eval", out, "-b", "b", "-r", "random", "--m", "3", "-g", "all_strong", "--embedding", "tfidf"]):
        r = cli(*cmd, "--split", "publisher")
        assert r.code == 2 and r.err == ("error: benchmark 'b' has no publisher split (its source shipped none); use "
                                         "--split random, or give its source spec a split column or per-file split "
                                         "labels\n")
    bench = open_corpus(out)["b"]
    assert make_split(bench).name == "random"
    with pytest.raises(InputError, match="unknown split 'publishers'"):
        make_split(bench, split="publishers")


def test_data_info_lists_splits(cli, rb):
    info = cli("data", "info", rb, "--json").json()
    b = info["benchmarks"]["routerbench.mbpp"]
    assert b["splits"] == ["publisher", "random"] and b["publisher_split"]["test"] == 128
    text = cli("data", "info", rb)
    assert "routerbench.mbpp: publisher split 269/30/128" in text.out


def test_prompt_split_labels_take_the_latest_label_of_each_prompt():
    from routereval.sources.tabular import prompt_split_labels

    rng = np.random.default_rng(3)
    pcode = rng.integers(0, 50, 400)
    labels = rng.choice(np.array(["train", "val", "test"], dtype=object), 400, p=[0.7, 0.1, 0.2])
    got, conflicts = prompt_split_labels(labels, pcode, 50)
    rank = {"train": 0, "val": 1, "test": 2}
    for j in range(50):  # naive: the highest-ranked label among the prompt's records
        mine = [labels[i] for i in range(400) if pcode[i] == j]
        if mine:
            assert got[j] == max(mine, key=rank.get)
    assert conflicts == sum(len({labels[i] for i in range(400) if pcode[i] == j}) > 1 for j in range(50))


# --------------------------------------------------------------------------- scores-json (RouterDC, LLMRouter)
def _scores_json_files(tmp_path: Path) -> dict[str, list[str]]:
    """RouterDC-style files, one per split: the probability of the answer when right, else 0."""
    rng = np.random.default_rng(5)
    ids = {"train": [f"q{j}" for j in range(70)], "test": [f"q{j}" for j in range(70, 100)]}
    for part, qs in ids.items():
        rows = [{"id": q, "question": f"question {q}?", "task": "ab"[int(q[1:]) % 2], "part": part,
                 "scores": {f"m{i}": float(rng.uniform(0.1, 1) if rng.random() < 0.3 + 0.2 * i else 0)
                            for i in range(4)}} for q in qs]
        (tmp_path / f"mc_{part}.json").write_text(json.dumps(rows))
    return ids


@pytest.mark.parametrize("how", ["files", "key"])
def test_scores_json_publisher_split_per_file_or_per_row(cli, tmp_path, how):
    ids = _scores_json_files(tmp_path)
    path = ('[{file = "mc_train.json", split = "train"}, {file = "mc_test.json", split = "test"}]' if how == "files"
            else '["mc_train.json", "mc_test.json"]\nsplit = "part"')
    r, out = _import(cli, tmp_path, '[[benchmark]]\nname = "mc"\nformat = "scores-json"\nprompt = "id"\n'
                                    f'subset = "task"\nscore_rule = "nonzero"\npath = {path}\n')
    assert r.code == 0, r.err
    bench = open_corpus(out)["mc"]
    assert bench.binary
    for seed in (42, 3):
        sp = make_split(bench, seed=seed)
        got = {part: set(bench.prompt_ids[getattr(sp, part)].tolist()) for part in ("train", "val", "test")}
        assert sp.name == "publisher" and got["test"] == set(ids["test"])
        assert got["train"] | got["val"] == set(ids["train"]) and not got["train"] & got["val"]
        assert len(got["val"]) == 8  # per task: round(0.1 x 35) = 4
    res = cli("eval", out, "-b", "mc", "-r", "knn", "--m", "3", "-g", "random", "--embedding", "tfidf",
              "--n-boot", "10", "--json")
    assert res.code == 0, res.err
    assert res.json()["split"] == "publisher" and res.json()["n_test"] == 30


@pytest.mark.parametrize("stored, split", [("publisher.npz", "publisher"), ("seed-42.npz", "random")])
def test_a_damaged_stored_split_is_one_line_exit_2(cli, rb, tmp_path, stored, split):
    corpus = tmp_path / "rb"
    shutil.copytree(rb, corpus)
    f = corpus / "splits" / "routerbench.mbpp" / stored
    f.write_bytes(f.read_bytes()[:100])  # truncated
    r = cli("eval", corpus, "-b", "routerbench.mbpp", "-r", "random", "--m", "3", "-g", "all_strong",
            "--embedding", "tfidf", "--n-boot", "10", "--split", split)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
    assert r.err.startswith(f"error: {f}: cannot read this stored split") and "data verify" in r.err
