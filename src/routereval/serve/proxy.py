"""Forwarding a chat completion to a model's upstream: plain JSON or SSE passed through event by event.

The upstream's answer comes back with the pool model's name in its ``model`` field (in
every streamed chunk too) and in the ``x-routereval-model`` header. An upstream that cannot
be reached or answers 5xx is a 502 naming it; one that does not answer in its timeout a 504.
An upstream 4xx (the request's own fault) is passed through unchanged.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

from routereval.serve.requests import ApiError
from routereval.serve.upstreams import Upstream

MODEL_HEADER = "x-routereval-model"
_ERROR_BODY_BYTES = 2000  # how much of a failing upstream's body is read (for the log)


def upstream_payload(body: dict[str, Any], upstream: Upstream) -> dict[str, Any]:
    """The request as the upstream gets it: its own model name, our extension fields removed."""
    out = {k: v for k, v in body.items() if k != "cost_weight"}
    out["model"] = upstream.model
    return out


def rename_model(event: bytes, name: str) -> bytes:
    """One SSE event with the ``model`` of each JSON ``data:`` line set to ``name`` (others unchanged)."""
    lines = event.split(b"\n")
    for i, line in enumerate(lines):
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            continue
        try:
            doc = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(doc, dict) and "model" in doc:
            doc["model"] = name
            lines[i] = b"data: " + json.dumps(doc, separators=(",", ":")).encode()
    return b"\n".join(lines)


async def sse_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Split a byte stream into SSE events (each without its blank-line terminator)."""
    buf = b""
    async for chunk in chunks:
        buf += chunk.replace(b"\r\n", b"\n")
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            yield event
    if buf.strip():
        yield buf


class Proxy:
    """Sends chat completions to upstreams through one pooled ``httpx.AsyncClient``."""

    def __init__(self, upstreams: dict[str, Upstream], metrics: Any, *, max_connections: int = 100) -> None:
        import httpx

        self.upstreams = upstreams
        self.metrics = metrics
        self.client = httpx.AsyncClient(limits=httpx.Limits(max_connections=max_connections,
                                                            max_keepalive_connections=max_connections))

    async def close(self) -> None:
        await self.client.aclose()

    def _fail(self, name: str, kind: str, status: int, message: str) -> ApiError:
        self.metrics.upstream_errors.labels(model=name, kind=kind).inc()
        return ApiError(status, message, type="upstream_error" if status == 502 else "upstream_timeout",
                        code=kind, headers={MODEL_HEADER: name})

    async def forward(self, name: str, body: dict[str, Any]) -> Any:
        """The upstream's answer to ``body`` for pool model ``name``, as a Starlette response."""
        import httpx
        from starlette.responses import JSONResponse, Response, StreamingResponse

        up = self.upstreams[name]
        headers = {"content-type": "application/json"}
        if up.api_key:
            headers["authorization"] = f"Bearer {up.api_key}"
        stream = bool(body.get("stream"))
        request = self.client.build_request("POST", up.chat_url, json=upstream_payload(body, up), headers=headers,
                                            timeout=httpx.Timeout(up.timeout))
        where = f"upstream {name!r} ({up.chat_url})"
        try:
            resp = await self.client.send(request, stream=True)
        except httpx.TimeoutException:
            raise self._fail(name, "timeout", 504, f"{where} did not answer within {up.timeout:g} s") from None
        except httpx.HTTPError as e:
            raise self._fail(name, "connect", 502, f"{where} failed: {type(e).__name__}: {e}") from None
        if resp.status_code >= 500:
            await resp.aclose()
            raise self._fail(name, "status", 502, f"{where} answered HTTP {resp.status_code}")
        if not stream or resp.status_code >= 400:
            try:
                raw = await resp.aread()
            except httpx.TimeoutException:
                raise self._fail(name, "timeout", 504, f"{where} did not finish its answer within {up.timeout:g} s") from None
            except httpx.HTTPError as e:
                raise self._fail(name, "read", 502, f"{where} failed mid-answer: {type(e).__name__}") from None
            finally:
                await resp.aclose()
            try:
                doc = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                if resp.status_code >= 400:
                    return Response(raw, status_code=resp.status_code, headers={MODEL_HEADER: name},
                                    media_type=resp.headers.get("content-type"))
                raise self._fail(name, "invalid", 502, f"{where} answered with a body that is not JSON") from None
            if isinstance(doc, dict) and resp.status_code < 400:
                doc["model"] = name
            return JSONResponse(doc, status_code=resp.status_code, headers={MODEL_HEADER: name})

        async def events() -> AsyncIterator[bytes]:
            try:
                async for event in sse_events(resp.aiter_bytes()):
                    yield rename_model(event, name) + b"\n\n"
            except httpx.HTTPError:
                # the status line is sent; all that is left is to end the stream (the client sees no [DONE])
                self.metrics.upstream_errors.labels(model=name, kind="stream").inc()
            finally:
                await resp.aclose()

        return StreamingResponse(events(), status_code=resp.status_code, media_type="text/event-stream",
                                 headers={MODEL_HEADER: name, "cache-control": "no-cache"})
