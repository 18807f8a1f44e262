"""The report as one self-contained HTML file: the table model (:mod:`bench.report.table`)
as sortable tables (click a column header; plain JavaScript, no library), figures inlined as
base64 PNG, nothing fetched from a network."""
from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path
from typing import Any

from bench.report.results import failure_text
from bench.report.table import NOT_SIG, SEEN, Shown, Table, under_trained_note
from lpsr.io import write_text
from lpsr.metrics.stats import ALPHA

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;margin:24px;color:#111;max-width:1600px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#f2f2f2;cursor:pointer;user-select:none}th:first-child,td:first-child{text-align:left}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
tr.reference td{background:#f7f7ff;font-style:italic}
tr.failed td{background:#fdecea;color:#8a1c1c;text-align:left}
td.best{font-weight:bold;background:#e6f4ea}td.second{font-style:italic;background:#f4f9f5}
.ci{color:#666;font-size:11px}.mark{color:#b35900}
ul.prov li{margin:2px 0;font-size:13px}
figure{margin:16px 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:13px;color:#333}
.legend{font-size:13px;color:#333}
"""

SCRIPT = r"""
function sortTable(th){
  const table=th.closest('table'), body=table.tBodies[0];
  const idx=Array.prototype.indexOf.call(th.parentNode.children, th);
  const asc=!th.classList.contains('sorted-asc');
  table.querySelectorAll('th').forEach(h=>h.classList.remove('sorted-asc','sorted-desc'));
  th.classList.add(asc?'sorted-asc':'sorted-desc');
  const rows=Array.from(body.rows);
  const key=r=>{const c=r.cells[idx]; const v=c?c.getAttribute('data-sort'):null;
    if(v===null||v===''){return asc?Infinity:-Infinity;} const n=parseFloat(v); return isNaN(n)?v:n;};
  rows.sort((a,b)=>{const x=key(a),y=key(b); if(x<y)return asc?-1:1; if(x>y)return asc?1:-1; return 0;});
  rows.forEach(r=>body.appendChild(r));
}
document.addEventListener('DOMContentLoaded',()=>{
  document.querySelectorAll('table.sortable th').forEach(th=>th.addEventListener('click',()=>sortTable(th)));
  // a link can carry a sort: #sort=TABLE_ID:COLUMN_INDEX:asc|desc
  const m=/^#sort=([\w-]+):(\d+):(asc|desc)$/.exec(location.hash);
  if(m){const t=document.getElementById(m[1]); const th=t?t.tHead.rows[0].cells[parseInt(m[2])]:null;
    if(th){sortTable(th); if(m[3]==='desc'){sortTable(th);}}}
});
"""


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return repr(float(v))


def _sort_key(v: Any) -> str:
    return html.escape(v) if isinstance(v, str) else _num(v)


def _td(cell: Shown) -> str:
    """One cell: its text, the CI under it, the marks (hover: the paired test's p), its sort value."""
    extra = f'<br><span class="ci">[{html.escape(cell.ci[0])}, {html.escape(cell.ci[1])}]</span>' if cell.ci is not None else ""
    marks = (f' <span class="mark" title="not significantly different from the best (p={cell.p:.3g})">{NOT_SIG}</span>' if cell.not_sig else "") \
        + (f' <span class="mark" title="recogniser seen in training">{SEEN}</span>' if cell.seen else "")
    cls = f' class="{cell.mark}"' if cell.mark else ""
    title = f' title="p vs best = {cell.p:.3g}"' if cell.p is not None else ""
    return f'<td{cls}{title} data-sort="{_sort_key(cell.sort)}">{html.escape(cell.text)}{extra}{marks}</td>'


def _table(table_id: str, head: list[str], body: list[str]) -> str:
    ths = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f'<table class="sortable" id="{table_id}"><thead><tr>{ths}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def table_html(table: Table) -> list[str]:
    """``<h2>`` and the sortable table; a failed method is one row spanning the metrics."""
    body = []
    for r in table.rows:
        cls = "reference" if r.reference else "method"
        body.append(f'<tr class="{cls}" data-method="{html.escape(r.method)}">{"".join(_td(c.cell(r)) for c in table.columns)}</tr>')
    for f in table.failures:
        body.append(f'<tr class="failed" data-method="{html.escape(f["method"])}"><td data-sort="{html.escape(f["method"])}">{html.escape(f["method"])}</td>'
                    f'<td colspan="{len(table.columns) - 1}" data-sort="">failed: {html.escape(failure_text(f))}</td></tr>')
    return [f"<h2>{html.escape(table.title.replace('`', ''))}</h2>", _table(table.key, table.head, body)]


def _bold(text: str) -> str:
    """Markdown's **bold** in a provenance line as HTML."""
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)


def write_html(path: Path, title: str, prov_lines: list[str], tables: list[Table], best_of: dict[str, str],
               figures: list[tuple[str, str, Path]], notes: list[str], under_trained: bool, legend: str | None = None) -> None:
    """The report page; ``legend`` (plain text) replaces the leaderboard's legend of marks and tests."""
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style><script>{SCRIPT}</script></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             "<p>Generated by <code>bench report</code> from the run's per-plate results. Click a column header to sort.</p>",
             "<h2>Provenance</h2><ul class=\"prov\">"]
    parts += [f"<li>{_bold(html.escape(line[2:] if line.startswith('- ') else line).replace('`', ''))}</li>" for line in prov_lines]
    parts.append("</ul>")
    for table in tables:
        parts += table_html(table)
    if legend is not None:
        parts.append(f'<p class="legend">{html.escape(legend)}</p>')
    else:
        parts.append(f'<p class="legend">Bold, green: best; italic: second best; {NOT_SIG}: not significantly different from the best method of the column '
                     f'(paired test, p &ge; {ALPHA}, uncorrected; hover a cell for its p-value); {SEEN}: recogniser seen in this method\'s training. '
                     "Grey brackets: bootstrap 95% CI. The HR ceiling row is not ranked.</p>")
    if under_trained:
        parts.append(f'<p class="legend">{html.escape(under_trained_note())}</p>')
    if best_of:
        parts.append('<p class="legend">Best method per column: ' + html.escape("; ".join(f"{k}: {v}" for k, v in best_of.items())) + "</p>")
    if figures:
        parts.append("<h2>Figures</h2>")
        for key, caption, fig_path in figures:
            data = base64.b64encode(Path(fig_path).read_bytes()).decode("ascii")
            parts.append(f'<figure id="fig-{html.escape(key)}"><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    if notes:
        parts.append("<h2>Method settings that matter</h2><ul class=\"prov\">")
        parts += [f"<li>{html.escape(n[2:] if n.startswith('- ') else n).replace('`', '')}</li>" for n in notes]
        parts.append("</ul>")
    parts.append("</body></html>\n")
    write_text(path, "\n".join(parts))
