"""Prompt embeddings: MiniLM offline, local encoder directories, TF-IDF, stored keys, the cache."""

from __future__ import annotations

import gzip
import json
import re

import numpy as np
import pytest

import routereval.embed as E
from routereval.data.model import Benchmark
from routereval.errors import InputError, ParameterError


@pytest.fixture(scope="module")
def questions(shared_data) -> list[str]:
    out = []
    with gzip.open(shared_data / "mmlu_pro" / "mmlu_pro_questions.jsonl.gz", "rt") as f:
        for line in f:
            out.append(json.loads(line)["question"])
            if len(out) == 24:
                break
    return out


def _bench(texts, embeddings=None):
    n = len(texts) if texts is not None else 4
    return Benchmark("mmlu_pro", models=["a", "b"], prompt_ids=[str(i) for i in range(n)], texts=texts,
                     scores=np.zeros((2, n)), embeddings=embeddings)


def test_minilm_offline_unit_vectors_and_semantics(questions):
    texts = ["What is the derivative of x squared?", "Differentiate the function x^2 with respect to x.",
             "Who wrote the novel Pride and Prejudice?"]
    emb = E.embed_texts(texts + questions[:5], "minilm")
    assert emb.shape == (8, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sim = emb[:3] @ emb[:3].T
    assert sim[0, 1] > 0.6 > sim[0, 2]  # paraphrases close, unrelated far


_NO_HUB_PROBE = """
import os, socket, sys
tried = []
real = socket.socket.connect
def connect(self, address):  # any connection a load tries: none should (every load is local_files_only)
    tried.append(address)
    return real(self, address)
socket.socket.connect = connect
from transformers.utils import logging as hf_logging
hf_logging.set_verbosity_info()  # a caller's own transformers settings
from routereval.embed import embed_texts
embed_texts(["What is 2 + 2?"], "minilm")
embed_texts(["What is 2 + 2?"], sys.argv[1] + "?pooling=cls")  # the Hugging Face path
from huggingface_hub import constants
print(tried, sorted(k for k in os.environ if "OFFLINE" in k), constants.HF_HUB_OFFLINE,
      hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled())
"""


def test_loading_an_encoder_reaches_no_hub_and_leaves_the_callers_settings(tmp_path):
    # a library that sets HF_HUB_OFFLINE for good leaves the caller's process offline (huggingface_hub reads it once,
    # at import: `routereval download` then refused in the same session), and its transformers logging silenced
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if "OFFLINE" not in k}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # a hub that refuses: a load that tried it would fail or show here
    env["HF_HOME"] = str(tmp_path / "hf")
    got = subprocess.run([sys.executable, "-c", _NO_HUB_PROBE, str(E.minilm_path())], env=env, capture_output=True,
                         text=True, timeout=300)
    assert got.returncode == 0, got.stderr[-2000:]
    assert got.stdout.split("\n")[-2] == "[] [] False 20 True"  # no connection, no env, online, INFO, bars on


def test_local_directory_mean_pooling_equals_sentence_transformers(questions):
    path = str(E.minilm_path())
    st = E.embed_texts(questions[:10], "minilm")
    raw = E.embed_texts(questions[:10], f"{path}?pooling=mean&layer=-1")
    assert raw.shape == (10, 384)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)  # not normalised unless asked
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), st, atol=1e-5)
    normed = E.embed_texts(questions[:10], path, pooling="mean", normalize=True)
    np.testing.assert_allclose(normed, st, atol=1e-5)
    cls = E.embed_texts(questions[:10], f"{path}?pooling=cls")
    below = E.embed_texts(questions[:10], f"{path}?layer=-2")
    assert not np.allclose(cls, raw, atol=1e-3) and not np.allclose(below, raw, atol=1e-3)


def test_bad_encoder_specs_name_the_problem(tmp_path):
    with pytest.raises(ParameterError, match="unknown encoder 'nope'"):
        E.embed_texts(["x"], "nope")
    with pytest.raises(ParameterError, match="'pooling' option .* must be one of 'mean', 'cls'. Got 'max'"):
        E.embed_texts(["x"], f"{E.minilm_path()}?pooling=max")
    with pytest.raises(ParameterError, match="unknown encoder option 'pool'"):
        E.embed_texts(["x"], f"{E.minilm_path()}?pool=cls")
    with pytest.raises(ParameterError, match="'layer' option .* must be an int in \\[-7, 6\\]. Got 9"):
        E.embed_texts(["x"], f"{E.minilm_path()}?layer=9")
    with pytest.raises(ParameterError, match="batch_size"):
        E.embed_texts(["x"], "tfidf", batch_size=0)


def test_tfidf_fitted_on_train_prompts_only(questions):
    texts = questions[:20] + ["zzzq xxyq wwvq"]  # words no train prompt has
    bench = _bench(texts)
    train = np.arange(15)
    emb = E.embed_prompts(bench, "tfidf", fit_prompts=train)
    assert emb.shape == (21, 256) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb[:20], axis=1), 1.0, atol=1e-5)
    assert not emb[20].any()  # unseen vocabulary: the vectoriser was not fitted on it
    # rows depend only on the train prompts: embedding the test rows alone gives the same rows
    alone = E.embed_texts(texts[15:], "tfidf", fit_texts=texts[:15])
    np.testing.assert_allclose(alone, emb[15:], atol=1e-6)
    np.testing.assert_array_equal(E.embed_prompts(bench, "tfidf", fit_prompts=train), emb)  # deterministic
    with pytest.raises(InputError, match="fit_prompts"):
        E.embed_prompts(bench, "tfidf", fit_prompts=np.array([0, 99]))


def test_stored_embeddings_returned_as_stored():
    official = np.arange(12, dtype=np.float32).reshape(4, 3)
    synth = np.ones((4, 2), dtype=np.float32)
    bench = _bench(None, {"RoBERTa": official, "synth": synth})
    np.testing.assert_array_equal(E.embed_prompts(bench, "official/RoBERTa"), official)
    np.testing.assert_array_equal(E.embed_prompts(bench, "synth"), synth)


def test_no_texts_and_no_stored_embedding_is_an_input_error():
    bench = _bench(None, {"official/RoBERTa": np.zeros((4, 3), dtype=np.float32)})
    with pytest.raises(InputError, match="benchmark 'mmlu_pro' has no prompt texts.*'official/RoBERTa'"):
        E.embed_prompts(bench, "minilm")


def _corpus_dir(path):
    """A directory embed_prompts takes as a corpus (it looks for the manifest only)."""
    (path / "manifest.json").write_text("{}")
    return path


def test_cache_second_run_computes_nothing(questions, tmp_path, monkeypatch):
    bench = _bench(questions[:6])
    _corpus_dir(tmp_path)
    first = E.embed_prompts(bench, "minilm", corpus_path=tmp_path)
    files = list((tmp_path / E.CACHE_DIR / E.parse_encoder("minilm").key).glob("*.npy"))
    assert len(files) == 1 and not list((tmp_path / E.CACHE_DIR).rglob("*.tmp"))

    def boom(*a, **k):
        raise AssertionError("encoder called although the embeddings are cached")

    monkeypatch.setattr(E.neural, "encode_sentence_transformers", boom)
    np.testing.assert_array_equal(E.embed_prompts(bench, "minilm", corpus_path=tmp_path), first)
    with pytest.raises(AssertionError, match="encoder called"):  # other texts: a cache miss
        E.embed_prompts(_bench(questions[1:7]), "minilm", corpus_path=tmp_path)
    # tfidf is keyed by the texts it was fitted on too
    monkeypatch.setattr(E.tfidf, "encode_tfidf", boom)
    with pytest.raises(AssertionError):
        E.embed_prompts(bench, "tfidf", corpus_path=tmp_path, fit_prompts=np.arange(4))


def test_a_corpus_written_again_keeps_its_embedding_cache(questions, tmp_path, monkeypatch):
    # an import rerun into the same directory dropped the cache: a CLI trial's next fit embedded MMLU-Pro anew (8 min)
    from routereval.data.model import Corpus
    from routereval.data.store import open_corpus, verify_corpus, write_corpus

    bench = _bench(questions[:6])
    write_corpus(Corpus.from_benchmarks([bench]), tmp_path / "c")
    first = E.embed_prompts(open_corpus(tmp_path / "c")["mmlu_pro"], "minilm", corpus_path=tmp_path / "c")
    write_corpus(Corpus.from_benchmarks([bench]), tmp_path / "c")  # the same records, written again
    assert verify_corpus(tmp_path / "c") == []  # the cache is no file of the manifest

    def boom(*a, **k):
        raise AssertionError("encoder called although the embeddings are cached")

    monkeypatch.setattr(E.neural, "encode_sentence_transformers", boom)
    again = E.embed_prompts(open_corpus(tmp_path / "c")["mmlu_pro"], "minilm", corpus_path=tmp_path / "c")
    np.testing.assert_array_equal(again, first)
    edited = _bench([q + " (edited)" for q in questions[:6]])  # other texts: new entries, not the old ones
    write_corpus(Corpus.from_benchmarks([edited]), tmp_path / "c")
    with pytest.raises(AssertionError, match="encoder called"):
        E.embed_prompts(open_corpus(tmp_path / "c")["mmlu_pro"], "minilm", corpus_path=tmp_path / "c")


def test_minilm_keeps_the_tail_of_long_few_shot_prompts():
    """Prompts sharing a prefix longer than the encoder's window still embed differently."""
    from routereval.embed import embed_texts

    prefix = " ".join(f"Example {i}: the capital of country {i} is city {i}." for i in range(120))
    texts = [prefix + " Question: what is the boiling point of water?",
             prefix + " Question: who wrote the play Hamlet?"]
    e = embed_texts(texts, "minilm")
    assert float(e[0] @ e[1]) < 0.95


@pytest.mark.parametrize("damage", ["truncated", "garbage", "wrong_rows", "wrong_width", "one_d", "ints", "nan"])
def test_a_damaged_cache_file_is_recomputed_and_overwritten(questions, tmp_path, damage):
    texts = questions[:8]
    good = E.embed_texts(texts, "tfidf", cache_dir=tmp_path)
    (f,) = (tmp_path / E.parse_encoder("tfidf").key).glob("*.npy")
    bad = {"wrong_rows": good[:5], "wrong_width": good[:, :100], "one_d": good[:, 0],
           "ints": good.astype(np.int32), "nan": np.where(np.eye(8, 256) > 0, np.nan, good)}
    if damage == "truncated":
        f.write_bytes(f.read_bytes()[:100])
    elif damage == "garbage":
        f.write_bytes(b"not an npy file at all")
    else:
        np.save(f, bad[damage])
    again = E.embed_texts(texts, "tfidf", cache_dir=tmp_path)
    np.testing.assert_array_equal(again, good)
    np.testing.assert_array_equal(np.load(f), good)  # the cache was overwritten with the good array


# ------------------------------------------------------------------ argument checks: one line, before any work
def test_one_str_is_one_text_and_no_texts_keep_the_width(questions):
    one = E.embed_texts(questions[0], "minilm")
    assert one.shape == (1, 384)  # not one row per character
    np.testing.assert_allclose(one, E.embed_texts(questions[:1], "minilm"), atol=1e-6)
    assert E.embed_texts(questions[0], "tfidf", fit_texts=questions[:8]).shape == (1, 256)
    assert E.embed_texts(np.array(questions[:3]), "minilm").shape == (3, 384)  # numpy str_ texts
    assert E.embed_texts([], "minilm").shape == (0, 384)
    assert E.embed_texts([], f"{E.minilm_path()}?pooling=mean").shape == (0, 384)
    assert E.embed_texts([], "tfidf").shape == (0, 256)
    assert E.embed_texts(questions[:3], "minilm", batch_size=np.int64(2)).shape == (3, 384)  # numpy ints


def test_texts_must_be_strings_and_tfidf_needs_words_to_fit(questions, tmp_path):
    with pytest.raises(InputError, match="^texts must be strings \\(prompt texts\\); item 0 is NoneType$"):
        E.embed_texts([None, "x"], "tfidf")
    with pytest.raises(InputError, match="^texts must be a prompt text or a list of them; got None$"):
        E.embed_texts(None, "minilm")
    with pytest.raises(InputError, match="fit_texts must be strings .*item 1 is int"):
        E.embed_texts(questions[:2], "tfidf", fit_texts=["a question", 3])
    with pytest.raises(InputError, match="at least 2 distinct terms \\(words of 2\\+ characters\\).*found 0$"):
        E.embed_texts(["a b", "c d"], "tfidf")
    with pytest.raises(InputError, match="at least 2 distinct terms.*found 1$"):
        E.embed_texts(["word", "word"], "tfidf")
    with pytest.raises(InputError, match="tfidf encoder needs at least 2 texts to fit on .*got 1$"):
        E.embed_texts("one prompt only", "tfidf")
    with pytest.raises(ParameterError, match="^batch_size must be an int >= 1; got True$"):
        E.embed_texts(["x"], "minilm", batch_size=True)
    with pytest.raises(InputError, match="^cache_dir must be a path"):
        E.embed_texts(questions[:2], "tfidf", cache_dir=3)


def test_options_blame_the_option_not_the_encoder(questions):
    bench = _bench(questions[:6], {"synth": np.ones((6, 2), dtype=np.float32)})
    with pytest.raises(ParameterError, match="^unknown encoder option 'poolng' for encoder 'tfidf'; expected one of: "
                                             "layer, max_length, normalize, pooling$"):
        E.embed_prompts(bench, "tfidf", poolng="cls")
    for enc in ("tfidf", "tfidf?pooling=cls"):
        with pytest.raises(ParameterError, match="^option 'pooling' does not apply to the tfidf encoder"):
            E.embed_prompts(bench, enc, **({} if "?" in enc else {"pooling": "cls"}))
    with pytest.raises(ParameterError, match="^option 'pooling' does not apply to the stored embedding 'synth'"):
        E.embed_prompts(bench, "synth", pooling="cls")
    with pytest.raises(ParameterError, match="^unknown encoder option 'poolng' for encoder 'synth'"):
        E.embed_prompts(bench, "synth", poolng="cls")
    assert E.embed_prompts(bench, "synth", pooling=None).shape == (6, 2)  # None: not given
    with pytest.raises(ParameterError, match="'layer' option of encoder 'minilm' must be an int; got 2.5$"):
        E.embed_texts(["x"], "minilm", layer=2.5)
    with pytest.raises(ParameterError, match="'layer' option of encoder .* must be an int; got 'top'$"):
        E.embed_texts(["x"], f"{E.minilm_path()}?layer=top")
    with pytest.raises(ParameterError, match="'normalize' option of encoder 'minilm' must be True or False"):
        E.embed_texts(["x"], "minilm", normalize="maybe")


def test_corpus_path_must_be_a_corpus_and_nothing_is_created(questions, tmp_path):
    bench = _bench(questions[:6])
    for path in (tmp_path / "missing", tmp_path):  # no directory; a directory that is no corpus
        with pytest.raises(InputError, match="^corpus_path must be a routereval corpus directory \\(holding "
                                             "manifest.json\\); got '.*'$"):
            E.embed_prompts(bench, "tfidf", corpus_path=path)
    assert list(tmp_path.iterdir()) == []  # no embeddings-cache made on bad input
    with pytest.raises(InputError, match="^corpus_path must be a path"):
        E.embed_prompts(bench, "tfidf", corpus_path=3)
    emb = E.embed_prompts(bench, "tfidf", corpus_path=str(_corpus_dir(tmp_path)))
    assert emb.shape == (6, 256) and len(list((tmp_path / E.CACHE_DIR).rglob("*.npy"))) == 1


def test_wrong_types_of_bench_and_encoder_are_one_line(questions):
    bench = _bench(questions[:6])
    with pytest.raises(InputError, match=r"^bench must be a routereval Benchmark \(corpus\[.*\]\); got str$"):
        E.embed_prompts("mmlu", "tfidf")
    expected = "^encoder must be an encoder name such as 'minilm' or 'tfidf', .*; got "
    for encoder, got in ((None, "None"), (["tfidf"], "list"), ("", "''")):
        with pytest.raises(InputError, match=expected + re.escape(got) + "$"):
            E.embed_prompts(bench, encoder)
        with pytest.raises(InputError, match=expected + re.escape(got) + "$"):
            E.embed_texts(["x"], encoder)
    # a local encoder directory may be a pathlib.Path
    np.testing.assert_allclose(E.embed_texts(questions[:2], E.minilm_path()), E.embed_texts(questions[:2], "minilm"),
                               atol=1e-5)


def test_quiet_loads_in_overlapping_threads_restore_the_callers_settings():
    # the second of two overlapping loads saved the first's silenced settings and "restored" them for good
    import threading

    from transformers.utils import logging as hf_logging

    from routereval.embed import quiet_transformers

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()
    try:
        inside, done = threading.Event(), threading.Event()

        def first():
            with quiet_transformers():
                inside.set()
                done.wait(10)

        def second():
            inside.wait(10)
            with quiet_transformers():
                assert hf_logging.get_verbosity() == hf_logging.ERROR
            done.set()

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert hf_logging.get_verbosity() == hf_logging.WARNING and hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.set_verbosity(before)


def test_a_long_embedding_says_once_that_it_started_when_stderr_is_no_terminal(capsys):
    # a CLI trial's `fit -e minilm` on MMLU-Pro was silent for 8 minutes in a log; a terminal draws a bar instead
    from routereval.cli import ui

    with ui.progress(True) as update:
        for done in (0, 1024, 2048):
            update("embed", done, 12032)
        update("coldstart", 1, 30)
    assert capsys.readouterr().err == "note: embedding 12032 prompts (cached in the corpus for later runs)\n"
    with ui.progress(True) as update:
        update("embed", 0, ui.LONG_EMBEDDING - 1)  # a short one: nothing
    with ui.progress(False) as update:  # --json: nothing at all
        update("embed", 0, 12032)
    assert capsys.readouterr().err == ""
