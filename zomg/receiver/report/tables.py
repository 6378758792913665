"""The report's figures: the tables (``TABLES``), counted in SQL and folded below K installations.

Every table counts, per row, runs (events) and distinct installations (for
deployment tables: distinct deployments). SQLite groups the period's events
once per installation and combination of fields (one sort, in C), ordered
by installation; this module then reads that stream once, one installation
at a time: each key of each table is a bit, and an installation is the set
of bits of the combinations it used (``_Tally``). So memory holds the
combinations and one integer per installation, not the events, and
"distinct installations" is exact. A row with fewer than
``k`` installations is folded, with every other such row of its table, into
one row whose key fields are null and ``"folded": true``; its installations
are those behind any folded row, counted once (the bits say which).

Weekly active installations need no sort: a week is a range of the events'
key, counted with one COUNT(DISTINCT) each. The two streams (commands,
deployments) and the weeks run on their own connections in threads: SQLite
sorts and counts without holding the GIL, so two cores share the work.
"""
from __future__ import annotations

import datetime
import json
import sqlite3
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator

REPORT_VERSION = 1

# name -> (title, key fields, what "installations" counts)
TABLES = {
    "commands": ("Commands", ("command", "subcommand"), "installations"),
    "flags": ("Flags per command (share of that command's runs)", ("command", "subcommand", "flag"),
              "installations"),
    "os": ("Operating systems", ("value",), "installations"),
    "arch": ("Architectures", ("value",), "installations"),
    "ci": ("Run under CI", ("value",), "installations"),
    "results": ("Results and error classes per command", ("command", "subcommand", "result", "error_class"),
                "installations"),
    "durations": ("Durations per command", ("command", "subcommand", "duration_bucket"), "installations"),
    "cli_versions": ("zomg versions", ("value",), "installations"),
    "weekly_active": ("Weekly active installations (weeks start on Monday)", ("week",), "installations"),
    "node_shapes": ("Deployments: node shapes (CPUs, memory)", ("cpu_bucket", "memory_bucket"), "deployments"),
    "active_boxes": ("Deployments: boxes used in the last 7 days", ("value",), "deployments"),
    "storage_used": ("Deployments: share of the boxes' file system in use", ("value",), "deployments"),
    "box_bytes": ("Deployments: disk space used by all boxes", ("value",), "deployments"),
}

_CLI_FIELDS = ("command", "subcommand", "flags", "duration_bucket", "result", "error_class", "os", "arch", "ci",
               "cli_version")
_DEPLOYMENT_FIELDS = ("cpu_bucket", "memory_bucket", "active_boxes_bucket", "storage_used_bucket",
                      "box_bytes_bucket")
_PERIOD = "timestamp >= ? AND timestamp < ?"


def _per_shape(events: str) -> str:
    return f"SELECT who, shape, COUNT(*) FROM {events} WHERE {_PERIOD} GROUP BY who, shape ORDER BY who"


def _weeks(since: str, until_exclusive: str) -> list[tuple[str, str, str]]:
    """(Monday, first day, day after the last) of each week the period touches, cut to the period."""
    first, end = datetime.date.fromisoformat(since), datetime.date.fromisoformat(until_exclusive)
    monday = first - datetime.timedelta(days=first.weekday())
    weeks = []
    while monday < end:
        after = monday + datetime.timedelta(days=7)
        weeks.append((monday.isoformat(), max(monday, first).isoformat(), min(after, end).isoformat()))
        monday = after
    return weeks


def _weekly(connect: Callable[[], sqlite3.Connection], since: str, until_exclusive: str, k: int) -> list[dict]:
    """The weekly_active table: one COUNT(DISTINCT) per week, a range of the events' key (no sort)."""
    count = "SELECT COUNT(*), COUNT(DISTINCT who) FROM cli_command_events WHERE "
    conn = connect()
    try:
        rows, folded = [], []
        for monday, first, after in _weeks(since, until_exclusive):
            bounds = (first + "T00:00:00Z", after + "T00:00:00Z")
            runs, installations = conn.execute(count + _PERIOD, bounds).fetchone()
            if installations >= k:
                rows.append({"week": monday, "runs": runs, "installations": installations})
            elif runs:
                folded.append(bounds)
        rows.sort(key=sort_key)
        if folded:
            where = " OR ".join(f"({_PERIOD})" for _ in folded)
            runs, installations = conn.execute(count + where, [b for pair in folded for b in pair]).fetchone()
            rows.append({"week": None, "runs": runs, "installations": installations, "folded": True})
        return rows
    finally:
        conn.close()


# Each stream: (SQL giving (who, item, runs) ordered by who, SQL listing the items as (item, fields...)
# or None when the item is its own field, [(table, the keys of an item's fields)]).
_STREAMS = {
    "cli": (_per_shape("cli_command_events"), f"SELECT id, {', '.join(_CLI_FIELDS)} FROM cli_command_shapes", [
        ("commands", lambda r: ((r[1], r[2]),)),
        ("flags", lambda r: [(r[1], r[2], flag) for flag in json.loads(r[3])]),
        ("results", lambda r: ((r[1], r[2], r[5], r[6]),)),
        ("durations", lambda r: ((r[1], r[2], r[4]),)),
        ("os", lambda r: ((r[7],),)),
        ("arch", lambda r: ((r[8],),)),
        ("ci", lambda r: ((bool(r[9]),),)),
        ("cli_versions", lambda r: ((r[10],),)),
    ]),
    "deployments": (_per_shape("deployment_metrics_events"),
                    f"SELECT id, {', '.join(_DEPLOYMENT_FIELDS)} FROM deployment_metrics_shapes", [
        ("node_shapes", lambda r: ((r[1], r[2]),)),
        ("active_boxes", lambda r: ((r[3],),)),
        ("storage_used", lambda r: ((r[4],),)),
        ("box_bytes", lambda r: ((r[5],),)),
    ]),
}


def _bits(mask: int) -> Iterator[int]:
    """The positions of the bits set in ``mask``."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


class _Tally:
    """Runs and installations per key of some tables, from rows of (who, item, runs) grouped by who.

    Every (table, key) gets a bit; an item (a shape, a day) is the bits of its
    keys, and an installation the OR of its items' bits. Reading a row is
    then two additions and an OR; which keys an installation has, and how
    many installations have each, come from those masks at the end.
    """

    def __init__(self, tables: list[tuple[str, Callable]]) -> None:
        self.tables = tables
        self.bit_of: dict = {}  # (table, key) -> its bit's position
        self.item_bits: dict = {}  # item -> its keys as bits
        self.item_runs: defaultdict = defaultdict(int)
        self.masks: Counter = Counter()  # an installation's keys as bits -> how many installations
        self.events = 0
        self.who = 0

    def _item(self, fields: tuple) -> int:
        mask = 0
        for name, keys in self.tables:
            for key in keys(fields):
                bit = self.bit_of.setdefault((name, key), len(self.bit_of))
                mask |= 1 << bit
        return mask

    def read(self, rows: Iterable[tuple], items: dict | None) -> None:
        """Count ``rows`` of (who, item, runs) ordered by who; ``items`` maps an item to its fields."""
        item_bits, item_runs, masks = self.item_bits, self.item_runs, self.masks
        current, mask, events = None, 0, 0
        for who, item, runs in rows:
            if who != current:
                if current is not None:
                    masks[mask] += 1
                current, mask = who, 0
            bits = item_bits.get(item)
            if bits is None:
                bits = item_bits[item] = self._item(items[item] if items is not None else (item,))
            mask |= bits
            item_runs[item] += runs
            events += runs
        if current is not None:
            masks[mask] += 1
        self.events, self.who = events, sum(masks.values())
        self._count()

    def _count(self) -> None:
        self.runs = [0] * len(self.bit_of)
        self.installations = [0] * len(self.bit_of)
        for item, runs in self.item_runs.items():
            for bit in _bits(self.item_bits[item]):
                self.runs[bit] += runs
        for mask, how_many in self.masks.items():
            for bit in _bits(mask):
                self.installations[bit] += how_many

    def table_runs(self, name: str) -> dict:
        """{key: runs} of one table."""
        return {key: self.runs[bit] for (table, key), bit in self.bit_of.items() if table == name}

    def rows(self, name: str, k: int) -> list[dict]:
        """The table's published rows: those of ``k`` installations or more, the rest folded into one."""
        fields = TABLES[name][1]
        out, folded_bits, folded_runs = [], 0, 0
        for (table, key), bit in self.bit_of.items():
            if table != name:
                continue
            runs, installations = self.runs[bit], self.installations[bit]
            if installations >= k:
                out.append(dict(zip(fields, key), runs=runs, installations=installations))
            else:
                folded_bits |= 1 << bit
                folded_runs += runs
        out.sort(key=sort_key)
        if folded_runs:
            who = sum(n for mask, n in self.masks.items() if mask & folded_bits)
            out.append(dict(dict.fromkeys(fields), runs=folded_runs, installations=who, folded=True))
        return out


def sort_key(row: dict) -> tuple:
    """Installations, then runs, descending; then the key fields, so that ties have one order."""
    keys = tuple("" if value is None else str(value) for name, value in row.items()
                 if name not in ("runs", "installations", "share", "folded"))
    return (-row["installations"], -row["runs"], keys)


def _run_stream(connect: Callable[[], sqlite3.Connection], stream: str, bounds: tuple, out: dict) -> None:
    query, items_query, tables = _STREAMS[stream]
    tally = _Tally(tables)
    try:
        conn = connect()
        try:
            items = None if items_query is None else {row[0]: row for row in conn.execute(items_query)}
            tally.read(conn.execute(query, bounds), items)
        finally:
            conn.close()
    except Exception as exc:  # handed to the caller's thread
        out["error"] = exc
    out[stream] = tally


def build(connect: Callable[[], sqlite3.Connection], since: str, until_exclusive: str, k: int) -> dict:
    """The report's tables and totals from the store ``connect()`` opens, events in [since, until_exclusive)."""
    bounds = (since + "T00:00:00Z", until_exclusive + "T00:00:00Z")
    results: dict = {}

    def weekly() -> None:
        try:
            results["weekly_active"] = _weekly(connect, since, until_exclusive, k)
        except Exception as exc:  # handed to the caller's thread
            results["error"] = exc

    threads = [threading.Thread(target=_run_stream, args=(connect, name, bounds, results)) for name in _STREAMS]
    threads.append(threading.Thread(target=weekly))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if "error" in results:
        raise results["error"]
    tables = {}
    by_table = {name: results[stream] for stream, (_, _, parts) in _STREAMS.items() for name, _ in parts}
    for name in TABLES:
        tables[name] = results[name] if name == "weekly_active" else by_table[name].rows(name, k)
    command_runs = by_table["commands"].table_runs("commands")
    for row in tables["flags"]:
        row["share"] = None if row.get("folded") else round(row["runs"] / command_runs[(row["command"],
                                                                                         row["subcommand"])], 4)
    cli, deployments = results["cli"], results["deployments"]
    return {
        "events": cli.events,
        "installations": cli.who,
        "deployment_events": deployments.events,
        "deployments": deployments.who,
        "tables": tables,
    }
