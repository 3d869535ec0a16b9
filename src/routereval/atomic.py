"""Atomic writes: a hidden temporary beside the target, renamed into place.

Every file or directory the package writes for a user (corpora, results, reports, saved
routers, caches) goes through a temporary named ``.<name>.tmp-<pid>-s<start>-h<host>-<random>``
in the target's directory, so a reader never sees half of it and a killed writer leaves the old
one (or nothing). The writer's pid, start time and host in the name let a later write tell the
orphan of a killed writer from a live write, even once another process has the pid, and leave
alone the live writes of other machines on a shared file system, whose pids mean nothing here
(:func:`remove_orphans`). An error of the file system on the temporary names the target: the
user asked for ``/proc/x``, not for ``/proc/.x.tmp-…``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


# Linux's largest pid_max (2**22): a larger number in a name is not a pid
MAX_PID = 1 << 22
# a temporary of another machine is judged by its age: untouched this long, its writer is gone
FOREIGN_ORPHAN_AGE_S = 24 * 3600


# a temporary's name beyond the target's: ".", ".old-", a pid, "-s" and start ticks, "-h" and 8 hex, "-" and 8 hex
NAME_ROOM = 255 - 60


@functools.lru_cache(maxsize=1)
def host_tag() -> str:
    """8 hex digits naming where this process's pids mean something: its host name and its pid namespace.

    Machines sharing a file system differ in host name; containers of one machine may share it
    (``--uts=host``, Kubernetes' ``hostNetwork``) but not their pids.
    """
    try:
        ns = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:  # not Linux
        ns = ""
    return hashlib.sha1(f"{socket.gethostname()}\0{ns}".encode()).hexdigest()[:8]


def _stem(name: str) -> str:
    """The target's name as its temporaries carry it: whole, or where the temporary's name would pass the file
    system's 255 bytes, its beginning and end around a hash of the whole (the end keeps a suffix such as
    ``.parquet``)."""
    raw = name.encode()
    if len(raw) <= NAME_ROOM:
        return name
    head = raw[:NAME_ROOM - 48].decode(errors="ignore")
    tail = raw[-40:].decode(errors="ignore")
    return f"{head}~{hashlib.sha1(raw).hexdigest()[:6]}~{tail}"


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists (owned by anyone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (the kernel's clock: wall-clock steps do not
    move it); None where unknown (not Linux, or no such process)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def temporary_path(path: str | os.PathLike, kind: str = "tmp") -> Path:
    """A fresh hidden name beside ``path``: ``.<name>.<kind>-<pid>-s<start>-h<host>-<random>``."""
    path = Path(path)
    pid = os.getpid()
    return path.parent / f".{_stem(path.name)}.{kind}-{pid}-s{start_ticks(pid) or 0}-h{host_tag()}-{uuid.uuid4().hex[:8]}"


def temporary_dir(path: str | os.PathLike) -> Path:
    """Create and return a fresh hidden directory beside ``path`` (see :func:`temporary_path`), made
    with the user's umask, after removing the temporaries of killed writes to ``path``
    (:func:`remove_orphans`); an error of the file system names ``path``."""
    remove_orphans(path)
    tmp = temporary_path(path)
    try:
        tmp.mkdir()
    except OSError as e:
        raise naming_target(e, tmp, Path(path)) from None
    return tmp


def remove_orphans(path: str | os.PathLike) -> list[Path]:
    """Delete the hidden temporaries of writes to ``path`` whose writer died; returns them.

    Only names this module makes count (``.<name>.tmp-<pid>-s<start>-h<host>-<8 hex>``, and
    ``.old-`` the same; older writes had no ``-s<start>`` or ``-h<host>``): a user's own hidden file
    is never touched. A writer of this machine is gone when its pid is not alive, or is alive with
    another start time (a process that got the pid again); this process's own temporaries are kept.
    A writer of another machine or pid namespace (a shared file system: a cluster's workers,
    containers; see :func:`host_tag`) cannot be asked: its temporary is removed only when nothing
    in it has been modified, created or renamed for :data:`FOREIGN_ORPHAN_AGE_S` (a day). Cleaning
    up is best effort: a directory that cannot be listed (write-only) or an entry that cannot be
    removed is left as it is.
    """
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(_stem(path.name))}\.(?:tmp|old)-(\d+)(?:-s(\d+))?(?:-h([0-9a-f]{{8}}))?-[0-9a-f]{{8}}")
    gone = []
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return gone
    for p in entries:
        match = pattern.fullmatch(p.name)
        if match is None:
            continue
        if not _writer_gone(p, int(match[1]), int(match[2] or 0), match[3]):
            continue
        try:
            remove(p)
        except OSError:
            continue
        gone.append(p)
    return gone


def _writer_gone(p: Path, pid: int, start: int, host: str | None) -> bool:
    """Whether the writer of temporary ``p`` (its pid, start ticks or 0, host tag or None) is gone."""
    if host is not None and host != host_tag():  # another machine's pid means nothing here
        return _untouched_for(p, FOREIGN_ORPHAN_AGE_S)
    if pid == os.getpid() or not 0 < pid <= MAX_PID:
        return False
    now = start_ticks(pid) if start else None
    return (now is not None and now != start) or not pid_alive(pid)


def _untouched_for(p: Path, seconds: float) -> bool:
    """True when neither ``p`` nor anything under it (a write streams into subdirectories) was modified, created
    or renamed in the last ``seconds``: mtime and ctime, since a rename moves only the ctime. False when
    something cannot be read."""
    limit = time.time() - seconds

    def old(st: os.stat_result) -> bool:
        return max(st.st_mtime, st.st_ctime) < limit

    unreadable: list[OSError] = []
    try:
        if not old(p.lstat()):
            return False
        if p.is_dir() and not p.is_symlink():
            for root, dirs, files in os.walk(p, onerror=unreadable.append):
                if not all(old(os.lstat(os.path.join(root, n))) for n in dirs + files):
                    return False
    except OSError:
        return False
    return not unreadable


def remove(p: Path) -> None:
    """Remove the file or directory ``p`` if it is there."""
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def naming_target(e: OSError, tmp: Path, path: Path) -> OSError:
    """``e`` itself, or where it names the temporary ``tmp`` (or a file in it), the same error naming ``path``.

    Libraries' errors name the temporary in their message instead (pyarrow: "Failed to open
    local file '<tmp>'"): the message then names ``path``, and the error gets it as its file.
    """
    if isinstance(e.filename, (str, os.PathLike)):
        name = _in_target(Path(e.filename), tmp, path)
        if name is None:
            return e
        other = None
        if isinstance(e.filename2, (str, os.PathLike)):  # a rename's second name; not "x -> x"
            other = _in_target(Path(e.filename2), tmp, path) or Path(e.filename2)
            other = None if other == name else other
        return type(e)(e.errno, e.strerror, str(name), None, None if other is None else str(other))
    if e.filename is not None or e.errno is None or str(tmp) not in str(e.strerror):
        return e
    return type(e)(e.errno, str(e.strerror).replace(str(tmp), str(path)), str(path))


def _in_target(name: Path, tmp: Path, path: Path) -> Path | None:
    """``name`` with the temporary ``tmp`` it is in (or is) replaced by ``path``; None when it is not in it."""
    try:
        rel = name.relative_to(tmp)
    except ValueError:
        return None
    return path / rel if rel.parts else path


@contextmanager
def replacing(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """Write ``path`` atomically: ``with replacing(p) as tmp: write(tmp)``.

    The body writes the hidden temporary ``tmp`` (a file, or a directory it creates); when it
    returns, ``tmp`` replaces ``path`` (a directory only replaces an empty one or nothing: see
    :func:`swap_directory`); on any error ``tmp`` is removed and ``path`` is left as it was.
    With ``fsync`` the file's data reach the disk before the rename and the rename before the return.
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        if fsync and tmp.is_file():
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if fsync:
            fsync_dir(path.parent)
    except OSError as e:
        err = naming_target(e, tmp, path)
        if err is e:
            raise
        raise err from None
    finally:
        try:
            remove(tmp)
        except OSError:  # the write's own error is the one to report; a later write removes the orphan
            pass


def swap_directory(tmp: Path, path: Path) -> None:
    """Put the finished directory ``tmp`` at ``path``, replacing a directory there.

    A directory cannot be renamed over a non-empty one, so the old one is first renamed aside
    (``.<name>.old-…``) and removed once the new one is in place; only the moment between the
    two renames has neither.
    """
    old = temporary_path(path, "old") if path.exists() else None
    try:
        if old is not None:
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        if old is not None and old.exists() and not path.exists():
            try:
                os.replace(old, path)
            except OSError:  # the first error is the one to report
                pass
        raise
    if old is not None:
        remove(old)


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry (a rename) to disk; a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - not POSIX
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
