"""The static HTML leaderboard: one self-contained file (inline CSS/JS, PNGs as data URIs).

Every table is sortable by clicking a column header (numeric columns sort by value, missing
cells last). Published rows carry a "published" badge and their citation; measured rows their
dataset fingerprint, code version and results folder. CIs and p-values show on hover (title)
and, in the extended table, inline.

The table markup is written here by hand rather than with ``Styler.to_html``: the sort script
needs per-cell ``data-value`` attributes (the unrounded number), per-header ``data-type`` /
``data-key`` / ``tabindex`` and a ``title`` on each cell and header, which Styler cannot emit
(its tooltips are CSS hover spans, its cell attributes are classes only).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from leaderboard.collect import BoardProblem, MeasuredResult
from leaderboard.figures import FigureSet
from leaderboard.tables import Block, Cell, TableFile, row_anchor

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1400px;
 padding:0 1em;color:#1b1b1b;line-height:1.4}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:2px solid #ddd}h3{font-size:1.05em;margin-top:1.4em}
table.board{border-collapse:collapse;font-size:.9em;margin:.4em 0}
table.board th,table.board td{padding:.25em .6em;border-bottom:1px solid #e3e3e3;text-align:right;
 white-space:nowrap}
table.board td.method,table.board th.method,table.board td.src,table.board th.src,
 table.board td.prov,table.board th.prov{text-align:left}
table.board td.prov{white-space:normal;font-size:.8em;color:#555;min-width:22em;max-width:30em}
table.board th{cursor:pointer;user-select:none;background:#f4f4f4;border-bottom:2px solid #bbb}
table.board th[aria-sort=ascending]::after{content:" \\25B2"}
table.board th[aria-sort=descending]::after{content:" \\25BC"}
div.scroll{overflow-x:auto}td.best{font-weight:bold}span.ci{color:#666;font-size:.85em}sup.fn{color:#a33}
tr.published td{background:#fbf8ec}span.badge{font-size:.75em;padding:.1em .4em;border-radius:.6em;
 background:#e8dfb9;color:#5a4a00}span.badge.m{background:#d7e8f7;color:#0b3c66}
p.remark,ol.notes{font-size:.85em;color:#444;max-width:70em}ul.problems li{color:#8a1f11}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}figcaption{font-size:.8em;
 color:#555;max-width:500px}dl.prov{font-size:.85em}dl.prov dt{font-weight:bold;float:left;
 clear:left;width:13em}dl.prov dd{margin-left:13.5em}
"""

_JS = """
(function(){
  function keyOf(row, idx, numeric){
    var c=row.cells[idx]; if(!c) return null;
    var v=c.getAttribute('data-value'); if(v===null||v==='') return null;
    return numeric?parseFloat(v):v;
  }
  function sortBy(th){
    var table=th.closest('table'), idx=Array.prototype.indexOf.call(th.parentNode.children, th);
    var asc=th.getAttribute('aria-sort')!=='ascending', numeric=th.getAttribute('data-type')==='num';
    table.querySelectorAll('th').forEach(function(h){h.removeAttribute('aria-sort');});
    th.setAttribute('aria-sort', asc?'ascending':'descending');
    var body=table.tBodies[0], rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){
      var x=keyOf(a,idx,numeric), y=keyOf(b,idx,numeric);
      if(x===null&&y===null) return 0; if(x===null) return 1; if(y===null) return -1;
      var d=numeric?x-y:String(x).localeCompare(String(y)); return asc?d:-d;
    });
    rows.forEach(function(r){body.appendChild(r);});
  }
  document.querySelectorAll('table.board th').forEach(function(th){
    th.addEventListener('click', function(){sortBy(th);});
    th.addEventListener('keydown', function(e){if(e.key==='Enter'){sortBy(th);}});
  });
})();
"""


def _cell_td(c: Cell, show_ci: bool, unit_label: str) -> str:
    classes = ["num"] + (["best"] if c.best else [])
    title = []
    if c.ci_text:
        title.append(f"95 % CI {c.ci_text}")
    if c.n is not None:
        title.append(f"n = {c.n}")
    if c.p_value is not None:
        title.append(f"paired bootstrap vs next-ranked: p = {c.p_value:.4f}")
    if c.note:
        title.append(f"see note {c.note}")
    body = escape(c.text) + ("†" if c.sig else "")
    if show_ci and c.ci_text:
        body += f' <span class="ci">{escape(c.ci_text)}</span>'
    if c.note:
        body += f'<sup class="fn">{c.note}</sup>'
    value = "" if c.value is None else repr(float(c.value))
    t = f' title="{escape(unit_label + ": " + "; ".join(title))}"' if title else ""
    return f'<td class="{" ".join(classes)}" data-value="{value}"{t}>{body}</td>'


def render_block(b: Block) -> str:
    """One block as an HTML table with its footnotes and remarks."""
    out = [f'<h3 id="{escape(b.id)}">{escape(b.title)}</h3>',
           f'<div class="scroll"><table class="board {escape(b.source)}" data-block="{escape(b.id)}"><thead><tr>',
           '<th class="method" data-type="text" tabindex="0">Method</th>',
           '<th class="src" data-type="text" tabindex="0">Source</th>']
    for c in b.columns:
        hint = {True: "higher is better", False: "lower is better", None: "not ranked"}[c.higher_is_better]
        about = f"{c.key}: {hint}" + (f". {c.description}" if c.description else "")
        out.append(f'<th data-type="num" data-key="{escape(c.key)}" tabindex="0" '
                   f'title="{escape(about)}">{escape(c.label)}</th>')
    out.append('<th class="prov" data-type="text" tabindex="0">Provenance</th></tr></thead><tbody>')
    for r in b.rows:
        badge = ('<span class="badge">published</span>' if r.source == "published"
                 else '<span class="badge m">measured</span>')
        label = escape(r.label)
        if r.anchor:
            label = f'<a href="#{escape(r.anchor)}">{label}</a>'
        out.append(f'<tr class="{escape(r.source)}" data-system="{escape(r.label)}">'
                   f'<td class="method" data-value="{escape(r.label)}">{label}</td>'
                   f'<td class="src" data-value="{escape(r.source)}">{badge}</td>')
        out += [_cell_td(r.cells[c.key], b.show_ci, c.label) for c in b.columns]
        out.append(f'<td class="prov" data-value="{escape(r.provenance)}">{escape(r.provenance)}</td></tr>')
    out.append("</tbody></table></div>")
    if b.footnotes:
        out.append('<ol class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in b.footnotes) + "</ol>")
    out += [f'<p class="remark">{escape(rem)}</p>' for rem in b.remarks]
    return "\n".join(out)


def _provenance_dl(r: MeasuredResult) -> str:
    items = [("system", r.system), ("revision", r.revision or "—"),
             ("dataset", f"{r.dataset_name}, split {r.split}, {r.n_clips if r.n_clips is not None else '?'} clips"),
             ("fingerprint", r.fingerprint), ("code", r.code_label), ("created", r.created_utc or "—"),
             ("results", r.rel)]
    for ev in sorted(r.evaluators):
        sig = r.evaluator_signature(ev)
        if sig:
            items.append((f"evaluator {ev}", f"v{sig[0]}, config {sig[1]}" + (f", weights {sig[2]}" if sig[2] else "")))
    for ev, why in sorted(r.skipped.items()):
        items.append((f"skipped {ev}", why))
    return '<dl class="prov">' + "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in items) + "</dl>"


def render_page(title: str, tables: Sequence[TableFile], results: Sequence[MeasuredResult],
                figures: dict[str, FigureSet], problems: Sequence[BoardProblem],
                files: Sequence[str]) -> str:
    """The whole self-contained HTML page."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           '<link rel="icon" href="data:,">',
           f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{escape(title)}</h1>",
           f"<p>{len(results)} measured result(s); published rows are marked "
           '<span class="badge">published</span> and measured rows '
           '<span class="badge m">measured</span>. Click a column header to sort. '
           "Hover a cell for its 95 % CI, n and significance test.</p>",
           "<nav><ul>" + "".join(f'<li><a href="#{escape(t.id)}">{escape(t.title)}</a></li>' for t in tables)
           + '<li><a href="#systems">Systems: provenance and figures</a></li>'
           + ('<li><a href="#problems">Problems</a></li>' if problems else "") + "</ul></nav>"]
    if problems:
        out.append('<h2 id="problems">Problems with the inputs</h2><ul class="problems">')
        out += [f"<li><b>{escape(p.severity)}</b>: <code>{escape(p.path)}</code>: {escape(p.message)}</li>"
                for p in problems]
        out.append("</ul>")
    for t in tables:
        out.append(f'<h2 id="{escape(t.id)}">{escape(t.title)}</h2>')
        out += [render_block(b) for b in t.blocks]
        out += [f'<p class="remark">{escape(rem)}</p>' for rem in t.remarks]
    out.append('<h2 id="systems">Systems: provenance and figures</h2>')
    if not results:
        out.append("<p>No measured results.</p>")
    for r in results:
        anchor = row_anchor(r)
        out.append(f'<section class="system" id="{escape(anchor)}"><h3>{escape(r.system)} '
                   f"on {escape(r.dataset_label)}</h3>{_provenance_dl(r)}")
        fs = figures.get(anchor)
        if fs is None:
            out.append("<p>Figures not drawn (disabled).</p>")
        else:
            for f in fs.figures:
                out.append(f'<figure><img alt="{escape(f.title)}" src="{f.data_uri()}">'
                           f"<figcaption>{escape(f.title)}. {escape(f.caption)}</figcaption></figure>")
            out += [f'<p class="remark">{escape(p)}</p>' for p in fs.problems]
        out.append("</section>")
    out.append("<h2>Files</h2><ul>" + "".join(
        f'<li><a href="{escape(f)}"><code>{escape(f)}</code></a></li>' for f in files) + "</ul>")
    out.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(out) + "\n"
