"""evaluate(): oracle, random and best-single against independent computations; learned routers learn."""

from __future__ import annotations

import math

import numpy as np
import pytest

from routereval import metrics as M
from routereval.data.model import Benchmark, Corpus
from routereval.errors import InputError, ParameterError
from routereval.evaluate import RESULT_KEYS, evaluate, fit_router
from routereval.routers.persist import load_router


def structured_corpus(n_prompts: int = 1200, n_models: int = 12, seed: int = 0) -> Corpus:
    """Prompts in 4 topics (the subsets) with embeddings near a topic centre; each model is
    strong on one topic: a router that reads the embedding can beat any single model."""
    rng = np.random.default_rng(seed)
    topic = np.arange(n_prompts) % 4
    centres = rng.normal(size=(4, 16)) * 2
    emb = (centres[topic] + rng.normal(size=(n_prompts, 16))).astype(np.float32)
    skill = np.full((n_models, 4), 0.3) + rng.uniform(-0.05, 0.05, size=(n_models, 4))
    skill[np.arange(n_models), np.arange(n_models) % 4] = 0.85
    S = (rng.random((n_models, n_prompts)) < skill[:, topic]).astype(np.float32)
    b = Benchmark("mmlu", models=[f"m{i:02d}" for i in range(n_models)], prompt_ids=[f"p{i}" for i in range(n_prompts)],
                  subsets=[f"t{t}" for t in topic], scores=S, embeddings={"synth": emb})
    return Corpus.from_benchmarks([b])


@pytest.fixture(scope="module")
def corpus():
    return structured_corpus()


def _truth(corpus, res):
    """Independent recomputation from the benchmark's score matrix and the pool's model names."""
    from routereval.pools import make_split

    b = corpus["mmlu"]
    split = make_split(b, protocol=res["protocol"], seed=42)
    rows = b.model_index(res["models"])
    S = np.asarray(b.scores, dtype=np.float64)[rows]
    test, fit = split.test, np.concatenate([split.train, split.val])
    return S[:, test].T, S[:, fit].T, split


def test_result_has_the_issues_keys_and_oracle_random_best_single_are_right(corpus):
    res_o = evaluate(corpus, benchmark="mmlu", router="oracle", m=5, group="strong_to_weak", n_boot=200)
    assert set(RESULT_KEYS) <= set(res_o)
    Yt, Yfit, split = _truth(corpus, res_o)
    assert res_o["n_test"] == len(split.test) == Yt.shape[0]
    oracle = float(np.mean([max(row) for row in Yt]))
    assert res_o["mu"] == pytest.approx(oracle) and res_o["oracle"] == pytest.approx(oracle)
    assert res_o["oracle_recall"] == 1.0
    # best single under the clean protocol: best on train+val, measured on test
    best = int(np.argmax(Yfit.mean(axis=0)))
    assert res_o["best_single_model"] == res_o["models"][best]
    assert res_o["best_single"] == pytest.approx(Yt[:, best].mean())

    res_b = evaluate(corpus, benchmark="mmlu", router="best_single", m=5, group="strong_to_weak", n_boot=200)
    assert res_b["mu"] == pytest.approx(Yt[:, best].mean()) and res_b["v_b"] == 1.0
    assert res_b["e_p"] == 0.0 and res_b["e_sel"] == 0.0
    assert res_b["selection"][res_o["models"][best]] == 1.0

    res_r = evaluate(corpus, benchmark="mmlu", router="random", m=5, group="strong_to_weak", n_boot=200)
    assert res_r["e_p"] == pytest.approx(math.log2(5))
    expected, se = Yt.mean(), Yt.mean(axis=1).std() / math.sqrt(len(Yt)) + 0.5 / math.sqrt(len(Yt))
    assert abs(res_r["mu"] - expected) < 3 * se
    assert all(abs(v - 0.2) < 0.1 for v in res_r["selection"].values())
    for res in (res_b, res_r):
        lo, hi = res["mu_ci"]
        assert lo <= res["mu"] <= hi
        assert res["oracle"] >= res["mu"]
        assert res["v_r"] == pytest.approx(res["mu"] / 0.864)  # MMLU's reference model


def test_learned_routers_beat_random_and_best_single(corpus):
    got = {r: evaluate(corpus, benchmark="mmlu", router=r, m=5, group="strong_to_weak", n_boot=300)
           for r in ("random", "knn", "kmeans")}
    got["kmeans4"] = evaluate(corpus, benchmark="mmlu", router="kmeans", params={"k": 4}, m=5,
                              group="strong_to_weak", n_boot=300)
    for r in ("knn", "kmeans4"):
        assert got[r]["mu"] > got["random"]["mu"] + 0.1, (r, got[r]["mu"], got["random"]["mu"])
        assert got[r]["v_b"] > 1.0 and got[r]["p_beats_best_single"] < 0.05
    assert got["kmeans"]["mu"] > got["random"]["mu"]
    assert got["knn"]["fit_s"] >= 0 and got["knn"]["embedding"] == "synth"


def test_paper_protocol_picks_best_single_on_test(corpus):
    res = evaluate(corpus, benchmark="mmlu", router="best_single", m=5, group="all_strong", protocol="paper", n_boot=50)
    Yt, _, _ = _truth(corpus, res)
    assert res["best_single"] == pytest.approx(Yt.mean(axis=0).max())


def test_bad_requests(corpus):
    with pytest.raises(ParameterError, match=r"^The 'k' parameter of knn must be an int in \[1, inf\)\. Got 0\.$"):
        evaluate(corpus, benchmark="mmlu", router="knn", params={"k": 0}, m=5, group="all_strong")
    with pytest.raises(InputError, match=r"m \(--m\) must be an int >= 1"):
        evaluate(corpus, benchmark="mmlu", router="knn", m=0, group="all_strong")
    with pytest.raises(ParameterError, match="unknown router 'nope'"):
        evaluate(corpus, benchmark="mmlu", router="nope", m=5, group="all_strong")
    with pytest.raises(InputError, match="unknown benchmark"):
        evaluate(corpus, benchmark="arc", router="knn", m=5, group="all_strong")


def test_fit_router_saves_what_evaluate_uses(corpus, tmp_path):
    doc = fit_router(corpus, benchmark="mmlu", router="knn", params={"k": 9}, m=5, group="all_weak", save=tmp_path / "r")
    saved = load_router(tmp_path / "r")
    assert saved.router.k == 9 and saved.encoder == "synth" and saved.pool["models"] == doc["pool"]["models"]
    assert saved.metadata["embedding_dim"] == 16
    b = corpus["mmlu"]
    X = b.embeddings["synth"]
    from routereval.pools import make_pool, make_split

    pool = make_pool(b, m=5, group="all_weak", split=make_split(b))
    res = evaluate(corpus, benchmark="mmlu", router="knn", params={"k": 9}, m=5, group="all_weak", n_boot=10)
    routes = saved.router.route(X[pool.split.test])
    shares = np.bincount(routes, minlength=5) / len(routes)
    assert shares == pytest.approx([res["selection"][n] for n in saved.pool["models"]])
    with pytest.raises(InputError, match="features"):
        saved.router.route(X[:5, :8])


def test_cost_metrics_when_the_corpus_has_cost():
    c = structured_corpus(n_prompts=400, n_models=6, seed=1)
    b = c["mmlu"]
    price = np.linspace(0.001, 0.01, b.n_models)[:, None] * np.ones((1, b.n_prompts))
    b.cost = price
    res = evaluate(c, benchmark="mmlu", router="knn", m=3, group="strong_to_weak", n_boot=20)
    cost = res["cost"]
    names = res["models"]
    rows = b.model_index(names)
    shares = np.array([res["selection"][n] for n in names])
    assert cost["mean_cost"] == pytest.approx(float(shares @ price[rows, 0]))
    curve = cost["curve"]
    assert curve["cost"][0] >= curve["cost"][-1]  # the price of cost rises along the sweep
    assert min(curve["mu"]) <= cost["aiq"] <= max(curve["mu"]) + 1e-12
    # AIQ over the pool models' cost range (common to every router), APGR on cost normalised
    # between the cheapest model's and the best single's
    model_cost = price[rows, 0]
    assert cost["aiq"] == pytest.approx(M.aiq(curve["cost"], curve["mu"],
                                              cost_range=(model_cost.min(), model_cost.max())))
    c_weak, c_strong = model_cost.min(), model_cost[names.index(res["best_single_model"])]
    assert c_strong == c_weak and cost["apgr"] is None  # the best single is the cheapest: no gap to recover
    # price the best single highest: APGR on cost normalised between the cheapest model's and its
    b.cost = price[::-1].copy()
    res = evaluate(c, benchmark="mmlu", router="knn", m=3, group="strong_to_weak", n_boot=20)
    cost, curve = res["cost"], res["cost"]["curve"]
    model_cost = b.cost[b.model_index(res["models"]), 0]
    c_weak, c_strong = model_cost.min(), model_cost[res["models"].index(res["best_single_model"])]
    assert c_strong > c_weak
    x = np.clip((np.array(curve["cost"]) - c_weak) / (c_strong - c_weak), 0, 1)
    Yt, _, _ = _truth(c, res)
    weak_mu = Yt[:, int(np.argmin(model_cost))].mean()
    pgr = (np.array(curve["mu"]) - weak_mu) / (res["best_single"] - weak_mu)
    o = np.argsort(x, kind="stable")
    naive = sum((x[o][i + 1] - x[o][i]) * (pgr[o][i + 1] + pgr[o][i]) / 2 for i in range(len(x) - 1)) / (x[o][-1] - x[o][0])
    assert cost["apgr"] == pytest.approx(naive)
    b.cost = price
    assert evaluate(c, benchmark="mmlu", router="oracle", m=3, group="strong_to_weak", n_boot=20)["cost"]["mean_cost"] > 0


def test_best_single_is_the_pools_best_model_on_a_graded_benchmark():
    # model a scores 0.8 everywhere; model b 1.0 on 60% of prompts and 0.4 elsewhere: b wins more
    # 0.95-of-best labels (0.6 vs 0.4) but a has the higher mean score (0.8 vs 0.76)
    rng = np.random.default_rng(3)
    n = 1000
    a = np.full(n, 0.8)
    b = np.where(rng.random(n) < 0.6, 1.0, 0.4)
    fill = rng.uniform(0.15, 0.35, size=(8, n))
    S = np.vstack([fill, b, a]).astype(np.float32)
    bench = Benchmark("truthfulqa", models=[f"f{i}" for i in range(8)] + ["b", "a"],
                      prompt_ids=[f"p{i}" for i in range(n)], scores=S, binary=False,
                      embeddings={"synth": rng.normal(size=(n, 8)).astype(np.float32)})
    c = Corpus.from_benchmarks([bench])
    res = evaluate(c, benchmark="truthfulqa", router="best_single", m=2, group="all_strong", n_boot=20)
    assert sorted(res["models"]) == ["a", "b"] and res["best_single_model"] == "a"
    assert res["selection"]["a"] == 1.0 and res["v_b"] == 1.0
    assert res["v_r"] == pytest.approx(res["mu"] / 0.669)


def test_reference_score_override_gives_v_r_outside_the_catalog():
    c = structured_corpus(n_prompts=400, n_models=6, seed=2)
    b = c["mmlu"]
    custom = Benchmark("my_bench", models=b.models, prompt_ids=b.prompt_ids, subsets=b.subsets,
                       scores=np.asarray(b.scores), embeddings=b.embeddings)
    c2 = Corpus.from_benchmarks([custom])
    assert evaluate(c2, benchmark="my_bench", router="random", m=3, group="strong_to_weak", n_boot=10)["v_r"] is None
    res = evaluate(c2, benchmark="my_bench", router="random", m=3, group="strong_to_weak", n_boot=10,
                   reference_score=0.5)
    assert res["v_r"] == pytest.approx(res["mu"] / 0.5)
    over = evaluate(c, benchmark="mmlu", router="random", m=3, group="strong_to_weak", n_boot=10, reference_score=0.8)
    assert over["v_r"] == pytest.approx(over["mu"] / 0.8)  # overrides MMLU's 0.864
    for bad in (0, -0.1, 1.5, float("nan"), "x"):
        with pytest.raises(ParameterError, match=r"reference_score \(--reference-score\) must be a float in \(0, 1\]"):
            evaluate(c, benchmark="mmlu", router="random", m=3, group="strong_to_weak", reference_score=bad)


def test_paper_protocol_makes_knn_break_ties_like_the_reference():
    from routereval.evaluate import make_router_from

    assert make_router_from("knn", None, seed=1, protocol="paper").tie_break == "first"
    assert make_router_from("knn", None, seed=1).tie_break == "train_mean"
    assert make_router_from("knn", {"tie_break": "train_mean"}, seed=1, protocol="paper").tie_break == "train_mean"
    assert make_router_from("kmeans", None, seed=1, protocol="paper").k == 3


from routereval.routers import Router  # noqa: E402


class WarmUpRouter(Router):
    """Records that evaluate() called warm_up (heavy imports) before fit (the timed part)."""

    name = "warm_up_test"
    parameters: dict = {}
    calls: list = []

    def __init__(self) -> None:
        pass

    @classmethod
    def warm_up(cls) -> None:
        cls.calls.append("warm_up")

    def _fit(self, X, Y, *, X_val, Y_val, cost) -> None:
        type(self).calls.append("fit")
        self.w_ = Y.mean(axis=0)

    def _predict_scores(self, X):
        return np.tile(self.w_, (len(X), 1))


def test_evaluate_warms_up_the_router_before_timing_its_fit(corpus):
    WarmUpRouter.calls.clear()
    evaluate(corpus, benchmark="mmlu", router="test_evaluate:WarmUpRouter", m=3, group="all_strong", n_boot=10)
    assert WarmUpRouter.calls == ["warm_up", "fit"]
    from routereval.routers import available_routers

    heavy = {n for n, cls in available_routers().items() if cls.warm_up.__func__ is not Router.warm_up.__func__}
    assert heavy == {"kmeans", "linear", "mlp", "mf", "irt", "mlc"}


def _overlapping_topics_corpus(seed: int = 1, n: int = 600, n_models: int = 30) -> Corpus:
    """Six weakly separated topics in 8 dimensions: k-means with k=3 has several local optima, so
    which k-means++ start is taken (n_init, random_state) changes the clusters and the routes."""
    rng = np.random.default_rng(seed)
    topic = np.arange(n) % 6
    emb = (rng.normal(size=(6, 8))[topic] + rng.normal(size=(n, 8))).astype(np.float32)
    skill = rng.uniform(0.2, 0.9, size=(n_models, 6))
    S = (rng.random((n_models, n)) < skill[:, topic]).astype(np.float32)
    b = Benchmark("mmlu", models=[f"m{i:02d}" for i in range(n_models)], prompt_ids=[f"p{i}" for i in range(n)],
                  subsets=[f"t{t % 2}" for t in topic], scores=S, embeddings={"synth": emb})
    return Corpus.from_benchmarks([b])


def _reference_cluster_script(train_embed, train_score, test_embed, test_score):
    """A plain transcription of the reference's router/C-RoBERTa-cluster/cluster.py run as
    test_router.py runs it (--seed 0 --numcluster 3): acc, acc / best-single-on-test, E_p."""
    from sklearn.cluster import KMeans

    kmeans = KMeans(n_clusters=3, random_state=0)  # n_init left at scikit-learn's default ("auto": 1 start)
    labels = kmeans.fit_predict(train_embed)
    best = {}
    for k in range(3):
        idx = np.where(labels == k)[0]
        if len(idx):
            best[k] = int(np.argmax(np.mean(train_score[idx], axis=0)))
    new_labels = kmeans.predict(test_embed)
    routes = [best[int(c)] for c in new_labels]
    acc = float(np.mean([test_score[i, routes[i]] for i in range(len(test_embed))]))
    dist = np.array([np.linalg.norm(test_embed - c, axis=1) for c in kmeans.cluster_centers_]).T
    prob = 1 / (dist + 1e-10)
    prob = prob / prob.sum(axis=1, keepdims=True)
    models = list(set(best.values()))
    merged = np.zeros(prob.shape)
    for i in range(prob.shape[1]):
        merged[:, models.index(best[i])] += prob[:, i]
    terms = np.where(merged > 1e-4, merged * np.log2(np.where(merged > 0, merged, 1)), 0)
    ep = -np.sum(terms) / merged.shape[0]
    return kmeans, routes, acc, acc / np.max(np.mean(test_score, axis=0)), ep


def test_paper_kmeans_is_the_reference_cluster_script():
    from routereval.evaluate import evaluate_cell, make_router_from, prepare_cell
    from routereval.pools.export import router_dataset

    c = _overlapping_topics_corpus()
    ref, _ = router_dataset(c["mmlu"], protocol="paper")  # the pickle the reference scripts read
    emb = ref["embedding"]
    old_differs = 0
    for m in (3, 5):
        for group in ("all_strong", "all_weak", "strong_to_weak"):
            data = ref["easy"][m][group]["data"]
            km, routes, acc, vb, ep = _reference_cluster_script(emb["train_embed"], data["train_score"],
                                                                emb["test_embed"], data["test_score"])
            router = make_router_from("kmeans", None, seed=42, protocol="paper")
            cell = prepare_cell(c, benchmark="mmlu", m=m, group=group, protocol="paper")
            res = evaluate_cell(router, cell, n_boot=10)
            # same clusters (the same centres, in the same order), routes and figures
            assert np.allclose(router.cluster_centers_, km.cluster_centers_, atol=1e-5)
            assert router.route(cell.X_test).tolist() == routes
            assert res["mu"] == pytest.approx(acc, abs=1e-12)
            assert res["v_b"] == pytest.approx(vb, abs=1e-12)
            assert res["e_p"] == pytest.approx(ep, rel=1e-6, abs=1e-7)  # the reference computes distances in float32
            old = evaluate(c, benchmark="mmlu", router="kmeans", params={"n_init": 10, "random_state": 42}, m=m,
                           group=group, protocol="paper", n_boot=10)
            old_differs += old["mu"] != res["mu"]
    assert old_differs >= 2  # the data tell the settings apart: 10 starts with the cell's seed route otherwise


def test_paper_defaults_are_the_reference_scripts_settings():
    from routereval.evaluate import make_router_from

    km = make_router_from("kmeans", None, seed=7, protocol="paper")
    assert (km.k, km.n_init, km.random_state) == (3, 1, 0)  # cluster.py --seed 0, whatever the cell's seed
    assert make_router_from("kmeans", None, seed=7).random_state == 7
    assert make_router_from("kmeans", {"random_state": 5}, seed=7, protocol="paper").random_state == 5
    # LinearR / MLPR: test_router.py:20,22 (train.py: Adam, weight decay 0, no validation set)
    lin = make_router_from("linear", None, seed=7, protocol="paper")
    assert (lin.lr, lin.max_epochs, lin.batch_size, lin.weight_decay, lin.patience) == (0.01, 10, 1, 0.0, None)
    mlp = make_router_from("mlp", None, seed=7, protocol="paper")
    assert (mlp.hidden_size, mlp.lr, mlp.max_epochs, mlp.batch_size, mlp.patience) == (256, 1e-4, 100, 1, None)
    assert make_router_from("mlp", None, seed=7).patience == 5  # the clean protocol keeps early stopping
    # MLC: roberta_MLC.py's Trainer settings
    mlc = make_router_from("mlc", None, seed=7, protocol="paper")
    assert (mlc.epochs, mlc.batch_size, mlc.lr, mlc.weight_decay, mlc.warmup_steps, mlc.max_grad_norm,
            mlc.max_length) == (10, 10, 5e-5, 0.01, 500, 1.0, 512)
    # PRknn k=5 (test_router.py:12) and r_o(0.5) (test_router.py:18) are the plain defaults
    assert make_router_from("knn", None, seed=7, protocol="paper").k == 5
    assert make_router_from("mix", None, seed=7, protocol="paper").p == 0.5
