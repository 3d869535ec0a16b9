"""Issue 9: the serving pieces as small pure functions, against naive reference implementations."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from routereval.errors import InputError
from routereval.serve.engine import check_cost_weight, cost_adjusted_choice
from routereval.serve.proxy import rename_model, sse_events, upstream_payload
from routereval.serve.upstreams import load_upstreams


def test_cost_adjusted_choice_matches_a_naive_loop():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n, m = rng.integers(1, 20), rng.integers(1, 8)
        S = rng.integers(0, 4, size=(n, m)) / 4.0  # many ties, as knn's means have
        cost = rng.choice([0.001, 0.002, 0.004], size=m)
        lam = float(rng.choice([0.0, 10.0, 100.0, 1e6]))
        want = []
        for row in S:
            best, best_v = 0, -np.inf
            for j in range(m):
                v = row[j] - lam * cost[j]
                if v > best_v:  # strict: the first of tied models wins
                    best, best_v = j, v
            want.append(best)
        np.testing.assert_array_equal(cost_adjusted_choice(S, cost, lam), want)


def test_check_cost_weight():
    assert check_cost_weight(0) == 0.0 and check_cost_weight(2.5) == 2.5
    for bad in (-0.1, float("nan"), float("inf"), True, "1"):
        with pytest.raises(InputError, match="cost_weight"):
            check_cost_weight(bad)


def test_rename_model_rewrites_only_json_data_lines():
    ev = b'event: x\ndata: {"id": "1", "model": "up-0", "choices": []}'
    out = rename_model(ev, "claude-v2")
    assert out.split(b"\n")[0] == b"event: x"
    assert json.loads(out.split(b"\n")[1][6:]) == {"id": "1", "model": "claude-v2", "choices": []}
    for same in (b"data: [DONE]", b"data: not json", b": comment", b'data: {"no_model": 1}'):
        assert rename_model(same, "m") == same


def test_sse_events_split_across_arbitrary_chunk_boundaries():
    events = [b'data: {"a": %d}' % i for i in range(5)] + [b"data: [DONE]"]
    stream = b"".join(e + b"\n\n" for e in events)
    rng = np.random.default_rng(1)
    for _ in range(20):
        cuts = np.sort(rng.choice(np.arange(1, len(stream)), size=7, replace=False))
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]

        async def collect():
            async def gen():
                for c in chunks:
                    yield c
            return [e async for e in sse_events(gen())]

        assert asyncio.run(collect()) == events
    crlf = [b'data: {"a": 1}\r\n\r\n']

    async def one():
        async def gen():
            for c in crlf:
                yield c
        return [e async for e in sse_events(gen())]

    assert asyncio.run(one()) == [b'data: {"a": 1}']


def test_upstream_payload():
    from routereval.serve.upstreams import Upstream

    up = Upstream(name="a", base_url="http://h/v1", model="up-a", api_key=None, timeout=1.0)
    body = {"model": "router", "messages": [], "cost_weight": 3, "stream": True}
    assert upstream_payload(body, up) == {"model": "up-a", "messages": [], "stream": True}
    assert body["model"] == "router"  # the request itself is not changed
    assert up.chat_url == "http://h/v1/chat/completions"


def test_load_upstreams(tmp_path, monkeypatch):
    f = tmp_path / "u.toml"
    f.write_text('[defaults]\ntimeout = 7\n[models."a"]\nbase_url = "http://127.0.0.1:1/v1"\n'
                 '[models."b"]\nbase_url = "https://x.example/v1/"\nmodel = "bee"\napi_key_env = "RE_TEST_KEY"\n'
                 'timeout = 2.5\n')
    monkeypatch.setenv("RE_TEST_KEY", "k-b")
    ups = load_upstreams(f, ["a", "b"], default_timeout=60)
    assert (ups["a"].model, ups["a"].api_key, ups["a"].timeout) == ("a", None, 7.0)
    assert (ups["b"].model, ups["b"].api_key, ups["b"].timeout) == ("bee", "k-b", 2.5)
    assert ups["b"].chat_url == "https://x.example/v1/chat/completions"
    for text, needle in [
        ('[models."a"]\nbase_url = "http://h/v1"\nkey = 1\n', "unknown key 'key'"),
        ('[models."a"]\nbase_url = "http://h/v1"\ntimeout = 0\n', "timeout must be a number of seconds > 0"),
        ('[models."a"]\nbase_url = "http://h/v1"\napi_key = "x"\napi_key_env = "RE_TEST_KEY"\n', "not both"),
        ('[model."a"]\nbase_url = "http://h/v1"\n', "unknown table 'model'"),
        ('[defaults]\nretries = 3\n[models."a"]\nbase_url = "http://h/v1"\n', "[defaults] may hold only"),
        ("", "no [models"),
    ]:
        f.write_text(text)
        with pytest.raises(InputError, match=None) as e:
            load_upstreams(f, ["a"])
        assert needle in str(e.value) and str(f) in str(e.value)
    with pytest.raises(InputError, match="not found"):
        load_upstreams(tmp_path / "nope.toml", ["a"])


def test_micro_batcher_gathers_concurrent_prompts_and_keeps_order():
    from routereval.serve.batching import MicroBatcher

    calls = []

    def fn(prompts, lam):
        calls.append(list(prompts))
        scores = np.array([[len(p), -len(p)] for p in prompts], dtype=float)
        return scores, (lam > 0).astype(int)

    async def go():
        b = MicroBatcher(fn, max_batch=5, max_wait_s=0.05)
        b.start()
        prompts = ["x" * i for i in range(1, 13)]
        out = await asyncio.gather(*[b.submit(p, float(i % 2)) for i, p in enumerate(prompts)])
        await b.stop()
        return prompts, out

    prompts, out = asyncio.run(go())
    assert [s[0] for s, _ in out] == [len(p) for p in prompts]  # each caller gets its own row
    assert [c for _, c in out] == [i % 2 for i in range(12)]
    assert max(len(c) for c in calls) <= 5 and len(calls) < 12 and sum(map(len, calls)) == 12


def test_micro_batcher_passes_errors_to_every_waiter_and_keeps_serving():
    from routereval.serve.batching import MicroBatcher

    def fn(prompts, lam):
        if "boom" in prompts:
            raise ValueError("encoder failed")
        return np.zeros((len(prompts), 2)), np.zeros(len(prompts), dtype=int)

    async def go():
        b = MicroBatcher(fn, max_batch=8, max_wait_s=0.05)
        b.start()
        res = await asyncio.gather(b.submit("boom", 0.0), b.submit("ok", 0.0), return_exceptions=True)
        after = await b.submit("fine", 0.0)
        await b.stop()
        return res, after

    res, after = asyncio.run(go())
    assert all(isinstance(r, ValueError) for r in res)
    assert after[1] == 0


def test_token_chunks_cover_the_batch_in_order_in_balanced_pieces():
    from routereval.serve.encoder import token_chunks

    rng = np.random.default_rng(0)
    for _ in range(300):
        lengths = rng.integers(1, 300, size=int(rng.integers(1, 40))).tolist()
        budget, parts = int(rng.integers(1, 900)), int(rng.integers(1, 4))
        chunks = token_chunks(lengths, budget=budget, parts=parts)
        assert [i for c in chunks for i in c] == list(range(len(lengths)))  # every row once, in order
        total, k = sum(lengths), min(len(lengths), max(parts, -(-sum(lengths) // budget)))
        tokens = [sum(lengths[i] for i in c) for c in chunks]
        # a piece misses its equal share by less than the prompts on either side of its cuts
        assert all(abs(t - total / k) <= 2 * max(lengths) for t in tokens)
        if max(lengths) <= total / k / 2:  # short prompts: exactly k pieces
            assert len(chunks) == k
    assert token_chunks([10, 10, 10, 10], budget=768, parts=2) == [range(0, 2), range(2, 4)]
    assert token_chunks([10, 10, 10, 10], budget=15, parts=1) == [range(0, 1), range(1, 3), range(3, 4)]  # 3 pieces
    assert token_chunks([239, 275, 39], budget=768, parts=2) == [range(0, 1), range(1, 3)]  # not 239 | 275 | 39
    assert token_chunks([500], budget=100, parts=2) == [range(0, 1)]
    assert token_chunks([], budget=100, parts=2) == []


@pytest.mark.parametrize("concurrency", [1, 2])
def test_micro_batcher_runs_at_most_concurrency_batches_at_once(concurrency):
    import threading
    import time

    from routereval.serve.batching import MicroBatcher

    active, peak, lock = 0, 0, threading.Lock()

    def fn(prompts, lam):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.15)
        with lock:
            active -= 1
        return np.zeros((len(prompts), 2)), np.zeros(len(prompts), dtype=int)

    async def go():
        b = MicroBatcher(fn, max_batch=1, max_wait_s=0.0, concurrency=concurrency)
        b.start()
        t = time.perf_counter()
        await asyncio.gather(*[b.submit(str(i), 0.0) for i in range(4)])
        wall = time.perf_counter() - t
        await b.stop()
        return wall

    wall = asyncio.run(go())
    assert peak == concurrency
    assert wall < 4 * 0.15 / concurrency + 0.12  # the batches did overlap


def test_micro_batcher_starts_a_lone_prompt_at_once_and_gathers_while_busy():
    import time

    from routereval.serve.batching import MicroBatcher

    calls = []

    def fn(prompts, lam):
        calls.append(len(prompts))
        time.sleep(0.2 if len(calls) == 1 else 0.0)
        return np.zeros((len(prompts), 2)), np.zeros(len(prompts), dtype=int)

    async def go():
        b = MicroBatcher(fn, max_batch=8, max_wait_s=0.1, concurrency=2)
        b.start()
        t = time.perf_counter()
        first = asyncio.ensure_future(b.submit("a", 0.0))  # idle encoder: no wait for company
        while not calls and time.perf_counter() - t < 0.08:  # well before max_wait (0.1 s), even on a busy machine
            await asyncio.sleep(0.005)
        started = calls[:]
        rest = [asyncio.ensure_future(b.submit(p, 0.0)) for p in "bcd"]  # one batch runs: these gather
        await asyncio.gather(first, *rest)
        wall = time.perf_counter() - t
        await b.stop()
        return started, wall

    started, wall = asyncio.run(go())
    assert started == [1]  # the lone prompt was running within 80 ms of coming, though max_wait is 100 ms
    assert calls == [1, 3] and wall < 0.3
