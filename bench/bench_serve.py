"""``routereval serve`` under load, on loopback only: single-prompt latency, 16 concurrent clients
(micro-batching), batches of 32, 10,000 requests without a server error; the baseline, measured
in the same run, is the encoder's raw throughput on the same prompts.

Router: knn (k = 5) fitted with MiniLM on a seeded sample of 600 RouterBench ARC-Challenge
prompts (m = 5, strong_to_weak; real USD costs). Prompts: the real AlpacaEval instructions
shorter than 64 MiniLM tokens. The server is ``routereval serve`` in a subprocess on a free
127.0.0.1 port. The load comes from this process, on the same 2 cores as the server, through
two clients: a minimal one (asyncio streams speaking just enough HTTP/1.1 keep-alive to POST
JSON: about 0.1 ms of CPU per request, like ``wrk``, so the figures measure the server) and
httpx (what a Python caller uses: about 1.4 ms of CPU per request, taken from the server's
cores). Every client loop is bounded.

Run alone with ``python bench/bench_serve.py`` (about 10 minutes on a busy 2-core machine).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import commit as git_commit

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `routereval serve` sets it: the baseline runs like the server
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
WORK = Path(os.environ.get("ROUTEREVAL_BENCH_SERVE_DIR", "/tmp/routereval-bench-serve"))
BENCH = "routerbench.arc-challenge"
N_FIT = 600
RUNS = 5
BACKENDS = ("fp32", "bf16", "int8")


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _router() -> Path:
    """Fit (once; the corpus's embedding cache makes a re-run instant) and save the bench's router."""
    from routereval.data.model import Corpus
    from routereval.data.store import write_corpus
    from routereval.evaluate import fit_router
    from routereval.sources import import_spec

    corpus, router = WORK / "corpus", WORK / "router"
    if not corpus.exists():
        bench = import_spec(ROOT / "examples" / "sources" / "routerbench.toml")[BENCH]
        keep = np.sort(np.random.default_rng(0).choice(bench.n_prompts, N_FIT, replace=False))
        write_corpus(Corpus.from_benchmarks([bench.select(prompts=keep)]), corpus)
    fit_router(corpus, benchmark=BENCH, router="knn", m=5, group="strong_to_weak", embedding="minilm", save=router)
    return router


def _short_prompts() -> list[str]:
    from routereval.embed import minilm_path
    from routereval.embed.neural import _load_sentence_transformer

    tok = _load_sentence_transformer(str(minilm_path().resolve())).tokenizer
    with gzip.open(DATA / "alpaca_eval" / "instructions.jsonl.gz", "rt") as f:
        texts = [json.loads(line)["instruction"] for line in f]
    return [t for t in texts if len(tok(t)["input_ids"]) < 64]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``routereval serve`` in a subprocess on 127.0.0.1."""

    def __init__(self, router: Path, *extra: str) -> None:
        import httpx

        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.proc = subprocess.Popen([sys.executable, "-m", "routereval", "serve", str(router), "--port",
                                      str(self.port), "--log-level", "warning", *extra], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stderr.read().decode())
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        self.close()
        raise RuntimeError("server did not start")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _baseline(prompts: list[str]) -> dict:
    """The encoder alone, in this process: sentence-transformers as `eval` runs it (padded batches of 32),
    and serve's packed encoder on 1 and 2 threads."""
    from routereval.embed import embed_texts
    from routereval.serve.encoder import PromptEncoder

    sample = prompts[:256]
    embed_texts(sample[:8], "minilm")
    out = {}
    t = [_timed(lambda: embed_texts(sample, "minilm", batch_size=32)) for _ in range(RUNS)]
    out["st"] = len(sample) / statistics.median(t)  # before serve's encoder sets torch to 1 thread
    for backend, threads in [("fp32", 1), *((b, 2) for b in BACKENDS)]:
        enc = PromptEncoder("minilm", backend=backend, threads=threads).load()
        enc.encode(sample[:8])
        t = [_timed(lambda: enc.encode(sample)) for _ in range(RUNS)]
        key = backend if threads == 2 else f"{backend}_1t"
        out[key] = len(sample) / statistics.median(t)
        single = []
        for p in sample[:100]:
            t0 = time.perf_counter()
            enc.encode([p])
            single.append(time.perf_counter() - t0)
        out[key + "_single_ms"] = statistics.median(single) * 1000
    return out


def _cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


class _Conn:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and reads a Content-Length answer."""

    def __init__(self, port: int) -> None:
        self.port, self.reader, self.writer = port, None, None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body))
        head = (await self.reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        length = next((int(line.split(b":")[1]) for line in head[1:] if line.lower().startswith(b"content-length:")), None)
        if length is None:
            raise OSError("answer without Content-Length")
        return int(head[0].split()[1]), await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _latency(base: str, prompts: list[str], n: int) -> tuple[float, float]:
    """p50, p99 (ms) of n sequential single-prompt requests on one keep-alive httpx connection."""
    import httpx

    lat = []
    with httpx.Client(base_url=base, timeout=60) as c:
        for i in range(n):
            t = time.perf_counter()
            r = c.post("/v1/route", json={"prompt": prompts[i % len(prompts)]})
            lat.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
    return float(np.percentile(lat, 50) * 1000), float(np.percentile(lat, 99) * 1000)


class _HttpxConn:
    """:class:`_Conn`'s interface over a shared ``httpx.AsyncClient`` (its pool of keep-alive connections)."""

    def __init__(self, client) -> None:
        self.client = client

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        r = await self.client.post(path, content=body, headers={"Content-Type": "application/json"})
        return r.status_code, r.content

    async def close(self) -> None:
        pass


async def _drive(srv: Server, prompts: list[str], clients: int, per_client: int, batch: int = 1, *,
                 client: str = "minimal") -> dict:
    """``clients`` tasks each sending ``per_client`` requests of ``batch`` prompts through the minimal
    client (a connection each) or httpx (one pooled client); counts every failure."""
    import httpx

    ok = errors = server_errors = 0
    lat: list[float] = []

    async def worker(w: int, conn) -> None:
        nonlocal ok, errors, server_errors
        for i in range(per_client):
            k = (w * per_client + i) * batch
            doc = ({"prompt": prompts[k % len(prompts)]} if batch == 1 else
                   {"prompts": [prompts[(k + j) % len(prompts)] for j in range(batch)]})
            t = time.perf_counter()
            try:
                status, body = await asyncio.wait_for(conn.post("/v1/route", json.dumps(doc).encode()), 120)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, httpx.HTTPError):
                errors += 1
                await conn.close()
                continue
            lat.append(time.perf_counter() - t)
            if status == 200 and len(json.loads(body).get("routes", [None])) == batch:
                ok += 1
            else:
                errors += 1
                server_errors += status >= 500
        await conn.close()

    t0 = time.perf_counter()
    if client == "httpx":
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=srv.base, timeout=120, limits=limits) as c:
            await asyncio.gather(*[worker(w, _HttpxConn(c)) for w in range(clients)])
    else:
        await asyncio.gather(*[worker(w, _Conn(srv.port)) for w in range(clients)])
    wall = time.perf_counter() - t0
    return {"prompts_s": ok * batch / wall, "ok": ok, "errors": errors, "server_errors": server_errors, "wall": wall,
            "p50": float(np.percentile(lat, 50) * 1000), "p99": float(np.percentile(lat, 99) * 1000)}


def _route_agreement(router: Path) -> dict:
    """How many real prompts serve's encoders route like the embeddings the router was fitted on
    (sentence-transformers): every AlpacaEval instruction (short and long) and 300 RouterBench ARC
    prompts (long few-shot ones)."""
    from routereval.data.store import open_corpus
    from routereval.embed import embed_texts
    from routereval.routers.persist import load_router
    from routereval.serve.encoder import PromptEncoder

    saved = load_router(router)
    with gzip.open(DATA / "alpaca_eval" / "instructions.jsonl.gz", "rt") as f:
        alpaca = [json.loads(line)["instruction"] for line in f]
    arc = open_corpus(WORK / "corpus")[BENCH].texts[:300].tolist()
    sets = (("alpaca", alpaca), ("arc", arc))
    want = {name: saved.router.route(embed_texts(t, "minilm")) for name, t in sets}
    out = {}
    for backend in BACKENDS:
        enc = PromptEncoder("minilm", backend=backend).load()
        for name, texts in sets:
            got = saved.router.route(enc.encode(texts))
            out[backend, name] = (int((got == want[name]).sum()), len(texts))
    return out


def _round(srv: Server, prompts: list[str], *, httpx_too: bool) -> dict:
    """One run of every figure on one server, with the CPU time server and client spent per prompt."""
    res: dict = {}

    def phase(name, n_prompts, fn):
        s0, c0 = _cpu(srv.proc.pid), time.process_time()
        out = fn()
        res[name + "_cpu_ms"] = ((_cpu(srv.proc.pid) - s0) / n_prompts * 1000, (time.process_time() - c0) / n_prompts * 1000)
        return out

    single = phase("single", 200, lambda: asyncio.run(_drive(srv, prompts, 1, 200)))
    conc = phase("c16", 960, lambda: asyncio.run(_drive(srv, prompts, 16, 60)))
    b32 = phase("b32", 480, lambda: asyncio.run(_drive(srv, prompts, 1, 15, batch=32)))
    res.update(p50=single["p50"], p99=single["p99"], c16=conc["prompts_s"], c16_p50=conc["p50"],
               b32=b32["prompts_s"], errors=single["errors"] + conc["errors"] + b32["errors"])
    if httpx_too:
        res["httpx_p50"], res["httpx_p99"] = phase("httpx_single", 200, lambda: _latency(srv.base, prompts, 200))
        res["httpx_c16"] = phase("httpx_c16", 960,
                                 lambda: asyncio.run(_drive(srv, prompts, 16, 60, client="httpx")))["prompts_s"]
    return res


def _serve_figures(router: Path, prompts: list[str]) -> dict:
    """Every backend's figures: one server each, all up at once, measured in rounds (fp32, bf16,
    int8, fp32, ...) so that a slow minute of the shared machine does not fall on one backend;
    medians over the rounds."""
    servers = {}
    try:
        for b in BACKENDS:
            servers[b] = Server(router, "--encoder-backend", b)
            _latency(servers[b].base, prompts, 20)  # warm connections and caches
        rounds: dict = {b: [] for b in BACKENDS}
        load_before = _load()
        for _ in range(RUNS):
            for b in BACKENDS:
                rounds[b].append(_round(servers[b], prompts, httpx_too=b == "fp32"))
        load_after = _load()
    finally:
        for srv in servers.values():
            srv.close()
    figs = {}
    for b, rs in rounds.items():
        figs[b] = {k: (tuple(statistics.median(r[k][i] for r in rs) for i in range(2)) if isinstance(rs[0][k], tuple)
                       else sum(r[k] for r in rs) if k == "errors" else statistics.median(r[k] for r in rs))
                   for k in rs[0]}
        figs[b]["c16_runs"] = [r["c16"] for r in rs]
        figs[b]["b32_runs"] = [r["b32"] for r in rs]
    figs["load"] = (load_before, load_after)
    return figs


def main() -> str:
    commit = git_commit()
    WORK.mkdir(parents=True, exist_ok=True)
    router = _router()
    prompts = _short_prompts()
    load0 = _load()
    base = _baseline(prompts)
    agree = _route_agreement(router)
    figs = _serve_figures(router, prompts)
    # 10,000 requests from 16 httpx clients (the heavier, real client library), default (fp32) server
    srv = Server(router)
    try:
        big = asyncio.run(_drive(srv, prompts, 16, 625, client="httpx"))
    finally:
        srv.close()
    load_end = _load()
    fp32 = figs["fp32"]

    def row(name, target, fmt, ok_if):
        cells = [fmt(figs[b]) for b in BACKENDS]
        met = " / ".join("met" if ok_if(figs[b]) else "missed" for b in BACKENDS)
        return f"| {name} | {target} | " + " | ".join(cells) + f" | {met} |"

    loads = f"the servers' rounds from {figs['load'][0]} to {figs['load'][1]}"
    same = {b: " and ".join(f"{agree[b, n][0]}/{agree[b, n][1]} {label}" for n, label in
                            (("alpaca", "AlpacaEval instructions"), ("arc", "RouterBench ARC prompts")))
            for b in BACKENDS}
    lines = [
        "## serve: the routing API under load (loopback)",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit `{commit}`. Router: knn (k = 5) fitted with "
        f"MiniLM on {N_FIT} RouterBench ARC-Challenge prompts (m = 5, strong_to_weak). Prompts: the {len(prompts)} real "
        "AlpacaEval instructions under 64 MiniLM tokens. `routereval serve` (defaults: 2 encoder threads, "
        "--max-wait-ms 2) in a subprocess on 127.0.0.1; the load from the bench process on the same 2 cores, "
        "through a minimal HTTP/1.1 keep-alive client (asyncio streams, ~0.1 ms CPU per request, like `wrk`: the "
        f"figures measure the server) unless httpx is named. The three servers run at once and are measured in {RUNS} "
        "rounds (fp32, bf16, int8, fp32, ...); medians over the rounds. **Load average (1, 5, 15 min)**: "
        f"{load0} at the start, {load_end} at the end ({loads}). The machine's 2 cores are shared with other "
        "work; its speed drifts by about 10% between runs.",
        "",
        "| figure | target | fp32 encoder (default) | bf16 (`--encoder-backend bf16`) | int8 (`--encoder-backend int8`) "
        "| target met (fp32 / bf16 / int8) |",
        "|---|---|---|---|---|---|",
        row("single short prompt p50", "< 20 ms", lambda r: f"{r['p50']:.1f} ms", lambda r: r["p50"] < 20),
        row("single short prompt p99", "< 60 ms", lambda r: f"{r['p99']:.1f} ms", lambda r: r["p99"] < 60),
        row("16 concurrent clients (micro-batching)", ">= 150 prompts/s",
            lambda r: f"{r['c16']:.0f} prompts/s (p50 {r['c16_p50']:.0f} ms)", lambda r: r["c16"] >= 150),
        row("batches of 32 prompts", ">= 200 prompts/s", lambda r: f"{r['b32']:.0f} prompts/s",
            lambda r: r["b32"] >= 200),
        "",
        "Failed requests in these runs: " + ", ".join(f"{b} {figs[b]['errors']}" for b in BACKENDS) + ". The rounds "
        "one by one, fp32: 16 clients " + ", ".join(f"{x:.0f}" for x in fp32["c16_runs"]) + " prompts/s; batches of "
        "32 " + ", ".join(f"{x:.0f}" for x in fp32["b32_runs"]) + " prompts/s.",
        "",
        f"With httpx as the client (fp32 server; httpx's own CPU comes out of the same 2 cores): single prompt p50 "
        f"{fp32['httpx_p50']:.1f} ms, p99 {fp32['httpx_p99']:.1f} ms; 16 concurrent clients {fp32['httpx_c16']:.0f} "
        f"prompts/s (client CPU {fp32['httpx_c16_cpu_ms'][1]:.2f} ms per request, vs "
        f"{fp32['c16_cpu_ms'][1]:.2f} ms for the minimal client).",
        "",
        f"10,000 single-prompt requests from 16 httpx clients (fp32 server): {big['ok']:,} answered 200, "
        f"{big['server_errors']} server errors (5xx), {big['errors']} failed in all, in {big['wall']:.0f} s "
        f"({big['prompts_s']:.0f} prompts/s, p50 {big['p50']:.0f} ms, p99 {big['p99']:.0f} ms).",
        "",
        "Baseline, the encoder alone in one process on the same prompts (one call of 256 prompts, median of "
        f"{RUNS}): sentence-transformers (what `eval`/`fit` run; padded batches of 32) {base['st']:.0f} prompts/s; "
        f"serve's packed encoder fp32 on 1 thread {base['fp32_1t']:.0f} prompts/s (single prompt "
        f"{base['fp32_1t_single_ms']:.1f} ms), on 2 threads "
        + ", ".join(f"{b} {base[b]:.0f} prompts/s ({base[b] / base['st']:.2f}x), single prompt {base[b + '_single_ms']:.1f} ms"
                    for b in BACKENDS)
        + f". Server throughput / raw encoder throughput (fp32, 2 threads): 16 clients {fp32['c16'] / base['fp32']:.2f}, "
        f"batches of 32 {fp32['b32'] / base['fp32']:.2f}.",
        "",
        "CPU time per prompt (server + client, ms): "
        + "; ".join(f"{label} " + ", ".join(f"{b} {figs[b][k][0]:.1f} + {figs[b][k][1]:.1f}" for b in BACKENDS)
                    for label, k in (("single", "single_cpu_ms"), ("16 clients", "c16_cpu_ms"),
                                     ("batches of 32", "b32_cpu_ms")))
        + ".",
        "",
        "Routes like the sentence-transformers embeddings the router was fitted on: "
        + "; ".join(f"{b} on {same[b]}" for b in BACKENDS) + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    print(main())
