"""Validation of request bodies into plain values; every failure is an :class:`ApiError` (a 4xx JSON answer)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from routereval.validate import check_int, is_real, option


class ApiError(Exception):
    """An error answered as ``{"error": {"message", "type", "code"}}`` (OpenAI's shape) with ``status``."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "code": self.code}}


@dataclass(frozen=True)
class Limits:
    """Request size limits: body bytes, characters per prompt, prompts per batch request."""

    max_body_bytes: int = 1_000_000
    max_prompt_chars: int = 20_000
    max_prompts: int = 256

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_prompt_chars", "max_prompts"):  # frozen: set through object
            object.__setattr__(self, name, check_int(getattr(self, name), option(name), low=1))


async def read_body(request: Any, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``limit`` bytes (declared or sent)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ApiError(413, f"request body of {int(declared)} bytes exceeds the limit of {limit} bytes",
                               code="body_too_large")
        except ValueError:
            raise ApiError(400, f"invalid Content-Length header {declared!r}") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body exceeds the limit of {limit} bytes", code="body_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, else 400."""
    if not raw:
        raise ApiError(400, "empty request body; expected a JSON object", code="invalid_json")
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ApiError(400, f"request body is not valid JSON: {e}", code="invalid_json") from None
    if not isinstance(doc, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(doc).__name__}", code="invalid_json")
    return doc


def _prompt(value: Any, field: str, limits: Limits) -> str:
    if not isinstance(value, str):
        raise ApiError(422, f"{field} must be a string, got {type(value).__name__}", code="invalid_field")
    if not value.strip():
        raise ApiError(422, f"{field} is empty", code="invalid_field")
    if len(value) > limits.max_prompt_chars:
        raise ApiError(413, f"{field} has {len(value)} characters; the limit is {limits.max_prompt_chars}",
                       code="prompt_too_long")
    return value


def cost_weight_of(doc: dict[str, Any], default: float) -> float:
    """The request's ``cost_weight`` (default when absent), a finite number >= 0, else 422."""
    if "cost_weight" not in doc or doc["cost_weight"] is None:
        return default
    v = doc["cost_weight"]
    if not (is_real(v) and v >= 0):
        raise ApiError(422, f"cost_weight must be a finite number >= 0, got {v!r}", code="invalid_field")
    return float(v)


def parse_route(doc: dict[str, Any], limits: Limits) -> tuple[list[str], bool]:
    """``{"prompt": str}`` or ``{"prompts": [str, ...]}`` -> (prompts, is_batch); 422/413 otherwise."""
    allowed = {"prompt", "prompts", "cost_weight"}
    extra = sorted(set(doc) - allowed)
    if extra:
        raise ApiError(422, f"unknown field {extra[0]!r}; expected 'prompt' or 'prompts' (and optional 'cost_weight')",
                       code="invalid_field")
    if ("prompt" in doc) == ("prompts" in doc):
        raise ApiError(422, "give exactly one of 'prompt' (a string) or 'prompts' (a list of strings)",
                       code="missing_field")
    if "prompt" in doc:
        return [_prompt(doc["prompt"], "prompt", limits)], False
    prompts = doc["prompts"]
    if not isinstance(prompts, list) or not prompts:
        raise ApiError(422, "prompts must be a non-empty list of strings", code="invalid_field")
    if len(prompts) > limits.max_prompts:
        raise ApiError(413, f"{len(prompts)} prompts in one request; the limit is {limits.max_prompts}",
                       code="too_many_prompts")
    return [_prompt(p, f"prompts[{i}]", limits) for i, p in enumerate(prompts)], True


def _text_of(content: Any, where: str) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if parts and all(isinstance(t, str) for t in parts):
            return "\n".join(parts)
    raise ApiError(422, f"{where}.content must be a string or a list of text parts", code="invalid_field")


def parse_chat(doc: dict[str, Any], limits: Limits) -> tuple[str, str | None]:
    """Check a chat completion request; returns (model, the last user message's text or None)."""
    model = doc.get("model")
    if model is None:
        raise ApiError(422, "missing field 'model' (a pool model name, or 'router' to route)", code="missing_field")
    if not isinstance(model, str) or not model:
        raise ApiError(422, "model must be a non-empty string", code="invalid_field")
    messages = doc.get("messages")
    if messages is None:
        raise ApiError(422, "missing field 'messages' (a list of {role, content})", code="missing_field")
    if not isinstance(messages, list) or not messages:
        raise ApiError(422, "messages must be a non-empty list", code="invalid_field")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise ApiError(422, f"messages[{i}] must be an object with a string 'role'", code="invalid_field")
    if "stream" in doc and not isinstance(doc["stream"], bool):
        raise ApiError(422, "stream must be true or false", code="invalid_field")
    last_user = None
    for i in range(len(messages) - 1, -1, -1):
        if messages[i]["role"] == "user":
            last_user = _prompt(_text_of(messages[i].get("content"), f"messages[{i}]"), f"messages[{i}].content", limits)
            break
    return model, last_user
