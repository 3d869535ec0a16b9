"""Output paths the file system refuses: one line naming the option, exit 2, before any work, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "sources" / "mmlu_pro.toml"

# every command that writes a directory, with the least else it needs to reach its output check; the
# corpus, router and answers named do not exist: the output check must come before they are read
DIR_WRITERS = {
    "data synth": (["data", "synth", "--scale", "tiny", "--out", "{out}"], "--out"),
    "data import": (["data", "import", str(SPEC), "--out", "{out}"], "--out"),
    "data download": (["data", "download", "--out", "{out}"], "--out"),
    "fit": (["fit", "nocorpus", "--benchmark", "b", "--router", "knn", "--m", "3", "--group", "all_strong",
             "--save", "{out}"], "--save"),
    "pools": (["pools", "nocorpus", "--benchmark", "b", "--export-router-dataset", "{out}"],
              "--export-router-dataset"),
    "coldstart": (["coldstart", "nocorpus", "--benchmark", "b", "--m", "3", "--group", "all_strong",
                   "--out", "{out}"], "--out"),
    "add-model": (["add-model", "norouter", "--name", "n", "--answers", "none.csv", "--out", "{out}"], "--out"),
    "sweep": (["sweep", "none.toml", "--out", "{out}"], "--out"),
    "scaling": (["scaling", "nocorpus", "--out", "{out}"], "--out"),
}


@pytest.mark.parametrize("command", sorted(DIR_WRITERS))
def test_an_output_directory_under_a_file_is_one_line_and_exit_2(cli, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    args, option = DIR_WRITERS[command]
    res = cli(*[a.replace("{out}", "afile/sub") for a in args])
    assert res.code == 2, res.err
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert f"{option} afile/sub" in lines[0] and "afile is a file, not a directory" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # nothing written, no temporary left


@pytest.mark.parametrize("command, message", [("data synth", "exists and is a file, not a corpus directory"),
                                              ("fit", "exists and is not a directory; refusing to replace it"),
                                              ("data download", "exists and is not a directory")])
def test_an_output_directory_that_is_a_file_is_refused(cli, tmp_path, monkeypatch, command, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    args, option = DIR_WRITERS[command]
    res = cli(*[a.replace("{out}", "afile") for a in args])
    assert res.code == 2 and res.err.count("\n") == 1
    assert message in res.err
    assert (tmp_path / "afile").read_text() == "x"


# every command that writes one file: its --out must go into an existing directory (a shell redirection's rule)
FILE_WRITERS = {
    "report": ["report", "noresults", "--out", "{out}"],
    "coldstart anchors": ["coldstart", "anchors", "norouter", "--k", "10", "--out", "{out}"],
}


@pytest.mark.parametrize("command", sorted(FILE_WRITERS))
def test_an_output_file_in_a_missing_directory_is_refused_where_a_directory_would_be_made(cli, tmp_path,
                                                                                           monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    res = cli(*[a.replace("{out}", "missing/out.txt") for a in FILE_WRITERS[command]])
    assert res.code == 2 and res.err.count("\n") == 1
    assert "missing/out.txt: out (--out): its directory does not exist" in res.err, res.err
    assert list(tmp_path.iterdir()) == []
    # an output directory's missing parents are made (data synth, the quickest writer of one)
    res = cli("data", "synth", "--scale", "tiny", "--out", "new/deeper/corpus")
    assert res.code == 0, res.err
    assert (tmp_path / "new" / "deeper" / "corpus").is_dir()


def test_report_to_a_file_under_a_file_is_one_line(cli, tmp_path):
    (tmp_path / "afile").write_text("x")
    res = cli("report", tmp_path / "noresults", "--out", tmp_path / "afile" / "report.md")
    assert res.code == 2
    assert res.err.count("\n") == 1 and "afile is a file, not a directory" in res.err


def test_a_path_the_file_system_refuses_later_is_still_one_line(cli, tmp_path, monkeypatch):
    # past the check at the boundary, the file system may still refuse (a read-only mount, a race): the CLI
    # turns an OSError that names its path into one line, exit 2; one naming no path is a bug: a traceback
    import routereval.sources.synth as synth

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".o.tmp"), None, str(tmp_path / "o"))

    monkeypatch.setattr(synth, "synth_corpus", refuse)
    res = cli("data", "synth", "--scale", "tiny", "--out", tmp_path / "o")
    assert res.code == 2 and res.err == f"error: {tmp_path / '.o.tmp'} -> {tmp_path / 'o'}: Permission denied\n"
    monkeypatch.setattr(synth, "synth_corpus", lambda *a, **k: open(tmp_path / "missing" / "x"))
    assert cli("data", "synth", "--scale", "tiny", "--out", tmp_path / "o").code == 2  # names its path
    monkeypatch.setattr(synth, "synth_corpus", lambda *a, **k: (_ for _ in ()).throw(PermissionError("no path")))
    with pytest.raises(PermissionError):
        cli("data", "synth", "--scale", "tiny", "--out", tmp_path / "o")


def test_a_corpus_path_that_is_a_file_says_so(cli, tmp_path):
    (tmp_path / "afile").write_text("x")
    res = cli("data", "info", tmp_path / "afile")
    assert res.code == 2 and res.err == f"error: {tmp_path / 'afile'}: is a file, not a corpus directory\n"


def test_writability_is_checked_where_the_output_goes(cli, tmp_path, monkeypatch):
    # os.access stands in for permission bits (the tests may run as root, who may write anywhere)
    import os as _os

    from routereval.cli import ui

    locked = {str(tmp_path)}
    monkeypatch.setattr(ui.os, "access", lambda p, mode: not (mode & _os.W_OK and str(p) in locked))
    (tmp_path / "mine").mkdir()
    ui.check_out_dir(tmp_path / "mine", "--out")  # an existing writable directory under a locked parent: fine
    res = cli("data", "synth", "--scale", "tiny", "--out", tmp_path / "new")
    assert res.code == 2 and res.err == f"error: --out {tmp_path / 'new'}: {tmp_path} is not writable\n"
    locked.add(str(tmp_path / "mine"))
    res = cli("sweep", "none.toml", "--out", tmp_path / "mine")
    assert res.code == 2 and "this directory is not writable" in res.err


def test_a_corpus_directory_named_like_a_coldstart_subcommand_gets_a_hint(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--benchmark", "mmlu", "--m", "3", "--group", "all_strong"]
    res = cli("coldstart", "anchors", *args)
    assert res.code == 2 and "No such option: --benchmark" in res.err and "./anchors" not in res.err
    (tmp_path / "anchors").mkdir()  # now the name is also a directory here: the error says how to reach it
    res = cli("coldstart", "anchors", *args)
    assert res.code == 2 and res.err.count("\n") == 1
    assert "'anchors' is read as the subcommand: to run the study on the directory 'anchors' here, write ./anchors" \
        in res.err
    # ./anchors is the study's corpus argument (here not a corpus: the study's own one line says so)
    res = cli("coldstart", "./anchors", *args)
    assert res.code == 2 and "No such option" not in res.err and "anchors" in res.err
    # a directory `anchors` holding anchor files is common: the anchors subcommand's own mistakes get no hint
    res = cli("coldstart", "anchors", "somerouter", "--k", "abc")
    assert res.code == 2 and "./anchors" not in res.err
    res = cli("coldstart", "anchors")
    assert res.code == 2 and "./anchors" not in res.err
    (tmp_path / "study").mkdir()  # the same for a corpus named study: the study then misses its corpus
    res = cli("coldstart", "study", *args)
    assert res.code == 2 and res.err.startswith("error: Missing argument 'corpus'; 'study' is read as the "
                                                "subcommand: to run the study on the directory 'study' here, write "
                                                "./study"), res.err
