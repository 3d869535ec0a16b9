"""``routereval serve ROUTER_DIR``: the routing API and OpenAI-compatible proxy under uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def serve_cmd(
    router_dir: Annotated[Path, typer.Argument(help="A router directory written by `routereval fit --save`.")],
    host: Annotated[str, typer.Option("--host", help="Interface to bind (loopback unless told otherwise).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    upstreams: Annotated[Optional[Path], typer.Option("--upstreams", help="UPSTREAMS.toml: each pool model's OpenAI-compatible base URL, model name and key.")] = None,
    token_file: Annotated[Optional[Path], typer.Option("--token-file", help="File holding the bearer token clients must send (no auth without it).")] = None,
    trust_code: Annotated[bool, typer.Option("--trust-code", help="Allow a router directory naming a module:Class (imports and runs that module).")] = False,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Most prompts per micro-batch.")] = 64,
    max_wait_ms: Annotated[float, typer.Option("--max-wait-ms", help="Longest a prompt waits for others to batch with while the encoder is busy (an idle encoder starts at once).")] = 2.0,
    cost_weight: Annotated[float, typer.Option("--cost-weight", help="Default λ: route to argmax(score - λ·cost in USD) (routers fitted with costs).")] = 0.0,
    upstream_timeout: Annotated[float, typer.Option("--upstream-timeout", help="Seconds to wait for an upstream (unless UPSTREAMS.toml says).")] = 60.0,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", help="Largest request body (413 above).")] = 1_000_000,
    max_prompt_chars: Annotated[int, typer.Option("--max-prompt-chars", help="Longest prompt in characters (413 above).")] = 20_000,
    max_prompts: Annotated[int, typer.Option("--max-prompts", help="Most prompts in one /v1/route batch request (413 above).")] = 256,
    encoder_backend: Annotated[str, typer.Option("--encoder-backend", help="fp32 (default: the routes of the fitted embeddings), bf16 (autocast, ~1.5x the throughput on CPUs with AVX512-BF16/AMX) or int8 (quantised, ~2x); the faster ones change some routes.")] = "fp32",
    threads: Annotated[Optional[int], typer.Option("--threads", help="Encoder threads per worker: batches split over them, one micro-batch per thread (default: the cores torch sees).")] = None,
    workers: Annotated[int, typer.Option("--workers", help="uvicorn worker processes (each loads the encoder).")] = 1,
    log_prompts: Annotated[bool, typer.Option("--log-prompts", help="Log prompt texts (off: logs carry no prompt text).")] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve a saved router: POST /v1/route, POST /v1/chat/completions, GET /v1/models, /healthz, /metrics."""
    import json
    import logging
    import os
    import sys

    # idle OpenMP threads sleep instead of spinning: on a busy machine spinning encoder threads
    # wait on each other for whole scheduler slices (measured 20x slower single-prompt latency)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    from routereval.errors import ParameterError
    from routereval.serve.app import OPTIONS_ENV, ServeState, create_app
    from routereval.serve.requests import Limits

    levels = ("debug", "info", "warning", "error")
    if log_level not in levels:
        raise ParameterError(f"--log-level must be one of {', '.join(levels)}; got {log_level!r}")
    if not 0 <= port <= 65535:
        raise ParameterError(f"--port must be in [0, 65535]; got {port}")
    if workers < 1:
        raise ParameterError(f"--workers must be >= 1; got {workers}")
    # the serving options are checked where the Python API checks them too (ServeState, Limits)
    limits = Limits(max_body_bytes=max_body_bytes, max_prompt_chars=max_prompt_chars, max_prompts=max_prompts)
    options = dict(upstreams=None if upstreams is None else str(upstreams),
                   token_file=None if token_file is None else str(token_file), trust_code=trust_code,
                   max_batch=max_batch, max_wait_ms=max_wait_ms, cost_weight=cost_weight,
                   upstream_timeout=upstream_timeout, log_prompts=log_prompts, encoder_backend=encoder_backend, threads=threads)

    import uvicorn

    def listen_then_log() -> None:
        """Once the options, the router and the encoder are checked: the address, then logging (set up
        only now, so that a start-up error stays the one line on stderr)."""
        _check_listen(host, port)
        logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if host not in ("127.0.0.1", "localhost", "::1") and token_file is None:
            sys.stderr.write(f"warning: serving on {host} without --token-file: anyone who can reach it can use it\n")

    if workers == 1:
        app = create_app(router_dir, limits=limits, **options)
        app.state.serve.prepare()  # load the encoder now: a bad router fails here, in one line
        listen_then_log()
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
        return
    ServeState(router_dir, limits=limits, **options)  # check everything once, before forking workers
    listen_then_log()
    os.environ[OPTIONS_ENV] = json.dumps({"router_dir": str(router_dir), "limits": vars(limits), **options})
    uvicorn.run("routereval.serve.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, access_log=False)


def _check_listen(host: str, port: int) -> None:
    """One line and exit 2, not uvicorn's log and exit 3, when ``host:port`` cannot be listened on."""
    import socket

    from routereval.errors import ParameterError

    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no obstacle
            s.bind(address)
    except OSError as e:
        raise ParameterError(f"--host/--port: cannot listen on {host}:{port}: {e.strerror or e}") from None


def register(app: typer.Typer) -> None:
    """Add serve to the app."""
    app.command("serve")(serve_cmd)
