"""The report's inputs: usage stores and JSON-lines files, read into one store without duplicates.

One store alone is read in place, read-only (its key already keeps each
event_id once). Otherwise every input's events in the period go into a
working store in a temporary directory, keyed as the receiver's store is,
so an event found in several inputs (a store and the JSON lines of the same
receiver, two receivers' files) is counted once. A JSON-lines file is what
the receiver writes without a PostHog token (``ZOMG_RECEIVER_OUTPUT``),
plain or gzip-compressed (``.gz``); every line must be a valid event.
"""
from __future__ import annotations

import gzip
import json
import os
import sqlite3
import tempfile
import zlib
from collections.abc import Callable, Iterator

from zomg.receiver.fastpath import encode_event, validate_batch
from zomg.receiver.store import KINDS, Store, StoreError, connect, rows_by_type
from zomg.telemetry import schema

# Lines read from a JSON-lines file per transaction of the working store.
CHUNK_LINES = 20000


class InputError(Exception):
    """An input that cannot be read; the message is one line for a person."""


def is_store(path: str) -> bool:
    """Whether ``path`` is an SQLite file (by its first bytes), rather than JSON lines."""
    with open(path, "rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def _read_only(path: str) -> Callable[[], sqlite3.Connection]:
    uri = "file:" + _quote(os.path.abspath(path)) + "?mode=ro"

    def open_it() -> sqlite3.Connection:
        try:
            connect(uri, create=False, uri=True).close()  # checks it is a store of a version we read
            return sqlite3.connect(uri, uri=True, check_same_thread=False)
        except StoreError as exc:
            raise InputError(str(exc).replace(uri, path)) from None
        except sqlite3.Error as exc:
            raise InputError(f"{path}: not a readable usage store ({exc})") from None

    open_it().close()
    return open_it


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path)


def _lines(path: str) -> Iterator[tuple[int, bytes]]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        yield from enumerate(f, 1)


def _event_line(path: str, number: int, line: bytes) -> str:
    """One input line as the receiver's canonical line, validated; InputError otherwise."""
    try:
        event = json.loads(line)
        validate_batch({schema.BATCH_KEY: [event]})
    except (ValueError, schema.SchemaError) as exc:
        raise InputError(f"{path}:{number}: not a zomg event ({exc})") from None
    return encode_event(event) + "\n"


def _load_lines(store: Store, path: str, bounds: tuple[str, str]) -> None:
    since, until = bounds
    chunk: list[str] = []

    def flush() -> None:
        rows = rows_by_type("".join(chunk))
        # rows_by_type's rows are (event_id, who, timestamp, shape).
        store.write_rows({name: [r for r in batch if since <= r[2] < until] for name, batch in rows.items()})
        chunk.clear()

    try:
        for number, line in _lines(path):
            if line.strip():
                chunk.append(_event_line(path, number, line))
                if len(chunk) >= CHUNK_LINES:
                    flush()
        flush()
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None


def open_inputs(paths: list[str], bounds: tuple[str, str], workdir: str) -> Callable[[], sqlite3.Connection]:
    """A way to open a connection to the period's events of ``paths``, each event_id once.

    ``bounds`` are the period's first and past-the-last timestamps; ``workdir`` is
    a temporary directory for the working store when one is needed.
    """
    kinds = []
    for path in paths:
        if not os.path.isfile(path):
            raise InputError(f"{path}: no such file")
        try:
            kinds.append(is_store(path))
        except OSError as exc:
            raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    if len(paths) == 1 and kinds[0]:
        return _read_only(paths[0])
    work = os.path.join(workdir, "work.sqlite3")
    store = Store(work)
    try:
        for path, kind in zip(paths, kinds):
            if kind:
                _copy_store(work, path, bounds)
            else:
                _load_lines(store, path, bounds)
    except StoreError as exc:
        raise InputError(str(exc)) from None
    finally:
        store.close()
    return _read_only(work)


def _copy_store(work: str, path: str, bounds: tuple[str, str]) -> None:
    _read_only(path)  # a clear error for a file that is not a store
    conn = connect(work)
    try:
        conn.execute("ATTACH DATABASE ? AS source", ("file:" + _quote(os.path.abspath(path)) + "?mode=ro",))
        conn.execute("BEGIN IMMEDIATE")
        for kind in KINDS.values():
            # Ids and shapes by their text (numbers differ from store to store), then the period's events.
            conn.execute(f"INSERT OR IGNORE INTO main.{kind.who_table} ({kind.who})"
                         f" SELECT {kind.who} FROM source.{kind.who_table}")
            shape_columns = ", ".join(("shape", *kind.shape_columns))
            conn.execute(f"INSERT OR IGNORE INTO main.{kind.shapes} ({shape_columns})"
                         f" SELECT {shape_columns} FROM source.{kind.shapes}")
            conn.execute(
                f"INSERT OR IGNORE INTO main.{kind.events} SELECT e.timestamp, e.event_id, mw.id, ms.id"
                f" FROM source.{kind.events} e"
                f" JOIN source.{kind.who_table} sw ON sw.id = e.who"
                f" JOIN main.{kind.who_table} mw ON mw.{kind.who} = sw.{kind.who}"
                f" JOIN source.{kind.shapes} ss ON ss.id = e.shape"
                f" JOIN main.{kind.shapes} ms ON ms.shape = ss.shape"
                " WHERE e.timestamp >= ? AND e.timestamp < ?", bounds)
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE source")
    except sqlite3.Error as exc:
        raise InputError(f"{path}: cannot be read as a usage store ({exc})") from None
    finally:
        conn.close()


def temporary_directory() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="zomg-report-")
