"""The receiver's spool (``Spool``): accepted events on local disk, in SQLite (WAL), until PostHog takes them.

One database file, ``spool.sqlite3`` in ``ZOMG_RECEIVER_SPOOL_DIR``, shared by
every process of the receiver (gunicorn's workers, a restarted receiver, any
WSGI host). An event is a row from the moment its batch is answered 202 until
PostHog took it (or refused it alone, see forwarder.py); docs/receiver.md has
the failure model.

- ``append`` is a group commit: the request threads of a process that arrive
  while a commit runs wait for the next one, which writes all their rows in
  one transaction; each returns once its rows are committed (with
  ``synchronous=FULL``, fsynced). The bound (events and bytes, kept in a
  one-row ``totals`` table inside the same transactions) is checked there.
- A sender ``claim``s the oldest unclaimed rows by writing its owner name on
  them; ``settle`` deletes rows PostHog took; ``release`` hands rows back.
  An owner is a process holding an exclusive lock on its file under
  ``owners/``: the lock dies with the process (crash, SIGKILL, OOM kill,
  reboot), and ``reclaim`` hands a dead owner's rows back to everyone.
- ``counters`` are totals across processes and restarts (accepted, forwarded,
  refused by reason, ...): the durable ones are added in the same transaction
  as the rows they count, the others kept in memory and added by
  ``flush_counters`` (the forwarder calls it every second and at exit).

Nothing opens the database before it is first used, so a process that forks
after building a Spool (gunicorn's preload) gives each child its own
connections and owner. Each method is safe to call from any thread.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping

SPOOL_FILE = "spool.sqlite3"
OWNERS_DIR = "owners"
MAX_EVENTS = 1_000_000
MAX_BYTES = 512 * 1024 * 1024
# synchronous=FULL: a commit is fsynced, so an answered batch survives power loss too.
SYNC_MODES = ("full", "normal")
BUSY_SECONDS = 5.0
# SQLite's default limit on bound parameters is 999 before 3.32.
_CHUNK = 500

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, line BLOB NOT NULL, queued REAL NOT NULL, owner TEXT)",
    "CREATE INDEX IF NOT EXISTS claimed ON events (owner) WHERE owner IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS totals (one INTEGER PRIMARY KEY CHECK (one = 1), events INTEGER NOT NULL, "
    "bytes INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO totals VALUES (1, 0, 0)",
    "CREATE TABLE IF NOT EXISTS owners (owner TEXT PRIMARY KEY, since REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL)",
)


class SpoolError(Exception):
    """The spool could not keep the events (disk full, database locked too long, unreadable): nothing was kept."""


class SpoolFull(SpoolError):
    """The events do not fit in the spool's bound: nothing was kept."""


class _Ticket:
    __slots__ = ("lines", "count", "done", "error")

    def __init__(self, lines: bytes, count: int) -> None:
        self.lines = lines
        self.count = count
        self.done = False
        self.error: Exception | None = None


def default_directory(environ: Mapping[str, str]) -> str:
    """Where the spool lives when ZOMG_RECEIVER_SPOOL_DIR is not set: the user's state directory."""
    state = environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):
        state = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "zomg-receiver")


def prepare_directory(directory: str) -> str:
    """Create the spool's directory (mode 0700) if needed; OSError when it cannot be created or written."""
    os.makedirs(os.path.join(directory, OWNERS_DIR), mode=0o700, exist_ok=True)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(f"{directory} cannot be written")
    return directory


def on_fork(owner: object, reset: Callable[[object], None]) -> None:
    """Call ``reset(owner)`` in the child after a fork, for as long as ``owner`` lives.

    A fork copies locks held by another thread (held for ever in the child) and
    connections that belong to the parent; the child starts afresh instead.
    """
    register = getattr(os, "register_at_fork", None)
    if register is None:  # Windows: no fork
        return
    ref = weakref.ref(owner)

    def child() -> None:
        alive = ref()
        if alive is not None:
            reset(alive)

    register(after_in_child=child)


def _lock_exclusive(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; False when another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


class Spool:
    """The events accepted and not yet taken by PostHog, on disk; see the module docstring."""

    def __init__(self, directory: str, max_events: int = MAX_EVENTS, max_bytes: int = MAX_BYTES,
                 sync: str = "full", clock: Callable[[], float] = time.time) -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}")
        self.directory = directory
        self.path = os.path.join(directory, SPOOL_FILE)
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.sync = sync
        self.clock = clock
        self._pid = 0
        self._reset()
        on_fork(self, Spool._reset)

    def _reset(self) -> None:
        # A new process (the first, or a fork's child): locks, connections and owner are per
        # process. Connections inherited across a fork are kept referenced and never closed:
        # closing them would touch the parent's database locks.
        self._cond = threading.Condition()  # the group commit's
        self._lock = threading.Lock()  # the side connection's (claims, settles, reads)
        self._counts_lock = threading.Lock()
        self._inherited = [getattr(self, name, None) for name in ("_append_db", "_side_db")]
        self._append_db: sqlite3.Connection | None = None
        self._side_db: sqlite3.Connection | None = None
        self._pending: list = []
        self._committing = False
        self._deltas: dict = {}
        self._full_since_settle = False
        inherited_lock = getattr(self, "_owner_fd", None)
        if inherited_lock is not None:
            os.close(inherited_lock)  # the parent keeps its lock; this process must not hold it
        self._owner_fd: int | None = None
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._pid = os.getpid()

    def _connect(self) -> sqlite3.Connection:
        prepare_directory(self.directory)
        db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.sync.upper()}")
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return db

    def _side(self) -> sqlite3.Connection:
        if self._side_db is None:
            self._side_db = self._connect()
        return self._side_db

    # Accepting ------------------------------------------------------------------

    def append(self, lines: bytes, count: int) -> None:
        """Keep ``count`` events given as newline-ended JSON lines; returns once they are committed.

        SpoolFull when they do not fit in the bound, SpoolError when they could not be written.
        """
        ticket = _Ticket(lines, count)
        with self._cond:
            self._pending.append(ticket)
            while not ticket.done:
                if self._committing:
                    self._cond.wait()
                    continue
                group, self._pending = self._pending, []
                self._committing = True
                self._cond.release()
                try:
                    self._commit(group)
                finally:
                    self._cond.acquire()
                    self._committing = False
                    self._cond.notify_all()
        if ticket.error is not None:
            raise ticket.error

    def _commit(self, group: list) -> None:
        now = self.clock()
        try:
            if self._append_db is None:
                self._append_db = self._connect()
            db = self._append_db
            db.execute("BEGIN IMMEDIATE")
            try:
                events, size = db.execute("SELECT events, bytes FROM totals").fetchone()
                rows: list = []
                added_events = added_bytes = 0
                for ticket in group:
                    if (events + added_events + ticket.count > self.max_events
                            or size + added_bytes + len(ticket.lines) > self.max_bytes):
                        ticket.error = SpoolFull("receiver: spool full; keep the events and retry later")
                        continue
                    rows.extend((line, now) for line in ticket.lines.split(b"\n")[:-1])
                    added_events += ticket.count
                    added_bytes += len(ticket.lines)
                if rows:
                    db.executemany("INSERT INTO events (line, queued) VALUES (?, ?)", rows)
                    db.execute("UPDATE totals SET events = events + ?, bytes = bytes + ?", (added_events, added_bytes))
                    _add_counters(db, {"accepted": added_events})
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            if len(rows) < sum(ticket.count for ticket in group):
                self._full_since_settle = True
        except (sqlite3.Error, OSError) as exc:
            for ticket in group:
                if ticket.error is None:
                    ticket.error = SpoolError(f"receiver: spool cannot be written ({exc}); retry later")
        finally:
            for ticket in group:
                ticket.done = True

    # Sending ---------------------------------------------------------------------

    def _register(self, db: sqlite3.Connection) -> None:
        if self._owner_fd is not None:
            return
        lock_path = os.path.join(self.directory, OWNERS_DIR, self.owner + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        if not _lock_exclusive(fd):
            os.close(fd)
            raise SpoolError(f"spool: owner lock {lock_path} is taken")
        self._owner_fd = fd
        db.execute("INSERT OR REPLACE INTO owners VALUES (?, ?)", (self.owner, self.clock()))

    def claim(self, limit: int, before: float | None = None) -> list:
        """The oldest unclaimed events (accepted before ``before``, a ``clock`` time, if given), at most ``limit``,
        now this process's: [(id, line), ...]."""
        before = float("inf") if before is None else before
        with self._lock:
            db = self._side()
            if db.execute("SELECT 1 FROM events WHERE owner IS NULL AND queued < ? LIMIT 1",
                          (before,)).fetchone() is None:
                return []
            with _transaction(db):
                self._register(db)
                rows = db.execute("SELECT id, line FROM events WHERE owner IS NULL AND queued < ? ORDER BY id LIMIT ?",
                                  (before, limit)).fetchall()
                if rows:
                    db.execute("UPDATE events SET owner = ? WHERE owner IS NULL AND id <= ?", (self.owner, rows[-1][0]))
            return rows

    def settle(self, ids: Iterable[int], counter: str) -> int:
        """Delete events PostHog took (``counter`` "forwarded") or refused alone ("dropped"); how many were here."""
        ids = list(ids)
        with self._lock:
            db = self._side()
            gone_events = gone_bytes = 0
            with _transaction(db):
                for start in range(0, len(ids), _CHUNK):
                    chunk = ids[start:start + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    count, size = db.execute(f"SELECT count(*), coalesce(sum(length(line)), 0) FROM events "
                                             f"WHERE id IN ({marks})", chunk).fetchone()
                    db.execute(f"DELETE FROM events WHERE id IN ({marks})", chunk)
                    gone_events += count
                    gone_bytes += size + count  # each line's newline counted in the bound
                db.execute("UPDATE totals SET events = events - ?, bytes = bytes - ?", (gone_events, gone_bytes))
                _add_counters(db, {counter: gone_events})
            self._full_since_settle = False
            return gone_events

    def release(self, ids: Iterable[int] | None = None) -> None:
        """Hand this process's claimed events back (``ids``, or all of them) for any sender to take."""
        with self._lock:
            db = self._side()
            with _transaction(db):
                if ids is None:
                    db.execute("UPDATE events SET owner = NULL WHERE owner = ?", (self.owner,))
                    return
                ids = list(ids)
                for start in range(0, len(ids), _CHUNK):
                    chunk = ids[start:start + _CHUNK]
                    db.execute(f"UPDATE events SET owner = NULL WHERE owner = ? AND id IN ({','.join('?' * len(chunk))})",
                               [self.owner, *chunk])

    def reclaim(self) -> int:
        """Hand back the events of owners whose process is gone; how many events that freed."""
        with self._lock:
            db = self._side()
            freed = 0
            for (owner,) in db.execute("SELECT owner FROM owners").fetchall():
                if owner == self.owner or self._alive(owner):
                    continue
                with _transaction(db):
                    freed += db.execute("UPDATE events SET owner = NULL WHERE owner = ?", (owner,)).rowcount
                    db.execute("DELETE FROM owners WHERE owner = ?", (owner,))
                try:
                    os.unlink(os.path.join(self.directory, OWNERS_DIR, owner + ".lock"))
                except OSError:
                    pass
            return freed

    def _alive(self, owner: str) -> bool:
        try:
            fd = os.open(os.path.join(self.directory, OWNERS_DIR, owner + ".lock"), os.O_RDWR)
        except OSError:
            return False
        try:
            return not _lock_exclusive(fd)
        finally:
            os.close(fd)  # closing drops the lock just taken, if it was

    # What an operator sees ------------------------------------------------------------

    def depth(self) -> tuple:
        """(events, bytes) on disk, across every process: accepted and not yet taken by PostHog."""
        with self._lock:
            return tuple(self._side().execute("SELECT events, bytes FROM totals").fetchone())

    def oldest_age(self) -> float | None:
        """Seconds since the oldest event on disk was accepted; None when the spool is empty."""
        with self._lock:
            row = self._side().execute("SELECT queued FROM events ORDER BY id LIMIT 1").fetchone()
        return None if row is None else max(0.0, self.clock() - row[0])

    @property
    def full(self) -> bool:
        """Whether the spool refuses batches for lack of room: at its bound, or a batch was refused since the last send."""
        events, size = self.depth()
        return self._full_since_settle or events >= self.max_events or size >= self.max_bytes

    def count(self, name: str, amount: float = 1) -> None:
        """Add to counter ``name`` in memory; ``flush_counters`` writes it to the shared totals."""
        with self._counts_lock:
            self._deltas[name] = self._deltas.get(name, 0) + amount

    def flush_counters(self) -> None:
        """Add this process's counted-in-memory figures to the totals on disk."""
        with self._counts_lock:
            deltas, self._deltas = self._deltas, {}
        if not deltas:
            return
        try:
            with self._lock:
                db = self._side()
                with _transaction(db):
                    _add_counters(db, deltas)
        except (sqlite3.Error, OSError):
            with self._counts_lock:
                for name, amount in deltas.items():
                    self._deltas[name] = self._deltas.get(name, 0) + amount

    def counters(self) -> dict:
        """Every counter, totalled over every process and restart (this process's unwritten part included)."""
        with self._lock:
            totals = dict(self._side().execute("SELECT name, value FROM counters").fetchall())
        with self._counts_lock:
            for name, amount in self._deltas.items():
                totals[name] = totals.get(name, 0) + amount
        return totals


def _add_counters(db: sqlite3.Connection, deltas: Mapping[str, float]) -> None:
    db.executemany("INSERT INTO counters VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                   list(deltas.items()))


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        if kind is None:
            self.db.execute("COMMIT")
        elif self.db.in_transaction:
            self.db.execute("ROLLBACK")
