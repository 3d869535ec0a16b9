"""The HTML report: one self-contained file (inline CSS and JS, plots as data URIs, no network).

Tables sort by a click on a column header (a small inline script); study summaries are
rendered from Markdown with raw HTML escaped, and their images are inlined or dropped, so
the page never loads anything.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import re
from pathlib import Path

from routereval.reports.tables import COST, DELTA, DELTA_PROTOCOL, DESCRIPTIONS, LABELS, Report, ReportTable
from routereval.reports.text import _header_lines, cell_text, fmt, table_caption, table_title

_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
         ".gif": "image/gif", ".webp": "image/webp"}
MAX_INLINE_DATA = 2_000_000  # CSV files larger than this are named, not embedded

# Every rule is scoped to the report's root element: the page is also shown inside other pages (a notebook's
# display(HTML(...))), whose own elements a bare `body`, `*` or `table` rule would restyle.
SCOPE = "routereval-report"
CSS = """
.routereval-report{--fg:#1f2328;--muted:#59636e;--line:#d8dee4;--head:#f6f8fa;--accent:#0969da;--best:#dafbe1;--bestfg:#116329}
.routereval-report,.routereval-report *{box-sizing:border-box}
.routereval-report{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--fg);background:#fff}
.routereval-report header{padding:18px 28px 12px;background:var(--head);border-bottom:1px solid var(--line)}
.routereval-report header h1{margin:0 0 4px;font-size:22px}
.routereval-report .meta{margin:0;color:var(--muted);font-size:13px}
.routereval-report nav{padding:8px 28px;border-bottom:1px solid var(--line);font-size:13px;position:sticky;top:0;background:#fff;z-index:3}
.routereval-report nav a{color:var(--accent);text-decoration:none;margin-right:4px;white-space:nowrap}
.routereval-report nav a:hover{text-decoration:underline}
.routereval-report nav .bench{margin-right:14px;display:inline-block}
.routereval-report nav b{font-weight:600;margin-right:4px}
.routereval-report main{padding:4px 28px 40px;max-width:1680px}
.routereval-report section{margin:22px 0 30px;scroll-margin-top:76px}
.routereval-report h2{font-size:18px;margin:0 0 2px}
.routereval-report h3{font-size:16px}
.routereval-report .caption{color:var(--muted);margin:0 0 8px;font-size:13px}
.routereval-report .scroll{display:inline-block;max-width:100%;vertical-align:top;overflow-x:auto;border:1px solid var(--line);border-radius:6px}
.routereval-report table{border-collapse:separate;border-spacing:0;font-size:13px;font-variant-numeric:tabular-nums}
.routereval-report th,.routereval-report td{padding:4px 8px;text-align:right;white-space:nowrap;border-bottom:1px solid var(--line)}
.routereval-report thead th{background:var(--head);font-weight:600;position:sticky;top:0}
.routereval-report thead tr.top th{text-align:center;border-bottom:1px solid var(--line);color:var(--muted);font-weight:500}
.routereval-report th[data-col]{cursor:pointer;user-select:none}
.routereval-report th[data-col]:hover{background:#eaeef2}
.routereval-report th[data-col]::after{content:"\\2195";color:#afb8c1;margin-left:4px;font-size:11px}
.routereval-report th[aria-sort=ascending]::after{content:"\\25B2";color:var(--accent)}
.routereval-report th[aria-sort=descending]::after{content:"\\25BC";color:var(--accent)}
.routereval-report th:first-child,.routereval-report td:first-child{text-align:left;position:sticky;left:0;background:#fff;z-index:1;
border-right:1px solid var(--line)}
.routereval-report thead th:first-child{background:var(--head);z-index:2}
.routereval-report tbody tr:nth-child(even) td{background:#fafbfc}
.routereval-report tbody tr:hover td{background:#f1f8ff}
.routereval-report tr.oracle td{color:var(--muted);font-style:italic}
.routereval-report td.best{font-weight:700;color:var(--bestfg);background:var(--best)!important}
.routereval-report td.pos{color:#9a6700}
.routereval-report td.neg{color:#0550ae}
.routereval-report .sep{border-left:2px solid var(--line)}
.routereval-report .sd{color:var(--muted);font-size:11px}
.routereval-report td.best .sd{color:var(--bestfg)}
.routereval-report tbody tr:last-child td{border-bottom:0}
.routereval-report dl.legend{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;font-size:13px;margin:8px 0}
.routereval-report dl.legend dt{font-weight:600}
.routereval-report dl.legend dd{margin:0;color:var(--muted)}
.routereval-report details.chart{margin-top:8px}
.routereval-report details.chart summary{cursor:pointer;color:var(--muted);font-size:13px}
.routereval-report svg.chart{display:block;max-width:100%;height:auto;margin-top:4px;font-family:inherit}
.routereval-report .summary>:not(.scroll){max-width:980px}
.routereval-report .summary img{max-width:100%;height:auto}
.routereval-report .summary .scroll{margin:8px 0}
.routereval-report .summary th,.routereval-report .summary td{text-align:left}
.routereval-report .figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:18px;margin-top:12px}
.routereval-report figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:8px;background:#fff}
.routereval-report figure img{display:block;width:100%;height:auto}
.routereval-report figcaption{color:var(--muted);font-size:12px;margin-top:4px}
.routereval-report footer{color:var(--muted);font-size:12px;padding:0 28px 24px}
.routereval-report code{font-size:12px;background:var(--head);padding:1px 4px;border-radius:4px}
"""

# click a header: sort the body rows by that column's data-v (numbers; empty cells last), again: reverse
JS = """
(function(){
  function key(td){var v=td.getAttribute('data-v');if(v===null||v==='')return null;var n=Number(v);return isNaN(n)?v:n;}
  function sortBy(table, th){
    var col=+th.getAttribute('data-col'), tb=table.tBodies[0];
    var dir=th.getAttribute('aria-sort')==='descending'?'ascending':'descending';
    if(th.getAttribute('data-kind')==='text'&&!th.hasAttribute('aria-sort'))dir='ascending';
    table.querySelectorAll('th[data-col]').forEach(function(h){h.removeAttribute('aria-sort');});
    th.setAttribute('aria-sort',dir);
    var sign=dir==='ascending'?1:-1;
    var rows=Array.prototype.slice.call(tb.rows);
    rows.sort(function(a,b){
      var x=key(a.cells[col]),y=key(b.cells[col]);
      if(x===null&&y===null)return 0;if(x===null)return 1;if(y===null)return -1;
      if(typeof x==='number'&&typeof y==='number')return sign*(x-y);
      return sign*String(x).localeCompare(String(y));
    });
    rows.forEach(function(r){tb.appendChild(r);});
  }
  document.querySelectorAll('table.sortable').forEach(function(table){
    if(table.dataset.sortBound)return;  // a page showing two reports runs this twice: a second handler undid the first
    table.dataset.sortBound='1';
    table.querySelectorAll('th[data-col]').forEach(function(th){
      th.tabIndex=0;
      th.addEventListener('click',function(){sortBy(table,th);});
      th.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){e.preventDefault();sortBy(table,th);}});
    });
  });
})();
"""


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def _anchor(*parts: object) -> str:
    return "t-" + re.sub(r"[^A-Za-z0-9_-]+", "-", "-".join(map(str, parts))).strip("-")


def data_uri(path: Path) -> str:
    """``data:<mime>;base64,...`` of the file (images and CSVs, so the page loads nothing)."""
    mime = _MIME.get(path.suffix.lower(), "text/csv" if path.suffix.lower() == ".csv" else "application/octet-stream")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _sort_value(metric: str, v) -> str:
    if v is None:
        return ""
    x = v.lo if metric == "mu_ci" else v.value
    return "" if x is None or not math.isfinite(x) else repr(float(x))


_HTML_LABELS = {"mu": "µ<sub>o</sub>", "v_r": "V<sub>R</sub>", "v_b": "V<sub>B</sub>", "e_p": "E<sub>p</sub>",
                "e_sel": "e<sub>sel</sub>", "oracle_recall": "recall", "mu_ci": "µ<sub>o</sub> 95% CI", "wins": "wins",
                COST: "cost"}


def _cell_html(c, v) -> str:
    # the std over seeds in small grey type keeps wide tables readable
    if v is not None and v.std is not None and c.metric not in ("mu_ci", "wins") and c.protocol != DELTA_PROTOCOL \
            and v.value is not None and math.isfinite(v.value):
        return f'{fmt(c.metric, v.value)}<span class="sd"> ± {fmt(c.metric, v.std)}</span>'
    return _e(cell_text(c, v))


def _is_sep(c, t: ReportTable) -> bool:
    """A column that starts a block of the two-protocol layout (a figure's trio, a protocol's diagnostics)."""
    return (len(t.protocols) == 2 and c is not t.columns[0]
            and (c.metric == "e_sel" or (c.metric in DELTA and c.protocol == t.protocols[0])))


#: Okabe-Ito colours (colour-blind safe), one per protocol
PROTOCOL_COLOURS = {"paper": "#E69F00", "clean": "#0072B2"}


def chart_svg(t: ReportTable) -> str:
    """Inline SVG: µ_o of every row with its 95% CI, one bar per protocol (x from 0 to 1)."""
    label_w, plot_w, bar_h, gap, top = 150, 420, 8, 8, 22
    n_p = len(t.protocols)
    row_h = n_p * bar_h + gap
    h = top + len(t.rows) * row_h + 22
    x = lambda v: label_w + plot_w * min(max(v, 0.0), 1.0)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {label_w + plot_w + 20} {h}" '
             f'width="{label_w + plot_w + 20}" height="{h}" role="img" aria-label="{_e(t.title)}: mu_o with 95% CI">']
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top - 4}" y2="{h - 18}" stroke="#d8dee4"/>'
                     f'<text x="{x(tick):.1f}" y="{h - 5}" font-size="10" text-anchor="middle" fill="#59636e">{tick:g}</text>')
    for j, p in enumerate(t.protocols):
        lx = label_w + j * 90
        parts.append(f'<rect x="{lx}" y="4" width="10" height="10" fill="{PROTOCOL_COLOURS.get(p, "#009E73")}"/>'
                     f'<text x="{lx + 14}" y="13" font-size="11" fill="#1f2328">µo {_e(p)}</text>')
    for i, r in enumerate(t.rows):
        y0 = top + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y0 + n_p * bar_h / 2 + 4:.1f}" font-size="11" text-anchor="end" '
                     f'fill="{"#59636e" if r.oracle_type else "#1f2328"}">{_e(r.label)}</text>')
        for j, p in enumerate(t.protocols):
            v, ci = r.values.get(("mu", p)), r.values.get(("mu_ci", p))
            if v is None or v.value is None:
                continue
            y = y0 + j * bar_h
            op = "0.45" if r.oracle_type else "0.9"
            parts.append(f'<rect x="{label_w}" y="{y}" width="{x(v.value) - label_w:.1f}" height="{bar_h - 1}" '
                         f'fill="{PROTOCOL_COLOURS.get(p, "#009E73")}" fill-opacity="{op}">'
                         f'<title>{_e(r.label)} {_e(p)}: {v.value:.3f}</title></rect>')
            if ci is not None and ci.lo is not None:
                yc = y + (bar_h - 1) / 2
                parts.append(f'<line x1="{x(ci.lo):.1f}" x2="{x(ci.hi):.1f}" y1="{yc:.1f}" y2="{yc:.1f}" stroke="#1f2328"/>'
                             f'<line x1="{x(ci.lo):.1f}" x2="{x(ci.lo):.1f}" y1="{y}" y2="{y + bar_h - 1}" stroke="#1f2328"/>'
                             f'<line x1="{x(ci.hi):.1f}" x2="{x(ci.hi):.1f}" y1="{y}" y2="{y + bar_h - 1}" stroke="#1f2328"/>')
    parts.append("</svg>")
    return "".join(parts)


def _table_html(t: ReportTable, report: Report) -> str:
    two = len(t.protocols) == 2
    head = []
    if two:
        top = ['<th rowspan="2" data-col="0" data-kind="text">router</th>']
        n_extra = sum(c.protocol == t.protocols[0] and c.metric not in DELTA for c in t.columns)
        for k in DELTA:
            top.append(f'<th colspan="3" class="sep">{_HTML_LABELS[k]}</th>')
        for p in t.protocols:
            top.append(f'<th colspan="{n_extra}" class="sep">{_e(p)} protocol</th>')
        head.append('<tr class="top">' + "".join(top) + "</tr>")
        sub = []
        for i, c in enumerate(t.columns, start=1):
            if c.metric in DELTA:
                label = "Δ" if c.protocol == DELTA_PROTOCOL else c.protocol
            else:
                label = LABELS[c.metric]
            label = _HTML_LABELS[c.metric] if c.metric not in DELTA else _e(label)
            cls = ' class="sep"' if _is_sep(c, t) else ""
            sub.append(f'<th data-col="{i}"{cls} title="{_e(DESCRIPTIONS[c.metric])}">{label}</th>')
        head.append("<tr>" + "".join(sub) + "</tr>")
    else:
        cells = ['<th data-col="0" data-kind="text">router</th>']
        cells += [f'<th data-col="{i}" title="{_e(DESCRIPTIONS[c.metric])}">{_HTML_LABELS[c.metric]}</th>'
                  for i, c in enumerate(t.columns, start=1)]
        head.append("<tr>" + "".join(cells) + "</tr>")
    body = []
    for r in t.rows:
        title = ' title="oracle-type: sees the test scores"' if r.oracle_type else ""
        star = " *" if r.incomplete else ""
        tds = [f'<td data-v="{_e(r.label)}"{title}>{_e(r.label)}{star}</td>']
        for i, c in enumerate(t.columns, start=1):
            v = r.values.get((c.metric, c.protocol))
            cls = []
            if v is not None and v.bold:
                cls.append("best")
            if c.protocol == DELTA_PROTOCOL and v is not None and v.value:
                cls.append("pos" if v.value > 0 else "neg")
            if _is_sep(c, t):
                cls.append("sep")
            attr = f' class="{" ".join(cls)}"' if cls else ""
            tds.append(f'<td data-v="{_sort_value(c.metric, v)}"{attr}>{_cell_html(c, v)}</td>')
        row_cls = ' class="oracle"' if r.oracle_type else ""
        body.append(f"<tr{row_cls}>" + "".join(tds) + "</tr>")
    note = ('<p class="caption">* fewer cells than the table\'s (failed cells are not averaged)</p>'
            if any(r.incomplete for r in t.rows) else "")
    return (f'<section id="{_anchor(t.benchmark, t.m, t.embedding, t.split)}"><h2>{_e(table_title(t, report))}</h2>'
            f'<p class="caption">{_e(table_caption(t, report))}</p>'
            f'<div class="scroll"><table class="sortable"><thead>{"".join(head)}</thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>{note}'
            f'<details class="chart" open><summary>µ<sub>o</sub> with 95% CI</summary>{chart_svg(t)}</details></section>')


def render_markdown(text: str, *, base: Path, inlined: set[Path] | None = None) -> str:
    """Markdown -> HTML (GitHub tables; raw HTML escaped). Images of files under ``base`` are
    inlined as data URIs, other images dropped (their alt text stays); headings move down two
    levels (the summary sits under the report's h2). The inlined files are added to ``inlined``."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    root = base.resolve()
    for tok in tokens:
        if tok.type in ("heading_open", "heading_close"):
            tok.tag = f"h{min(6, int(tok.tag[1]) + 2)}"
        for i, child in enumerate(tok.children or []):
            if child.type != "image":
                continue
            src = str(child.attrs.get("src", ""))
            target = (base / src).resolve() if src and "://" not in src and not src.startswith("data:") else None
            ok = (target is not None and target.is_file() and target.suffix.lower() in _MIME
                  and root in target.parents)
            if ok:
                child.attrs["src"] = data_uri(target)
                if inlined is not None:
                    inlined.add(target)
            else:  # the page must load nothing: keep the alt text only
                alt = "".join(c.content for c in (child.children or [])) or src
                child.type, child.tag, child.content, child.children, child.attrs = "text", "", f"[{alt}]", None, {}
    html = md.renderer.render(tokens, md.options, {})
    # a wide table scrolls in place instead of widening the page (raw HTML is escaped: these are the tables')
    return html.replace("<table>", '<div class="scroll"><table>').replace("</table>", "</table></div>")


def _study_html(s) -> str:
    inlined: set[Path] = set()
    summary = render_markdown(s.summary, base=s.path, inlined=inlined)
    figs = []
    for stem, files in s.plots.items():
        if any(f.resolve() in inlined for f in files.values()):
            continue  # the summary shows it already
        f = files.get("png") or files["svg"]
        figs.append(f'<figure><img src="{data_uri(f)}" alt="{_e(stem)}" loading="eager">'
                    f'<figcaption>{_e(f.name)}</figcaption></figure>')
    data = []
    for p in s.data:
        if p.stat().st_size <= MAX_INLINE_DATA:
            data.append(f'<a download="{_e(p.name)}" href="{data_uri(p)}">{_e(p.name)}</a>')
        else:
            data.append(f"<code>{_e(p.name)}</code>")
    return (f'<section id="{_e(s.anchor or "study-" + s.kind)}"><h2>{_e(s.title)}</h2>'
            f'<p class="caption">from <code>{_e(s.path)}</code></p>'
            f'<div class="summary">{summary}</div>'
            + (f'<div class="figs">{"".join(figs)}</div>' if figs else "")
            + (f'<p class="caption">data: {", ".join(data)}</p>' if data else "") + "</section>")


def render_html(report: Report, **_: object) -> str:
    """The report as one self-contained HTML page."""
    from routereval import __version__

    nav: dict[str, list[str]] = {}
    for t in report.tables:
        label = (f"m={t.m}" + (f" {t.embedding}" if len(report.embeddings) > 1 else "")
                 + (f" {t.split}" if len(report.splits) > 1 else ""))
        nav.setdefault(t.benchmark, []).append(f'<a href="#{_anchor(t.benchmark, t.m, t.embedding, t.split)}">{_e(label)}</a>')
    nav_html = "".join(f'<span class="bench"><b>{_e(b)}</b>{"".join(links)}</span>' for b, links in nav.items())
    nav_html += "".join(f'<span class="bench"><a href="#{_e(s.anchor or "study-" + s.kind)}">{_e(s.title)}</a></span>'
                        for s in report.studies)
    shown = {c.metric for t in report.tables for c in t.columns}
    legend = "".join(f"<dt>{_HTML_LABELS[k]}</dt><dd>{_e(DESCRIPTIONS[k])}</dd>" for k in DESCRIPTIONS if k in shown)
    legend += ("<dt>bold</dt><dd>the best non-oracle router; oracle-type routers (grey, italic) see the test "
               "scores and are not candidates</dd>"
               + ("<dt>Δ</dt><dd>paper - clean: how much choosing pools on test prompts flatters a figure "
                  "(amber: higher under paper, blue: lower)</dd>" if any(len(t.protocols) == 2 for t in report.tables)
                  else "")
               + f"<dt>bootstrap</dt><dd>{report.n_boot} resamples of each cell's stored test prompts</dd>")
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = "<br>".join(_e(x) for x in _header_lines(report))
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>routereval report</title>"
            f"<style>{CSS}</style></head><body style=\"margin:0\"><div class=\"{SCOPE}\">"
            f"<header><h1>routereval report</h1><p class=\"meta\">{meta}</p></header>"
            f"<nav>{nav_html}</nav><main>"
            + "".join(_table_html(t, report) for t in report.tables)
            + (f'<section id="legend"><h2>Columns</h2><dl class="legend">{legend}</dl>'
               '<p class="caption">Click a column header to sort.</p></section>' if report.tables else "")
            + "".join(_study_html(s) for s in report.studies)
            + f"</main><footer>routereval {_e(__version__)}, {now}</footer>"
            f"</div><script>{JS}</script></body></html>\n")
