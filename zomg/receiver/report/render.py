"""The report as JSON and as text: the JSON object as published, and aligned tables for a terminal."""
from __future__ import annotations

import json

from zomg.receiver.report.tables import TABLES


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, ensure_ascii=True) + "\n"


def cell(value: object) -> str:
    """A key or figure as people read it: null as "-", booleans as yes/no, shares as percentages."""
    if value is None:
        return "-"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


def header_lines(report: dict) -> list[str]:
    """What every format says first: the period, K, and the totals."""
    period = report["period"]
    lines = [
        f"zomg usage report, {period['since']} to {period['until']} (UTC, inclusive)",
        f"Rows of fewer than {report['min_installations']} installations are folded into one row, marked folded.",
        f"{report['events']} runs by {report['installations']} installations; "
        f"{report['deployment_events']} deployment reports by {report['deployments']} deployments.",
    ]
    return lines


def columns(name: str) -> list[str]:
    """A table's columns as shown: its key fields, the counts, and the share where there is one."""
    _, keys, who = TABLES[name]
    return [*keys, "runs", who] + (["share"] if name == "flags" else [])


def row_cells(name: str, row: dict) -> list[str]:
    _, keys, _ = TABLES[name]
    if row.get("folded"):
        first = ["(folded)"] + [""] * (len(keys) - 1)
    else:
        first = [cell(row[key]) for key in keys]
    share = row.get("share")
    last = ([] if name != "flags" else ["" if share is None else f"{share * 100:.1f}%"])
    return [*first, str(row["runs"]), str(row["installations"]), *last]


def to_text(report: dict) -> str:
    out = header_lines(report)
    for name, (title, _, _) in TABLES.items():
        rows = report["tables"][name]
        out += ["", title]
        if not rows:
            out.append("  (no events)")
            continue
        table = [columns(name)] + [row_cells(name, row) for row in rows]
        widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
        numeric = [i >= len(table[0]) - (3 if name == "flags" else 2) for i in range(len(widths))]
        for line in table:
            out.append("  " + "  ".join(text.rjust(w) if right else text.ljust(w)
                                        for text, w, right in zip(line, widths, numeric)).rstrip())
    return "\n".join(out) + "\n"
