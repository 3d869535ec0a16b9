"""Prompt rows in the store: one row group per benchmark, texts read lazily and only the benchmark's own."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow.parquet as pq
import pytest

from routereval.data.model import Benchmark
from routereval.data.store import open_corpus, write_corpus
from routereval.errors import CorpusError

BASE_COLUMNS = ["benchmark", "prompt", "subset", "gold"]


def _bench(name: str, n_prompts: int, seed: int, n_models: int = 12) -> Benchmark:
    rng = np.random.default_rng(seed)
    topic = np.arange(n_prompts) % 3
    emb = (rng.normal(size=(3, 8))[topic] + rng.normal(size=(n_prompts, 8)) * 0.5).astype(np.float32)
    skill = rng.uniform(0.2, 0.9, size=(n_models, 3))
    S = (rng.random((n_models, n_prompts)) < skill[:, topic]).astype(np.float32)
    return Benchmark(name, models=[f"m{i}" for i in range(n_models)], prompt_ids=[f"{name}-{j}" for j in range(n_prompts)],
                     subsets=[f"s{t}" for t in topic], texts=[f"{name} topic {t} question {j}" for j, t in enumerate(topic)],
                     gold=[str(j % 4) for j in range(n_prompts)], scores=S, embeddings={"synth": emb})


@pytest.fixture(scope="module")
def benches():
    return [_bench("b1", 200, 1), _bench("b2", 150, 2), _bench("b3", 90, 3)]


@pytest.fixture(scope="module")
def corpus(benches, tmp_path_factory):
    return write_corpus(benches, tmp_path_factory.mktemp("prompts") / "c")


@pytest.fixture
def reads(monkeypatch):
    """Every read of Parquet row groups as (row groups, columns)."""
    calls: list[tuple] = []
    original = pq.ParquetFile.read_row_groups

    def spy(self, row_groups, columns=None, **kw):
        calls.append((list(row_groups), list(columns or [])))
        return original(self, row_groups, columns=columns, **kw)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", spy)
    return calls


def test_prompts_are_stored_one_row_group_per_benchmark(corpus):
    md = pq.ParquetFile(corpus / "prompts.parquet").metadata
    assert [md.row_group(i).num_rows for i in range(md.num_row_groups)] == [200, 150, 90]


def test_opening_one_benchmark_reads_its_row_group_and_no_texts(corpus, benches, reads):
    c = open_corpus(corpus, benchmarks=["b2"])
    assert reads == [([1], BASE_COLUMNS)]  # b2's rows, no text column
    b2 = c["b2"]
    assert b2.has_texts and not b2.texts_loaded
    np.testing.assert_array_equal(b2.prompt_ids, benches[1].prompt_ids)
    np.testing.assert_array_equal(b2.subsets, benches[1].subsets)
    np.testing.assert_array_equal(b2.gold, benches[1].gold)
    reads.clear()
    texts = b2.texts  # first use: b2's texts, and only them
    assert reads == [([1], ["benchmark", "text"])]
    np.testing.assert_array_equal(texts, benches[1].texts)
    assert b2.texts_loaded
    reads.clear()
    assert b2.texts is texts and reads == []  # read once


def test_texts_false_gives_none_and_reads_nothing(corpus, reads):
    b = open_corpus(corpus, benchmarks=["b3"], texts=False)["b3"]
    assert not b.has_texts and b.texts is None
    assert all("text" not in cols for _, cols in reads)


def test_a_corpus_with_one_row_group_for_all_prompts_still_opens(corpus, benches, tmp_path):
    """Corpora written before this change store every prompt in one row group."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(corpus, old)
    pq.write_table(pq.read_table(old / "prompts.parquet"), old / "prompts.parquet")
    assert pq.ParquetFile(old / "prompts.parquet").metadata.num_row_groups == 1
    c = open_corpus(old)
    for orig in benches:
        got = c[orig.name]
        assert not got.texts_loaded
        for attr in ("prompt_ids", "subsets", "gold", "texts"):
            np.testing.assert_array_equal(getattr(got, attr), getattr(orig, attr))


def test_deferred_texts_survive_pickling_and_a_lost_file_is_a_corpus_error(corpus, benches, tmp_path):
    import shutil

    b = pickle.loads(pickle.dumps(open_corpus(corpus, benchmarks=["b1"])["b1"]))
    np.testing.assert_array_equal(b.texts, benches[0].texts)
    gone = tmp_path / "gone"
    shutil.copytree(corpus, gone)
    b = open_corpus(gone, benchmarks=["b3"])["b3"]
    (gone / "prompts.parquet").unlink()
    with pytest.raises(CorpusError, match=r"prompts\.parquet: cannot read the prompt texts of benchmark 'b3'"):
        b.texts


def test_texts_of_a_benchmark_whose_corpus_was_written_again_are_refused_not_swapped(benches, tmp_path):
    # a notebook opens a corpus, writes it again in place, then reads the old object's texts: they were the new
    # corpus's texts silently when the rows lined up, a false "damaged corpus" when they did not
    from routereval.data.model import Corpus

    write_corpus(Corpus.from_benchmarks([benches[0]]), tmp_path / "c")
    before = open_corpus(tmp_path / "c")["b1"]
    again = Benchmark("b1", models=benches[0].models, prompt_ids=benches[0].prompt_ids,
                      texts=[f"edited {t}" for t in benches[0].texts], scores=np.asarray(benches[0].scores))
    write_corpus(Corpus.from_benchmarks([again]), tmp_path / "c")
    with pytest.raises(CorpusError, match=r"the corpus was written again after benchmark 'b1' was opened from it; open "
                                          r"it again \(open_corpus\)"):
        before.texts
    assert open_corpus(tmp_path / "c")["b1"].texts[0].startswith("edited ")
    assert pickle.loads(pickle.dumps(open_corpus(tmp_path / "c")["b1"])).texts[0].startswith("edited ")
    # a loader pickled by a version without stamps still reads; one whose corpus moved says it cannot read the texts
    from routereval.data.store import StoredTexts

    legacy = StoredTexts(tmp_path / "c", "b1", 0, len(benches[0].texts))
    del legacy.__dict__["stamp"]
    assert pickle.loads(pickle.dumps(legacy))()[0].startswith("edited ")
    moved = open_corpus(tmp_path / "c")["b1"]
    (tmp_path / "c").rename(tmp_path / "elsewhere")
    with pytest.raises(CorpusError, match=r"prompts\.parquet: cannot read the prompt texts of benchmark 'b1' \(.*no such "):
        moved.texts


def test_a_cell_on_a_stored_embedding_reads_no_texts_and_a_text_encoder_only_its_benchmarks(corpus, benches, reads):
    from routereval.evaluate import evaluate_cell, make_router_from, prepare_cell

    cell = prepare_cell(corpus, benchmark="b3", m=3, group="strong_to_weak", embedding="synth")
    assert not cell.bench.texts_loaded and cell.bench.has_texts
    res = evaluate_cell(make_router_from("knn", None, seed=42), cell, n_boot=10)
    assert not cell.bench.texts_loaded and 0 <= res["mu"] <= 1
    assert all("text" not in cols for _, cols in reads)
    reads.clear()
    cell = prepare_cell(corpus, benchmark="b3", m=3, group="strong_to_weak", embedding="tfidf")
    assert cell.bench.texts_loaded
    assert [groups for groups, cols in reads if "text" in cols] == [[2]]  # b3's row group only
