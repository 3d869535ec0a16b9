"""``routereval sweep``: grid expansion and overrides, validation, resumability under SIGKILL, the lock,
the Dask backends (LocalCluster and a real scheduler + workers on loopback) and, on real MMLU-Pro
records, values equal to ``routereval eval --json`` for the same cells.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from routereval.experiments.config import load_config, parse_set
from routereval.experiments.grid import expand, param_grid
from routereval.experiments.results import read_results, schema

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
FIGURES = ("mu", "mu_lo", "mu_hi", "v_r", "v_b", "v_b_lo", "v_b_hi", "e_p", "e_sel", "oracle", "best_single",
           "oracle_recall", "p_beats_best_single", "n_train", "n_val", "n_test", "selection", "models",
           "best_single_model", "test_prompts", "routes", "routed_scores", "best_single_scores", "oracle_scores")
KEY = ("benchmark", "protocol", "split", "m", "group", "seed", "draw", "embedding", "router", "params")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from routereval.sources.synth import synth_corpus

    out = tmp_path_factory.mktemp("sweep") / "tiny"
    synth_corpus(out, scale="tiny", seed=0)
    return out


def write_config(path: Path, corpus: Path, body: str) -> Path:
    path.write_text(f'corpus = "{os.path.relpath(corpus, path.parent)}"\n' + body)
    return path


BASIC = """
benchmarks = ["arc", "gsm8k"]
protocols = ["paper", "clean"]
m = [3, 5]
groups = ["all_strong", "strong_to_weak"]
n_boot = 50
[routers.oracle]
[routers.mix]
p = [0.5]
[routers.knn]
k = [3, 5]
"""


def rows_by_key(table) -> dict[tuple, dict]:
    out = {}
    for r in table.to_pylist():
        k = tuple(r[c] for c in KEY)
        assert k not in out, f"cell {k} stored twice"
        out[k] = r
    return out


def sweep(*args, cwd=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "routereval", "sweep", *map(str, args)], env=ENV, cwd=cwd,
                          capture_output=True, text=True, **kw)


# --------------------------------------------------------------------------- grid and overrides


def test_param_grid_is_the_product_of_the_axes():
    assert param_grid({}) == [{}]
    assert param_grid({"k": [5, 10], "p": [1]}) == [{"k": 5, "p": 1}, {"k": 10, "p": 1}]
    assert len(param_grid({"a": [1, 2, 3], "b": [1, 2], "c": [0]})) == 6


def test_grid_expansion_and_set_overrides(tiny, tmp_path):
    cfg_file = write_config(tmp_path / "c.toml", tiny, BASIC + '[routers."routereval.routers.knn:KNNRouter"]\n')
    with pytest.raises(Exception, match="--trust-code"):
        load_config(cfg_file)
    cfg = load_config(cfg_file, trust_code=True)
    assert cfg.corpus == tiny.resolve()
    assert cfg.routers == {"oracle": {}, "mix": {"p": [0.5]}, "knn": {"k": [3, 5]},
                           "routereval.routers.knn:KNNRouter": {}}
    cells = expand(cfg, benchmarks=cfg.benchmarks, embeddings={b: ["synth"] for b in cfg.benchmarks},
                   corpus_checksum="x")
    assert len(cells) == 2 * 2 * 2 * 2  # benchmarks x protocols x m x groups (one seed, draws only for random)
    assert all(len(c.runs) == 1 + 1 + 2 + 1 for c in cells)
    hashes = [r.cell_hash for c in cells for r in c.runs]
    assert len(set(hashes)) == len(hashes)

    over = ["m=[3]", "routers.knn.k=[5,10,20]", "seeds=[1, 2]", "groups=['random']", "draws=[0,1,2]",
            'routers."routereval.routers.knn:KNNRouter".k=7', "routers.mix={}"]
    cfg2 = load_config(cfg_file, overrides=over, trust_code=True)
    assert cfg2.m == [3] and cfg2.seeds == [1, 2] and cfg2.groups == ["random"] and cfg2.draws == [0, 1, 2]
    assert cfg2.routers["knn"] == {"k": [5, 10, 20]} and cfg2.routers["mix"] == {}
    assert cfg2.routers["routereval.routers.knn:KNNRouter"] == {"k": [7]}
    cells2 = expand(cfg2, benchmarks=cfg2.benchmarks, embeddings={b: ["synth"] for b in cfg2.benchmarks},
                    corpus_checksum="x")
    assert len(cells2) == 2 * 2 * 1 * 2 * 3  # benchmarks x protocols x seeds x draws of the random group
    assert sorted({c.draw for c in cells2}) == [0, 1, 2]
    assert [(r.router, r.params) for r in cells2[0].runs] == [
        ("oracle", {}), ("mix", {}), ("knn", {"k": 5}), ("knn", {"k": 10}), ("knn", {"k": 20}),
        ("routereval.routers.knn:KNNRouter", {"k": 7})]
    # the same configuration hashes the same; another corpus checksum gives other hashes
    again = expand(cfg2, benchmarks=cfg2.benchmarks, embeddings={b: ["synth"] for b in cfg2.benchmarks},
                   corpus_checksum="x")
    other = expand(cfg2, benchmarks=cfg2.benchmarks, embeddings={b: ["synth"] for b in cfg2.benchmarks},
                   corpus_checksum="y")
    assert [r.cell_hash for c in again for r in c.runs] == [r.cell_hash for c in cells2 for r in c.runs]
    assert not {r.cell_hash for c in other for r in c.runs} & {r.cell_hash for c in cells2 for r in c.runs}
    # a value given twice on an axis (top level or a router's) is one axis value: no row stored twice
    cfg3 = load_config(cfg_file, overrides=["m=[3,3]", "seeds=[1,1]", "routers.knn.k=[5,5,10]"], trust_code=True)
    assert cfg3.m == [3] and cfg3.seeds == [1] and cfg3.routers["knn"] == {"k": [5, 10]}
    hashes3 = [r.cell_hash for c in expand(cfg3, benchmarks=cfg3.benchmarks,
                                           embeddings={b: ["synth"] for b in cfg3.benchmarks}, corpus_checksum="x")
               for r in c.runs]
    assert len(set(hashes3)) == len(hashes3)
    assert parse_set("corpus=some/dir") == (["corpus"], "some/dir")
    assert parse_set("n_boot=10") == (["n_boot"], 10)


BAD = [
    ("colour = 'red'\n", [], "unknown key 'colour'; allowed keys: corpus, benchmarks"),
    ("", ["groups=['best']"], "'groups' has 'best'; expected one of: all_strong"),
    ("", ["m=[0]"], "'m' has 0"),
    ("", ["m=[]"], "'m' is empty, so the grid is empty"),
    ("", ["m='three'"], "'m' has 'three'"),
    ("", ["protocols=['nice']"], "'protocols' has 'nice'"),
    ("", ["n_boot=0"], "'n_boot' is 0"),
    ("", ["seeds=[-1]"], "'seeds' has -1"),
    ("", ["benchmarks=['nope']"], "'benchmarks' has 'nope'"),
    ("", ["embedding='no-such-encoder'"], "'embedding' 'no-such-encoder'"),
    ("", ["routers={}"], "'routers' is empty, so the grid is empty"),
    ("", ["routers.magic={}"], "unknown router 'magic'"),
    ("", ["routers.knn.kk=[3]"], "unknown parameter 'kk' for router knn"),
    ("", ["routers.knn.k=[0]"], "routers.knn"),
    ("", ["routers.knn.k=[]"], "routers.knn.k is empty"),
    ("", ['routers."os:system"={}'], "--trust-code"),
    ("", ["reference_score=2.0"], "reference_score"),
    ("", ["corpus=no/such/corpus"], "no/such/corpus"),
    ("", ["m"], "expected KEY=VALUE"),
    ("m = [3,\n", [], "not valid TOML"),
]


@pytest.mark.parametrize("extra, sets, message", BAD)
def test_bad_config_is_one_line_exit_2_nothing_written(cli, tiny, tmp_path, extra, sets, message):
    cfg = write_config(tmp_path / "c.toml", tiny, extra + BASIC)
    out = tmp_path / "results"
    res = cli("sweep", cfg, "--out", out, *[a for s in sets for a in ("--set", s)])
    assert res.code == 2, res.out + res.err
    assert res.err.startswith("error: ") and res.err.count("\n") == 1, res.err
    assert message in res.err
    assert not out.exists()


def test_bad_cli_options(cli, tiny, tmp_path):
    cfg = write_config(tmp_path / "c.toml", tiny, BASIC)
    (tmp_path / "file").write_text("x")
    for args, message in ((["--workers", "0"], "--workers"), (["--cluster", "gpu:3"], "--cluster 'gpu:3'"),
                          (["--workers", "2", "--cluster", "local:2"], "not both")):
        res = cli("sweep", cfg, "--out", tmp_path / "r", *args)
        assert res.code == 2 and message in res.err and res.err.count("\n") == 1, res.err
    # a scheduler that cannot be reached: one line, exit 2, and no RESULTS directory made
    with socket.socket() as s:  # a loopback port with nothing listening on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = cli("sweep", cfg, "--out", tmp_path / "r", "--cluster", f"tcp://127.0.0.1:{port}")
    assert res.code == 2 and "cannot reach the dask scheduler" in res.err and res.err.count("\n") == 1, res.err
    assert not (tmp_path / "r").exists()
    res = cli("sweep", cfg, "--out", tmp_path / "file")
    assert res.code == 2 and "is a file" in res.err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    res = cli("sweep", cfg, "--out", tmp_path / "other")
    assert res.code == 2 and "not the results of a sweep" in res.err
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["notes.txt"]
    assert not (tmp_path / "r").exists()
    res = cli("sweep", tmp_path / "missing.toml", "--out", tmp_path / "r")
    assert res.code == 2 and "no such config file" in res.err


# --------------------------------------------------------------------------- results, resume, lock


def test_sweep_writes_the_schema_skips_finished_cells_and_retries_failed(cli, tiny, tmp_path):
    cfg = write_config(tmp_path / "c.toml", tiny, BASIC)
    out = tmp_path / "r"
    res = cli("sweep", cfg, "--out", out, "--json", "--set", "m=[3, 500]")
    assert res.code == 0, res.err
    s = res.json()
    assert (s["cells"], s["ok"], s["failed"], s["skipped"]) == (64, 32, 32, 0)
    table = read_results(out, status=None)
    assert table.schema.equals(schema())
    failed = [r for r in table.to_pylist() if r["status"] == "failed"]
    assert len(failed) == 32 and all(r["m"] == 500 and "m=500 is larger" in r["error"] for r in failed)
    ok = read_results(out)
    assert ok.num_rows == 32
    for r in ok.to_pylist():
        routes = np.array(r["routes"])
        assert len(routes) == len(r["test_prompts"]) == r["n_test"] == len(r["routed_scores"])
        assert np.isclose(np.mean(r["routed_scores"]), r["mu"])
        assert np.isclose(np.mean(r["best_single_scores"]), r["best_single"])
        assert np.isclose(np.mean(r["oracle_scores"]), r["oracle"])
        assert r["best_single_model"] in r["models"] and r["version"] and r["worker"]
        assert r["started"] <= r["ended"]
        assert r["params"] == json.dumps(json.loads(r["params"]), sort_keys=True, separators=(",", ":"))
    # again: nothing to do; failed cells are kept until --retry-failed
    res = cli("sweep", cfg, "--out", out, "--json", "--set", "m=[3, 500]")
    assert (res.json()["ok"], res.json()["skipped"], res.json()["skipped_failed"]) == (0, 32, 32)
    res = cli("sweep", cfg, "--out", out, "--json", "--set", "m=[3, 500]", "--retry-failed")
    assert (res.json()["failed"], res.json()["skipped"]) == (32, 32)
    assert read_results(out, status=None).num_rows == 64
    assert sum(pq.read_metadata(f).num_rows for f in out.glob("*.parquet")) == 64  # old failed rows replaced
    # a bigger grid adds only its new cells
    res = cli("sweep", cfg, "--out", out, "--json", "--set", "m=[3, 500]", "--set", "routers.knn.k=[3, 5, 7]")
    assert (res.json()["ok"], res.json()["skipped"]) == (8, 32)
    # the same corpus rebuilt (synth with the same seed: a new manifest time) keeps its results
    from routereval.sources.synth import synth_corpus

    synth_corpus(tmp_path / "again", scale="tiny", seed=0)
    res = cli("sweep", cfg, "--out", out, "--json", "--set", "m=[3, 500]", "--set", f"corpus={tmp_path / 'again'}")
    assert res.code == 0 and (res.json()["skipped"], res.json()["ok"]) == (32, 0), res.err
    # results of another corpus: refused unless --force
    other = tmp_path / "other"
    synth_corpus(other, scale="tiny", seed=1)
    res = cli("sweep", cfg, "--out", out, "--set", f"corpus={other}")
    assert res.code == 2 and "made from another corpus" in res.err
    res = cli("sweep", cfg, "--out", out, "--set", f"corpus={other}", "--set", "m=[3]", "--force", "--json")
    assert res.code == 0 and res.json()["ok"] == 32


def _slow_config(tmp_path: Path, corpus: Path) -> Path:
    # a cell takes a tenth of a second or more (k-means with 30 starts, 2,000 bootstrap resamples):
    # a run of 16 cells lasts long enough to be killed mid-run
    return write_config(tmp_path / "slow.toml", corpus, """
benchmarks = ["mmlu", "bbh"]
protocols = ["clean"]
m = [3, 5]
groups = ["all_strong", "all_weak", "strong_to_weak", "random"]
draws = [0]
n_boot = 2000
[routers.oracle]
[routers.knn]
k = [5]
[routers.kmeans]
n_init = 30
""")


def test_sigkill_mid_run_then_resume_gives_every_cell_once(tiny, tmp_path):
    cfg = _slow_config(tmp_path, tiny)
    out = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "routereval", "sweep", str(cfg), "--out", str(out),
                             "--workers", "2", "--json"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    import psutil

    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.parquet"))) < 3:
        time.sleep(0.02)
    workers = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = len(list(out.glob("*.parquet")))
    assert proc.returncode == -signal.SIGKILL
    assert 3 <= n_before < 16, "the sweep must be killed mid-run"
    assert len(workers) >= 2
    for f in out.glob("*.parquet"):
        assert pq.read_table(f).num_rows == 3  # every data file is whole
    partial = read_results(out, status=None).num_rows
    _, alive = psutil.wait_procs(workers, timeout=10)  # the workers notice their parent is gone and exit
    assert not alive
    res = sweep(cfg, "--out", out, "--workers", "2", "--json")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["skipped"] == partial and s["ok"] == 48 - partial and s["failed"] == 0
    table = read_results(out, status=None)
    assert table.num_rows == 48 == sum(pq.read_metadata(f).num_rows for f in out.glob("*.parquet"))
    hashes = table.column("cell_hash").to_pylist()
    assert len(set(hashes)) == 48
    assert not list(out.glob(".*tmp*"))
    rows_by_key(table)


def test_two_sweeps_on_one_results_directory(tiny, tmp_path, cli):
    cfg = _slow_config(tmp_path, tiny)
    out = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "routereval", "sweep", str(cfg), "--out", str(out), "--json"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and str(proc.pid) not in ((out / "_lock").read_text()
                                                                 if (out / "_lock").exists() else ""):
            time.sleep(0.02)
        res = cli("sweep", cfg, "--out", out)
        assert res.code == 2, res.err
        assert "another sweep is writing these results" in res.err and f"pid {proc.pid}" in res.err
    finally:
        proc.kill()
        proc.wait()
    # the dead sweep's lock is gone with it: the next sweep runs
    res = cli("sweep", cfg, "--out", out, "--json", "--set", "benchmarks=['bbh']", "--set", "m=[3]",
              "--set", "protocols=['clean']")
    assert res.code == 0, res.err


# --------------------------------------------------------------------------- Dask


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _same_cells(a, b) -> None:
    ra, rb = rows_by_key(a), rows_by_key(b)
    assert ra.keys() == rb.keys() and len(ra) > 0
    for k, row in ra.items():
        other = rb[k]
        assert row["cell_hash"] == other["cell_hash"] and row["status"] == other["status"] == "ok"
        for f in FIGURES:
            assert row[f] == other[f], (k, f)


DASK_CFG = """
benchmarks = ["arc", "mmlu"]
protocols = ["clean"]
m = [3]
groups = ["all_strong", "strong_to_weak"]
n_boot = 50
[routers.oracle]
[routers.mix]
[routers.knn]
k = [3, 5]
"""


def test_dask_local_cluster_and_a_real_scheduler_equal_the_local_run(tiny, tmp_path, cli):
    cfg = write_config(tmp_path / "d.toml", tiny, DASK_CFG)
    port = _free_port()
    dask = str(Path(sys.executable).parent / "dask")
    quiet = dict(env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = []
    try:
        # the scheduler and its workers start while the local runs go
        procs.append(subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                       "--no-dashboard"], **quiet))
        procs.append(subprocess.Popen([dask, "worker", f"tcp://127.0.0.1:{port}", "--nworkers", "2",
                                       "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"], **quiet))
        res = cli("sweep", cfg, "--out", tmp_path / "serial", "--json")
        assert res.code == 0 and res.json()["ok"] == 16
        serial = read_results(tmp_path / "serial")

        res = sweep(cfg, "--out", tmp_path / "local", "--cluster", "local:2", "--json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["backend"] == "Dask local:2"
        _same_cells(serial, read_results(tmp_path / "local"))

        from distributed import Client

        with Client(f"tcp://127.0.0.1:{port}", timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            pids = set(client.run(os.getpid).values())
        assert len(pids) == 2
        res = sweep(cfg, "--out", tmp_path / "tcp", "--cluster", f"tcp://127.0.0.1:{port}", "--json")
        assert res.returncode == 0, res.stderr
        tcp = read_results(tmp_path / "tcp")
        _same_cells(serial, tcp)
        # the cells ran in the dask worker processes
        assert {int(w.rpartition(":")[2]) for w in tcp.column("worker").to_pylist()} <= pids
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# --------------------------------------------------------------------------- real records


@pytest.fixture(scope="module")
def mmlu_pro_sample(tmp_path_factory, shared_data) -> Path:
    from routereval.data.model import Corpus
    from routereval.data.store import write_corpus
    from routereval.sources import import_spec

    bench = import_spec(EXAMPLES / "sources" / "mmlu_pro.toml")["mmlu_pro"]
    keep = np.sort(np.random.default_rng(1).choice(bench.n_prompts, 400, replace=False))
    out = tmp_path_factory.mktemp("real") / "mmlu_pro"
    write_corpus(Corpus.from_benchmarks([bench.select(prompts=keep)]), out)
    return out


def test_real_mmlu_pro_sweep_equals_eval_json(cli, mmlu_pro_sample, tmp_path):
    cfg = write_config(tmp_path / "real.toml", mmlu_pro_sample, """
benchmarks = "all"
protocols = ["clean", "paper"]
m = [3, 5]
groups = ["strong_to_weak"]
embedding = "tfidf"                 # a real encoder, fitted on each split's train prompts (fast)
n_boot = 200
[routers.oracle]
[routers.best_single]
[routers.knn]
k = [5]
[routers.kmeans]
""")
    out = tmp_path / "r"
    res = cli("sweep", cfg, "--out", out, "--json")
    assert res.code == 0, res.err
    assert res.json()["ok"] == 16
    table = read_results(out)
    for r in table.to_pylist():
        if r["m"] != 3 and r["router"] != "kmeans":
            continue  # `eval` once per router and protocol at m = 3, and kmeans at m = 5 too (10 calls)
        args = ["eval", mmlu_pro_sample, "--benchmark", "mmlu_pro", "--router", r["router"], "--m", r["m"],
                "--group", r["group"], "--protocol", r["protocol"], "--embedding", "tfidf", "--seed", r["seed"],
                "--n-boot", 200, "--json"]
        args += [a for k, v in json.loads(r["params"]).items() for a in ("--param", f"{k}={v}")]
        ev = cli(*map(str, args))
        assert ev.code == 0, ev.err
        doc = ev.json()  # the cell's keys, then one result per router
        assert len(doc["results"]) == 1
        e = {**doc, **doc["results"][0]}
        assert e["split"] == r["split"] == "random"
        for f in ("mu", "v_r", "v_b", "e_p", "e_sel", "oracle", "best_single", "oracle_recall",
                  "p_beats_best_single", "n_train", "n_val", "n_test", "best_single_model", "models"):
            assert r[f] == e[f], f
        assert [r["mu_lo"], r["mu_hi"]] == e["mu_ci"] and [r["v_b_lo"], r["v_b_hi"]] == e["v_b_ci"]
        assert json.loads(r["selection"]) == e["selection"]
        assert r["embedding"] == e["embedding"] == "tfidf"
        # the per-prompt columns are the real records of the routed models
        assert np.isclose(np.mean(r["routed_scores"]), e["mu"])
        assert set(np.unique(r["routed_scores"])) <= {0.0, 1.0}


def test_real_source_spec_is_the_three_sources():
    import tomllib

    def tables(name):
        return tomllib.loads((EXAMPLES / "sources" / name).read_text())["benchmark"]

    assert tables("real.toml") == tables("mmlu_pro.toml") + tables("routerbench.toml") + tables("alpaca_eval.toml")


def test_split_auto_takes_the_publisher_split_where_the_corpus_stores_one(cli, tmp_path, shared_data):
    from routereval.data.model import Corpus
    from routereval.data.store import open_corpus, write_corpus
    from routereval.pools import make_split
    from routereval.sources import import_spec

    wino = import_spec(EXAMPLES / "sources" / "routerbench.toml")["routerbench.winogrande"]
    write_corpus(Corpus.from_benchmarks([wino]), tmp_path / "rb")
    cfg = write_config(tmp_path / "rb.toml", tmp_path / "rb", """
m = [3]
groups = ["strong_to_weak"]
embedding = "tfidf"
split = "auto"
n_boot = 20
[routers.oracle]
""")
    res = cli("sweep", cfg, "--out", tmp_path / "r", "--json")
    assert res.code == 0 and res.json()["ok"] == 1, res.err  # auto is the publisher split here: one cell
    res = cli("sweep", cfg, "--out", tmp_path / "r", "--json", "--set", "split=['publisher', 'random']")
    assert (res.json()["skipped"], res.json()["ok"]) == (1, 1)
    rows = {r["split"]: r for r in read_results(tmp_path / "r").to_pylist()}
    bench = open_corpus(tmp_path / "rb")["routerbench.winogrande"]
    for name in ("publisher", "random"):
        assert rows[name]["test_prompts"] == make_split(bench, split=name).test.tolist()
    assert rows["publisher"]["test_prompts"] != rows["random"]["test_prompts"]


def test_minilm_is_embedded_once_in_chunks_shared_by_the_workers(tmp_path, monkeypatch):
    from routereval.data.store import open_corpus
    from routereval.sources.synth import synth_corpus

    tiny = tmp_path / "tiny"  # its own corpus: the embedding cache is written into it
    synth_corpus(tiny, scale="tiny", seed=0)
    from routereval.embed import embed_texts
    from routereval.embed.cache import CACHE_DIR
    from routereval.experiments import runner
    from routereval.experiments.backends import SerialBackend
    from routereval.experiments.sweep import plan_sweep, run_sweep

    monkeypatch.setattr(runner, "EMBED_CHUNK", 10)  # arc's 23 prompts: three chunks
    cfg = write_config(tmp_path / "m.toml", tiny, """
benchmarks = ["arc"]
m = [3]
groups = ["strong_to_weak"]
embedding = "minilm"
n_boot = 20
[routers.knn]
k = 3
""")
    plan = plan_sweep(cfg, out=tmp_path / "r")
    assert plan.encode == [("arc", "minilm")]
    s = run_sweep(plan, backend=SerialBackend())
    assert s["ok"] == 1
    texts = open_corpus(tiny)["arc"].texts.tolist()
    cached = list((tiny / CACHE_DIR).glob("minilm*/*.npy"))
    assert len(cached) == 1 and not list((tiny / CACHE_DIR / "_sweep-chunks").glob("**/*.npy"))
    whole = embed_texts(texts, "minilm")  # one pass over all prompts, no cache
    np.testing.assert_allclose(np.load(cached[0]), whole, atol=1e-5)
    assert read_results(tmp_path / "r").column("embedding").to_pylist() == ["minilm"]


def test_process_backend_keeps_every_worker_busy_while_the_caller_writes():
    """When a call finishes, the freed worker gets its next call before the result is handed over:
    while calls wait, ``running`` at a hand-over is the number of workers (the bar shows it, and no
    worker idles while the parent writes that cell's rows)."""
    from routereval.experiments.backends import ProcessBackend

    with ProcessBackend(2) as backend:
        seen = [(item, result, error, backend.running) for item, result, error in backend.run(abs, [-1, -2, -3, -4, -5])]
    assert sorted(r for _, r, _, _ in seen) == [1, 2, 3, 4, 5] and all(e is None for _, _, e, _ in seen)
    running = [n for *_, n in seen]
    # the first hand-over (one or both calls done) comes after the refill: 2 in flight, whatever the timing
    assert running[0] == 2, running
    assert running[-1] == 0


def test_remove_temporaries_removes_the_sweeps_own_only(tmp_path):
    from routereval.atomic import temporary_path
    from routereval.experiments.results import remove_temporaries, write_metadata

    # the names a killed sweep leaves: its writers' temporaries of a data file and of the metadata
    theirs = [temporary_path(tmp_path / "cell-0a1b2c3d4e5f.parquet"), temporary_path(tmp_path / "_sweep.json")]
    for p in theirs:
        p.write_text("half")
    temporary_path(tmp_path / "cell-ffff.parquet").mkdir()  # a directory is removed too
    others = [temporary_path(tmp_path / "report.md").name, ".notes", "keep.parquet"]  # not the sweep's
    for name in others:
        (tmp_path / name).write_text("x")
    gone = remove_temporaries(tmp_path)
    assert len(gone) == 3 and set(theirs) <= set(gone)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)
    write_metadata(tmp_path, corpus="c", corpus_checksum="x", config={})  # leaves nothing but _sweep.json
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*others, "_sweep.json"])
