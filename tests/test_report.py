"""routereval report: table values against independent computations from the stored rows, every
format, study directories, bad input, and the HTML in a real headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from routereval import metrics as M
from routereval.reports import stats
from routereval.reports.build import make_report, render
from routereval.reports.tables import DELTA_PROTOCOL, GROUP_ORDER

from report_fixtures import GROUPS, make_study_dir, sweep_results, topic_corpus

N_BOOT = 200  # the fixture's sweep used 200 resamples: the report's p-values must equal the stored ones


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A real sweep: 2 benchmarks x 2 protocols x m = 3, 5 x 3 groups x 2 seeds, 6 routers (knn's k a grid),
    plus one failed cell (m larger than the group's window) from a second sweep into the same RESULTS."""
    base = tmp_path_factory.mktemp("results")
    path = sweep_results(base, topic_corpus())
    sweep_results(base, None, SWEEP_FAILED)
    return path, None


@pytest.fixture(scope="module")
def report(store):
    return make_report(store[0], n_boot=N_BOOT)


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    base = tmp_path_factory.mktemp("studies")
    return make_study_dir(base / "scaling", kind="scaling"), make_study_dir(base / "coldstart", kind="coldstart", svg=False)


SWEEP_FAILED = """
benchmarks = ["mmlu"]
protocols = ["paper"]
m = [500]
groups = ["all_strong"]
seeds = [42]
n_boot = 200
[routers.knn]
k = [5]
"""


def _stored_rows(path: Path) -> list[dict]:
    """Every row of the store, read file by file with pyarrow.parquet (not through the report's reader)."""
    import pyarrow.parquet as pq

    rows = []
    for f in sorted(path.glob("*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return rows


# --------------------------------------------------------------------------- statistics


def test_weighted_average_ci_equals_a_naive_loop_and_is_not_the_average_of_interval_ends():
    rng = np.random.default_rng(1)
    samples = [(rng.random(n) < p).astype(float) for n, p in ((120, 0.3), (90, 0.6), (150, 0.8))]
    weights = [1 / 3] * 3
    states = [(42, 0, 0), (42, 1, 0), (42, 2, 0)]
    got = stats.weighted_average_ci(samples, weights, n_boot=300, random_states=states)
    # naive: resample each cell with its own draws (metrics.bootstrap_indices), average the three means
    idx = [M.bootstrap_indices(len(x), n_boot=300, random_state=s) for x, s in zip(samples, states)]
    totals = [sum(w * x[ix[b]].mean() for x, w, ix in zip(samples, weights, idx)) for b in range(300)]
    assert got == pytest.approx(tuple(np.quantile(totals, [0.025, 0.975])), abs=1e-12)
    ends = np.mean([M.bootstrap_ci(x, n_boot=300, random_state=s) for x, s in zip(samples, states)], axis=0)
    assert (got[1] - got[0]) < 0.8 * (ends[1] - ends[0])  # independent cells: errors partly cancel


def test_batched_resampling_equals_metrics_bootstrap_functions():
    rng = np.random.default_rng(2)
    routed, best = (rng.random((4, 77)) < 0.6).astype(float), (rng.random((4, 77)) < 0.5).astype(float)
    means = stats.resample_means(routed, n_boot=250, random_state=(7, 1, 0))
    p = stats.paired_p_values(routed, best, n_boot=250, random_state=7)
    for i in range(4):
        assert np.allclose(means[i], M.bootstrap_means(routed[i], n_boot=250, random_state=(7, 1, 0)), atol=1e-12)
        assert p[i] == M.paired_bootstrap_p(routed[i], best[i], n_boot=250, random_state=7)


# --------------------------------------------------------------------------- table values


def _truth(rows: list[dict], *, benchmark, m, protocol, router, params) -> dict:
    """The table cell computed from the stored rows: per seed the mean over groups, then mean/std over seeds."""
    sel = [r for r in rows if r["status"] == "ok" and (r["benchmark"], r["m"], r["protocol"], r["router"], r["params"])
           == (benchmark, m, protocol, router, params)]
    seeds = sorted({r["seed"] for r in sel})
    out = {}
    for k in ("mu", "v_r", "v_b", "e_p", "e_sel", "oracle_recall"):
        per_seed = [np.mean([r[k] for r in sel if r["seed"] == s]) for s in seeds]
        out[k] = (np.mean(per_seed), np.std(per_seed, ddof=1))
    for r in sel:  # the stored µ is the mean of the stored routed scores
        assert r["mu"] == pytest.approx(np.mean(r["routed_scores"]), abs=1e-12)
    w = 1 / (len(seeds) * len(GROUPS))
    sel.sort(key=lambda r: (r["seed"], GROUP_ORDER.index(r["group"])))
    out["ci"] = stats.weighted_average_ci([np.array(r["routed_scores"]) for r in sel], [w] * len(sel), n_boot=N_BOOT,
                                          random_states=[(r["seed"], GROUP_ORDER.index(r["group"]), r["draw"]) for r in sel])
    out["ci_ends"] = (np.mean([r["mu_lo"] for r in sel]), np.mean([r["mu_hi"] for r in sel]))
    out["wins"] = sum(r["p_beats_best_single"] < 0.05 for r in sel)
    out["n"] = len(sel)
    return out


def test_every_cell_of_every_table_equals_an_independent_computation_from_the_rows(store, report):
    path, _ = store
    rows = _stored_rows(path)
    assert report.n_failed == 1 and report.n_rows == sum(r["status"] == "ok" for r in rows)
    assert [(t.benchmark, t.m) for t in report.tables] == [("arc", 3), ("arc", 5), ("mmlu", 3), ("mmlu", 5)]
    checked = 0
    for t in report.tables:
        assert t.protocols == ["paper", "clean"] and t.groups == list(GROUPS) and t.seeds == [7, 42]
        for row in t.rows:
            for p in t.protocols:
                truth = _truth(rows, benchmark=t.benchmark, m=t.m, protocol=p, router=row.router, params=row.params)
                for k in ("mu", "v_r", "v_b", "e_p", "e_sel", "oracle_recall"):
                    v = row.values[(k, p)]
                    assert (v.value, v.std) == pytest.approx(truth[k], abs=1e-12), (t.title, row.label, p, k)
                    assert v.n == 6 and v.n_seeds == 2
                ci = row.values[("mu_ci", p)]
                assert (ci.lo, ci.hi) == pytest.approx(truth["ci"], abs=1e-12)
                assert ci.lo <= row.values[("mu", p)].value <= ci.hi
                # the CI of the average is not the average of the cells' interval ends: it is narrower
                assert ci.hi - ci.lo < truth["ci_ends"][1] - truth["ci_ends"][0]
                wins = row.values[("wins", p)]
                assert (wins.value, wins.n) == (truth["wins"], truth["n"])
                checked += 1
            for k in ("mu", "v_r", "v_b", "e_p"):  # side by side with the difference
                d = row.values[(k, DELTA_PROTOCOL)].value
                assert d == pytest.approx(row.values[(k, "paper")].value - row.values[(k, "clean")].value, abs=1e-15)
    assert checked == 4 * 6 * 2
    # the oracle beats the best single model in every cell; random never does
    oracle = next(r for r in report.tables[2].rows if r.router == "oracle")
    random = next(r for r in report.tables[2].rows if r.router == "random")
    assert oracle.values[("wins", "clean")].value == 6 and random.values[("wins", "clean")].value == 0


def test_bold_marks_the_best_non_oracle_router_and_grids_are_separate_rows(report):
    for t in report.tables:
        labels = [r.label for r in t.rows]
        assert labels == ["oracle", "mix (p=0.5)", "random", "best_single", "knn (k=5)", "knn (k=15)"]
        for p in t.protocols:
            for k in ("mu", "v_r", "v_b"):
                cands = [r for r in t.rows if r.router not in ("oracle", "mix")]
                best = max(r.values[(k, p)].value for r in cands)
                assert [r.values[(k, p)].bold for r in t.rows] == [
                    r.router not in ("oracle", "mix") and r.values[(k, p)].value == best for r in t.rows]
                assert max(r.values[(k, p)].value for r in t.rows) > best  # the oracle is higher, yet not bold
            assert not any(r.values[("e_p", p)].bold for r in t.rows)


def test_one_protocol_and_one_benchmark(store, report):
    one = make_report(store[0], protocols="clean", benchmarks=["mmlu"], n_boot=N_BOOT)
    assert one.protocols == ["clean"] and [t.benchmark for t in one.tables] == ["mmlu", "mmlu"]
    t = one.tables[0]
    assert [c.metric for c in t.columns] == ["mu", "v_r", "v_b", "e_p", "e_sel", "oracle_recall", "mu_ci", "wins"]
    both = report.tables[2]
    for r1, r2 in zip(t.rows, both.rows):
        assert r1.values[("mu", "clean")] == r2.values[("mu", "clean")]
        assert r1.values[("mu_ci", "clean")] == r2.values[("mu_ci", "clean")]


def test_draws_average_within_their_group_and_a_missing_cell_marks_the_row(tmp_path):
    from routereval.experiments.results import drop_rows

    path = sweep_results(tmp_path, topic_corpus(names=("mmlu",), cost=True), """
benchmarks = ["mmlu"]
protocols = ["clean"]
m = [3]
groups = ["all_strong", "random"]
draws = [0, 1]
seeds = [42]
n_boot = 200
[routers.oracle]
[routers.knn]
k = [5]
""")
    rows = _stored_rows(path)
    assert len(rows) == 2 * 3
    cells = {(r["group"], r["draw"], r["router"]): r for r in rows}
    # a failed (here: dropped) knn row of draw 1
    gone = cells[("random", 1, "knn")]
    f = next(f for f in path.glob("*.parquet") if gone["cell_hash"] in {r["cell_hash"] for r in _rows_of(f)})
    drop_rows(path, {f: {gone["cell_hash"]}})
    t = make_report(path, n_boot=N_BOOT).tables[0]
    assert t.groups == ["all_strong", "random"] and t.n_cells == 3
    oracle, knn = t.rows
    mu = {k: r["mu"] for k, r in cells.items()}
    # the random group's two draws count as one group: weights 1/2, 1/4, 1/4
    want = (mu[("all_strong", 0, "oracle")] + (mu[("random", 0, "oracle")] + mu[("random", 1, "oracle")]) / 2) / 2
    assert oracle.values[("mu", "clean")].value == pytest.approx(want, abs=1e-12) and not oracle.incomplete
    keys = [("all_strong", 0, "oracle"), ("random", 0, "oracle"), ("random", 1, "oracle")]
    ci = stats.weighted_average_ci([np.array(cells[k]["routed_scores"]) for k in keys], [0.5, 0.25, 0.25],
                                   n_boot=N_BOOT, random_states=[(42, 0, 0), (42, 3, 0), (42, 3, 1)])
    assert (oracle.values[("mu_ci", "clean")].lo, oracle.values[("mu_ci", "clean")].hi) == pytest.approx(ci, abs=1e-12)
    # knn lacks the cell of draw 1: averaged over what it has, and marked
    assert knn.incomplete and knn.values[("mu", "clean")].n == 2
    assert knn.values[("mu", "clean")].value == pytest.approx(
        (mu[("all_strong", 0, "knn")] + mu[("random", 0, "knn")]) / 2, abs=1e-12)
    assert "knn (k=5) *" in render(make_report(path, n_boot=N_BOOT), "md")
    # the corpus had costs: a cost column, averaged like the others
    assert [c.metric for c in t.columns][-1] == "mean_cost"
    cost = {k: r["mean_cost"] for k, r in cells.items()}
    want = (cost[("all_strong", 0, "oracle")] + (cost[("random", 0, "oracle")] + cost[("random", 1, "oracle")]) / 2) / 2
    assert oracle.values[("mean_cost", "clean")].value == pytest.approx(want, rel=1e-12) and want > 0
    assert f"{want:.4g}" in render(make_report(path, n_boot=N_BOOT), "md")


def _rows_of(f: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(f).to_pylist()


# --------------------------------------------------------------------------- formats


def test_markdown_tables_have_the_paper_layout(report, studies, tmp_path):
    out = tmp_path / "r.md"
    rep = make_report(report.source, n_boot=N_BOOT, scaling=studies[0], coldstart=studies[1])
    text = render(rep, "md", out=out)
    blocks = re.findall(r"^## (.+?)\n\n_.+?_\n\n((?:\|.*\|\n)+)", text, flags=re.M)
    assert [b[0] for b in blocks] == ["arc, m = 3", "arc, m = 5", "mmlu, m = 3", "mmlu, m = 5"]
    for _title, table in blocks:
        lines = table.strip().splitlines()
        assert len(lines) == 2 + 6
        widths = {len(re.split(r"(?<!\\)\|", line)) for line in lines}
        assert widths == {2 + 1 + 20}  # router + 20 columns (no costs in this corpus: no cost column)
        assert re.fullmatch(r"\|:--\|(--:\|){20}", lines[1])
        assert lines[0].startswith("| router | µ_o paper | µ_o clean | Δµ_o |")
        assert sum("**" in line for line in lines) >= 1
    # studies: summary verbatim (its links rebased), plots as relative links that resolve from the report
    assert "The oracle rises from **0.40** at m = 1" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links and all((out.parent / link).is_file() for link in links)
    assert any(link.endswith("scaling_mmlu_pro.png") for link in links)
    assert "coldstart_grid.png" in text
    # a summary's own headings sit under the study's h2; a plot the summary shows is not shown again
    assert "\n### Scaling study\n" in text and "\n# Scaling study" not in text
    assert sum(link.endswith("scaling_mmlu_pro.png") for link in links) == 1
    assert sum(link.endswith("scaling_grid.png") for link in links) == 1  # not in the summary: the plots list
    # a figure the summary does not show is listed, with its SVG beside the PNG
    import shutil

    bare = shutil.copytree(studies[0], tmp_path / "bare")
    (bare / "summary.md").write_text("# Scaling study\n\nNo figure here.\n")
    text = render(make_report(report.source, n_boot=N_BOOT, scaling=bare), "md", out=out)
    assert "![scaling_mmlu_pro](" in text and "([SVG](" in text and "scaling_mmlu_pro.svg" in text


def test_tex_has_booktabs_tables_and_escapes(report, studies, tmp_path):
    rep = make_report(report.source, n_boot=N_BOOT, scaling=studies[0])
    text = render(rep, "tex", out=tmp_path / "r.tex")
    assert text.startswith(r"\documentclass") and text.rstrip().endswith(r"\end{document}")
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert text.count(rule) == 4
    assert r"\usepackage{booktabs}" in text and r"best\_single" in text and r"\textbf{" in text
    assert r"$\pm$" in text and r"\begin{Verbatim}" in text
    for body in re.findall(r"\\midrule\n(.*?)\\bottomrule", text, flags=re.S):
        lines = body.strip().splitlines()
        assert len(lines) == 6 and all(line.count(" & ") == 20 and line.endswith(r"\\") for line in lines)
    assert re.search(r"\\includegraphics\[width=\\linewidth\]\{[^}]*scaling_mmlu_pro\.png\}", text)
    # outside the verbatim summary the document is ASCII (pdflatex's default fonts): ±, Δ, µ in math mode
    outside = re.sub(r"\\begin\{Verbatim\}.*?\\end\{Verbatim\}", "", text, flags=re.S)
    assert outside.isascii() and r"$\Delta$" in outside


def test_csv_and_json_are_tidy_one_row_per_table_cell(report):
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    doc = json.loads(render(report, "json"))
    n_cells = sum(len(t.rows) * len(t.columns) for t in report.tables)
    assert len(rows) == len(doc) == n_cells
    mu = [d for d in doc if d["benchmark"] == "mmlu" and d["m"] == 3 and d["label"] == "knn (k=15)"
          and d["metric"] == "mu" and d["protocol"] == "clean"]
    t = report.tables[2]
    row = next(r for r in t.rows if r.label == "knn (k=15)")
    assert len(mu) == 1 and mu[0]["value"] == row.values[("mu", "clean")].value
    assert mu[0]["std"] == row.values[("mu", "clean")].std
    c = next(r for r in rows if r["label"] == "knn (k=15)" and r["metric"] == "mu_ci" and r["m"] == "3"
             and r["benchmark"] == "mmlu" and r["protocol"] == "clean")
    assert float(c["lo"]) == row.values[("mu_ci", "clean")].lo and c["text"].startswith("[")
    assert {d["protocol"] for d in doc} == {"paper", "clean", DELTA_PROTOCOL}
    assert all(r["std"] == "" for r in rows if r["protocol"] == DELTA_PROTOCOL)


class _Structure(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.tables, self.refs = [], 0, []

    def handle_starttag(self, tag, attrs):
        if tag not in ("meta", "br", "img", "link", "input", "hr"):
            self.stack.append(tag)
        self.tables += tag == "table"
        self.refs += [v for k, v in attrs if k in ("src", "href")]

    def handle_startendtag(self, tag, attrs):  # <img ... />
        self.refs += [v for k, v in attrs if k in ("src", "href")]

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()


def test_html_is_self_contained_and_well_formed(report, studies, tmp_path):
    rep = make_report(report.source, n_boot=N_BOOT, scaling=studies[0], coldstart=studies[1])
    text = render(rep, "html", out=tmp_path / "r.html")
    p = _Structure()
    p.feed(text)
    assert p.stack == [] and p.tables >= 4 + 2
    # nothing loads from outside the file: images are data URIs, links are anchors or data URIs
    assert all(r.startswith(("#", "data:")) for r in p.refs), [r[:40] for r in p.refs if not r.startswith(("#", "data:"))]
    assert sum(r.startswith("data:image/png;base64,") for r in p.refs) >= 4
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<link" not in text and "@import" not in text


# --------------------------------------------------------------------------- CLI and bad input


def test_cli_writes_each_format_atomically_and_prints_to_stdout(cli, store, tmp_path):
    path, _ = store
    r = cli("report", path, "--n-boot", N_BOOT, "--benchmarks", "arc")
    assert r.code == 0 and r.out.startswith("# routereval report") and "## arc, m = 3" in r.out and "mmlu" not in r.out
    for fmt in ("md", "tex", "html", "csv", "json"):
        out = tmp_path / f"report.{fmt}"
        r = cli("report", path, "--format", fmt, "--out", out, "--n-boot", N_BOOT, "--protocol", "paper")
        assert r.code == 0 and r.out == "" and out.is_file(), r.err
        assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]  # no temporary left
    assert {d["protocol"] for d in json.loads((tmp_path / "report.json").read_text())} == {"paper"}
    assert cli("report", path, "--json", "--n-boot", N_BOOT).json()[0]["metric"] == "mu"


def test_bad_input_is_one_line_and_exit_2(cli, store, studies, tmp_path):
    path, _ = store
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "notdir").write_text("x")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "data.parquet").write_text("not parquet")
    nosummary = tmp_path / "nosummary"
    nosummary.mkdir()
    import pyarrow as pa
    import pyarrow.parquet as pq

    other = tmp_path / "other"  # valid Parquet, but not results (e.g. a corpus directory)
    other.mkdir()
    pq.write_table(pa.table({"model_id": [0, 1], "model": ["a", "b"]}), other / "models.parquet")
    out = tmp_path / "out.md"
    cases = {
        (path.parent / "missing",): "not a results directory",
        (tmp_path / "notdir",): "not a results directory",
        (empty,): "not a results directory (no _sweep.json",
        (junk,): "unreadable results file",
        (other,): "not a results file",
        (path, "--protocol", "fancy"): "expected one of paper, clean",
        (path, "--benchmarks", "gsm8k"): "not in the results",
        (path, "--format", "pdf"): "expected one of md, tex, html, csv, json",
        (path, "--scaling", nosummary): "no summary.md",
        (path, "--coldstart", tmp_path / "nope"): "not a directory",
        (path, "--scaling", studies[1]): "not the output directory of `routereval scaling`; it is a `routereval "
                                         "coldstart` study: pass it as --coldstart",
        (path, "--coldstart", studies[0]): "no coldstart.csv",
        (path, "--format", "csv", "--scaling", studies[0]): "study directories",
        (path, "--out", tmp_path): "is a directory",
        (path, "--n-boot", "0"): "--n-boot",
        (path, "--format", "md", "--json"): "--json asks for JSON but --format asks for 'md'",
    }
    for args, msg in cases.items():
        r = cli("report", *args, *(() if "--out" in args else ("--out", out)))
        assert r.code == 2, (args, r.out, r.err)
        assert r.err.count("\n") == 1 and msg in r.err, (args, r.err)
        assert not out.exists()
    only_clean = tmp_path / "clean_only"
    only_clean.mkdir()
    for f in path.glob("*.parquet"):  # one cell per file
        if _rows_of(f)[0]["protocol"] == "clean":
            (only_clean / f.name).write_bytes(f.read_bytes())
    r = cli("report", only_clean, "--protocol", "paper")
    assert r.code == 2 and "they hold: clean" in r.err


# --------------------------------------------------------------------------- a real browser


@pytest.fixture(scope="module")
def chromium():
    from browser import chromium_binary

    return chromium_binary()  # installs Debian's chromium when missing; fails (never skips) if it cannot


def test_html_renders_in_headless_chromium_without_errors_sorts_and_is_not_blank(chromium, report, studies, tmp_path):
    from matplotlib.image import imread

    from browser import Chromium

    out = tmp_path / "report.html"
    rep = make_report(report.source, n_boot=N_BOOT, scaling=studies[0], coldstart=studies[1])
    out.write_text(render(rep, "html", out=out))
    with Chromium(chromium) as b:
        # the harness sees errors: a page with a script error and a missing image
        bad = tmp_path / "bad.html"
        bad.write_text('<!doctype html><img src="missing.png"><script>console.error("boom"); nope();</script>')
        b.open(bad.as_uri())
        errs = b.errors
        assert any("boom" in e for e in errs) and any("nope" in e for e in errs) and any("missing.png" in e for e in errs)

        b.open(out.as_uri())
        assert b.errors == []
        n_imgs = b.evaluate("Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length")
        assert n_imgs == b.evaluate("document.images.length") >= 4
        # the page fits a laptop screen: no horizontal scroll of the page itself (wide tables scroll in place)
        assert b.evaluate("document.documentElement.scrollWidth") <= 1366
        # the studies' wide summary tables scroll in their own box, wider than the box
        assert b.evaluate("Array.from(document.querySelectorAll('.summary table')).map("
                          "t => [t.parentElement.classList.contains('scroll'), "
                          "t.parentElement.scrollWidth > t.parentElement.clientWidth])") == [[True, False], [True, True]] * 2
        # click "µ_o clean" of the first table: rows sorted by it, descending, then ascending
        col = b.evaluate("""(() => { const ths = document.querySelector('table.sortable').querySelectorAll('th[data-col]');
            const th = Array.from(ths).find(h => h.textContent.trim() === 'clean'); th.click(); return +th.dataset.col; })()""")
        js_vals = (f"Array.from(document.querySelector('table.sortable').tBodies[0].rows)"
                   f".map(r => parseFloat(r.cells[{col}].dataset.v))")
        vals = b.evaluate(js_vals)
        assert vals == sorted(vals, reverse=True) and len(vals) == 6
        expected = sorted((r.values[("mu", "clean")].value for r in report.tables[0].rows), reverse=True)
        assert vals == pytest.approx(expected)
        b.evaluate("document.querySelector('table.sortable').querySelectorAll('th[data-col]')"
                   f"[{col}].click()")
        assert b.evaluate(js_vals) == sorted(vals)
        assert b.errors == []
        # one chart per table: a bar per router and protocol
        assert b.evaluate("Array.from(document.querySelectorAll('svg.chart')).map(s => s.querySelectorAll('rect[fill-opacity]').length)") \
            == [len(t.rows) * 2 for t in rep.tables]
        shot = b.screenshot(tmp_path / "shot.png")
        full = b.screenshot(tmp_path / "full.png", full_page=True)
        # shown inside another page (a notebook's display(HTML(...))), the report restyles nothing of that page's own
        # (its bare body, *, table and first-column rules once shifted a notebook's cells and bordered its tables)
        host = tmp_path / "host.html"
        host.write_text('<!doctype html><html><body><div id="cell">In [1]:</div><h2 id="h">mine</h2>'
                        '<table id="mine"><tbody><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></tbody>'
                        '</table><div id="out"></div></body></html>')
        b.open(host.as_uri())
        probe = ("JSON.stringify(['body', '#cell', '#h', '#mine td', '#mine tr:nth-child(2) td'].map(q => {"
                 "const c = getComputedStyle(document.querySelector(q)); return [c.margin, c.padding, c.fontFamily, "
                 "c.fontSize, c.boxSizing, c.position, c.borderRightWidth, c.backgroundColor, c.textAlign]; }))")
        before = b.evaluate(probe)
        b.evaluate(f"document.getElementById('out').innerHTML = {json.dumps(out.read_text())}")
        assert b.evaluate("document.querySelectorAll('#out table.sortable').length") == len(rep.tables)
        assert b.evaluate(probe) == before
        # two reports in one page (a notebook showing two) run the sorting script twice: one click sorts once
        twice = tmp_path / "twice.html"
        twice.write_text(out.read_text() * 2)
        b.open(twice.as_uri())
        assert b.errors == [] and b.evaluate("document.querySelectorAll('table.sortable').length") == 2 * len(rep.tables)
        click = ("(() => { const th = document.querySelector('table.sortable th[data-col]'); th.click(); "
                 "return th.getAttribute('aria-sort'); })()")
        assert [b.evaluate(click) for _ in range(3)] == ["ascending", "descending", "ascending"]
    img = imread(shot)
    assert img.shape[:2] == (900, 1366)
    assert img[..., :3].std() > 0.05  # not blank: text, tables and colour
    rows_var = img[..., :3].std(axis=(1, 2))
    assert (rows_var > 0.01).mean() > 0.3  # content over much of the screen, not one line
    assert imread(full).shape[0] > 2000  # tables, legend, both studies' plots


# --------------------------------------------------------------------------- a real sweep on real records


REAL_SWEEP = """
benchmarks = "all"
protocols = ["paper", "clean"]
m = [3]
groups = ["all_strong", "all_weak", "strong_to_weak"]
seeds = [42, 7]
embedding = "tfidf"
n_boot = 200
[routers.oracle]
[routers.best_single]
[routers.knn]
k = [5]
"""


@pytest.fixture(scope="module")
def mmlu_pro_sample(tmp_path_factory, shared_data) -> Path:
    """400 real MMLU-Pro questions (31 real models) as a corpus."""
    from routereval.data.model import Corpus
    from routereval.data.store import write_corpus
    from routereval.sources import import_spec

    root = Path(__file__).resolve().parents[1]
    bench = import_spec(root / "examples" / "sources" / "mmlu_pro.toml")["mmlu_pro"]
    keep = np.sort(np.random.default_rng(1).choice(bench.n_prompts, 400, replace=False))
    out = tmp_path_factory.mktemp("real") / "mmlu_pro"
    write_corpus(Corpus.from_benchmarks([bench.select(prompts=keep)]), out)
    return out


def test_report_of_a_real_sweep_equals_eval_json_for_the_same_cells(cli, mmlu_pro_sample, tmp_path):
    cfg = tmp_path / "real.toml"
    cfg.write_text(f'corpus = "{mmlu_pro_sample}"\n' + REAL_SWEEP)
    res = cli("sweep", cfg, "--out", tmp_path / "R", "--json")
    assert res.code == 0 and res.json()["ok"] == 3 * 2 * 3 * 2, res.err
    rep = cli("report", tmp_path / "R", "--format", "json")  # n_boot: the sweep's (200, from _sweep.json)
    assert rep.code == 0, rep.err
    cells = {(d["router"], d["protocol"], d["metric"]): d for d in rep.json()}
    routers = ("oracle", "best_single", "knn")
    evals: dict[tuple, list[dict]] = {}
    for protocol in ("paper", "clean"):
        for seed in (42, 7):
            for group in ("all_strong", "all_weak", "strong_to_weak"):
                ev = cli("eval", mmlu_pro_sample, "--benchmark", "mmlu_pro", "--router", ",".join(routers),
                         "--param", "knn.k=5", "--m", 3, "--group", group, "--protocol", protocol, "--embedding",
                         "tfidf", "--seed", seed, "--n-boot", 200, "--json")
                assert ev.code == 0, ev.err
                for e in ev.json()["results"]:  # one shape for one router or several
                    evals.setdefault((e["router"], protocol), []).append({**e, "seed": seed})
    for (router, protocol), es in evals.items():
        assert len(es) == 6
        for k in ("mu", "v_r", "v_b", "e_p", "e_sel", "oracle_recall"):
            per_seed = [np.mean([e[k] for e in es if e["seed"] == s]) for s in (7, 42)]
            cell = cells[(router, protocol, k)]
            assert cell["value"] == pytest.approx(np.mean(per_seed), abs=1e-12), (router, protocol, k)
            assert cell["std"] == pytest.approx(np.std(per_seed, ddof=1), abs=1e-12)
            assert cell["n"] == 6 and cell["n_seeds"] == 2
        assert cells[(router, protocol, "wins")]["value"] == sum(e["p_beats_best_single"] < 0.05 for e in es)
        ci = cells[(router, protocol, "mu_ci")]
        assert ci["lo"] < cells[(router, protocol, "mu")]["value"] < ci["hi"]
    for k in ("mu", "v_b"):  # side by side: the difference of the two protocols
        d = cells[("knn", "paper-clean", k)]["value"]
        assert d == pytest.approx(cells[("knn", "paper", k)]["value"] - cells[("knn", "clean", k)]["value"], abs=1e-12)
    # real figures: the oracle of 3 real models beats the best single on every cell; V_B of best_single is 1 (clean)
    assert cells[("oracle", "clean", "wins")]["value"] == 6
    assert cells[("best_single", "clean", "v_b")]["value"] == pytest.approx(1.0)
    assert 0.3 < cells[("knn", "clean", "mu")]["value"] < cells[("oracle", "clean", "mu")]["value"] < 1


def test_results_where_every_cell_failed_say_so_and_how_to_retry(cli, tmp_path):
    path = sweep_results(tmp_path, topic_corpus(), SWEEP_FAILED)  # m = 500 > any window: every cell fails
    r = cli("report", path)
    assert r.code == 2 and r.err.count("\n") == 1
    assert "every row failed (1;" in r.err and "--retry-failed" in r.err and "expected the RESULTS" not in r.err


def test_a_report_of_studies_alone(cli, studies, tmp_path):
    """Without RESULTS, --scaling / --coldstart make a report of the studies alone (a user of cold start only);
    nothing at all, a table filter, or a tidy format (the sweep's cells) is refused in one line."""
    for fmt in ("md", "html", "tex"):
        out = tmp_path / f"studies.{fmt}"
        r = cli("report", "--coldstart", studies[1], "--scaling", studies[0], "--format", fmt, "--out", out)
        assert r.code == 0, r.err
        text = out.read_text()
        assert "no sweep results" in text and "Columns" not in text
        assert "Cold-start study" in text and "Scaling study" in text
    p = _Structure()
    p.feed((tmp_path / "studies.html").read_text())
    assert p.stack == [] and sum(r.startswith("data:image/png;base64,") for r in p.refs) >= 1
    for args, msg in ((("--format", "md"), "results: none given; expected the RESULTS directory"),
                      (("--coldstart", studies[1], "--benchmarks", "mmlu"), "no RESULTS was given"),
                      (("--coldstart", studies[1], "--n-boot", "50"), "n_boot (--n-boot): shapes the sweep's tables"),
                      (("--coldstart", studies[1], "--format", "csv"), "study directories")):
        r = cli("report", *args, "--out", tmp_path / "x.md")
        assert r.code == 2 and r.err.count("\n") == 1 and msg in r.err, (args, r.err)
        assert not (tmp_path / "x.md").exists()


def test_several_studies_of_one_kind_are_all_in_the_report(cli, studies, tmp_path, monkeypatch):
    """--coldstart repeated (two studies side by side): both are in the report, told apart by their directory, each
    with its own HTML anchor; the CLI's line counts them (a trial found the first dropped without a word)."""
    second = make_study_dir(tmp_path / "second", kind="coldstart", svg=False)
    (second / "summary.md").write_text("# the second study\n\nIts own words.\n")
    for fmt in ("md", "html", "tex"):
        out = tmp_path / f"two.{fmt}"
        r = cli("report", "--coldstart", studies[1], "--coldstart", second, "--format", fmt, "--out", out)
        assert r.code == 0, r.err
        assert f"({fmt}, 2 studies)" in r.err
        text = out.read_text()
        assert "Its own words." in text and "Cold-start study (coldstart)" in text and "Cold-start study (second)" in text
    html = (tmp_path / "two.html").read_text()
    assert html.count('id="study-coldstart-1"') == 1 and html.count('id="study-coldstart-2"') == 1
    assert 'href="#study-coldstart-2"' in html
    r = cli("report", "--coldstart", studies[1], "--format", "html", "--out", tmp_path / "one.html")
    assert "(html, 1 study)" in r.err and 'id="study-coldstart"' in (tmp_path / "one.html").read_text()
    assert "<h2>Cold-start study</h2>" in (tmp_path / "one.html").read_text()  # one of its kind: no label
    r = cli("report", "--coldstart", studies[1], "--coldstart", studies[1], "--out", tmp_path / "twice.md")
    assert r.code == 2 and "given twice" in r.err and r.err.count("\n") == 1 and not (tmp_path / "twice.md").exists()
    monkeypatch.chdir(second)
    r = cli("report", "--coldstart", ".", "--coldstart", studies[1], "--out", tmp_path / "dot.md")
    assert r.code == 0, r.err
    assert "Cold-start study (second)" in (tmp_path / "dot.md").read_text()  # '.' is titled by its directory


def test_every_css_rule_of_the_html_page_is_scoped_to_its_root():
    # the page is also shown inside other pages (a notebook): a bare selector would restyle them
    from routereval.reports.html import CSS, SCOPE

    rules = re.findall(r"([^{}]+)\{[^{}]*\}", CSS)
    assert len(rules) > 40
    for sel in rules:
        for part in sel.strip().split(","):
            assert part == f".{SCOPE}" or part.startswith(f".{SCOPE} "), part
