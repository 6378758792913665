"""The local usage store (``Store``): accepted events kept in an SQLite database, once per event_id.

Set ``ZOMG_RECEIVER_STORE=PATH`` and the receiver writes every batch it
accepts here before it answers 202, whether or not it also forwards to
PostHog (``StoreSink`` wraps the other sink). A batch is one transaction;
events are keyed by (timestamp, event_id), so a batch a client sends again
(after a 503, or a lost answer) adds nothing. The database is in WAL mode with
``synchronous=NORMAL``: readers (a report) never block writers, a commit
costs no fsync, and a committed batch survives the receiver being killed
(it can be lost only if the machine itself loses power). Several gunicorn
workers share the file; each takes SQLite's write lock per batch and waits
up to ``BUSY_TIMEOUT_MS`` for it. A write that fails anyway refuses the
batch (503 and Retry-After), so the client keeps it and sends it again.

Each event type is a view with one column per field of the schema
(docs/receiver.md, "The usage store"; ``flags`` is the JSON array as sent,
``ci`` 0 or 1) over small tables (``KINDS``). Nothing else is stored: no
request data, no address.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable

from zomg.receiver.fastpath import encode_lines
from zomg.receiver.sink import DeliveryError, Sink, check_target, hand_on
from zomg.telemetry import schema

# Incremented when a table changes; a store written by a newer receiver is refused.
STORE_VERSION = 1
# How long a worker waits for another worker's write to finish before it refuses a batch.
BUSY_TIMEOUT_MS = 5000
# What a client is told when a write failed: try again soon.
RETRY_AFTER_SECONDS = 1
SECONDS_PER_DAY = 86400
# About 64 MB of write-ahead log (4 KiB pages) between checkpoints.
WAL_CHECKPOINT_PAGES = 16384

# Each event type is three tables and a view. Its events table holds, per event, only what differs
# from event to event: (timestamp, event_id, the installation's number, the shape's number). The
# installation (or deployment) ids and the shapes (every other field, as a combination) are numbered
# once in their own tables. Rows stay small, so a batch writes few pages and a report sorts integers.
# The view joins them back into one column per field of the schema.


class _Kind:
    def __init__(self, event_name: str, view: str, who: str, who_table: str) -> None:
        self.name, self.view, self.who, self.who_table = event_name, view, who, who_table
        self.events, self.shapes = view + "_events", view + "_shapes"
        fields = schema.field_names(event_name)
        # The pattern below relies on this order: event, schema_version, event_id, who, timestamp, the rest.
        assert fields[:5] == ("event", "schema_version", "event_id", who, "timestamp"), fields
        self.shape_columns = fields[5:]


KINDS = {
    schema.CLI_COMMAND: _Kind(schema.CLI_COMMAND, "cli_command", "installation_id", "installations"),
    schema.DEPLOYMENT_METRICS: _Kind(schema.DEPLOYMENT_METRICS, "deployment_metrics", "deployment_id", "deployments"),
}
_NULLABLE = {name for fields, _ in schema.EVENT_TYPES.values() for name, rule, _ in fields
             if getattr(rule, "nullable", False)}


def _column(name: str) -> str:
    if name == "ci":
        return "ci INTEGER NOT NULL"  # 0 or 1
    return f"{name} TEXT" + ("" if name in _NULLABLE else " NOT NULL")


def _create_statements() -> list[str]:
    statements = []
    for kind in KINDS.values():
        statements += [
            f"CREATE TABLE IF NOT EXISTS {kind.who_table} (id INTEGER PRIMARY KEY, {kind.who} TEXT NOT NULL UNIQUE)",
            # shape: the fields as the event's JSON has them, the key the receiver finds them by.
            f"CREATE TABLE IF NOT EXISTS {kind.shapes} (id INTEGER PRIMARY KEY, shape TEXT NOT NULL UNIQUE, "
            + ", ".join(_column(c) for c in kind.shape_columns) + ")",
            # Keyed by (timestamp, event_id), which is unique exactly when event_id is (an event is sent
            # again whole, with its own timestamp): new rows land near one end of the table instead of at
            # random places, and a period is a range of the key.
            f"CREATE TABLE IF NOT EXISTS {kind.events} (timestamp TEXT NOT NULL, event_id TEXT NOT NULL, "
            f"who INTEGER NOT NULL REFERENCES {kind.who_table} (id), shape INTEGER NOT NULL REFERENCES "
            f"{kind.shapes} (id), PRIMARY KEY (timestamp, event_id)) WITHOUT ROWID",
            f"CREATE VIEW IF NOT EXISTS {kind.view} AS SELECT e.event_id, w.{kind.who}, e.timestamp, "
            + ", ".join(f"s.{c}" for c in kind.shape_columns)
            + f" FROM {kind.events} e JOIN {kind.who_table} w ON w.id = e.who JOIN {kind.shapes} s ON s.id = e.shape",
        ]
    return statements


SCHEMA_SQL = _create_statements()


class StoreError(Exception):
    """The store cannot be opened, read or written; the message is one line for a person."""


def _line_pattern(kind: _Kind) -> re.Pattern:
    # Accepted events hold no quote or escape in any value (every string field is a name, a
    # bucket, a UUID, a version or a timestamp), so a line splits by its fixed start.
    start = f'^{{"event":"{re.escape(kind.name)}","schema_version":{schema.SCHEMA_VERSION},'
    return re.compile(start + f'"event_id":"([^"]*)","{kind.who}":"([^"]*)","timestamp":"([^"]*)",(.*)}}$',
                      re.MULTILINE)


# An accepted event as the receiver's JSON line (fastpath's canonical form) -> (event_id, who,
# timestamp, shape), by one match. (How a line of the type starts, the pattern): a type absent from
# a batch costs one substring search.
_LINE_PATTERNS = {name: ('{"event":"' + name + '"', _line_pattern(kind)) for name, kind in KINDS.items()}


def rows_by_type(lines: str) -> dict[str, list[tuple]]:
    """Accepted events given as the receiver's JSON lines: {event type: [(event_id, who, timestamp, shape)]}."""
    rows = {
        name: [m.groups() for m in pattern.finditer(lines)] if start in lines else []
        for name, (start, pattern) in _LINE_PATTERNS.items()
    }
    if sum(map(len, rows.values())) != lines.count("\n") + (not lines.endswith("\n") and bool(lines)):
        raise StoreError("store: an event is not in the receiver's line form")
    return rows


def _shape_row(kind: _Kind, shape: str) -> tuple:
    fields = json.loads("{" + shape + "}")
    values = []
    for column in kind.shape_columns:
        value = fields[column]
        if column == "flags":
            value = json.dumps(value, separators=(",", ":"))
        elif type(value) is bool:
            value = int(value)
        values.append(value)
    return (shape, *values)


class _Numbers:
    """A writer's memory of the numbers its store gave to ids and shapes (forgotten when a write fails)."""

    # Past this many remembered ids, start again: a receiver may see millions of installations.
    LIMIT = 500_000

    def __init__(self) -> None:
        self.known: dict[tuple[str, str], dict] = {}

    def forget(self) -> None:
        self.known.clear()

    def resolve(self, conn: sqlite3.Connection, kind: _Kind, rows: list[tuple]) -> list[tuple]:
        """The events table's rows for ``rows``, numbering new ids and shapes in ``conn``'s transaction."""
        who = self._numbers(conn, kind.who_table, (kind.who,), {r[1] for r in rows}, lambda w: (w,))
        shapes = self._numbers(conn, kind.shapes, ("shape", *kind.shape_columns), {r[3] for r in rows},
                               lambda s: _shape_row(kind, s))
        return [(timestamp, event_id, who[w], shapes[s]) for event_id, w, timestamp, s in rows]

    def _numbers(self, conn: sqlite3.Connection, table: str, names: tuple, wanted: set, row) -> dict:
        key = names[0]
        known = self.known.setdefault((table, key), {})
        if len(known) > self.LIMIT:
            known.clear()
        missing = [value for value in wanted if value not in known]
        if missing:
            places = ", ".join("?" * len(names))
            conn.executemany(f"INSERT OR IGNORE INTO {table} ({', '.join(names)}) VALUES ({places})", map(row, missing))
            for start in range(0, len(missing), 500):
                part = missing[start:start + 500]
                known.update(conn.execute(
                    f"SELECT {key}, id FROM {table} WHERE {key} IN ({', '.join('?' * len(part))})", part))
        return known


def connect(path: str, create: bool = True, uri: bool = False) -> sqlite3.Connection:
    """A connection to the store at ``path`` (made, if ``create``); StoreError if it is not one."""
    if not create and not uri and not os.path.isfile(path):
        raise StoreError(f"{path}: no such store")
    if create and not uri:
        _make_private(path)
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False,
                               uri=uri)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open the store ({exc})") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > STORE_VERSION:
            raise StoreError(f"{path}: store version {version} is newer than this receiver's ({STORE_VERSION})")
        if create:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            # Copy the log into the database every WAL_CHECKPOINT_PAGES pages rather than SQLite's 1000:
            # fewer, larger checkpoints (each one syncs) cost a batch less on average.
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise StoreError(f"{path}: not a zomg usage store (another program's database?)")
            if version < STORE_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                for statement in SCHEMA_SQL:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {STORE_VERSION}")
                conn.execute("COMMIT")
        elif version != STORE_VERSION:
            raise StoreError(f"{path}: not a zomg usage store")
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"{path}: not a usable SQLite store ({exc})") from None
    except StoreError:
        conn.close()
        raise
    return conn


def _make_private(path: str) -> None:
    # Installation ids are for the receiver's operator only: the file is made 0600, as the
    # local sink's is, and SQLite gives its -wal and -shm files the database's mode.
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the store ({exc.strerror})") from None


def check_store(path: str) -> str:
    """``path`` when the store can be created or opened and written there; StoreError otherwise."""
    check_target(path, "store", StoreError)
    connect(path).close()
    return path


class Store:
    """Writes batches of validated events into the store at ``path``, one transaction each."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._numbers = _Numbers()

    def _connection(self) -> sqlite3.Connection:
        # Opened on first use in the process that writes: a connection must not cross a fork.
        if self._conn is None or self._pid != os.getpid():
            self._numbers.forget()
            self._conn = connect(self.path)
            self._pid = os.getpid()
        return self._conn

    def write_events(self, events: Iterable[dict]) -> None:
        """Keep validated events (duplicates of kept ones are ignored); StoreError if they were not kept."""
        self.write_lines(encode_lines(list(events)))

    def write_lines(self, lines: bytes) -> None:
        """Keep events given as the receiver's JSON lines (one validated event per line)."""
        self.write_rows(rows_by_type(lines.decode("ascii")))

    def write_rows(self, rows: dict[str, list[tuple]]) -> None:
        """Keep rows made by ``rows_by_type`` in one transaction."""
        with self._lock:
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for name, batch in rows.items():
                        if batch:
                            kind = KINDS[name]
                            conn.executemany(f"INSERT OR IGNORE INTO {kind.events} VALUES (?, ?, ?, ?)",
                                             self._numbers.resolve(conn, kind, batch))
                    conn.execute("COMMIT")
                except BaseException:
                    # Numbers given in a transaction that did not commit do not exist.
                    self._numbers.forget()
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                # A broken connection is dropped; the next batch opens a new one.
                self.close()
                raise StoreError(f"store: cannot record events ({exc})") from None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None


class StoreSink(Sink):
    """The sink that keeps a batch in the store, then hands it to ``inner`` (another sink, if any).

    A batch the store could not keep is refused before ``inner`` sees it; one
    ``inner`` then refuses is kept, and its resend adds nothing to the store.
    """

    def __init__(self, store: Store, inner: object = None) -> None:
        self.store = store
        self.inner = inner

    def deliver_lines(self, lines: bytes) -> None:
        try:
            self.store.write_lines(lines)
        except StoreError as exc:
            raise DeliveryError(str(exc), status=503, retry_after=RETRY_AFTER_SECONDS) from None
        if self.inner is not None:
            hand_on(self.inner, lines)

    def __getattr__(self, name: str) -> object:
        # The server's hooks (start, close, hurry) reach the inner sink.
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)


def expire(path: str, keep_days: int, now: float | None = None) -> int:
    """Delete events older than ``keep_days`` days from the store; how many were deleted."""
    cutoff = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((time.time() if now is None else now)
                                                              - keep_days * SECONDS_PER_DAY))
    conn = connect(path, create=False)
    try:
        conn.execute("BEGIN IMMEDIATE")
        deleted = 0
        for kind in KINDS.values():
            deleted += conn.execute(f"DELETE FROM {kind.events} WHERE timestamp < ?", (cutoff,)).rowcount
        conn.execute("COMMIT")
        return deleted
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot expire events ({exc})") from None
    finally:
        conn.close()
