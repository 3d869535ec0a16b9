"""Issue 9: ``routereval serve``, in process (Starlette's TestClient, httpx over ASGI) and its start-up checks.

The router is a real knn fitted by ``routereval fit --save`` with the real MiniLM encoder on a
seeded sample of 120 RouterBench ARC-Challenge prompts (real per-query USD costs). Proxy tests
talk to stand-in upstream servers on 127.0.0.1 (tests/serve_fixtures.py). The server over a real
socket, driven by the ``openai`` client and curl, is in tests/test_serve_socket.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil

import numpy as np
import pytest

from serve_fixtures import StandInUpstream, upstreams_toml

BENCH = "routerbench.arc-challenge"


def _client(router_dir, **options):
    from starlette.testclient import TestClient

    from routereval.serve import create_app

    return TestClient(create_app(router_dir, **options))


@pytest.fixture(scope="module")
def client(rb_router):
    with _client(rb_router[0], token="s3cret-token") as c:
        c.headers["authorization"] = "Bearer s3cret-token"
        yield c


# --------------------------------------------------------------------------- fit stores costs


def test_fit_saves_each_pool_models_mean_train_cost(rb_router, saved):
    from routereval.data.store import open_corpus
    from routereval.pools import make_pool, make_split

    bench = open_corpus(rb_router[1])[BENCH]
    pool = make_pool(bench, m=3, group="strong_to_weak", split=make_split(bench, seed=42), seed=42)
    C = np.asarray(bench.cost)[pool.models][:, pool.split.train]  # (3, n_train) USD
    assert saved.pool["models"] == list(pool.model_names)
    for name, row in zip(pool.model_names, C):
        assert saved.pool["cost"][name] == pytest.approx(row.mean())


# --------------------------------------------------------------------------- routing


def test_route_single_and_batch_match_the_offline_router(client, saved, real_prompts):
    from routereval.embed import embed_texts

    X = embed_texts(real_prompts, "minilm")  # the encoder path `eval`/`fit` use
    want_scores = saved.router.predict_scores(X)
    want = [saved.pool["models"][i] for i in saved.router.route(X)]

    r = client.post("/v1/route", json={"prompts": real_prompts})
    assert r.status_code == 200
    routes = r.json()["routes"]
    assert [x["model"] for x in routes] == want
    got = np.array([[x["scores"][m] for m in saved.pool["models"]] for x in routes])
    np.testing.assert_allclose(got, want_scores)

    one = client.post("/v1/route", json={"prompt": real_prompts[3]}).json()
    assert one == routes[3]
    assert set(one["scores"]) == set(saved.pool["models"])


def test_cost_weight_trades_score_against_cost(client, saved, real_prompts):
    from routereval.serve.engine import cost_adjusted_choice

    cost = np.array([saved.pool["cost"][m] for m in saved.pool["models"]])
    cheapest = saved.pool["models"][int(np.argmin(cost))]
    r = client.post("/v1/route", json={"prompts": real_prompts, "cost_weight": 1e6}).json()["routes"]
    assert {x["model"] for x in r} == {cheapest}
    # a moderate λ: each route is argmax(score - λ·cost) of the returned scores
    lam = 0.5 / float(cost.max() - cost.min())
    r = client.post("/v1/route", json={"prompts": real_prompts, "cost_weight": lam}).json()["routes"]
    S = np.array([[x["scores"][m] for m in saved.pool["models"]] for x in r])
    assert [x["model"] for x in r] == [saved.pool["models"][i] for i in cost_adjusted_choice(S, cost, lam)]
    for bad in (-1, "high", True):
        resp = client.post("/v1/route", json={"prompt": "hi", "cost_weight": bad})
        assert resp.status_code == 422 and "cost_weight" in resp.json()["error"]["message"]


def test_server_wide_cost_weight_is_the_default(rb_router, saved, real_prompts):
    from routereval.embed import embed_texts

    cost = np.array([saved.pool["cost"][m] for m in saved.pool["models"]])
    cheapest = saved.pool["models"][int(np.argmin(cost))]
    plain = [saved.pool["models"][i] for i in saved.router.route(embed_texts(real_prompts, "minilm"))]
    assert set(plain) != {cheapest}  # else this test could not tell λ apart
    with _client(rb_router[0], cost_weight=1e6) as c:
        assert {x["model"] for x in c.post("/v1/route", json={"prompts": real_prompts}).json()["routes"]} == {cheapest}
        r0 = c.post("/v1/route", json={"prompts": real_prompts, "cost_weight": 0}).json()["routes"]  # a request's own λ wins
        assert [x["model"] for x in r0] == plain


def test_concurrent_single_requests_are_micro_batched(rb_router, real_prompts):
    """16 concurrent requests share encoder batches and get the same answers as one batch request."""
    import httpx

    from routereval.serve import create_app

    prompts = (real_prompts * 2)[:16]
    app = create_app(rb_router[0], max_batch=64, max_wait_ms=50)

    async def go():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://serve") as c:
                singles = await asyncio.gather(*[c.post("/v1/route", json={"prompt": p}) for p in prompts])
                batch = await c.post("/v1/route", json={"prompts": prompts})
                metrics = (await c.get("/metrics")).text
        return singles, batch, metrics

    singles, batch, metrics = asyncio.run(go())
    assert all(r.status_code == 200 for r in singles)
    assert [r.json() for r in singles] == batch.json()["routes"]
    count = _metric(metrics, "routereval_batch_size_count")
    total = _metric(metrics, "routereval_batch_size_sum")
    # warm-up is not counted; 16 singles + 1 batch of 16 prompts in fewer than 17 batches
    assert total == 32 and count < 17, (count, total)
    assert _metric(metrics, 'routereval_routes_total{model="') == 32  # every routed prompt counted


def _metric(text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def test_models_healthz_and_metrics(client, saved):
    models = client.get("/v1/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["router", *saved.pool["models"]]
    h = client.get("/healthz", headers={"authorization": ""})  # health needs no token
    assert h.status_code == 200 and h.json()["status"] == "ok" and h.json()["costs"] is True
    client.post("/v1/route", json={"prompt": "Which gas do plants absorb?"})
    text = client.get("/metrics").text
    assert _metric(text, 'routereval_requests_total{endpoint="/v1/route",status="200"}') >= 1
    assert "routereval_request_latency_seconds_bucket" in text and "routereval_upstream_errors" in text


def test_healthz_is_503_until_the_encoder_is_loaded(rb_router):
    import httpx

    from routereval.serve import create_app

    app = create_app(rb_router[0])

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serve") as c:
            before = await c.get("/healthz")
            route = await c.post("/v1/route", json={"prompt": "x"})
            async with app.router.lifespan_context(app):
                after = await c.get("/healthz")
        return before, route, after

    before, route, after = asyncio.run(go())
    assert before.status_code == 503 and route.status_code == 503 and after.status_code == 200


# --------------------------------------------------------------------------- auth, limits, bad input


def test_bearer_token_is_required(client):
    for headers in ({"authorization": ""}, {"authorization": "Bearer wrong"}, {"authorization": "Basic s3cret-token"},
                    {"authorization": "Bearer s3cret-token-and-more"}):
        for method, path in (("post", "/v1/route"), ("get", "/v1/models"), ("get", "/metrics"),
                             ("post", "/v1/chat/completions")):
            r = getattr(client, method)(path, headers=headers, **({"json": {"prompt": "x"}} if method == "post" else {}))
            assert r.status_code == 401, (headers, path)
            assert r.json()["error"]["type"] == "authentication_error" and r.headers["www-authenticate"] == "Bearer"
    assert client.post("/v1/route", json={"prompt": "x"}).status_code == 200


def test_token_file(rb_router, tmp_path, cli, serve_cli):
    from routereval.serve.app import read_token

    (tmp_path / "tok").write_text("  abc123\n")
    assert read_token(tmp_path / "tok") == "abc123"
    (tmp_path / "empty").write_text("\n")
    r = serve_cli(rb_router[0], "--token-file", tmp_path / "empty")
    assert r.code == 2 and r.err.count("\n") == 1 and "empty" in r.err and "token" in r.err
    r = serve_cli(rb_router[0], "--token-file", tmp_path / "missing")
    assert r.code == 2 and "token file not found" in r.err
    # from Python: an empty token would let "Bearer " in, a newline would shut everyone out
    from routereval.errors import InputError
    from routereval.serve import create_app

    for bad in ("", "abc123\n", 123):
        with pytest.raises(InputError, match="token must be one non-empty string"):
            create_app(rb_router[0], token=bad)


@pytest.mark.parametrize("option, value, needle", [
    ("trust_code", "no", r"trust_code \(--trust-code\) must be True or False; got 'no'"),  # "no" is truthy
    ("log_prompts", 1, r"log_prompts \(--log-prompts\) must be True or False"),
    ("upstream_timeout", "60", r"upstream_timeout \(--upstream-timeout\) must be a number of seconds > 0"),
    ("upstream_timeout", float("nan"), "upstream_timeout"),
    ("threads", 2.0, r"threads \(--threads\) must be an int >= 1"),
    ("max_wait_ms", 5000, r"max_wait_ms \(--max-wait-ms\) must be a number in \[0, 1000\]"),
    ("limits", {"max_prompts": 5}, "limits must be a routereval.serve.requests.Limits; got dict"),
    ("token_file", 3, r"token_file \(--token-file\) must be a path \(a str or pathlib.Path\); got 3"),
    ("upstreams", ["u.toml"], r"upstreams \(--upstreams\) must be a path .*; got \['u.toml'\]"),
    ("trust_code", np.bool_(True), None),  # numpy's bool is a bool
    ("encoder_backend", "fp8", r"encoder_backend \(--encoder-backend\) must be one of fp32, bf16, int8"),
])
def test_create_app_checks_its_options_naming_keyword_and_flag(rb_router, option, value, needle):
    from routereval.errors import InputError
    from routereval.serve import create_app

    if needle is None:
        create_app(rb_router[0], **{option: value})
        return
    with pytest.raises(InputError, match=needle):
        create_app(rb_router[0], **{option: value})


def test_create_app_takes_numpy_integers(rb_router):
    from routereval.serve import create_app

    state = create_app(rb_router[0], max_batch=np.int64(8), threads=np.int64(1)).state.serve
    assert state.max_batch == 8 and type(state.max_batch) is int


def test_limits_check_their_fields():
    from routereval.errors import ParameterError
    from routereval.serve.requests import Limits

    assert Limits(max_prompts=3).max_prompts == 3
    for field, value in (("max_body_bytes", 0), ("max_prompt_chars", 1.5), ("max_prompts", True)):
        with pytest.raises(ParameterError, match=rf"{field} \(--{field.replace('_', '-')}\) must be an int >= 1"):
            Limits(**{field: value})


@pytest.mark.parametrize("body, status, needle", [
    (b"{not json", 400, "not valid JSON"),
    (b"", 400, "empty request body"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b"{}", 422, "exactly one of 'prompt'"),
    (b'{"prompt": "a", "prompts": ["b"]}', 422, "exactly one of 'prompt'"),
    (b'{"prompt": 3}', 422, "prompt must be a string"),
    (b'{"prompt": "   "}', 422, "prompt is empty"),
    (b'{"prompts": []}', 422, "non-empty list"),
    (b'{"prompts": ["ok", 5]}', 422, "prompts[1] must be a string"),
    (b'{"prompt": "x", "temperature": 1}', 422, "unknown field 'temperature'"),
    (b'\xff\xfe', 400, "not valid JSON"),
])
def test_bad_route_requests_are_clear_4xx(client, body, status, needle):
    r = client.post("/v1/route", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status
    assert needle in r.json()["error"]["message"]


def test_unknown_paths_and_methods_answer_in_the_error_shape(client):
    r = client.get("/v1/nonexist")
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "not_found" and "GET /v1/nonexist" in err["message"] and "/v1/route" in err["message"]
    r = client.get("/v1/route")  # route is POST only
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in r.headers["allow"]


def test_limits_are_413(rb_router):
    from routereval.serve.requests import Limits

    limits = Limits(max_body_bytes=2000, max_prompt_chars=300, max_prompts=4)
    with _client(rb_router[0], limits=limits) as c:
        r = c.post("/v1/route", json={"prompt": "x" * 301})
        assert r.status_code == 413 and "301 characters; the limit is 300" in r.json()["error"]["message"]
        r = c.post("/v1/route", json={"prompts": ["a", "b", "c", "d", "e"]})
        assert r.status_code == 413 and "5 prompts" in r.json()["error"]["message"]
        r = c.post("/v1/route", content=json.dumps({"prompt": "y" * 5000}).encode())
        assert r.status_code == 413 and "2000 bytes" in r.json()["error"]["message"]

        def chunks():  # no Content-Length: the limit holds on what is actually sent
            for _ in range(10):
                yield b" " * 500

        r = c.post("/v1/route", content=chunks())
        assert r.status_code == 413
        r = c.post("/v1/chat/completions", json={"model": "router", "messages": [{"role": "user", "content": "z" * 400}]})
        assert r.status_code == 413
        assert c.post("/v1/route", json={"prompt": "x" * 300}).status_code == 200


def test_prompt_text_is_not_logged_unless_asked(rb_router, caplog):
    secret = "my very private prompt about zebras"
    for log_prompts in (False, True):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="routereval.serve"):
            with _client(rb_router[0], log_prompts=log_prompts) as c:
                assert c.post("/v1/route", json={"prompt": secret}).status_code == 200
        lines = [r.getMessage() for r in caplog.records if r.name == "routereval.serve"]
        assert any("/v1/route 200" in line for line in lines)
        assert any(secret in line for line in lines) is log_prompts


# --------------------------------------------------------------------------- the proxy (in process)


@pytest.fixture(scope="module")
def upstream_servers(saved):
    servers = {m: StandInUpstream(m) for m in saved.pool["models"]}
    yield servers
    for s in servers.values():
        s.close()


def test_chat_router_forwards_to_the_routed_models_upstream(rb_router, saved, upstream_servers, real_prompts, tmp_path):
    upstreams_toml(tmp_path / "up.toml", upstream_servers)
    for s in upstream_servers.values():
        s.received.clear()
    with _client(rb_router[0], upstreams=tmp_path / "up.toml") as c:
        want = c.post("/v1/route", json={"prompt": real_prompts[0]}).json()["model"]
        body = {"model": "router", "temperature": 0.2,
                "messages": [{"role": "system", "content": "be brief"},
                             {"role": "user", "content": "an earlier question"},
                             {"role": "assistant", "content": "an earlier answer"},
                             {"role": "user", "content": real_prompts[0]}]}
        r = c.post("/v1/chat/completions", json=body)
    assert r.status_code == 200
    assert r.headers["x-routereval-model"] == want and r.json()["model"] == want
    assert r.json()["choices"][0]["message"]["content"] == f"answer from {want}"
    i = saved.pool["models"].index(want)
    got = upstream_servers[want].received
    assert len(got) == 1 and got[0]["path"] == "/v1/chat/completions"
    assert got[0]["body"] == {**body, "model": f"up-{i}"}  # the upstream's model name, everything else as sent
    assert got[0]["headers"]["authorization"] == f"Bearer key-{i}"  # the upstream's key, not the client's
    assert sum(len(s.received) for s in upstream_servers.values()) == 1


def test_chat_errors(rb_router, saved, upstream_servers, tmp_path):
    upstreams_toml(tmp_path / "up.toml", upstream_servers)
    msgs = [{"role": "user", "content": "hello"}]
    with _client(rb_router[0], upstreams=tmp_path / "up.toml") as c:
        r = c.post("/v1/chat/completions", json={"model": "gpt-17", "messages": msgs})
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found" and "gpt-17" in r.text
        r = c.post("/v1/chat/completions", json={"messages": msgs})
        assert r.status_code == 422 and "missing field 'model'" in r.json()["error"]["message"]
        r = c.post("/v1/chat/completions", json={"model": "router"})
        assert r.status_code == 422 and "missing field 'messages'" in r.json()["error"]["message"]
        r = c.post("/v1/chat/completions", json={"model": "router", "messages": [{"role": "system", "content": "x"}]})
        assert r.status_code == 422 and "no" in r.json()["error"]["message"] and "user message" in r.text
        r = c.post("/v1/chat/completions", json={"model": "router", "messages": [{"content": "x"}]})
        assert r.status_code == 422 and "role" in r.json()["error"]["message"]
        r = c.post("/v1/chat/completions", json={"model": "router", "messages": msgs, "stream": "yes"})
        assert r.status_code == 422
    with _client(rb_router[0]) as c:  # no --upstreams: routing only
        r = c.post("/v1/chat/completions", json={"model": "router", "messages": msgs})
        assert r.status_code == 503 and "--upstreams" in r.json()["error"]["message"]


def test_failing_and_hanging_upstreams(rb_router, saved, upstream_servers, tmp_path):
    models = saved.pool["models"]
    with StandInUpstream(models[0], mode="fail") as bad, StandInUpstream(models[1], mode="hang") as hang:
        servers = {**upstream_servers, models[0]: bad, models[1]: hang}
        upstreams_toml(tmp_path / "up.toml", servers, timeout=0.5)
        msgs = [{"role": "user", "content": "hello"}]
        with _client(rb_router[0], upstreams=tmp_path / "up.toml") as c:
            r = c.post("/v1/chat/completions", json={"model": models[0], "messages": msgs})
            assert r.status_code == 502
            err = r.json()["error"]["message"]
            assert repr(models[0]) in err and bad.base_url in err and "HTTP 500" in err
            r = c.post("/v1/chat/completions", json={"model": models[1], "messages": msgs, "stream": True})
            assert r.status_code == 504
            assert repr(models[1]) in r.json()["error"]["message"] and "0.5 s" in r.json()["error"]["message"]
            r = c.post("/v1/chat/completions", json={"model": models[2], "messages": msgs})
            assert r.status_code == 200 and r.json()["model"] == models[2]  # the others still answer
            text = c.get("/metrics").text
        assert _metric(text, f'routereval_upstream_errors_total{{kind="status",model="{models[0]}"}}') == 1
        assert _metric(text, f'routereval_upstream_errors_total{{kind="timeout",model="{models[1]}"}}') == 1
        assert len(bad.received) == 1 and len(hang.received) == 1
    # an upstream nobody listens on
    from serve_fixtures import free_port

    (tmp_path / "down.toml").write_text("\n".join(
        f'[models."{m}"]\nbase_url = "http://127.0.0.1:{free_port()}/v1"' for m in models))
    with _client(rb_router[0], upstreams=tmp_path / "down.toml") as c:
        r = c.post("/v1/chat/completions", json={"model": models[2], "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 502 and "ConnectError" in r.json()["error"]["message"]


# --------------------------------------------------------------------------- start-up checks (CLI, one line)


def _copy(rb_router, tmp_path, name):
    d = tmp_path / name
    shutil.copytree(rb_router[0], d)
    return d


@pytest.fixture
def serve_cli(cli):
    """``routereval serve ARGS`` on a loopback port this test holds: a start-up check that regressed
    fails on the busy port instead of serving forever."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        yield lambda *args: cli("serve", *args, "--port", port)


def _one_line_error(result, *needles):
    assert result.code == 2, result.err
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    for n in needles:
        assert n in result.err, result.err


def test_tampered_router_dirs_fail_at_start_with_one_line(rb_router, tmp_path, cli, serve_cli):
    d = _copy(rb_router, tmp_path, "badjson")
    (d / "router.json").write_text((d / "router.json").read_text()[:-20])
    _one_line_error(serve_cli(d), "router.json", "not valid JSON")

    d = _copy(rb_router, tmp_path, "shape")
    doc = json.loads((d / "router.json").read_text())
    doc["state_arrays"]["train_X_"]["shape"][1] += 1
    (d / "router.json").write_text(json.dumps(doc))
    _one_line_error(serve_cli(d), "state.safetensors", "train_X_", "router.json says")

    d = _copy(rb_router, tmp_path, "checksum")
    with open(d / "state.safetensors", "r+b") as f:
        f.seek(-3, 2)
        f.write(b"\x00\x01\x02")
    _one_line_error(serve_cli(d), "checksum")

    d = _copy(rb_router, tmp_path, "missing")
    (d / "state.safetensors").unlink()
    _one_line_error(serve_cli(d), "state.safetensors", "missing")

    d = _copy(rb_router, tmp_path, "pool")
    doc = json.loads((d / "router.json").read_text())
    doc["pool"]["models"] = doc["pool"]["models"][:2]
    (d / "router.json").write_text(json.dumps(doc))
    _one_line_error(serve_cli(d), "scores 3 models but pool.models lists 2")


def test_bad_options_and_upstreams_fail_at_start(rb_router, saved, tmp_path, cli, serve_cli):
    d = rb_router[0]
    _one_line_error(serve_cli(d, "--cost-weight", "-1"), "--cost-weight")
    _one_line_error(serve_cli(d, "--max-batch", "0"), "--max-batch")
    _one_line_error(serve_cli(d, "--encoder-backend", "fp8"), "--encoder-backend", "fp32, bf16, int8")
    _one_line_error(serve_cli(d, "--threads", "0"), "--threads", "int >= 1")
    _one_line_error(serve_cli(d, "--upstream-timeout", "0"), "--upstream-timeout", "> 0")
    _one_line_error(serve_cli(d, "--max-prompts", "0"), "--max-prompts", "int >= 1")
    (tmp_path / "bad.toml").write_text("[models.x\n")
    _one_line_error(serve_cli(d, "--upstreams", tmp_path / "bad.toml"), "bad.toml", "not valid TOML")
    (tmp_path / "typo.toml").write_text('[models."gpt-17"]\nbase_url = "http://127.0.0.1:9/v1"\n')
    _one_line_error(serve_cli(d, "--upstreams", tmp_path / "typo.toml"), "gpt-17", "not a model of the router's pool")
    m = saved.pool["models"]
    (tmp_path / "part.toml").write_text(f'[models."{m[0]}"]\nbase_url = "http://127.0.0.1:9/v1"\n')
    _one_line_error(serve_cli(d, "--upstreams", tmp_path / "part.toml"), "no upstream for pool model", m[1])
    (tmp_path / "url.toml").write_text("\n".join(f'[models."{x}"]\nbase_url = "ftp://h/v1"' for x in m))
    _one_line_error(serve_cli(d, "--upstreams", tmp_path / "url.toml"), "base_url must be an http(s) URL")
    (tmp_path / "nourl.toml").write_text("\n".join(f'[models."{x}"]\nmodel = "y"' for x in m))
    _one_line_error(serve_cli(d, "--upstreams", tmp_path / "nourl.toml"), "missing key 'base_url'")
    from routereval.errors import InputError
    from routereval.serve import create_app

    for url in ("http://:9/v1", "http://127.0.0.1:port/v1", "http://127.0.0.1:70000/v1"):  # no host, bad ports
        (tmp_path / "url.toml").write_text("\n".join(f'[models."{x}"]\nbase_url = "{url}"' for x in m))
        with pytest.raises(InputError, match="base_url must be an http"):  # create_app: a regression fails, not serves
            create_app(d, upstreams=tmp_path / "url.toml")
    (tmp_path / "env.toml").write_text("\n".join(f'[models."{x}"]\nbase_url = "http://h/v1"\n'
                                                 f'api_key_env = "ROUTEREVAL_TEST_UNSET_KEY"' for x in m))
    _one_line_error(serve_cli(d, "--upstreams", tmp_path / "env.toml"), "ROUTEREVAL_TEST_UNSET_KEY", "not set")


def test_a_router_without_costs_serves_but_refuses_a_cost_weight(rb_router, tmp_path, cli, serve_cli):
    """A router saved before costs were stored (no pool.cost) still loads."""
    d = _copy(rb_router, tmp_path, "nocost")
    doc = json.loads((d / "router.json").read_text())
    del doc["pool"]["cost"]
    (d / "router.json").write_text(json.dumps(doc))
    _one_line_error(serve_cli(d, "--cost-weight", "2"), "fitted without model costs")
    with _client(d) as c:
        assert c.post("/v1/route", json={"prompt": "x"}).status_code == 200
        r = c.post("/v1/route", json={"prompt": "x", "cost_weight": 1})
        assert r.status_code == 422 and "without model costs" in r.json()["error"]["message"]
        assert c.get("/healthz").json()["costs"] is False


def test_module_class_router_loads_only_with_trust_code(rb_router, tmp_path, cli, monkeypatch, serve_cli):
    import sys
    from pathlib import Path

    from routereval.cli.main import run

    examples = Path(__file__).resolve().parents[1] / "examples"
    monkeypatch.syspath_prepend(str(examples))
    d = tmp_path / "ridge"
    # same corpus: its MiniLM embeddings come from the cache
    assert run(["fit", str(rb_router[1]), "--benchmark", BENCH, "--router", "my_router:RidgeRouter", "--m", "3",
                "--group", "strong_to_weak", "--embedding", "minilm", "--save", str(d), "--json"]) == 0
    sys.modules.pop("my_router", None)
    _one_line_error(serve_cli(d), "my_router:RidgeRouter", "trust")
    assert "my_router" not in sys.modules  # refused before any import
    with _client(d, trust_code=True) as c:
        r = c.post("/v1/route", json={"prompt": "Which gas do plants absorb?"})
        assert r.status_code == 200 and len(r.json()["scores"]) == 3


def test_a_router_fitted_on_other_embeddings_fails_at_start(saved, tmp_path, cli, serve_cli):
    """Consistent files (checksums match) whose arrays do not fit the encoder: 100-dim train_X_ vs MiniLM's 384."""
    from routereval.routers import make_router
    from routereval.routers.persist import save_router

    rng = np.random.default_rng(0)
    r = make_router("knn", k=3).fit(rng.standard_normal((20, 100)), (rng.random((20, 3)) > 0.5).astype(float))
    save_router(r, tmp_path / "dim", pool=saved.pool, encoder="minilm")
    _one_line_error(serve_cli(tmp_path / "dim"), "router.json", "384 features", "expected 100")

    save_router(r, tmp_path / "synth", pool=saved.pool, encoder="synth")
    _one_line_error(serve_cli(tmp_path / "synth"), "synth/router.json", "'synth' embeddings", "cannot embed a new prompt")
    save_router(r, tmp_path / "gone", pool=saved.pool, encoder=str(tmp_path / "no-such-encoder"))
    _one_line_error(serve_cli(tmp_path / "gone"), "gone/router.json", "unknown encoder", "no-such-encoder")


def test_packed_encoder_equals_sentence_transformers_on_mixed_real_prompts(real_prompts, shared_data):
    """The packed forward (no padding, chunks over two threads) gives sentence-transformers' embeddings:
    long RouterBench few-shot prompts (truncated at 256 tokens) mixed with short AlpacaEval instructions."""
    import gzip
    import json

    from routereval.embed import embed_texts
    from routereval.serve.encoder import PromptEncoder

    with gzip.open(shared_data / "alpaca_eval" / "instructions.jsonl.gz", "rt") as f:
        alpaca = [json.loads(line)["instruction"] for _, line in zip(range(40), f)]
    texts = [t for pair in zip(alpaca, real_prompts * 5) for t in pair] + ["hi", "a"]  # long and short interleaved
    ref = embed_texts(texts, "minilm")
    enc = PromptEncoder("minilm", threads=2).load()
    assert enc.concurrency == 2
    got = enc.encode(texts)
    assert got.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-5)
    np.testing.assert_allclose(enc.encode([texts[1]])[0], got[1], atol=1e-6)  # alone or in a batch: the same


def test_faster_encoder_backends_stay_close_to_fp32(real_prompts):
    """bf16 and int8 MiniLM on real RouterBench prompts; their route agreement is measured in bench_serve."""
    from routereval.embed import embed_texts
    from routereval.serve.encoder import PromptEncoder

    ref = embed_texts(real_prompts, "minilm")
    np.testing.assert_allclose(PromptEncoder("minilm").load().encode(real_prompts), ref, atol=1e-5)
    for backend, min_cos in (("bf16", 0.999), ("int8", 0.9)):
        got = PromptEncoder("minilm", backend=backend).load().encode(real_prompts)
        assert got.shape == ref.shape and got.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        cos = (got * ref).sum(axis=1)
        assert cos.min() > min_cos, (backend, cos)
        assert np.abs(got - ref).max() > 1e-5, backend  # really a different computation


def test_a_busy_port_is_one_line_not_a_server_log(rb_router, serve_cli):
    r = serve_cli(rb_router[0])  # a good router on the port the fixture holds
    assert r.code == 2, r.err
    # checked before the encoder loads: no loading log, no warning, just the error line
    assert r.err.count("\n") == 1 and r.err.startswith("error: --host/--port: cannot listen on 127.0.0.1:"), r.err
