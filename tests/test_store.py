"""The corpus store: round trips, bit packing, DuckDB access, atomic writes."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from routereval.data import bits
from routereval.data.model import Benchmark, Corpus, ModelTable
from routereval.data.store import CorpusWriter, open_corpus, read_manifest, verify_corpus, write_corpus
from routereval.errors import CorpusError, InputError


def _binary_bench(rng, n_models=7, n_prompts=45, missing=False, name="b1"):
    s = (rng.random((n_models, n_prompts)) < 0.6).astype(np.float32)
    if missing:
        s[rng.random(s.shape) < 0.1] = np.nan
    return Benchmark(name, models=[f"m{i}" for i in range(n_models)], prompt_ids=[f"p{j}" for j in range(n_prompts)],
                     subsets=["a" if j % 3 else "b" for j in range(n_prompts)], texts=[f"text {j}" for j in range(n_prompts)],
                     scores=s)


def _graded_bench(rng, name="g1"):
    s = rng.random((4, 13)).astype(np.float32)
    cost = rng.random((4, 13)) * 1e-3
    return Benchmark(name, models=["m1", "m3", "x", "y"], prompt_ids=range(13), scores=s, cost=cost)


def test_pack_unpack_popcount_match_naive():
    rng = np.random.default_rng(0)
    a = rng.random((5, 29)) < 0.5
    p = bits.pack(a)
    assert p.shape == (5, 4)
    np.testing.assert_array_equal(bits.unpack(p, 29, dtype=bool), a)
    np.testing.assert_array_equal(bits.popcount(p), a.sum(axis=1))
    cols = np.array([0, 3, 28])
    np.testing.assert_array_equal(bits.popcount(p & bits.column_mask(29, cols)), a[:, cols].sum(axis=1))
    np.testing.assert_array_equal(bits.take_columns(p, [28, 0, 3, 3], dtype=bool), a[:, [28, 0, 3, 3]])


def test_round_trip_binary_graded_and_missing(tmp_path):
    rng = np.random.default_rng(1)
    b1, b2, g = _binary_bench(rng), _binary_bench(rng, missing=True, name="b2"), _graded_bench(rng)
    b1.embeddings["official/RoBERTa"] = rng.random((b1.n_prompts, 6)).astype(np.float32)
    corpus = Corpus.from_benchmarks([b1, b2, g], models=ModelTable(ids=["m1", "zzz"], params=[7e9, 1e9]))
    write_corpus(corpus, tmp_path / "c")
    back = open_corpus(tmp_path / "c")
    assert list(back.benchmarks) == ["b1", "b2", "g1"]
    for orig in (b1, b2, g):
        got = back[orig.name]
        np.testing.assert_array_equal(got.models, orig.models)
        np.testing.assert_array_equal(got.prompt_ids, orig.prompt_ids)
        np.testing.assert_array_equal(got.subsets, orig.subsets)
        np.testing.assert_array_equal(got.scores, orig.scores)
        assert got.binary == orig.binary
        assert got.n_records == orig.n_records
    assert back["b1"].texts[2] == "text 2"
    np.testing.assert_array_equal(back["b1"].embeddings["official/RoBERTa"], b1.embeddings["official/RoBERTa"])
    assert back["b2"].embeddings == {}
    np.testing.assert_allclose(back["g1"].cost, g.cost)
    assert isinstance(back["b1"].bits, np.memmap)  # memory-mapped cache, not a copy
    assert back.models.params[list(back.models.ids).index("m1")] == 7e9
    assert "zzz" in back.models.ids  # metadata-only models are kept
    assert verify_corpus(tmp_path / "c") == []


def test_model_means_fast_path_matches_nanmean(tmp_path):
    rng = np.random.default_rng(2)
    b = _binary_bench(rng, n_models=9, n_prompts=100)
    write_corpus([b], tmp_path / "c")
    got = open_corpus(tmp_path / "c")["b1"]
    idx = np.array([1, 5, 7, 50, 99])
    np.testing.assert_allclose(got.model_means(idx), b.scores[:, idx].mean(axis=1))
    np.testing.assert_allclose(got.model_means(), b.scores.mean(axis=1))
    # a boolean mask and repeated positions mean the same on the packed path as on the dense one
    mask = np.zeros(100, dtype=bool)
    mask[:10] = True
    for sel in (mask, np.array([0, 0, 0, 1]), np.array([-1, 3])):
        fresh = open_corpus(tmp_path / "c")["b1"]  # scores not unpacked yet: the popcount path
        np.testing.assert_allclose(fresh.model_means(sel), b.scores[:, sel].mean(axis=1))
    assert np.isnan(open_corpus(tmp_path / "c")["b1"].model_means(np.array([], dtype=int))).all()
    for bad, msg in ((np.zeros(5, dtype=bool), "one entry per prompt"), (np.array([0, 100]), r"\[0, 100\)"),
                     (np.array([0.5]), "int positions")):
        with pytest.raises(InputError, match=msg):
            got.model_means(bad)
        with pytest.raises(InputError, match=msg):
            got.select(prompts=bad)


def test_complete_models_and_scores_on_read_the_bits_as_the_dense_scores_say(tmp_path):
    """Which models have every record, and the scores on a few prompts (NaN where not evaluated), read from the
    packed bits of a stored corpus without unpacking, equal the dense matrix's answers; graded scores too."""
    rng = np.random.default_rng(4)
    S = (rng.random((6, 40)) < 0.6).astype(np.float32)
    S[1, 3] = S[4, [0, 39]] = np.nan  # two models miss records
    G = rng.random((5, 30)).astype(np.float32)
    G[2, 7] = np.nan
    dense = [Benchmark("bin", models=[f"m{i}" for i in range(6)], prompt_ids=[f"p{j}" for j in range(40)], scores=S),
             Benchmark("gr", models=[f"g{i}" for i in range(5)], prompt_ids=[f"q{j}" for j in range(30)], scores=G)]
    write_corpus(dense, tmp_path / "c")
    idx = np.array([0, 3, 3, 39, 12])
    for want in dense:
        for b in (want, open_corpus(tmp_path / "c")[want.name]):  # dense, then packed (nothing unpacked yet)
            full = np.asarray(want.scores, dtype=np.float64)
            np.testing.assert_array_equal(b.complete_models(), ~np.isnan(full).any(axis=1))
            # all but a share: one record missing of 30 or 40 passes 0.04, two of 40 do not; the share is checked
            missing = np.isnan(full).sum(axis=1)
            np.testing.assert_array_equal(b.complete_models(max_missing=0.04), missing <= 0.04 * want.n_prompts)
            assert b.complete_models(max_missing=0.04).sum() > b.complete_models().sum()
            with pytest.raises(InputError, match=r"max_missing must be a share in \[0, 1\); got 1"):
                b.complete_models(max_missing=1)
            cols = idx[idx < want.n_prompts]
            np.testing.assert_array_equal(b.scores_on(cols), full[:, cols])
            # the means over what each model answered, from the bits on the packed path
            np.testing.assert_allclose(b.model_means(), np.nanmean(full, axis=1), rtol=1e-6)
            np.testing.assert_allclose(b.model_means(np.array([0, 3, 5])), np.nanmean(full[:, [0, 3, 5]], axis=1),
                                       rtol=1e-6)
            if b is not want and want.binary:
                assert b._scores is None  # all of it from the packed bits: nothing unpacked


def test_duckdb_queries_the_tables_as_they_are(tmp_path):
    import duckdb

    rng = np.random.default_rng(3)
    b = _binary_bench(rng, missing=True)
    write_corpus([b], tmp_path / "c")
    c = tmp_path / "c"
    rows = duckdb.sql(f"""
        SELECT m.model, avg(r.score) AS mean, count(*) AS n
        FROM read_parquet('{c}/records/*/*.parquet', hive_partitioning = true) r
        JOIN '{c}/models.parquet' m USING (model_id)
        WHERE r.benchmark = 'b1'
        GROUP BY m.model ORDER BY m.model
    """).fetchall()
    want = {m: (np.nanmean(b.scores[i]), int(np.sum(~np.isnan(b.scores[i])))) for i, m in enumerate(b.models)}
    assert len(rows) == b.n_models
    for model, mean, n in rows:
        assert mean == pytest.approx(want[model][0], rel=1e-6) and n == want[model][1]


def test_interrupted_write_leaves_old_corpus(tmp_path):
    rng = np.random.default_rng(4)
    write_corpus([_binary_bench(rng)], tmp_path / "c")
    before = read_manifest(tmp_path / "c")

    class Boom(RuntimeError):
        pass

    with pytest.raises(Boom):
        with CorpusWriter(tmp_path / "c") as w:
            w.add(_binary_bench(rng, name="new"))
            raise Boom
    assert read_manifest(tmp_path / "c") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # no temporary left behind


def test_interrupted_first_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with CorpusWriter(tmp_path / "c"):
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_open_errors(tmp_path):
    with pytest.raises(CorpusError, match="no such corpus"):
        open_corpus(tmp_path / "nope")
    (tmp_path / "d").mkdir()
    with pytest.raises(CorpusError, match="not a routereval corpus"):
        open_corpus(tmp_path / "d")
    rng = np.random.default_rng(5)
    write_corpus([_binary_bench(rng)], tmp_path / "c")
    m = json.loads((tmp_path / "c/manifest.json").read_text())
    m["schema_version"] = 99
    (tmp_path / "c/manifest.json").write_text(json.dumps(m))
    with pytest.raises(CorpusError, match="expected 'routereval-corpus' v1"):
        open_corpus(tmp_path / "c")


def test_verify_detects_corruption(tmp_path):
    rng = np.random.default_rng(6)
    write_corpus([_binary_bench(rng)], tmp_path / "c")
    f = tmp_path / "c/cache/b1/bits.npy"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    assert verify_corpus(tmp_path / "c") == ["cache/b1/bits.npy"]


def test_refuses_to_overwrite_a_non_corpus_directory(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c/important.txt").write_text("keep me")
    with pytest.raises(CorpusError, match="refusing to overwrite"):
        write_corpus([_binary_bench(np.random.default_rng(7))], tmp_path / "c")
    assert (tmp_path / "c/important.txt").read_text() == "keep me"


@pytest.mark.parametrize("kwargs, match", [
    (dict(models=["a", "a"], prompt_ids=["p"], scores=np.zeros((2, 1))), "duplicate model"),
    (dict(models=["a"], prompt_ids=["p", "p"], scores=np.zeros((1, 2))), "duplicate prompt id"),
    (dict(models=["a"], prompt_ids=["p"], scores=np.array([[1.5]])), "outside \\[0, 1\\]"),
    (dict(models=["a"], prompt_ids=["p", "q"], scores=np.zeros((1, 3))), "expected \\(1, 2\\)"),
    (dict(models=[], prompt_ids=["p"], scores=np.zeros((0, 1))), "empty"),
])
def test_benchmark_validation(kwargs, match):
    with pytest.raises(InputError, match=match):
        Benchmark("x", **kwargs)


def test_data_info_cli(tmp_path, cli):
    rng = np.random.default_rng(8)
    write_corpus([_binary_bench(rng, missing=True), _graded_bench(rng)], tmp_path / "c")
    r = cli("data", "info", tmp_path / "c", "--json")
    assert r.code == 0, r.err
    info = r.json()
    assert info["models"] == 9
    b = info["benchmarks"]["b1"]
    assert (b["models"], b["prompts"], b["binary"], b["cost"]) == (7, 45, True, False)
    assert 0.05 < b["missing"] < 0.15
    assert info["benchmarks"]["g1"]["binary"] is False and info["benchmarks"]["g1"]["cost"] is True
    r = cli("data", "info", tmp_path / "missing")
    assert r.code == 2 and r.err.count("\n") == 1 and "no such corpus" in r.err


def _rename_models(corpus, name: str) -> None:
    """Give every model of the stored model table the id ``name``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(corpus / "models.parquet")
    pq.write_table(table.set_column(table.schema.get_field_index("model"), "model", pa.array([name] * table.num_rows)),
                   corpus / "models.parquet")


@pytest.mark.parametrize("damage, match", [
    (lambda c: (c / "cache/b1/bits.npy").write_bytes((c / "cache/b1/bits.npy").read_bytes()[:40]), "damaged corpus"),
    (lambda c: (c / "models.parquet").unlink(), "damaged corpus"),
    (lambda c: np.save(c / "cache/b1/bits.npy", np.zeros((7, 2), dtype=np.uint8)), "the manifest says \\(7, 6\\)"),
    (lambda c: np.save(c / "cache/b1/models.npy", np.arange(3, dtype=np.int32)), "models.npy: shape"),
    # a model table that fails validation (one id twice) is the corpus's fault, not the caller's (InputError)
    (lambda c: _rename_models(c, "m0"), "damaged corpus .*duplicate"),
])
def test_damaged_corpus_is_a_corpus_error_not_a_traceback(tmp_path, cli, damage, match):
    write_corpus([_binary_bench(np.random.default_rng(9))], tmp_path / "c")
    damage(tmp_path / "c")
    with pytest.raises(CorpusError, match=match):
        open_corpus(tmp_path / "c")
    r = cli("pools", tmp_path / "c", "--benchmark", "b1", "--m", "3")
    assert r.code == 2 and r.err.count("\n") == 1 and r.err.startswith("error: ")


def test_out_that_is_a_file_is_refused(tmp_path, cli):
    (tmp_path / "afile").write_text("keep")
    r = cli("data", "synth", "--scale", "tiny", "--out", tmp_path / "afile")
    assert r.code == 2 and "is a file" in r.err and r.err.count("\n") == 1
    assert (tmp_path / "afile").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_usage_errors_are_one_line(cli, tmp_path):
    for args in (["data", "synth", "--scale", "huge", "--out", tmp_path / "x"], ["pools", tmp_path],
                 ["nosuch-command"]):
        r = cli(*args)
        assert r.code == 2 and r.err.count("\n") == 1 and r.err.startswith("error: "), r.err
    assert not (tmp_path / "x").exists()


def test_temporaries_of_a_killed_write_are_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    # a real process that dies (SIGKILL) in the middle of writing a corpus
    code = ("import os, signal, numpy as np\n"
            "from routereval.data.model import Benchmark\n"
            "from routereval.data.store import CorpusWriter\n"
            f"w = CorpusWriter({str(tmp_path / 'c')!r})\n"
            "w.add(Benchmark('b', models=['m'], prompt_ids=['p'], scores=np.ones((1, 1))))\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    subprocess.run([sys.executable, "-c", code], check=False)
    orphans = [p.name for p in tmp_path.iterdir()]
    assert len(orphans) == 1 and orphans[0].startswith(".c.tmp-")  # nothing at c itself
    live = tmp_path / f".c.tmp-{os.getpid()}-s1-1111aaaa"  # a write in progress (this process) is left alone
    live.mkdir()
    write_corpus([_binary_bench(np.random.default_rng(10))], tmp_path / "c")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["c", live.name])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process start times come from /proc")
def test_a_temporary_whose_pid_was_reused_is_an_orphan(tmp_path):
    import subprocess

    from routereval.atomic import start_ticks

    # a temporary's name holds its writer's pid and start time: a live process with that pid but another
    # start time got the pid again (the writer died), a matching one is the writer, left alone
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = start_ticks(sleeper.pid)
        assert started is not None
        reused = tmp_path / f".c.tmp-{sleeper.pid}-s{started + 1000}-deadbeef"
        live = tmp_path / f".c.tmp-{sleeper.pid}-s{started}-1111aaaa"
        legacy = tmp_path / f".c.tmp-{sleeper.pid}-0a1b2c3d"  # no start time in the name: the pid alone decides
        for d in (reused, live, legacy):
            d.mkdir()
        write_corpus([_binary_bench(np.random.default_rng(11))], tmp_path / "c")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["c", live.name, legacy.name])
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_write_whose_temporary_vanished_fails_instead_of_committing_a_damaged_corpus(tmp_path):
    import shutil

    from routereval.data.store import CorpusWriter

    w = CorpusWriter(tmp_path / "c")
    w.add(_binary_bench(np.random.default_rng(12)))
    shutil.rmtree(w._tmp)  # what a wrong orphan cleanup by another write would do
    with pytest.raises(FileNotFoundError):
        w.add(_binary_bench(np.random.default_rng(13), name="b2"))
    w.abort()
    assert not (tmp_path / "c").exists()
