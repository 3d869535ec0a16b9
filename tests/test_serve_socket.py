"""Issue 9 over a real socket: ``routereval serve`` as a uvicorn subprocess on a free 127.0.0.1 port,
driven by the official ``openai`` client (plain and streaming completions) and by curl, proxying
to stand-in upstream servers on 127.0.0.1 (tests/serve_fixtures.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from serve_fixtures import STREAM_PAUSE_S, STREAM_PIECES, StandInUpstream, free_port, upstreams_toml

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "tok-" + "7" * 32
START_TIMEOUT_S = 180  # loading torch and MiniLM on a busy 2-core machine


@pytest.fixture(scope="module")
def server(rb_router, saved, tmp_path_factory):
    """(base_url, upstream servers, pool models): the CLI serving the router with auth and upstreams."""
    tmp = tmp_path_factory.mktemp("socket")
    models = saved.pool["models"]
    servers = {m: StandInUpstream(m) for m in models}
    upstreams_toml(tmp / "up.toml", servers)
    (tmp / "token").write_text(TOKEN + "\n")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "routereval", "serve", str(rb_router[0]), "--port", str(port),
                             "--upstreams", str(tmp / "up.toml"), "--token-file", str(tmp / "token")],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # bounded: until /healthz answers, the process dies or the deadline passes
            assert proc.poll() is None, (tmp / "server.log").read_text()
            assert time.monotonic() < deadline, "server did not become healthy"
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        yield base, servers, models, tmp / "server.log"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        for s in servers.values():
            s.close()


def _openai(base):
    import openai

    return openai.OpenAI(base_url=base + "/v1", api_key=TOKEN, max_retries=0, timeout=60)


def test_openai_client_plain_completion_through_the_router(server, real_prompts):
    base, servers, models, _ = server
    for s in servers.values():
        s.received.clear()
    want = httpx.post(base + "/v1/route", json={"prompt": real_prompts[1]},
                      headers={"authorization": f"Bearer {TOKEN}"}).json()["model"]
    raw = _openai(base).chat.completions.with_raw_response.create(
        model="router", messages=[{"role": "user", "content": real_prompts[1]}], max_tokens=5)
    completion = raw.parse()
    assert raw.headers["x-routereval-model"] == want and completion.model == want
    assert completion.choices[0].message.content == f"answer from {want}"
    got = servers[want].received
    assert len(got) == 1 and got[0]["body"]["model"] == f"up-{models.index(want)}" and got[0]["body"]["max_tokens"] == 5
    assert sum(len(s.received) for s in servers.values()) == 1

    # a concrete pool model passes straight through to its own upstream
    other = next(m for m in models if m != want)
    c2 = _openai(base).chat.completions.create(model=other, messages=[{"role": "user", "content": "hi"}])
    assert c2.model == other and c2.choices[0].message.content == f"answer from {other}"
    assert [m.id for m in _openai(base).models.list()] == ["router", *models]


def test_openai_client_streaming_is_passed_through_chunk_by_chunk(server, real_prompts):
    base, servers, models, _ = server
    stream = _openai(base).chat.completions.create(
        model="router", messages=[{"role": "user", "content": real_prompts[2]}], stream=True)
    pieces, arrived, names = [], [], set()
    for chunk in stream:
        arrived.append(time.monotonic())
        names.add(chunk.model)
        pieces.append(chunk.choices[0].delta.content or "")
    assert "".join(pieces) == "".join(STREAM_PIECES) and len(pieces) == len(STREAM_PIECES)
    assert len(names) == 1 and names <= set(models)  # every chunk names the routed pool model
    # the upstream pauses between events: had the proxy buffered the answer, the first piece would reach the
    # client only after the upstream sent the last. (The stand-in runs in this process: one clock. Timing the
    # spread of the arrivals instead failed on a loaded machine, when the first piece came late.)
    sent = servers[next(iter(names))].stream_sent[-len(STREAM_PIECES):]
    assert arrived[0] < sent[-1], (arrived, sent)
    assert sent[-1] - sent[0] >= (len(STREAM_PIECES) - 1) * STREAM_PAUSE_S  # the pauses happened


def test_openai_client_errors(server):
    import openai

    base, _, _, _ = server
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError, match="gpt-17"):
        _openai(base).chat.completions.create(model="gpt-17", messages=[{"role": "user", "content": "x"}])


def test_curl_route_and_concurrent_clients(server, real_prompts):
    base, _, _, log = server
    out = subprocess.run(["curl", "-sS", "--max-time", "60", "-H", f"Authorization: Bearer {TOKEN}",
                          "-H", "Content-Type: application/json", "-d", json.dumps({"prompt": real_prompts[4]}),
                          base + "/v1/route"], capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["model"] in doc["scores"]

    # 16 clients at once over the socket: every answer equals the batch answer for the same prompt
    prompts = (real_prompts * 2)[:16]
    results: dict[int, dict] = {}

    def one(i):
        results[i] = httpx.post(base + "/v1/route", json={"prompt": prompts[i]}, timeout=60,
                                headers={"authorization": f"Bearer {TOKEN}"}).json()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    batch = httpx.post(base + "/v1/route", json={"prompts": prompts}, timeout=60,
                       headers={"authorization": f"Bearer {TOKEN}"}).json()["routes"]
    assert [results[i] for i in range(16)] == batch
    assert real_prompts[4][:40] not in log.read_text()  # no prompt text in the server's log
