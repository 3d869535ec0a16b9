"""Atomic writes (routereval.atomic): all or nothing, no temporary left, errors that name the target."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from routereval.atomic import remove_orphans, replacing, swap_directory, temporary_path

# /proc takes no new entries, even from root (the tests may run as root, who may write anywhere else)
UNWRITABLE = Path("/proc")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")


def test_replacing_writes_and_replaces_leaving_no_temporary(tmp_path):
    target = tmp_path / "f.txt"
    with replacing(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".f.txt.tmp-") and not target.exists()
        tmp.write_text("one")
    with replacing(target, fsync=True) as tmp:
        tmp.write_text("two")
    assert target.read_text() == "two" and os.listdir(tmp_path) == ["f.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="half way"):
        with replacing(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("half way")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["f.txt"]
    with pytest.raises(KeyboardInterrupt):  # an interrupted write too
        with replacing(target) as tmp:
            tmp.mkdir()
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["f.txt"]


@linux_only
def test_an_error_on_the_temporary_names_the_target():
    with pytest.raises(FileNotFoundError) as e:
        with replacing(UNWRITABLE / "routereval-x") as tmp:
            tmp.write_text("x")
    assert e.value.filename == "/proc/routereval-x" and e.value.errno is not None
    # an error about another file keeps its own name
    with pytest.raises(FileNotFoundError) as e:
        with replacing(UNWRITABLE / "routereval-x"):
            open("/nonexistent-dir/y")
    assert e.value.filename == "/nonexistent-dir/y"


def test_swap_directory_replaces_a_full_directory_and_restores_it_when_the_swap_fails(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    new = temporary_path(out)
    new.mkdir()
    (new / "new.txt").write_text("new")
    swap_directory(new, out)
    assert os.listdir(out) == ["new.txt"] and os.listdir(tmp_path) == ["out"]
    with pytest.raises(FileNotFoundError):  # the new directory vanished: the old one stays in place
        swap_directory(temporary_path(out), out)
    assert os.listdir(out) == ["new.txt"] and os.listdir(tmp_path) == ["out"]


def test_remove_orphans_removes_the_temporaries_of_dead_writers_only(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    orphan_file = tmp_path / f".c.tmp-{pid}-s1-0a1b2c3d"
    orphan_dir = tmp_path / f".c.old-{pid}-0a1b2c3d"
    mine = temporary_path(tmp_path / "c")
    other_target = tmp_path / f".d.tmp-{pid}-s1-0a1b2c3d"  # a temporary of another target
    orphan_file.write_text("x")
    orphan_dir.mkdir()
    mine.mkdir()
    other_target.write_text("x")
    assert sorted(remove_orphans(tmp_path / "c")) == sorted([orphan_file, orphan_dir])
    assert sorted(os.listdir(tmp_path)) == sorted([mine.name, other_target.name])
    assert remove_orphans(tmp_path / "missing" / "c") == []


def test_remove_orphans_leaves_another_machines_writes_until_a_day_untouched(tmp_path, monkeypatch):
    """On a shared file system a writer of another machine has a pid that means nothing here."""
    import types

    import routereval.atomic as atomic
    from routereval.atomic import FOREIGN_ORPHAN_AGE_S, host_tag

    # a process that calls itself another host names a temporary of c, then exits: its pid is dead here
    code = ("import socket, sys; socket.gethostname = lambda: 'worker-7'; from routereval.atomic import temporary_path;"
            "p = temporary_path(sys.argv[1]); p.mkdir(); print(p.name)")
    other = subprocess.run([sys.executable, "-c", code, str(tmp_path / "c")], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert f"-h{host_tag()}-" not in other and f"-h{host_tag()}-" in temporary_path(tmp_path / "c").name
    # a container with this host name (--uts=host) but its own pids is another machine too
    code_ns = ("import os, sys; real = os.stat; os.stat = lambda p, *a, **k: os.stat_result((0, 7, 0, 0, 0, 0, 0, 0, 0, "
               "0)) if p == '/proc/self/ns/pid' else real(p, *a, **k); from routereval.atomic import host_tag;"
               "print(host_tag())")
    assert subprocess.run([sys.executable, "-c", code_ns], capture_output=True, text=True,
                          check=True).stdout.strip() != host_tag()
    dead_here = tmp_path / f".c.tmp-{other.split('-')[1]}-s1-h{host_tag()}-0a1b2c3d"  # the same pid, this host
    dead_here.write_text("x")
    assert remove_orphans(tmp_path / "c") == [dead_here]
    assert os.listdir(tmp_path) == [other]  # a live write for all we know
    # renamed aside just now (a swap's .old-), its content's times old: a rename moves only the ctime
    aside = tmp_path / other.replace(".tmp-", ".old-")
    (tmp_path / other).rename(aside)
    day_ago = time.time() - FOREIGN_ORPHAN_AGE_S - 60
    os.utime(aside, (day_ago, day_ago))
    assert remove_orphans(tmp_path / "c") == [] and os.listdir(tmp_path) == [aside.name]
    aside.rename(tmp_path / other)
    # a day later: untouched, unless a write streams into a subdirectory
    (tmp_path / other / "records").mkdir()
    (tmp_path / other / "records" / "part-0").write_text("x")
    now = time.time()
    monkeypatch.setattr(atomic, "time", types.SimpleNamespace(time=lambda: now + FOREIGN_ORPHAN_AGE_S + 60))
    os.utime(tmp_path / other / "records" / "part-0", (now + FOREIGN_ORPHAN_AGE_S, now + FOREIGN_ORPHAN_AGE_S))
    assert remove_orphans(tmp_path / "c") == []
    os.utime(tmp_path / other / "records" / "part-0", (now, now))
    assert remove_orphans(tmp_path / "c") == [tmp_path / other] and os.listdir(tmp_path) == []


def test_a_long_target_name_gets_temporaries_within_the_name_limit(tmp_path):
    """A temporary's name adds about 50 bytes to the target's: a target near 255 bytes still writes, and its
    orphans are still found (beginning and end of the name kept, around a hash of the whole)."""
    target = tmp_path / ("r" * 230 + ".parquet")
    with replacing(target) as tmp:
        assert len(tmp.name.encode()) <= 255 and tmp.name.startswith(".rrr") and ".parquet.tmp-" in tmp.name
        tmp.write_text("x")
    assert target.read_text() == "x"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    orphan = temporary_path(target).name.replace(f".tmp-{os.getpid()}-", f".tmp-{int(dead.stdout)}-")
    (tmp_path / orphan).write_text("x")
    twin = tmp_path / temporary_path(tmp_path / ("r" * 230 + "x.parquet")).name.replace(
        f".tmp-{os.getpid()}-", f".tmp-{int(dead.stdout)}-")  # another long target with the same beginning and end
    twin.write_text("x")
    assert remove_orphans(target) == [tmp_path / orphan] and twin.exists()


@linux_only
def test_writers_name_their_target_when_the_file_system_refuses(tmp_path):
    import numpy as np

    from routereval.data.model import Benchmark
    from routereval.data.store import write_corpus
    from routereval.reports.build import write_atomic
    from routereval.routers import make_router, save_router

    bench = Benchmark("b", models=["m1", "m2"], prompt_ids=["p", "q"], scores=np.array([[1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(FileNotFoundError) as e:
        write_corpus([bench], UNWRITABLE / "routereval-corpus")
    assert e.value.filename == "/proc/routereval-corpus"
    with pytest.raises(FileNotFoundError) as e:
        write_atomic("text", UNWRITABLE / "routereval-report.md")
    assert e.value.filename == "/proc/routereval-report.md"
    router = make_router("knn", k=1).fit(np.eye(2), np.eye(2))
    with pytest.raises(FileNotFoundError) as e:
        save_router(router, UNWRITABLE / "routereval-router")
    assert e.value.filename == "/proc/routereval-router"


@linux_only
def test_the_cli_names_the_output_not_its_temporary(cli):
    res = cli("data", "synth", "--scale", "tiny", "--out", "/proc/routereval-x")
    assert res.code == 2 and res.err == "error: /proc/routereval-x: No such file or directory\n"


def test_a_saved_router_replaces_and_cleans_up_after_a_killed_save(tmp_path):
    import numpy as np

    from routereval.routers import load_router, make_router, save_router

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    orphan = tmp_path / f".r.tmp-{int(dead.stdout)}-s1-0a1b2c3d"
    orphan.mkdir()
    (orphan / "router.json").write_text("{")
    router = make_router("knn", k=1).fit(np.eye(2), np.eye(2))
    save_router(router, tmp_path / "r")
    save_router(router, tmp_path / "r")  # replaced in place
    assert os.listdir(tmp_path) == ["r"] and load_router(tmp_path / "r").router.route(np.eye(2)).tolist() == [0, 1]


def test_remove_orphans_never_touches_a_users_own_hidden_files(tmp_path, monkeypatch):
    import numpy as np

    from routereval.routers import make_router, save_router

    # names that look like ours but are not: a date where the pid goes (too large for os.kill), no random
    # suffix, another kind
    mine = [".r.old-20240105123000", ".r.old-20240105", ".r.tmp-12345-notes", ".r.bak-12345-0a1b2c3d"]
    for name in mine:
        (tmp_path / name).mkdir()
    save_router(make_router("knn", k=1).fit(np.eye(2), np.eye(2)), tmp_path / "r")
    assert sorted(os.listdir(tmp_path)) == sorted([*mine, "r"])
    # a directory that cannot be listed (write-only) is no reason to fail the write: clean-up is best effort
    monkeypatch.setattr(Path, "iterdir", lambda self: (_ for _ in ()).throw(PermissionError(13, "denied", str(self))))
    assert remove_orphans(tmp_path / "r") == []


def test_the_cli_keeps_the_traceback_of_an_error_naming_no_path(monkeypatch):
    """An OSError naming a descriptor, not a path, is no input of the user's: not one line, its traceback."""
    import routereval.cli.main as main

    def bad_descriptor(*a, **k):
        raise OSError(9, "Bad file descriptor", 999)

    monkeypatch.setattr(main, "app", bad_descriptor)
    with pytest.raises(OSError, match="Bad file descriptor"):
        main.run(["--help"])


def test_naming_target_leaves_other_errors_alone(tmp_path):
    from routereval.atomic import naming_target

    tmp, path = tmp_path / ".t.tmp-1-s1-0a1b2c3d", tmp_path / "t"
    for e in (OSError(9, "Bad file descriptor", 987654), OSError(2, "No such file", b"/x"), OSError("no path"),
              FileNotFoundError(2, "No such file", str(tmp_path / "other"))):
        assert naming_target(e, tmp, path) is e
    renamed = naming_target(IsADirectoryError(21, "Is a directory", str(tmp), None, str(path)), tmp, path)
    assert type(renamed) is IsADirectoryError and renamed.errno == 21
    assert renamed.filename == str(path) and renamed.filename2 is None  # not "t -> t"
    inside = naming_target(OSError(28, "No space left on device", str(tmp / "router.json")), tmp, path)
    assert inside.errno == 28 and inside.filename == str(path / "router.json")  # a file of a temporary directory
    moved = naming_target(IsADirectoryError(21, "Is a directory", str(tmp / "s"), None, str(path / "s")), tmp, path)
    assert moved.filename == str(path / "s") and moved.filename2 is None  # a file renamed into place: not "s -> s"


@linux_only
def test_replacing_with_fsync_flushes_the_file_and_its_directory(tmp_path, monkeypatch):
    import routereval.atomic as atomic

    synced = []
    real = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (synced.append(os.path.realpath(f"/proc/self/fd/{fd}")),
                                                        real(fd))[1])
    with replacing(tmp_path / "f", fsync=True) as tmp:
        tmp.write_text("x")
    assert len(synced) == 2 and synced[0].startswith(str(tmp_path / ".f.tmp-")) and synced[1] == str(tmp_path)
    synced.clear()
    with replacing(tmp_path / "f") as tmp:
        tmp.write_text("y")
    assert synced == []


def test_a_librarys_error_names_the_target_not_the_temporary(tmp_path, monkeypatch, cli):
    import numpy as np
    import pyarrow as pa
    import safetensors.numpy

    from routereval.experiments.results import _write_table_atomic
    from routereval.routers import make_router, save_router

    # pyarrow names the file it failed to open in its message only
    target = tmp_path / "gone" / "x.parquet"
    with pytest.raises(FileNotFoundError) as e:
        _write_table_atomic(pa.table({"a": [1]}), target)
    assert e.value.filename == str(target) and ".tmp-" not in str(e.value) and str(target) in e.value.strerror
    # safetensors raises its own type, naming a temporary of its own ("... (os error 28)" on a full disk)
    from safetensors import SafetensorError

    def full(*a, **k):
        raise SafetensorError('Error while serializing: I/O error: No space left on device (os error 28) at path '
                              f'"{Path(a[1]).parent / ".tmpAb12Cd"}"')

    monkeypatch.setattr(safetensors.numpy, "save_file", full)
    router = make_router("knn", k=1).fit(np.eye(2), np.eye(2))
    with pytest.raises(OSError) as e:
        save_router(router, tmp_path / "r")
    assert (e.value.errno, e.value.filename) == (28, str(tmp_path / "r" / "state.safetensors"))
    assert os.listdir(tmp_path) == []  # nothing half-written
    # the CLI says it in one line
    res = cli("data", "synth", "--scale", "tiny", "--out", tmp_path / "c")
    assert res.code == 0
    res = cli("fit", tmp_path / "c", "--benchmark", "mmlu", "--router", "knn", "--m", "3", "--group", "random", "--save", tmp_path / "r")
    assert res.code == 2 and res.err == f"error: {tmp_path / 'r' / 'state.safetensors'}: No space left on device\n"
