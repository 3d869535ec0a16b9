"""Text formats of a report: Markdown (GitHub tables), LaTeX (booktabs), tidy CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from routereval.reports.tables import COST, DELTA_PROTOCOL, DESCRIPTIONS, LABELS, Column, Report, ReportTable, Value, tidy_rows

TIDY_FIELDS = ("benchmark", "m", "embedding", "split", "groups", "router", "params", "label", "oracle_type", "protocol",
               "metric", "value", "std", "lo", "hi", "n", "n_seeds", "bold", "text")


def fmt(metric: str, x: float) -> str:
    """A figure as tables show it: 3 decimals; costs (USD, often tiny) with 4 significant digits."""
    return f"{x:.4g}" if metric == COST else f"{x:.3f}"


def cell_text(col: Column, v: Value | None) -> str:
    """The cell as a table shows it: 3 decimals, ``± std`` over seeds, ``[lo, hi]``, ``k/n`` wins."""
    if v is None:
        return "–"
    if col.metric == "mu_ci":
        return "–" if v.lo is None else f"[{v.lo:.3f}, {v.hi:.3f}]"
    if col.metric == "wins":
        return f"{int(v.value)}/{v.n}"
    if v.value is None or not math.isfinite(v.value):
        return "–"
    if col.protocol == DELTA_PROTOCOL:
        x = round(v.value, 3)
        return f"{x if x else 0.0:+.3f}"  # no "-0.000"
    return fmt(col.metric, v.value) + (f" ± {fmt(col.metric, v.std)}" if v.std is not None else "")


def table_caption(t: ReportTable, report: Report) -> str:
    parts = [f"averaged over {len(t.groups)} group{'s' * (len(t.groups) != 1)} ({', '.join(t.groups)})",
             f"seed{'s' * (len(t.seeds) != 1)} {', '.join(map(str, t.seeds))}"
             + (" (mean ± std over seeds)" if len(t.seeds) > 1 else ""),
             f"{t.n_cells} cells per protocol"]
    if len(report.embeddings) > 1 or t.embedding:
        parts.insert(0, f"embedding {t.embedding}")
    if len(t.protocols) == 2:
        parts.append(f"Δ = {t.protocols[0]} - {t.protocols[1]}")
    return "; ".join(parts)


def table_title(t: ReportTable, report: Report) -> str:
    extra = [x for x, several in ((t.embedding, len(report.embeddings) > 1), (f"{t.split} split", len(report.splits) > 1))
             if several]
    return t.title + (f" ({', '.join(extra)})" if extra else "")


def _legend_lines(report: Report) -> list[str]:
    shown = {c.metric for t in report.tables for c in t.columns}
    return [f"{LABELS[k]}: {DESCRIPTIONS[k]}" for k in DESCRIPTIONS if k in shown] + [
        "bold: the best non-oracle router (oracle-type routers, which see the test scores, are not candidates)",
        f"CIs and p-values: {report.n_boot} bootstrap resamples of each cell's stored test prompts",
    ]


def _header_lines(report: Report) -> list[str]:
    if not report.source:  # studies alone
        return [f"studies: {', '.join(s.title for s in report.studies)} (no sweep results)"]
    return [f"results: {report.source} ({report.n_rows} rows ok, {report.n_failed} failed)",
            f"benchmarks: {', '.join(report.benchmarks)}; protocols: {', '.join(report.protocols)}; "
            f"seeds: {', '.join(map(str, report.seeds))}; embeddings: {', '.join(report.embeddings)}"]


def _rel(path: Path, out_dir: Path | None) -> str:
    base = out_dir if out_dir is not None else Path.cwd()
    try:
        return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return path.resolve().as_posix()


# --------------------------------------------------------------------------- markdown

_LINK = re.compile(r"(\]\()([^)\s]+)((?:\s+\"[^\"]*\")?\))")


def rebase_links(summary: str, base: Path, out_dir: Path | None) -> str:
    """``summary`` verbatim, except that link and image targets naming files of ``base``
    point to them from ``out_dir`` (else the cwd), where the report is read."""
    def fix(m: re.Match) -> str:
        target = m.group(2)
        if "://" in target or target.startswith(("#", "/", "data:", "mailto:")) or not (base / target).is_file():
            return m.group(0)
        return m.group(1) + _rel(base / target, out_dir) + m.group(3)

    return _LINK.sub(fix, summary)


def demote_headings(md: str, levels: int = 2) -> str:
    """``md`` with its ATX headings ``levels`` deeper (at most h6), outside code fences: a study's summary
    sits under the report's h2, as in the HTML report."""
    out, fence = [], None
    for line in md.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            mark = stripped[:3]
            fence = None if fence == mark else (fence or mark)
        elif fence is None and re.match(r"#{1,6}(\s|$)", stripped):
            hashes = len(stripped) - len(stripped.lstrip("#"))
            line = "#" * min(6, hashes + levels) + stripped[hashes:]
        out.append(line)
    return "\n".join(out)


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def render_md(report: Report, *, out_dir: Path | None = None) -> str:
    """GitHub Markdown: one table per benchmark and m; study summaries verbatim, plots as relative links."""
    lines = ["# routereval report", ""]
    lines += [f"- {x}" for x in _header_lines(report)] + [""]
    for t in report.tables:
        lines += [f"## {table_title(t, report)}", "", f"_{table_caption(t, report)}_", ""]
        lines.append("| router | " + " | ".join(c.label for c in t.columns) + " |")
        lines.append("|:--|" + "|".join("--:" for _ in t.columns) + "|")
        for r in t.rows:
            cells = []
            for c in t.columns:
                v = r.values.get((c.metric, c.protocol))
                s = cell_text(c, v)
                cells.append(f"**{s}**" if v is not None and v.bold else s)
            label = _md_escape(r.label) + (" *" if r.incomplete else "")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        if any(r.incomplete for r in t.rows):
            lines += ["", "\\* fewer cells than the table's (failed cells are not averaged)"]
        lines.append("")
    if report.tables:
        lines += ["Columns:", ""] + [f"- {x}" for x in _legend_lines(report)] + [""]
    for s in report.studies:
        summary = demote_headings(rebase_links(s.summary, s.path, out_dir)).rstrip()
        lines += [f"## {s.title}", "", f"_from {_rel(s.path, out_dir)}_", "", summary, ""]
        linked = {m.group(2) for m in _LINK.finditer(summary)}
        # a plot the summary shows already is not shown twice
        plots = {stem: files for stem, files in s.plots.items()
                 if not any(_rel(f, out_dir) in linked for f in files.values())}
        if plots:
            lines += [f"### {s.title}: plots", ""]
            for stem, files in plots.items():
                shown = files.get("png") or files.get("svg")
                extra = "" if "svg" not in files or shown == files["svg"] else f" ([SVG]({_rel(files['svg'], out_dir)}))"
                lines += [f"![{stem}]({_rel(shown, out_dir)}){extra}", ""]
        if s.data:
            lines += ["Data: " + ", ".join(f"[{p.name}]({_rel(p, out_dir)})" for p in s.data), ""]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- latex

_TEX_LABELS = {"mu": r"$\mu_o$", "v_r": r"$V_R$", "v_b": r"$V_B$", "e_p": r"$E_p$", "e_sel": r"$e_\mathrm{sel}$",
               "oracle_recall": "recall", "mu_ci": r"$\mu_o$ 95\% CI", "wins": "wins", COST: "cost (USD)"}
_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                # the report's own non-ASCII signs, in math mode (pdflatex's default fonts lack them)
                "±": r"$\pm$", "Δ": r"$\Delta$", "µ": r"$\mu$", "–": "--"}


def tex_escape(s: str) -> str:
    """``s`` with LaTeX's special characters escaped (and ±, Δ, µ, – spelled in LaTeX)."""
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in s)


def _tex_label(c: Column, n_protocols: int) -> str:
    base = _TEX_LABELS[c.metric]
    if c.protocol == DELTA_PROTOCOL:
        return r"$\Delta$" + base
    return base if n_protocols == 1 else f"{base} {tex_escape(c.protocol)}"


def _tex_cell(c: Column, v: Value | None) -> str:
    s = tex_escape(cell_text(c, v))
    return rf"\textbf{{{s}}}" if v is not None and v.bold else s


def render_tex(report: Report, *, out_dir: Path | None = None) -> str:
    """A LaTeX document (booktabs tables; study summaries verbatim, PNG plots by ``\\includegraphics``)."""
    out = [r"\documentclass{article}", r"\usepackage[margin=2cm]{geometry}", r"\usepackage{booktabs}",
           r"\usepackage{graphicx}", r"\usepackage{fancyvrb}", r"\begin{document}", r"\section*{routereval report}",
           r"\begin{itemize}"]
    out += [rf"\item {tex_escape(x)}" for x in _header_lines(report)]
    out.append(r"\end{itemize}")
    for t in report.tables:
        spec = "l" + "r" * len(t.columns)
        out += [r"\begin{table}[ht]", r"\centering", r"\small",
                rf"\caption{{{tex_escape(table_title(t, report))}: {tex_escape(table_caption(t, report))}}}",
                r"\resizebox{\textwidth}{!}{%", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
                "router & " + " & ".join(_tex_label(c, len(t.protocols)) for c in t.columns) + r" \\",
                r"\midrule"]
        for r in t.rows:
            cells = [_tex_cell(c, r.values.get((c.metric, c.protocol))) for c in t.columns]
            out.append(tex_escape(r.label) + (r"$^*$" if r.incomplete else "") + " & " + " & ".join(cells) + r" \\")
        out += [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
    if report.tables:
        out += [r"\paragraph{Columns.}", r"\begin{itemize}"]
        out += [rf"\item {tex_escape(x)}" for x in _legend_lines(report)] + [r"\end{itemize}"]
    for s in report.studies:
        out += [r"\clearpage", rf"\section*{{{tex_escape(s.title)}}}",
                r"\begin{Verbatim}[fontsize=\small]"]
        # a line reading \end{Verbatim} would close the environment early
        out += [line.replace(r"\end{Verbatim}", r"\end {Verbatim}") for line in s.summary.rstrip().splitlines()]
        out.append(r"\end{Verbatim}")
        for stem, files in s.plots.items():
            if "png" in files:
                out += [r"\begin{figure}[ht]", r"\centering",
                        rf"\includegraphics[width=\linewidth]{{{_rel(files['png'], out_dir)}}}",
                        rf"\caption{{{tex_escape(s.title)}: {tex_escape(stem)}}}", r"\end{figure}"]
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- tidy


def _finite(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def render_csv(report: Report, **_: Any) -> str:
    """Tidy CSV: one row per table cell (columns :data:`TIDY_FIELDS`; empty where undefined)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=TIDY_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in tidy_rows(report):
        w.writerow({k: "" if _finite(v) is None else v for k, v in row.items()})
    return buf.getvalue()


def render_json(report: Report, **_: Any) -> str:
    """Tidy JSON: a list of one object per table cell (the fields of :data:`TIDY_FIELDS`; null where undefined)."""
    rows = [{k: _finite(v) for k, v in row.items()} for row in tidy_rows(report)]
    return json.dumps(rows, indent=1, ensure_ascii=False) + "\n"
