"""The usage report (``build_report``): what a receiver's events say, publishable by construction.

``python -m zomg.receiver report`` (``report.cli``) reads usage stores and
JSON-lines files (``report.inputs``), counts runs and distinct installations
per row of each table in SQL (``report.tables``), folds every row of fewer
than K installations, and renders the one object as JSON, text or HTML
(``report.render``, ``report.html``). No installation id or event id ever
leaves ``report.tables``: only keys from the schema's names and counts do.
"""
from __future__ import annotations

import datetime
import sqlite3

from zomg.receiver.report.inputs import InputError, open_inputs, temporary_directory
from zomg.receiver.report.tables import REPORT_VERSION, build


def build_report(paths: list[str], since: datetime.date, until: datetime.date, k: int) -> dict:
    """The report object (docs/receiver.md, "The report's JSON") for events from ``since`` to ``until``, inclusive."""
    after = (until + datetime.timedelta(days=1)).isoformat()
    with temporary_directory() as workdir:
        connect = open_inputs(paths, (since.isoformat() + "T00:00:00Z", after + "T00:00:00Z"), workdir)
        try:
            figures = build(connect, since.isoformat(), after, k)
        except sqlite3.Error as exc:  # damage found only while reading the events
            raise InputError(f"cannot read the events ({exc})") from None
    report = {
        "version": REPORT_VERSION,
        "period": {"since": since.isoformat(), "until": until.isoformat()},
        "min_installations": k,
    }
    report.update(figures)
    return report
