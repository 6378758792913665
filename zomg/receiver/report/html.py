"""The report as one self-contained HTML page: each table beside an inline SVG chart, no script, no external resource.

Everything is in the file (styles in a ``<style>`` element, charts as
``<svg>`` elements), so a maintainer can publish it as is and a browser
fetches nothing. Without its styles it reads top to bottom as headings,
tables and labelled bars. Every text that comes from the data is escaped.
"""
from __future__ import annotations

from html import escape

from zomg.receiver.report.render import columns, header_lines, row_cells
from zomg.receiver.report.tables import TABLES

# A chart shows this many rows at most (the table beside it has all of them).
CHART_ROWS = 12
BAR_HEIGHT = 18
LABEL_WIDTH = 200
BAR_WIDTH = 260

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
section { margin-top: 2em; }
.pair { display: flex; flex-wrap: wrap; gap: 2em; align-items: flex-start; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 0.15em 0.6em; border-bottom: 1px solid #ddd; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.folded td { color: #666; font-style: italic; }
svg text { font-size: 12px; font-family: sans-serif; }
"""


def _label(name: str, row: dict) -> str:
    if row.get("folded"):
        return "(folded)"
    keys = TABLES[name][1]
    return " ".join(cell for cell in row_cells(name, row)[: len(keys)] if cell != "-") or "-"


def chart(name: str, rows: list[dict]) -> str:
    """Horizontal bars of installations per row, as an inline SVG."""
    shown = rows[:CHART_ROWS]
    top = max((row["installations"] for row in shown), default=0) or 1
    height = BAR_HEIGHT * len(shown) + 4
    width = LABEL_WIDTH + BAR_WIDTH + 60
    who = TABLES[name][2]
    parts = [f'<svg width="{width}" height="{height}" role="img"'
             f' viewBox="0 0 {width} {height}"><title>{escape(TABLES[name][0])}: {who} per row</title>']
    for i, row in enumerate(shown):
        y = i * BAR_HEIGHT + 2
        bar = max(1, round(BAR_WIDTH * row["installations"] / top))
        colour = "#999" if row.get("folded") else "#3b6ea8"
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 13}" text-anchor="end">{escape(_label(name, row)[:32])}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 2}" width="{bar}" height="{BAR_HEIGHT - 4}" fill="{colour}"/>'
            f'<text x="{LABEL_WIDTH + bar + 4}" y="{y + 13}">{row["installations"]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(name: str, rows: list[dict]) -> str:
    heads = columns(name)
    keys = len(TABLES[name][1])
    out = ["<table><thead><tr>"]
    out += [f'<th{"" if i < keys else " class=n"} scope="col">{escape(h)}</th>' for i, h in enumerate(heads)]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append('<tr class="folded">' if row.get("folded") else "<tr>")
        out += [f'<td{"" if i < keys else " class=n"}>{escape(c)}</td>' for i, c in enumerate(row_cells(name, row))]
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def to_html(report: dict) -> str:
    head = header_lines(report)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Nothing may be fetched: no script, no image, no font, no style sheet from elsewhere.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{escape(head[0])}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(head[0])}</h1>",
    ]
    out += [f"<p>{escape(line)}</p>" for line in head[1:]]
    for name, (title, _, _) in TABLES.items():
        rows = report["tables"][name]
        out.append(f'<section id="{name}"><h2>{escape(title)}</h2>')
        if rows:
            out.append(f'<div class="pair">{_table(name, rows)}{chart(name, rows)}</div>')
        else:
            out.append("<p>No events.</p>")
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
