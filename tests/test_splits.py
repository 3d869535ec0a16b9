"""Stratified splits: the reference's order of draws, disjointness, per-subset proportions, k-fold."""

from __future__ import annotations

import numpy as np
import pytest

from routereval.data.model import Benchmark
from routereval.errors import InputError
from routereval.pools import make_kfold, make_split

from test_pools import _bench


def test_split_partitions_each_subset_80_10_10():
    subsets = ["x"] * 97 + ["y"] * 203 + ["z"] * 11
    b = _bench(10, 311, subsets=subsets)
    sp = make_split(b, seed=5)
    allp = np.concatenate([sp.train, sp.val, sp.test])
    assert np.array_equal(np.sort(allp), np.arange(311))
    for s, n in (("x", 97), ("y", 203), ("z", 11)):
        assert (b.subsets[sp.train] == s).sum() == int(0.8 * n)
        assert (b.subsets[sp.val] == s).sum() == int(0.9 * n) - int(0.8 * n)
    assert sp.seed == 5
    assert not np.array_equal(make_split(b, seed=6).test, sp.test)
    # both protocols share the split: the clean protocol differs only in what it reads while choosing
    np.testing.assert_array_equal(make_split(b, protocol="paper", seed=5).test, sp.test)


def test_catalog_subset_order_decides_the_stream():
    # gpqa's official order is diamond, extended, main; prompts stored in another order
    subs = ["main"] * 20 + ["diamond"] * 20 + ["extended"] * 20
    b = _bench(10, 60, subsets=subs, name="gpqa")
    sp = make_split(b, protocol="paper")
    np.random.seed(42)
    want = []
    for lo in (20, 40, 0):  # diamond, extended, main
        idx = np.arange(lo, lo + 20)
        np.random.shuffle(idx)
        want.extend(idx[18:])
    np.testing.assert_array_equal(sp.test, want)


def test_kfold_test_sets_partition_prompts():
    b = _bench(10, 53, subsets=["a"] * 30 + ["b"] * 23)
    folds = make_kfold(b, k=5)
    tests = np.concatenate([f.test for f in folds])
    assert np.array_equal(np.sort(tests), np.arange(53))
    for f in folds:
        assert not (set(f.train) & set(f.val)) and not (set(f.train) & set(f.test)) and not (set(f.val) & set(f.test))
        assert len(f.train) + len(f.val) + len(f.test) == 53
        assert 9 <= len(f.test) <= 12
    with pytest.raises(InputError, match="k must be"):
        make_kfold(b, k=1)


def test_too_few_prompts_is_an_input_error():
    b = Benchmark("tiny", models=["a", "b"], prompt_ids=["1"], scores=np.array([[1.0], [0.0]]))
    with pytest.raises(InputError, match="too few prompts"):
        make_split(b)


def test_split_is_saved_with_the_corpus_and_used(tmp_path):
    """The default split is stored with each benchmark; make_split returns the stored one."""
    from routereval.data.store import open_corpus
    from routereval.sources.synth import synth_corpus

    synth_corpus(tmp_path / "c", scale="tiny", seed=0)
    corpus = open_corpus(tmp_path / "c")
    bench = next(iter(corpus))
    f = bench.saved_splits[42]
    fresh = make_split(bench, seed=42)
    with np.load(f) as z:
        np.testing.assert_array_equal(z["train"], fresh.train)
        np.testing.assert_array_equal(z["test"], fresh.test)
        # tamper with the stored split: make_split must follow the record, not recompute
        train, val, test = z["train"], z["val"], z["test"]
    np.savez(f, train=train[::-1], val=val, test=test, policy=np.array("complete"))
    np.testing.assert_array_equal(make_split(bench, seed=42).train, train[::-1])
    assert make_split(bench, seed=7).train.tolist() != train[::-1].tolist()  # other seeds are drawn
