"""Stand-in upstream LLM servers for the serve tests: real HTTP servers on 127.0.0.1, one per model.

Each records what it received (path, headers, JSON body) and answers like an
OpenAI-compatible server: a chat completion, or (``"stream": true``) server-sent events
sent one by one with a pause between them. ``mode="fail"`` answers HTTP 500;
``mode="hang"`` never answers (until the server is closed, at most ``hang_s``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STREAM_PIECES = ("Paris", " is", " the", " capital", ".")
STREAM_PAUSE_S = 0.15  # between streamed events: the client must see the first before the last is sent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandInUpstream:
    """One stand-in upstream; use as a context manager or call :meth:`close`."""

    def __init__(self, name: str, *, mode: str = "ok", hang_s: float = 20.0) -> None:
        self.name, self.mode, self.hang_s = name, mode, hang_s
        self.received: list[dict] = []
        self.stream_sent: list[float] = []  # time.monotonic() when each streamed piece was flushed
        self._release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                n = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(n) or b"{}")
                owner.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if owner.mode == "hang":
                    owner._release.wait(owner.hang_s)
                    return
                if owner.mode == "fail":
                    self._send(500, b'{"error": {"message": "stand-in failure"}}')
                    return
                if body.get("stream"):
                    self._stream(body)
                    return
                doc = {"id": "chatcmpl-standin", "object": "chat.completion", "created": 0, "model": body.get("model"),
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": f"answer from {owner.name}"}}],
                       "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}}
                self._send(200, json.dumps(doc).encode())

            def _send(self, status, payload):
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _stream(self, body):
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()

                def chunk(data: bytes):
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()

                for i, piece in enumerate(STREAM_PIECES):
                    delta = {"content": piece} if i else {"role": "assistant", "content": piece}
                    doc = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": 0,
                           "model": body.get("model"), "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                    chunk(b"data: " + json.dumps(doc).encode() + b"\n\n")
                    owner.stream_sent.append(time.monotonic())
                    time.sleep(STREAM_PAUSE_S)
                chunk(b"data: [DONE]\n\n")
                chunk(b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def upstreams_toml(path, servers: dict[str, StandInUpstream], *, timeout: float | None = None) -> None:
    """Write an UPSTREAMS.toml sending each pool model to its stand-in (upstream name ``up-<i>``, a key each)."""
    lines = []
    if timeout is not None:
        lines += ["[defaults]", f"timeout = {timeout}", ""]
    for i, (model, server) in enumerate(servers.items()):
        lines += [f'[models."{model}"]', f'base_url = "{server.base_url}"', f'model = "up-{i}"',
                  f'api_key = "key-{i}"', ""]
    path.write_text("\n".join(lines))
