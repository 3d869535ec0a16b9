"""``routereval data download``: fetch the official RouterEval data from the Hugging Face hub.

The dataset repository ``linggm/RouterEval`` holds four parts, each a folder::

    router_dataset/       <scenario>_router_dataset.pkl, ready-made router datasets (12 benchmarks)
    leaderboard_score/    leaderboard_{old,new,mmlu_pro}.pkl, the 200M score records
    leaderboard_prompt/   leaderboard_<key>_prompt.pkl, prompt texts
    leaderboard_embed/    leaderboard_<key>_embed/<encoder>_result.pkl, precomputed embeddings

(a part shipped as an archive, e.g. ``router_dataset.zip``, counts as that part too).

How a download goes:

1. ``huggingface_hub`` resolves the revision to a commit and lists the repository tree there;
   the listing gives every file's size and checksum (sha256 for LFS files, the git blob
   sha1 for small ones).
2. Each file of the chosen parts is fetched from ``<endpoint>/datasets/<repo>/resolve/<commit>/<path>``
   (``huggingface_hub.hf_hub_url``, over huggingface_hub's HTTP session, so its proxy and
   token settings apply) into ``<out>/.routereval-download/<path>.part``, with an HTTP
   ``Range`` request when a part file is already there: a download that was interrupted
   (in this run, or in an earlier one) resumes where it stopped. huggingface_hub's own
   ``hf_hub_download`` is not used for the transfer because it downloads into a
   process-unique temporary file that it deletes on failure, so it cannot resume across runs.
3. The complete file is checked against the listed checksum, then renamed into place
   (a mismatch deletes the part file and fails with exit status 2; nothing is half-written).
4. Verified files are recorded (size, mtime, checksum) in ``<out>/.routereval-download/state.json``,
   so a second run downloads nothing and hashes nothing that has not changed.

``HF_ENDPOINT`` selects the hub (e.g. a mirror); ``HF_HUB_OFFLINE=1`` refuses to download.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from routereval.errors import InputError, ParameterError
from routereval.validate import as_path, check_bool, option

PARTS = ("router_dataset", "leaderboard_score", "leaderboard_prompt", "leaderboard_embed")
REPO_ID = "linggm/RouterEval"
STATE_DIR = ".routereval-download"
_CHUNK = 1 << 20
_RETRIES = 3


@dataclass(frozen=True)
class RemoteFile:
    """One file of the repository listing."""

    path: str
    size: int
    sha256: str | None  # LFS files
    git_sha1: str  # git blob id: sha1(b"blob <size>\\0" + content)

    @property
    def checksum(self) -> str:
        return f"sha256:{self.sha256}" if self.sha256 else f"git-sha1:{self.git_sha1}"


def part_of(path: str) -> str | None:
    """The part a repository path belongs to (its top folder, or an archive named after it)."""
    top = PurePosixPath(path).parts[0]
    name = top.split(".", 1)[0]
    return name if name in PARTS else None


def _endpoint(endpoint: str | None) -> str:
    from huggingface_hub import constants

    return (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _hub_error(e: Exception, what: str, endpoint: str) -> InputError:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return InputError(f"cannot {what} at {endpoint}: {msg}")


def list_remote(repo_id: str = REPO_ID, *, revision: str | None = None, endpoint: str | None = None
                ) -> tuple[str, list[RemoteFile]]:
    """The commit a revision resolves to and every file of the dataset repository there."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    ep = _endpoint(endpoint)
    if constants.is_offline_mode():
        raise InputError("HF_HUB_OFFLINE is set: unset it to download the official RouterEval data")
    api = HfApi(endpoint=ep)
    try:
        info = api.dataset_info(repo_id, revision=revision)
        commit = info.sha or revision or "main"
        entries = list(api.list_repo_tree(repo_id, repo_type="dataset", revision=commit, recursive=True))
    except OfflineModeIsEnabled:
        raise InputError("HF_HUB_OFFLINE is set: unset it to download the official RouterEval data") from None
    except HfHubHTTPError as e:
        raise _hub_error(e, f"list dataset {repo_id!r} (revision {revision or 'main'})", ep) from None
    except Exception as e:  # transport errors of huggingface_hub's HTTP client (connection refused, DNS, timeout)
        if type(e).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "ssl", "socket") or isinstance(e, OSError):
            raise _hub_error(e, "reach the Hugging Face hub", ep) from None
        raise
    files = []
    for e in entries:
        if not hasattr(e, "size"):  # a folder
            continue
        lfs = getattr(e, "lfs", None)
        files.append(RemoteFile(e.path, int(e.size), None if lfs is None else lfs.sha256, e.blob_id))
    return commit, files


def _hash(path: Path, file: RemoteFile) -> str:
    if file.sha256:
        h = hashlib.sha256()
    else:
        h = hashlib.sha1()
        h.update(f"blob {file.size}\0".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _expected(file: RemoteFile) -> str:
    return file.sha256 or file.git_sha1


class _State:
    """Files already verified: path -> (size, mtime_ns, checksum), kept in ``state.json``."""

    def __init__(self, out: Path) -> None:
        self.path = out / STATE_DIR / "state.json"
        try:
            self.data: dict = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}

    def is_current(self, target: Path, file: RemoteFile) -> bool:
        rec = self.data.get(file.path)
        if not target.is_file():
            return False
        st = target.stat()
        if st.st_size != file.size:
            return False
        if rec == [st.st_size, st.st_mtime_ns, file.checksum]:
            return True
        if _hash(target, file) == _expected(file):  # a file put there by hand, or state lost
            self.record(target, file)
            return True
        return False

    def record(self, target: Path, file: RemoteFile) -> None:
        st = target.stat()
        self.data[file.path] = [st.st_size, st.st_mtime_ns, file.checksum]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)


def _fetch(url: str, part: Path, file: RemoteFile, *, update: Callable[[int], None]) -> None:
    """Download ``url`` into ``part``, resuming from its current size; retries transient failures."""
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    session = get_session()
    attempt = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        if have > file.size:  # not a prefix of this file: start again
            part.unlink()
            have = 0
        if have == file.size:
            return
        headers = build_hf_headers()
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            with session.stream("GET", url, headers=headers, follow_redirects=True,
                                timeout=60.0) as r:
                hf_raise_for_status(r)
                mode = "ab"
                if have and r.status_code != 206:  # the server ignored the Range: take the whole file
                    mode, have = "wb", 0
                    update(-part.stat().st_size)
                with open(part, mode) as f:
                    for chunk in r.iter_bytes():  # as received: a dropped connection keeps what arrived
                        f.write(chunk)
                        update(len(chunk))
            if part.stat().st_size == file.size:
                return
            raise OSError(f"incomplete body: {part.stat().st_size} of {file.size} bytes")
        except Exception as e:
            from huggingface_hub.errors import HfHubHTTPError

            if isinstance(e, HfHubHTTPError):
                if e.response is not None and e.response.status_code == 416 and have:
                    part.unlink()  # stale part file the server cannot extend
                    continue
                raise InputError(f"cannot download {file.path}: {str(e).strip().splitlines()[0]}", file=url) from None
            attempt += 1
            if attempt > _RETRIES:
                raise InputError(f"download of {file.path} interrupted ({type(e).__name__}: "
                                 f"{str(e).splitlines()[0] if str(e) else ''}); run the command again to resume "
                                 f"from byte {part.stat().st_size if part.exists() else 0}", file=url) from None
            time.sleep(0.2 * attempt)


def download(out: str | os.PathLike, *, parts: list[str] | None = None, repo_id: str = REPO_ID,
             revision: str | None = None, progress: bool = True, endpoint: str | None = None) -> list[Path]:
    """Download the official RouterEval data (or some of its parts) into ``out``.

    Parameters
    ----------
    out
        Local folder; files keep their repository paths under it (``out/router_dataset/...``),
        the layout the ``routereval-pickle`` / ``router-dataset-pickle`` specs read.
    parts
        Some of ``router_dataset``, ``leaderboard_score``, ``leaderboard_prompt``,
        ``leaderboard_embed``; all four when None.
    repo_id, revision
        The hub dataset and its revision (branch, tag or commit; ``main`` when None).
    progress
        Show a progress bar (on a terminal).
    endpoint
        The hub URL; ``HF_ENDPOINT`` or huggingface.co when None.

    Returns
    -------
    The local paths of every file of the chosen parts, downloaded now or already present.

    Raises
    ------
    ParameterError
        An unknown part.
    InputError
        The hub cannot be reached or listed, the parts hold no file, a transfer fails, or a
        file does not match its listed checksum.
    """
    from huggingface_hub import hf_hub_url

    chosen = list(PARTS) if not parts else list(dict.fromkeys(parts))
    progress = check_bool(progress, "progress")
    bad = [p for p in chosen if p not in PARTS]
    if bad:
        raise ParameterError(f"unknown part(s) {', '.join(map(repr, bad))}; expected some of: {', '.join(PARTS)}")
    out = as_path(out, option("out"))
    if out.exists() and not out.is_dir():
        raise InputError(f"{option('out')} {out}: exists and is not a directory; expected the folder to download into")
    ep = _endpoint(endpoint)
    commit, remote = list_remote(repo_id, revision=revision, endpoint=ep)
    files = [f for f in remote if part_of(f.path) in chosen]
    if not files:
        raise InputError(f"dataset {repo_id!r} at {ep} has no files in part(s) {', '.join(chosen)}")
    for f in files:  # never write outside ``out``
        if PurePosixPath(f.path).is_absolute() or ".." in PurePosixPath(f.path).parts:
            raise InputError(f"refusing the repository path {f.path!r}: it points outside the download folder")

    out.mkdir(parents=True, exist_ok=True)
    state = _State(out)
    todo = [f for f in files if not state.is_current(out / f.path, f)]
    total = sum(f.size for f in todo)
    done = 0

    from routereval.cli import ui

    with ui.progress(progress) as bar:
        def update(n: int) -> None:
            nonlocal done
            done += n
            bar(f"download {repo_id}", done, total)

        for f in todo:
            target = out / f.path
            part = out / STATE_DIR / (f.path + ".part")
            part.parent.mkdir(parents=True, exist_ok=True)
            if part.exists():
                update(min(part.stat().st_size, f.size))
            url = hf_hub_url(repo_id, f.path, repo_type="dataset", revision=commit, endpoint=ep)
            _fetch(url, part, f, update=update)
            got = _hash(part, f)
            if got != _expected(f):
                part.unlink()
                raise InputError(f"checksum mismatch for {f.path}: got {got}, the hub lists {f.checksum} "
                                 "(the partial file was removed; run again to retry)", file=url)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, target)
            state.record(target, f)
    return [out / f.path for f in files]
