"""add-model on a router `fit` trained on the 0.95-of-best labels of a graded benchmark.

The pool's columns predict each model's chance of scoring at least 0.95 of a prompt's best; the
new model's column must predict the same (its answers labelled against the pool's best), while
its estimated mean is still its mean score.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from routereval.data.model import Corpus
from routereval.data.store import open_corpus, write_corpus
from routereval.errors import InputError

from coldstart_worlds import irt_world, world_benchmark


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A graded world (quarter-step scores), an irt router `fit` on its 6 strongest models, and a weaker newcomer."""
    from routereval.evaluate import fit_router

    d = tmp_path_factory.mktemp("labels")
    X, S, P, topic = irt_world(seed=3, graded=True)
    texts = [f"question {i} on topic {t}" for i, t in enumerate(topic)]
    write_corpus(Corpus.from_benchmarks([world_benchmark(X, S, topic, texts=texts)]), d / "corpus")
    fit_router(d / "corpus", benchmark="mmlu", router="irt", params={"dim": 4, "max_epochs": 30}, m=6,
               group="all_strong", save=d / "irt")
    fit_router(d / "corpus", benchmark="mmlu", router="irt", params={"dim": 4, "max_epochs": 30}, m=6,
               group="all_strong", embedding="tfidf", save=d / "irt-tfidf")  # an encoder of new texts
    bench = open_corpus(d / "corpus")["mmlu"]
    pool = json.loads((d / "irt" / "router.json").read_text())["pool"]["models"]
    means = np.asarray(bench.scores, dtype=np.float64).mean(axis=1)
    outside = [i for i in np.argsort(-means) if str(bench.models[i]) not in pool]
    return d, bench, pool, int(outside[len(outside) // 2])  # a mid-table model, well below the pool


def _answer(bench, row, k_rows, path, *, extra=None):
    """ANSWERS.csv with the model's scores on the benchmark prompts ``k_rows`` (and ``extra`` new texts)."""
    S = np.asarray(bench.scores, dtype=np.float64)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "score"])
        for i in k_rows:
            w.writerow([str(bench.texts[i]), f"{S[row, i]:g}"])
        for text in extra or ():
            w.writerow([text, "0.5"])


def test_fit_records_that_it_trained_on_labels(graded):
    d, *_ = graded
    assert json.loads((d / "irt" / "router.json").read_text())["metadata"]["fit_target"] == "labels"


def test_the_new_column_is_fitted_on_labels_against_the_pools_best_and_the_estimate_on_scores(graded, tmp_path):
    from routereval.coldstart.context import open_router_context
    from routereval.coldstart.saved import add_model_to_saved
    from routereval.routers.persist import load_router

    d, bench, pool, row = graded
    ctx = open_router_context(d / "irt")
    assert ctx.on_labels
    k_rows = ctx.askable[np.random.default_rng(0).choice(len(ctx.askable), 200, replace=False)]
    _answer(bench, row, k_rows, tmp_path / "a.csv")
    doc = add_model_to_saved(d / "irt", name="newcomer", answers=tmp_path / "a.csv", out=tmp_path / "v2")
    saved = load_router(tmp_path / "v2")
    assert saved.metadata["added_models"][0]["routing_target"] == "labels"
    # its column predicts labels, not scores: no mean to set beside the estimate, but its share of held-out prompts
    assert doc["routing"]["column_mean"] is None and 0 <= doc["routing"]["routed_share"] <= 1

    # naive labels: the newcomer reaches 0.95 of the best of the pool's scores and its own on that prompt
    S = np.asarray(bench.scores, dtype=np.float64)
    prow = [int(np.flatnonzero(bench.models == n)[0]) for n in pool]
    y = S[row, k_rows]
    labels = (y >= 0.95 * np.maximum(S[prow][:, k_rows].max(axis=0), y)).astype(float)
    assert 0 < labels.sum() < len(labels) and labels.mean() < y.mean() - 0.1  # labels are not the scores here
    phi, _ = ctx.saved.router.posterior_model(ctx.X[k_rows], labels, offsets=np.nan_to_num(ctx.label_ranking.delta[k_rows]))
    np.testing.assert_allclose(saved.router.model_vectors()[-1], phi, rtol=1e-6, atol=1e-7)  # saved as float32

    # the column is on the pool's scale (the label share), the estimate on the score's
    test = ctx.split.test
    pred = saved.router.predict_scores(ctx.X[test])[:, -1].mean()
    share = (S[row, test] >= 0.95 * np.maximum(S[prow][:, test].max(axis=0), S[row, test])).mean()
    score = S[row, test].mean()
    assert abs(pred - share) < 0.5 * abs(pred - score), (pred, share, score)
    assert abs(doc["estimate"]["mean"] - S[row].mean()) < 0.05


def test_a_router_said_to_fit_scores_gets_the_scores_and_new_texts_need_scores_to_rank(graded, tmp_path):
    from routereval.coldstart.context import open_router_context
    from routereval.coldstart.saved import add_model_to_saved
    from routereval.routers.persist import load_router

    d, bench, pool, row = graded
    ctx = open_router_context(d / "irt")
    k_rows = ctx.askable[:100]
    _answer(bench, row, k_rows, tmp_path / "new.csv", extra=["a prompt the benchmark does not hold"])
    # a new text cannot be ranked against the pool: refused with --allow-new-prompts, before any embedding, for
    # that reason; without the flag, as any text the benchmark does not hold (which is what a user sees first: an
    # edited prompt); neither message suggests the flag (an encoder of new texts, tfidf, or a stored one)
    for router, allow, says in (("irt-tfidf", True, "train prompts of benchmark 'mmlu'; the router was fitted on "
                                                    "the 0.95-of-best labels"),
                                ("irt-tfidf", False, "prompts of benchmark 'mmlu'; expected the texts `routereval "
                                                     "coldstart anchors` printed, unchanged"),
                                ("irt", False, "prompts of benchmark 'mmlu'; expected the texts")):
        with pytest.raises(InputError) as e:
            add_model_to_saved(d / router, name="n", answers=tmp_path / "new.csv", out=tmp_path / "nope",
                               allow_new_prompts=allow)
        msg = str(e.value)
        assert msg.startswith(f"{tmp_path / 'new.csv'}: row 101: column 'text': prompt text not among the {says}") \
            and "\n" not in msg, msg
        assert "allow" not in msg and not (tmp_path / "nope").exists()

    # metadata.fit_target = scores (a router fitted on raw scores from Python): the column is fitted on the scores
    import shutil

    shutil.copytree(d / "irt", tmp_path / "raw")
    doc = json.loads((tmp_path / "raw" / "router.json").read_text())
    doc["metadata"]["fit_target"] = "scores"
    (tmp_path / "raw" / "router.json").write_text(json.dumps(doc))
    raw = open_router_context(tmp_path / "raw")
    assert not raw.on_labels
    _answer(bench, row, k_rows, tmp_path / "a.csv")
    add_model_to_saved(tmp_path / "raw", name="n", answers=tmp_path / "a.csv", out=tmp_path / "v2")
    y = np.asarray(bench.scores, dtype=np.float64)[row, k_rows]
    phi, _ = raw.saved.router.posterior_model(raw.X[k_rows], y, offsets=np.nan_to_num(raw.delta[k_rows]))
    np.testing.assert_allclose(load_router(tmp_path / "v2").router.model_vectors()[-1], phi, rtol=1e-6, atol=1e-7)  # saved as float32


def test_a_corpus_without_a_pool_model_cannot_rank_answers_against_the_pool(graded, tmp_path):
    from routereval.coldstart.context import open_router_context
    from routereval.coldstart.saved import add_model_to_saved

    d, bench, pool, row = graded
    keep = [i for i, n in enumerate(bench.models) if str(n) != pool[0]]
    X = np.asarray(bench.embeddings["synth"])
    S = np.asarray(bench.scores)[keep].T
    write_corpus(Corpus.from_benchmarks([world_benchmark(X, S, names=[str(bench.models[i]) for i in keep],
                                                         texts=[str(t) for t in bench.texts])]), tmp_path / "less")
    ctx = open_router_context(d / "irt", corpus=tmp_path / "less")
    _answer(bench, row, ctx.askable[:50], tmp_path / "a.csv")
    with pytest.raises(InputError) as e:
        add_model_to_saved(d / "irt", name="n", answers=tmp_path / "a.csv", out=tmp_path / "v2",
                           corpus=tmp_path / "less")
    assert str(e.value) == (f"{d / 'irt' / 'router.json'}: the router was fitted on the 0.95-of-best labels of a "
                            f"graded benchmark, and its corpus {str(tmp_path / 'less')!r} lacks pool model "
                            f"{pool[0]!r} to rank a new model's answers against the pool's best; expected the corpus "
                            "the router was fitted on")
    assert not (tmp_path / "v2").exists()
