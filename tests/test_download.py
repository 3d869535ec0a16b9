"""``routereval data download`` against a stand-in Hugging Face hub on a loopback socket."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

from routereval.errors import InputError, ParameterError
from routereval.sources.download import STATE_DIR, download
from routereval.sources.pickles import load_router_dataset, router_dataset_pools

sys.path.insert(0, str(Path(__file__).parent))
from official_fixtures import Leaderboard, dump_pickle, model_names, random_router_dataset  # noqa: E402

REPO = "linggm/RouterEval"
COMMIT = "c0ffee" + "0" * 34
LFS_MIN = 2048  # files at least this large are served as LFS files (sha256), smaller ones as git blobs


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """Just enough of the hub API for a dataset repo: revision info, tree listing, resolve (with Range).

    Attributes
    ----------
    files
        Repository path -> bytes the listing describes.
    served
        Repository path -> bytes actually served instead (to simulate corruption).
    cut
        Repository path -> number of body bytes after which the next GET drops the connection.
    log
        (method, path, Range header) of every request.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.served: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.log: list[tuple[str, str, str | None]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                self._handle(body=False)

            def do_GET(self):
                self._handle(body=True)

            def _json(self, obj, status=200):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status, code):
                data = json.dumps({"error": code}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, body: bool):
                url = urlsplit(self.path)
                path = unquote(url.path)
                hub.log.append((self.command, path, self.headers.get("Range")))
                api = f"/api/datasets/{REPO}"
                if path in (api, f"{api}/revision/main", f"{api}/revision/{COMMIT}"):
                    return self._json({"id": REPO, "sha": COMMIT, "private": False,
                                       "siblings": [{"rfilename": p} for p in hub.files]})
                if path.startswith(f"{api}/tree/{COMMIT}"):
                    sub = path[len(f"{api}/tree/{COMMIT}"):].strip("/")
                    return self._json(hub.tree(sub))
                prefix = f"/datasets/{REPO}/resolve/{COMMIT}/"
                if path.startswith(prefix):
                    return self._resolve(path[len(prefix):], body)
                if path.startswith(f"/datasets/{REPO}/resolve/") or path.startswith(api):
                    return self._error(404, "RevisionNotFound")
                return self._error(404, "RepoNotFound")

            def _resolve(self, rel: str, body: bool):
                if rel not in hub.files:
                    return self._error(404, "EntryNotFound")
                listed = hub.files[rel]
                data = hub.served.get(rel, listed)
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                self.send_response(206 if rng else 200)
                lfs = len(listed) >= LFS_MIN
                etag = hashlib.sha256(listed).hexdigest() if lfs else _git_sha1(listed)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("X-Repo-Commit", COMMIT)
                if lfs:
                    self.send_header("X-Linked-Etag", f'"{etag}"')
                    self.send_header("X-Linked-Size", str(len(listed)))
                self.send_header("Accept-Ranges", "bytes")
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if not body:
                    return
                chunk = data[start:]
                if self.command == "GET" and rel in hub.cut:
                    n = hub.cut.pop(rel)
                    self.wfile.write(chunk[:n])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(chunk)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def tree(self, sub: str) -> list[dict]:
        out, dirs = [], set()
        for p, data in sorted(self.files.items()):
            if sub and not p.startswith(sub + "/"):
                continue
            parts = p.split("/")
            for i in range(1, len(parts)):
                dirs.add("/".join(parts[:i]))
            entry = {"type": "file", "path": p, "size": len(data), "oid": _git_sha1(data)}
            if len(data) >= LFS_MIN:
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            out.append(entry)
        out += [{"type": "directory", "path": d, "oid": "0" * 40} for d in sorted(dirs) if not sub or d.startswith(sub)]
        return out

    def gets(self, rel: str) -> list[str | None]:
        """Range headers of the GETs of one file."""
        return [r for m, p, r in self.log if m == "GET" and p.endswith("/resolve/" + COMMIT + "/" + rel)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _official_files(tmp: Path) -> dict[str, bytes]:
    """Fixture files of every part, written in the official structures."""
    raw, _ = random_router_dataset("gsm8k", n_models=12, seed=0, subset_sizes=[60])
    lb = Leaderboard("mmlu_pro", model_names(4), {"mmlu_pro": np.eye(5, 4)}, {"mmlu_pro": np.array(list("abcde"))},
                     {"RoBERTa": {"mmlu_pro": np.ones((5, 3), dtype=np.float32)}})
    objs = {
        "router_dataset/gsm8k_router_dataset.pkl": raw,
        "leaderboard_score/leaderboard_mmlu_pro.pkl": {"model": lb.models, "data": {"mmlu_pro": {"correctness": lb.correctness["mmlu_pro"]}}},
        "leaderboard_prompt/leaderboard_mmlu_pro_prompt.pkl": lb.prompts,
        "leaderboard_embed/leaderboard_mmlu_pro_embed/RoBERTa_result.pkl": lb.embeddings["RoBERTa"],
    }
    files = {p: dump_pickle(o, tmp / "src" / p).read_bytes() for p, o in objs.items()}
    files["README.md"] = b"# RouterEval\n"
    files["full_data/raw.jsonl"] = b'{"not": "downloaded by default"}\n'
    return files


@pytest.fixture
def hub(tmp_path, monkeypatch):
    from huggingface_hub import constants

    h = FakeHub(_official_files(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read at import; conftest set it
    monkeypatch.setenv("HF_ENDPOINT", h.url)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    yield h
    h.close()


def test_full_download_via_cli(tmp_path, hub, cli):
    out = tmp_path / "data"
    r = cli("data", "download", "--out", out, "--json")
    assert r.code == 0, r.err
    got = sorted(Path(p).relative_to(out).as_posix() for p in r.json()["files"])
    parts = sorted(p for p in hub.files if p.split("/")[0] != "full_data" and "/" in p)
    assert got == parts  # the four parts; not README.md nor full_data/
    for p in parts:
        assert (out / p).read_bytes() == hub.files[p]
    assert not (out / "full_data").exists()
    # what was downloaded is what the readers read
    raw = load_router_dataset(out / "router_dataset/gsm8k_router_dataset.pkl")
    assert [m for m, _, _ in router_dataset_pools(raw)][:3] == [3, 3, 3]
    # no partial file is left behind
    assert not list((out / STATE_DIR).rglob("*.part"))


def test_part_filter_and_rerun_downloads_nothing(tmp_path, hub, cli):
    out = tmp_path / "data"
    r = cli("data", "download", "--out", out, "--part", "router_dataset", "--part", "leaderboard_prompt", "--json")
    assert r.code == 0, r.err
    assert sorted(Path(p).relative_to(out).as_posix() for p in r.json()["files"]) == [
        "leaderboard_prompt/leaderboard_mmlu_pro_prompt.pkl", "router_dataset/gsm8k_router_dataset.pkl"]
    assert not (out / "leaderboard_score").exists()
    first = [e for e in hub.log if e[0] == "GET" and "/resolve/" in e[1]]
    assert len(first) == 2
    hub.log.clear()
    r = cli("data", "download", "--out", out, "--part", "router_dataset", "--part", "leaderboard_prompt", "--json")
    assert r.code == 0, r.err
    assert not [e for e in hub.log if "/resolve/" in e[1]]  # listing only, no file transfer


def test_rerun_replaces_a_changed_file(tmp_path, hub):
    out = tmp_path / "data"
    [f] = download(out, parts=["leaderboard_score"], progress=False)
    f.write_bytes(b"tampered locally" + f.read_bytes()[16:])
    hub.log.clear()
    download(out, parts=["leaderboard_score"], progress=False)
    assert f.read_bytes() == hub.files["leaderboard_score/leaderboard_mmlu_pro.pkl"]
    assert len(hub.gets("leaderboard_score/leaderboard_mmlu_pro.pkl")) == 1


def test_connection_dropped_midway_resumes_with_range(tmp_path, hub):
    rel = "router_dataset/gsm8k_router_dataset.pkl"
    assert len(hub.files[rel]) >= LFS_MIN  # an LFS file, checked by sha256
    hub.cut[rel] = 1000
    files = download(tmp_path / "data", parts=["router_dataset"], progress=False)
    assert files[0].read_bytes() == hub.files[rel]
    assert hub.gets(rel) == [None, "bytes=1000-"]


def test_partial_file_of_an_earlier_run_resumes(tmp_path, hub):
    rel = "router_dataset/gsm8k_router_dataset.pkl"
    out = tmp_path / "data"
    part = out / STATE_DIR / (rel + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(hub.files[rel][:1234])
    download(out, parts=["router_dataset"], progress=False)
    assert (out / rel).read_bytes() == hub.files[rel]
    assert hub.gets(rel) == ["bytes=1234-"]
    assert not part.exists()


def test_corrupted_file_fails_checksum_exit_2(tmp_path, hub, cli):
    rel = "leaderboard_score/leaderboard_mmlu_pro.pkl"
    bad = bytearray(hub.files[rel])
    bad[-10] ^= 0xFF
    hub.served[rel] = bytes(bad)
    out = tmp_path / "data"
    r = cli("data", "download", "--out", out, "--part", "leaderboard_score")
    assert r.code == 2
    assert "checksum mismatch for leaderboard_score/leaderboard_mmlu_pro.pkl" in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert not (out / rel).exists() and not list((out / STATE_DIR).rglob("*.part"))


def test_corrupted_small_file_fails_git_checksum(tmp_path, hub):
    rel = "leaderboard_prompt/leaderboard_mmlu_pro_prompt.pkl"
    assert len(hub.files[rel]) < LFS_MIN  # a git blob, checked by its sha1
    hub.served[rel] = hub.files[rel][:-1] + b"X"
    with pytest.raises(InputError, match="checksum mismatch .* git-sha1:"):
        download(tmp_path / "data", parts=["leaderboard_prompt"], progress=False)


def test_unknown_part_exit_2(tmp_path, cli):
    r = cli("data", "download", "--out", tmp_path / "d", "--part", "weights")
    assert r.code == 2  # rejected by the CLI's choices
    with pytest.raises(ParameterError, match="unknown part.*'weights'.*router_dataset"):
        download(tmp_path / "d", parts=["weights"], progress=False)


def test_unreachable_endpoint_exit_2(tmp_path, hub, cli, monkeypatch):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    r = cli("data", "download", "--out", tmp_path / "d")
    assert r.code == 2 and f"127.0.0.1:{port}" in r.err and len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()


def test_unknown_repo_and_offline(tmp_path, hub, monkeypatch):
    with pytest.raises(InputError, match="cannot list dataset 'someone/else'"):
        download(tmp_path / "d", repo_id="someone/else", progress=False)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(InputError, match="HF_HUB_OFFLINE"):
        download(tmp_path / "d", progress=False)
