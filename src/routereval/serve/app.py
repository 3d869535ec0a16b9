"""The FastAPI app: ``/v1/route``, ``/v1/chat/completions``, ``/v1/models``, ``/healthz``, ``/metrics``.

:func:`create_app` loads and checks the router directory, the upstreams file and the token
at once (a bad one raises :class:`~routereval.errors.InputError`, one line); the encoder is
loaded by :meth:`ServeState.prepare`, which the CLI calls before it starts uvicorn and the
app's lifespan calls otherwise. ``/healthz`` answers 200 only once it has run.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request  # this module is imported only when an app is built
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from routereval.errors import InputError, ParameterError
from routereval.serve import ROUTER_MODEL  # the virtual model name that asks for routing
from routereval.serve.requests import ApiError, Limits
from routereval.validate import as_path, check_bool, check_int, is_real, option

log = logging.getLogger("routereval.serve")

OPTIONS_ENV = "ROUTEREVAL_SERVE_OPTIONS"  # create_app's options as JSON, for app_from_env (uvicorn workers)
_ENDPOINTS = ("/v1/route", "/v1/chat/completions", "/v1/models", "/healthz", "/metrics")


def read_token(path: str | os.PathLike) -> str:
    """The bearer token in ``path`` (surrounding whitespace removed); one-line error when unusable."""
    file = Path(path)
    try:
        token = file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise InputError("token file not found", file=file) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read token file: {e}", file=file) from None
    if not token or any(c.isspace() for c in token):
        raise InputError("the token file must hold one token (no spaces), e.g. from `openssl rand -hex 32`", file=file)
    return token


def _check_options(*, max_batch: Any, max_wait_ms: Any, upstream_timeout: Any, threads: Any, limits: Any,
                   trust_code: Any, log_prompts: Any) -> dict[str, Any]:
    """The serving options checked (one-line errors, before anything is loaded) and made plain values."""
    if not (is_real(max_wait_ms) and 0 <= max_wait_ms <= 1000):
        raise ParameterError(f"{option('max_wait_ms')} must be a number in [0, 1000]; got {max_wait_ms!r}")
    if not (is_real(upstream_timeout) and upstream_timeout > 0):
        raise ParameterError(f"{option('upstream_timeout')} must be a number of seconds > 0; got {upstream_timeout!r}")
    if limits is not None and not isinstance(limits, Limits):
        raise ParameterError(f"limits must be a routereval.serve.requests.Limits; got {type(limits).__name__}")
    return {"max_batch": check_int(max_batch, option("max_batch"), low=1), "max_wait_ms": float(max_wait_ms),
            "upstream_timeout": float(upstream_timeout),
            "threads": None if threads is None else check_int(threads, option("threads"), low=1),
            "limits": limits or Limits(),
            # a truthy string such as "no" must not switch a flag on
            "trust_code": check_bool(trust_code, option("trust_code")),
            "log_prompts": check_bool(log_prompts, option("log_prompts"))}


class ServeState:
    """Everything the endpoints share: engine, encoder, batcher, proxy, metrics, options."""

    def __init__(self, router_dir: str | os.PathLike, *, upstreams: str | os.PathLike | None = None,
                 token: str | None = None, token_file: str | os.PathLike | None = None, trust_code: bool = False,
                 max_batch: int = 64, max_wait_ms: float = 2.0, cost_weight: float = 0.0,
                 limits: Limits | None = None, upstream_timeout: float = 60.0, log_prompts: bool = False,
                 encoder_backend: str = "fp32", threads: int | None = None) -> None:
        from routereval.routers.persist import load_router
        from routereval.serve.encoder import PromptEncoder, check_encoder
        from routereval.serve.engine import RoutingEngine, check_cost_weight
        from routereval.serve.metrics import ServeMetrics
        from routereval.serve.upstreams import load_upstreams

        opts = _check_options(max_batch=max_batch, max_wait_ms=max_wait_ms, upstream_timeout=upstream_timeout,
                              threads=threads, limits=limits, trust_code=trust_code, log_prompts=log_prompts)
        upstreams = None if upstreams is None else as_path(upstreams, option("upstreams"))
        token_file = None if token_file is None else as_path(token_file, option("token_file"))
        check_cost_weight(cost_weight, what=option("cost_weight"))
        self.router_dir = as_path(router_dir, "router_dir")
        saved = load_router(self.router_dir, trust_code=opts["trust_code"])
        self.engine = RoutingEngine.from_saved(saved, source=str(self.router_dir / "router.json"))
        self.cost_weight = self.engine.check_cost_weight(cost_weight, what=option("cost_weight"))
        text_router = getattr(saved.router, "input_kind", "embedding") == "text"
        try:  # an encoder that cannot embed a prompt is a property of the router directory: name its file
            check_encoder("text" if text_router else saved.encoder)
        except InputError as e:
            raise InputError(e.reason, file=self.router_dir / "router.json") from None
        self.encoder = PromptEncoder("text" if text_router else saved.encoder, backend=encoder_backend,
                                     threads=opts["threads"])
        self.upstreams = ({} if upstreams is None else
                          load_upstreams(upstreams, self.engine.models, default_timeout=opts["upstream_timeout"]))
        if token is not None and token_file is not None:
            raise InputError("give a token or a token file, not both")
        if token is not None and (not isinstance(token, str) or not token or any(c.isspace() for c in token)):
            raise InputError("token must be one non-empty string without white space (a token read from a file "
                             "keeps its newline: strip it, or pass token_file=)")
        self.token = read_token(token_file) if token_file is not None else token
        self.limits = opts["limits"]
        self.max_batch, self.max_wait_s = opts["max_batch"], opts["max_wait_ms"] / 1000.0
        self.log_prompts = opts["log_prompts"]
        self.metrics = ServeMetrics()
        self.spec, self.pool = saved.spec, saved.pool
        self.batcher = None
        self.proxy = None
        self.prepared = False
        self.ready = False

    def route_batch(self, prompts: list[str], cost_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embed and route a batch (runs in a worker thread)."""
        return self.engine.route(self.encoder.encode(prompts), cost_weights)

    def prepare(self) -> None:
        """Load the encoder and route one prompt end to end (dimension mismatches surface here, one line).

        Serving owns the process's threads: BLAS gets one thread here, torch one per encoder thread.
        """
        if self.prepared:
            return
        from threadpoolctl import threadpool_limits

        # the encoder's threads are this process's parallelism: BLAS threads (the router's small
        # products) would only spin against them
        threadpool_limits(1, user_api="blas")
        self.encoder.load()
        try:
            scores, choice = self.route_batch(["warm-up prompt"], np.zeros(1))
        except InputError as e:
            raise InputError(f"the router cannot route this encoder's embeddings: {e.reason}",
                             file=self.router_dir / "router.json") from None
        if scores.shape != (1, len(self.engine.models)):
            raise InputError(f"the router predicts {scores.shape[1]} scores per prompt, its pool has "
                             f"{len(self.engine.models)} models", file=self.router_dir / "router.json")
        self.prepared = True

    async def start(self) -> None:
        import asyncio

        from routereval.serve.batching import MicroBatcher
        from routereval.serve.proxy import Proxy

        await asyncio.to_thread(self.prepare)
        self.batcher = MicroBatcher(self.route_batch, max_batch=self.max_batch, max_wait_s=self.max_wait_s,
                                    concurrency=self.encoder.concurrency, on_batch=self.metrics.observe_batch)
        self.batcher.start()
        if self.upstreams:
            self.proxy = Proxy(self.upstreams, self.metrics)
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        if self.batcher is not None:
            await self.batcher.stop()
        if self.proxy is not None:
            await self.proxy.close()

    def authorised(self, header: str | None) -> bool:
        if self.token is None:
            return True
        scheme, _, given = (header or "").partition(" ")
        # constant time: the comparison does not reveal how much of the token matched
        return hmac.compare_digest(given.strip().encode(), self.token.encode()) and scheme.lower() == "bearer"

    def check_ready(self) -> None:
        if not self.ready:
            raise ApiError(503, "the router is still loading", type="unavailable", code="loading")


class _AsgiMiddleware:
    """Runs ``handler(scope, receive, send, call_next)`` around every HTTP request."""

    def __init__(self, app: Any, handler: Any) -> None:
        self.app, self.handler = app, handler

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        else:
            await self.handler(scope, receive, send, self.app)


def create_app(router_dir: str | os.PathLike, **options: Any) -> Any:
    """Build the FastAPI app serving the router saved in ``router_dir``.

    Parameters
    ----------
    router_dir
        A directory written by ``routereval fit --save`` (checked now: a damaged one is an
        :class:`~routereval.errors.InputError`).
    **options
        ``upstreams`` (UPSTREAMS.toml path), ``token`` or ``token_file`` (bearer auth),
        ``trust_code``, ``max_batch`` (64), ``max_wait_ms`` (2.0), ``cost_weight`` (0.0),
        ``limits`` (:class:`~routereval.serve.requests.Limits`), ``upstream_timeout`` (60 s),
        ``log_prompts`` (False), ``encoder_backend`` (``"fp32"`` | ``"bf16"`` | ``"int8"``), ``threads``.

    Returns
    -------
    fastapi.FastAPI
        The app; its :class:`ServeState` is ``app.state.serve``.
    """
    state = ServeState(router_dir, **options)

    @asynccontextmanager
    async def lifespan(app):
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(title="routereval", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.serve = state
    metrics = state.metrics

    def error_response(e: ApiError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    async def guard(scope, receive, send, call_next):
        """Auth, request metrics and the access log, as plain ASGI (Starlette's http middleware costs
        more CPU per request than routing a prompt's scores)."""
        t0 = time.perf_counter()
        path = scope["path"]
        endpoint = path if path in _ENDPOINTS else "other"
        status = 500
        if path != "/healthz" and not state.authorised(Headers(scope=scope).get("authorization")):
            response = error_response(ApiError(401, "missing or wrong bearer token", type="authentication_error",
                                               code="unauthorized", headers={"www-authenticate": "Bearer"}))
            status = response.status_code
            await response(scope, receive, send)
        else:
            async def send_status(message):
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            await call_next(scope, receive, send_status)
        seconds = time.perf_counter() - t0
        metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()
        metrics.latency.labels(endpoint=endpoint).observe(seconds)
        if log.isEnabledFor(logging.INFO):
            info = scope.get("state", {})  # what the endpoint put in request.state
            line = f"{scope['method']} {path} {status} {seconds * 1000:.1f} ms"
            routed = info.get("routed")
            if routed:
                line += f" model={','.join(routed[:8])}" + (" ..." if len(routed) > 8 else "")
            if state.log_prompts and info.get("prompts"):
                line += f" prompts={[p[:200] for p in info['prompts'][:8]]!r}"
            log.info(line)

    app.add_middleware(_AsgiMiddleware, handler=guard)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return error_response(e)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        # an unknown path or a wrong method: the same error shape as every other answer
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code)
        message = f"{request.method} {request.url.path}: {e.detail}"
        if e.status_code == 404:
            message += f" (the endpoints: {', '.join(sorted(_ENDPOINTS))})"
        return error_response(ApiError(e.status_code, message, code=code, headers=dict(e.headers or {})))

    async def json_body(request: Request) -> dict:
        from routereval.serve.requests import parse_json_object, read_body

        return parse_json_object(await read_body(request, state.limits.max_body_bytes))

    def cost_weight(doc: dict) -> float:
        from routereval.serve.requests import cost_weight_of

        lam = cost_weight_of(doc, state.cost_weight)
        try:
            return state.engine.check_cost_weight(lam)
        except InputError as e:
            raise ApiError(422, str(e), code="invalid_field") from None

    def scores_doc(scores: np.ndarray) -> dict[str, float]:
        return dict(zip(state.engine.models, scores.tolist()))

    @app.post("/v1/route")
    async def route(request: Request):
        from routereval.serve.requests import parse_route

        state.check_ready()
        doc = await json_body(request)
        prompts, batch = parse_route(doc, state.limits)
        lam = cost_weight(doc)
        request.state.prompts = prompts
        models = state.engine.models
        if not batch:
            scores, choice = await state.batcher.submit(prompts[0], lam)
            request.state.routed = [models[choice]]
            metrics.count_routes(request.state.routed)
            return JSONResponse({"model": models[choice], "scores": scores_doc(scores)})
        scores, choice = await state.batcher.run_batch(prompts, np.full(len(prompts), lam))
        request.state.routed = [models[c] for c in choice]
        metrics.count_routes(request.state.routed)
        return JSONResponse({"routes": [{"model": models[c], "scores": scores_doc(s)} for c, s in zip(choice, scores)]})

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        from routereval.serve.requests import parse_chat

        state.check_ready()
        doc = await json_body(request)
        model, prompt = parse_chat(doc, state.limits)
        if state.proxy is None:
            raise ApiError(503, "this server routes only: start it with --upstreams UPSTREAMS.toml to proxy "
                                "chat completions", type="unavailable", code="no_upstreams")
        if model == ROUTER_MODEL:
            if prompt is None:
                raise ApiError(422, "model 'router' routes on the last user message, and messages has none",
                               code="missing_field")
            request.state.prompts = [prompt]
            _, choice = await state.batcher.submit(prompt, cost_weight(doc))
            name = state.engine.models[choice]
            metrics.count_routes([name])
        elif model in state.upstreams:
            cost_weight(doc)  # still checked, though not used
            name = model
        else:
            raise ApiError(404, f"model {model!r} is not served; expected {ROUTER_MODEL!r} or one of: "
                                f"{', '.join(state.engine.models)}", code="model_not_found")
        request.state.routed = [name]
        return await state.proxy.forward(name, doc)

    @app.get("/v1/models")
    async def models():
        names = [ROUTER_MODEL, *state.engine.models]
        return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "routereval"}
                                           for n in names]}

    @app.get("/healthz")
    async def healthz():
        if not state.ready:
            return JSONResponse({"status": "loading"}, status_code=503)
        return {"status": "ok", "router": state.spec, "models": len(state.engine.models),
                "encoder": state.encoder.encoder, "backend": state.encoder.backend,
                "costs": state.engine.cost is not None, "upstreams": len(state.upstreams)}

    @app.get("/metrics")
    async def prometheus():
        body, ctype = metrics.render()
        return Response(body, media_type=ctype)

    return app


def app_from_env() -> Any:
    """An app built from the JSON options in ``$ROUTEREVAL_SERVE_OPTIONS`` (uvicorn ``--factory``, several workers)."""
    opts = json.loads(os.environ[OPTIONS_ENV])
    limits = opts.pop("limits", None)
    return create_app(opts.pop("router_dir"), limits=Limits(**limits) if limits else None, **opts)
