"""``routereval report``: read a results store (and study directories), render, write.

Reads the results store only (no corpus), so a results directory can be shared and reported
anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

from routereval.atomic import replacing
from routereval.errors import InputError, ParameterError
from routereval.reports.tables import PROTOCOL_ORDER, Report, _order, build_tables
from routereval.validate import as_path, check_int, option

FORMATS = ("md", "tex", "html", "csv", "json")
PROTOCOLS = ("paper", "clean")


def _split_values(values: Sequence[str] | str | None) -> list[str] | None:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]`` (options are repeatable and comma-separated); None stays None."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values:
        out += [x.strip() for x in str(v).split(",") if x.strip()]
    return list(dict.fromkeys(out))


def make_report(results: str | os.PathLike | None, *, protocols: Sequence[str] | str | None = None,
                benchmarks: Sequence[str] | str | None = None, scaling: str | os.PathLike | None = None,
                coldstart: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
                n_boot: int | None = None) -> Report:
    """The report of the results store ``results``.

    Parameters
    ----------
    results
        A ``RESULTS`` directory of ``routereval sweep``; None for a report of the studies alone
        (``scaling`` / ``coldstart``: at least one; md, tex or html: the tidy csv and json formats
        hold the sweep's table cells).
    protocols, benchmarks
        Keep these only (names, or comma-separated strings); default every one present.
        A value not in the results is an error naming the ones that are.
    scaling, coldstart
        Study directories (``routereval scaling`` / ``coldstart`` output; one, or a sequence of
        them) whose summaries and plots the report includes, in order.
    n_boot
        Bootstrap resamples behind the CIs and the wins' p-values; default the sweep's own
        ``n_boot`` (from ``RESULTS/_sweep.json``, so the p-values are the stored ones), else 1000.
    """
    import pyarrow.compute as pc

    from routereval.experiments.results import read_results
    from routereval.reports.studies import load_studies

    n_boot = None if n_boot is None else check_int(n_boot, option("n_boot"), low=1)
    protocols = _split_values(protocols)
    benchmarks = _split_values(benchmarks)
    for p in protocols or []:
        if p not in PROTOCOLS:
            raise ParameterError(f"{option('protocols', '--protocol')}: {p!r} is not a protocol; expected one of "
                                 f"{', '.join(PROTOCOLS)}")
    studies = load_studies({k: _study_paths(d) for k, d in (("scaling", scaling), ("coldstart", coldstart))})
    if results is None:
        if not studies:
            raise ParameterError("results: none given; expected the RESULTS directory of `routereval sweep`, or a "
                                 f"study ({option('scaling')}, {option('coldstart')}) for a report of studies alone")
        for opt, asked in ((option("protocols", "--protocol"), protocols), (option("benchmarks"), benchmarks),
                           (option("n_boot"), n_boot)):
            if asked:
                raise ParameterError(f"{opt}: shapes the sweep's tables, and no RESULTS was given; leave it out")
        return Report(tables=[], protocols=[], benchmarks=[], embeddings=[], splits=[], seeds=[], groups=[],
                      n_rows=0, n_failed=0, source="", n_boot=n_boot or 1000, studies=studies)
    path = as_path(results, "results")
    if not path.is_dir():
        raise InputError("not a results directory (expected the RESULTS directory of `routereval sweep`)", file=path)
    table_all = read_results(path, status=None)
    if n_boot is None:
        n_boot = sweep_n_boot(path)
    ok = table_all.filter(pc.equal(table_all.column("status"), "ok"))
    n_failed = table_all.num_rows - ok.num_rows
    if ok.num_rows == 0 and n_failed:  # a sweep's results, but nothing to report
        raise InputError(f"no finished cells to report: every row failed ({n_failed}; their `error` column says why; "
                         "fix the cause, then `routereval sweep CONFIG --out RESULTS --retry-failed`)", file=path)
    if ok.num_rows == 0:
        raise InputError("no finished cells to report (expected the RESULTS directory of `routereval sweep`)",
                         file=path)
    present_p = _order(set(ok.column("protocol").to_pylist()), PROTOCOL_ORDER)
    present_b = sorted(set(ok.column("benchmark").to_pylist()))
    for opt, asked, present in ((option("protocols", "--protocol"), protocols, present_p),
                                (option("benchmarks"), benchmarks, present_b)):
        missing = [v for v in asked or [] if v not in present]
        if missing:
            raise ParameterError(f"{opt} {missing[0]!r}: not in the results {path} (they hold: {', '.join(present)})")
    if protocols:
        ok = ok.filter(pc.is_in(ok.column("protocol"), value_set=_strings(protocols)))
    if benchmarks:
        ok = ok.filter(pc.is_in(ok.column("benchmark"), value_set=_strings(benchmarks)))
    tables = build_tables(ok, n_boot=n_boot)
    col = lambda name: ok.column(name).to_pylist()  # noqa: E731
    return Report(tables=tables, protocols=_order(set(col("protocol")), PROTOCOL_ORDER),
                  benchmarks=list(dict.fromkeys(t.benchmark for t in tables)), embeddings=sorted(set(col("embedding"))),
                  splits=sorted({str(x) for x in col("split")}),
                  seeds=sorted(set(col("seed"))), groups=sorted(set(col("group"))), n_rows=ok.num_rows,
                  n_failed=n_failed, source=str(path), n_boot=n_boot, studies=studies)


def _study_paths(value: str | os.PathLike | Sequence[str | os.PathLike] | None) -> list[str | os.PathLike]:
    """A study option's directories: none, one, or a sequence of them."""
    if value is None:
        return []
    return [value] if isinstance(value, (str, os.PathLike)) else list(value)


def sweep_n_boot(results: Path, default: int = 1000) -> int:
    """The ``n_boot`` of the sweep that wrote ``results`` (its ``_sweep.json``), else ``default``."""
    from routereval.experiments.results import read_metadata

    doc = read_metadata(results) or {}
    n = (doc.get("config") or {}).get("n_boot")
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else default


def _strings(values: Sequence[str]):
    import pyarrow as pa

    return pa.array(list(values), type=pa.string())


def renderer(fmt: str) -> Callable[..., str]:
    """The render function of format ``fmt`` (one of :data:`FORMATS`)."""
    from routereval.reports import html, text

    table = {"md": text.render_md, "tex": text.render_tex, "html": html.render_html, "csv": text.render_csv,
             "json": text.render_json}
    if fmt not in table:
        raise ParameterError(f"{option('fmt', '--format')}: {fmt!r} is not a format; expected one of "
                             f"{', '.join(FORMATS)}")
    return table[fmt]


def render(report: Report, fmt: str, *, out: str | os.PathLike | None = None) -> str:
    """The report as text in format ``fmt``; relative links point from ``out``'s directory (else the cwd)."""
    if fmt in ("csv", "json") and report.studies:
        raise ParameterError(f"{option('fmt', '--format')} {fmt} holds the tables' cells only; study directories "
                             "(scaling=, coldstart=; --scaling, --coldstart) go into md, tex or html reports")
    out_dir = Path(out).resolve().parent if out is not None else None
    return renderer(fmt)(report, out_dir=out_dir)


def check_out(out: str | os.PathLike) -> Path:
    """``out`` as a Path, refused (before any work) when it is a directory or its directory is missing."""
    p = Path(out)
    if p.is_dir():
        raise InputError(f"{option('out')} is a directory; expected a file name", file=p)
    parent = p.resolve().parent
    if not parent.is_dir():
        raise InputError(f"{option('out')}: {parent} is a file, not a directory" if parent.exists()
                         else f"{option('out')}: its directory does not exist", file=p)
    return p


def write_atomic(text: str, out: str | os.PathLike) -> Path:
    """Write ``text`` to ``out`` atomically: a hidden temporary beside it, then a rename."""
    p = check_out(out)
    with replacing(p) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return p
