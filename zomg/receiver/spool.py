"""The receiver's spool (``Spool``): accepted events on local disk, in SQLite (WAL), until PostHog takes them.

One database file, ``spool.sqlite3`` in ``ZOMG_RECEIVER_SPOOL_DIR``, shared by
every process of the receiver (gunicorn's workers, a restarted receiver, any
WSGI host). An accepted batch is a row from the moment it is answered 202,
and an event stays in it until PostHog took it (or refused it alone, see
forwarder.py); docs/receiver.md has the failure model.

- ``append`` is a group commit: the request threads of a process that arrive
  while a commit runs wait for the next one, which writes all their batches
  in one statement (its own transaction), as one row (up to ``_ROW_EVENTS``
  events a row); each returns once its rows are
  committed and, with ``sync="full"``, the log is fsynced (``_sync_wal``:
  after the write lock is released, one fsync for every commit written
  before it). The bound (events and
  bytes, in a one-row ``totals`` table) is checked and kept by triggers of
  the appending connection, inside that statement. Writers of all processes
  take turns on a file lock (``spool.lock``).
- A sender ``claim``s the oldest unclaimed rows by writing its owner name
  beside them (in ``claims``: a claim never rewrites the events);
  ``settle`` takes out the events PostHog took (deleting a row once it is
  empty); ``release`` hands rows back. An owner is a process holding an
  exclusive lock on its file under ``owners/``: the lock dies with the
  process (crash, SIGKILL, OOM kill, reboot), and ``reclaim`` hands a dead
  owner's rows back to everyone.
- ``checkpoint`` copies the log into the database once it has grown (the
  sender's thread calls it, so appends never wait for it).
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
from _thread import allocate_lock as _allocate_lock
from collections.abc import Callable, Iterable, Mapping

SPOOL_FILE = "spool.sqlite3"
OWNERS_DIR = "owners"
MAX_EVENTS = 1_000_000
MAX_BYTES = 512 * 1024 * 1024
# "full": an append returns once the log is fsynced, so an answered batch survives power loss too.
SYNC_MODES = ("full", "normal")
BUSY_SECONDS = 5.0
# The counters kept in the totals row, changed in the transactions that change the spool.
_SETTLED = ("forwarded", "dropped")
_COUNTED = ("accepted", *_SETTLED)
_INSERT = "INSERT INTO batches (count, bytes, queued, origin, lines) VALUES "
# Five parameters a row, within SQLite's default limit of 999 before 3.32.
_ROWS_PER_INSERT = 150
# At most this many events in a row holding several batches (a quarter of a PostHog call).
_ROW_EVENTS = 500
# SQLite's default limit on bound parameters is 999 before 3.32.
_CHUNK = 500
# The log's size (in 4 KiB pages) past which ``checkpoint`` copies it into the database
# (SQLite's own default), and past which an append does it itself: nobody called checkpoint.
_CHECKPOINT_PAGES = 1000
_BACKSTOP_PAGES = 16 * _CHECKPOINT_PAGES

_SCHEMA = (
    # One row per group commit (or per batch): its events as newline-ended JSON lines. The small
    # columns come first, so reading them never reads the lines.
    "CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY, count INTEGER NOT NULL, bytes INTEGER NOT NULL, "
    "queued REAL NOT NULL, origin TEXT, lines BLOB NOT NULL)",
    # Which process sends which batch now. Apart from the batches: updating a row rewrites
    # all of it, events included.
    "CREATE TABLE IF NOT EXISTS claims (id INTEGER PRIMARY KEY, owner TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS claims_by_owner ON claims (owner)",
    # What is on disk now, and the counters every append or settle changes: one row, so that
    # a commit writes one page for them.
    "CREATE TABLE IF NOT EXISTS totals (one INTEGER PRIMARY KEY CHECK (one = 1), events INTEGER NOT NULL, "
    "bytes INTEGER NOT NULL, accepted INTEGER NOT NULL, forwarded INTEGER NOT NULL, dropped INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO totals VALUES (1, 0, 0, 0, 0, 0)",
    "CREATE TABLE IF NOT EXISTS owners (owner TEXT PRIMARY KEY, since REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL)",
)


class SpoolError(Exception):
    """The spool could not keep the events (disk full, database locked too long, unreadable): nothing was kept."""


class SpoolFull(SpoolError):
    """The events do not fit in the spool's bound: nothing was kept."""


class _Ticket:
    """One append waiting for a group commit: woken alone, when its group is committed or it is to lead the next."""

    __slots__ = ("lines", "count", "done", "lead", "error", "wake")

    def __init__(self, lines: bytes, count: int) -> None:
        self.lines = lines
        self.count = count
        self.done = False
        self.lead = False
        self.error: Exception | None = None
        # Made only by a ticket that has to wait: a lock it holds and waits to get again, released
        # once by the leader that commits it or hands it the lead (a plain lock costs less than a
        # Condition, and nothing else ever wakes it).
        self.wake = None


def default_directory(environ: Mapping[str, str]) -> str:
    """Where the spool lives when ZOMG_RECEIVER_SPOOL_DIR is not set: the user's state directory."""
    state = environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):
        state = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "zomg-receiver")


def prepare_directory(directory: str) -> str:
    """Create the spool's directory (mode 0700) if needed; OSError when it cannot be created or written."""
    os.makedirs(directory, mode=0o700, exist_ok=True)  # makedirs gives its mode to the last directory only
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


try:
    import fcntl as _fcntl
except ImportError:  # Windows: SQLite's own waiting serves between processes
    _fcntl = None


def _lock_exclusive(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; False when another process holds it."""
    if _fcntl is None:
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
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
        self._mutex = threading.Lock()  # the group commit's
        self._lock = threading.Lock()  # the side connection's (claims, settles, reads)
        self._counts_lock = threading.Lock()
        self._writer = threading.Lock()  # with _writer_fd: one write transaction at a time, across processes
        if getattr(self, "_writer_fd", None) is not None:
            os.close(self._writer_fd)  # the parent's descriptor; this process opens its own
        self._writer_fd: int | None = None
        if getattr(self, "_wal_fd", None) is not None:
            os.close(self._wal_fd)  # the parent's; no SQLite lock lives on the log file itself
        self._wal_fd: int | None = None
        self._inherited = [getattr(self, name, None) for name in ("_append_db", "_side_db")]
        self._append_db: sqlite3.Connection | None = None
        self._side_db: sqlite3.Connection | None = None
        self._pending: list = []
        self._committing = False
        self._written = self._synced = self._sync_failed = 0  # commits of this process, in order
        self._syncing = False
        self._sync_done = threading.Condition(self._mutex)
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
        # Created 0600 before SQLite opens it: SQLite would make it 0644, and gives its -wal and
        # -shm files the mode of the database. Only ever a new file (O_EXCL): closing a descriptor
        # of a database this process has open would drop its SQLite locks (POSIX locks are per
        # process), letting two writers in at once.
        try:
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL whatever ``sync`` says: a commit then only writes the WAL, and ``append`` syncs it
        # itself, after the write lock is released (see _sync_wal). The checkpoints still sync.
        db.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints run in the sender's thread (``checkpoint``), outside the write lock; an
        # append checkpoints only when the log has grown far past that (nobody sends).
        db.execute(f"PRAGMA wal_autocheckpoint={_BACKSTOP_PAGES}")
        # Deleted events need not be overwritten (some builds of SQLite do it by default): it
        # doubles what a send writes, and the file is the receiver's alone (0600 in a 0700 directory).
        db.execute("PRAGMA secure_delete=FAST")
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return db

    def check(self) -> None:
        """Open the database (creating it) and close it again; SpoolError when it cannot be used.

        For a receiver's start: a spool that cannot work stops it there, instead of refusing
        every batch. Nothing stays open, so a process may fork after it.
        """
        try:
            self._connect().close()
        except (sqlite3.Error, OSError) as exc:
            raise SpoolError(f"{self.path} cannot be used ({exc})") from None

    def _side(self) -> sqlite3.Connection:
        if self._side_db is None:
            self._side_db = self._connect()
        return self._side_db

    # Accepting ------------------------------------------------------------------

    def append(self, lines: bytes, count: int) -> None:
        """Keep ``count`` events given as newline-ended JSON lines; returns once they are committed.

        SpoolFull when they do not fit in the bound, SpoolError when they could not be written.
        """
        # Each waiting thread is woken once, by the leader that committed its rows or that hands it
        # the lead: waking every waiter at every commit would cost more than the commit.
        mutex = self._mutex
        ticket = _Ticket(lines, count)
        with mutex:
            self._pending.append(ticket)
            if self._committing:
                wake = ticket.wake = _allocate_lock()
                wake.acquire()
                mutex.release()
                try:
                    wake.acquire()  # released once, by the leader that settles this ticket
                finally:
                    mutex.acquire()
                if ticket.done:
                    if ticket.error is not None:
                        raise ticket.error
                    return
            self._committing = True
        # Let the request threads that are about to append join this commit (PostgreSQL's
        # commit_delay, shortest form): one statement for more batches.
        time.sleep(0)
        with mutex:
            group, self._pending = self._pending, []
        written = 0  # the commit's place in this process's order of writes, once written
        try:
            self._commit(group)
            written = 1
        finally:
            with mutex:
                if written:
                    self._written += 1
                    written = self._written
                # The next group writes while this one waits for the disk.
                if self._pending:
                    self._pending[0].lead = True
                    self._pending[0].wake.release()
                else:
                    self._committing = False
            try:
                if written and self.sync == "full" and any(waiting.error is None for waiting in group):
                    self._sync_wal(written)
            except OSError as exc:
                for waiting in group:
                    if waiting.error is None:
                        waiting.error = SpoolError(f"receiver: spool cannot be written ({exc}); retry later")
            finally:
                with mutex:
                    for waiting in group:
                        if not written and waiting.error is None:
                            waiting.error = SpoolError("receiver: spool cannot be written; retry later")
                        waiting.done = True
                        if waiting.wake is not None:
                            waiting.wake.release()
        if ticket.error is not None:
            raise ticket.error

    def _commit(self, group: list) -> None:
        now = self.clock()
        try:
            if self._append_db is None:
                self._append_db = self._appender()
            db = self._append_db
            with _Writing(self):
                self._register(db)
                for start in range(0, len(group), _ROWS_PER_INSERT):
                    self._insert(db, group[start:start + _ROWS_PER_INSERT], now)
        except (sqlite3.Error, OSError) as exc:
            for ticket in group:
                if ticket.error is None:
                    ticket.error = SpoolError(f"receiver: spool cannot be written ({exc}); retry later")

    def _sync_wal(self, written: int) -> None:
        """Return once the log is on disk up to this process's ``written``-th commit; OSError when it is not.

        The commits are in the log (the write lock released): with "full" they are
        answered once it is on disk. One fdatasync covers every frame written before
        it, the other processes' and the next groups' included, and a log is replayed
        up to its first bad frame, so a synced commit survives power loss as with
        synchronous=FULL. Syncing here, not inside SQLite's commit, lets the other
        processes and this one's next group write while the disk is busy (FULL held
        the write lock for the fsync's whole length), and one sync serves every
        group written before it started.
        """
        mutex = self._mutex
        with mutex:
            while self._synced < written:
                if written <= self._sync_failed:
                    raise OSError("the spool's log could not be synced to disk")
                if self._syncing:
                    self._sync_done.wait()
                    continue
                self._syncing = True
                target = self._written
                mutex.release()
                try:
                    if self._wal_fd is None:
                        # The log exists while this process's connection is open: SQLite deletes
                        # it only when the last connection closes.
                        self._wal_fd = os.open(self.path + "-wal", os.O_RDWR)
                    (getattr(os, "fdatasync", None) or os.fsync)(self._wal_fd)
                    synced = True
                except OSError:
                    # A failed sync may have lost any of these frames, and the next one reports no
                    # error for them (Linux): every commit up to here is refused.
                    synced = False
                finally:
                    mutex.acquire()
                    self._syncing = False
                    self._sync_done.notify_all()
                if synced:
                    self._synced = max(self._synced, target)
                else:
                    self._sync_failed = max(self._sync_failed, target)

    def _insert(self, db: sqlite3.Connection, tickets: list, now: float) -> None:
        # One statement, outside any BEGIN: SQLite makes it its own transaction, so a group is
        # committed (and fsynced) by a single call into SQLite. Each call gives up Python's GIL and
        # must win it back from the request threads: the fewer, the cheaper an append under load.
        # The group's batches share rows, up to _ROW_EVENTS events a row: the bound's and the
        # totals' triggers run once a row, and a row costs SQLite about as much as a batch did.
        rows: list = []
        count = 0
        parts: list = []
        for ticket in tickets:
            if parts and count + ticket.count > _ROW_EVENTS:
                rows.append(_row(parts, count, now, self.owner))
                count, parts = 0, []
            count += ticket.count
            parts.append(ticket.lines)
        rows.append(_row(parts, count, now, self.owner))
        try:
            db.execute(_INSERT + ",".join(["(?, ?, ?, ?, ?)"] * len(rows)), [v for row in rows for v in row])
            return
        except sqlite3.IntegrityError:  # the bound's trigger: some do not fit; find which, one by one
            self._full_since_settle = True
        for ticket in tickets:
            try:
                db.execute(_INSERT + "(?, ?, ?, ?, ?)", _row([ticket.lines], ticket.count, now, self.owner))
            except sqlite3.IntegrityError:
                ticket.error = SpoolFull("receiver: spool full; keep the events and retry later")

    def _appender(self) -> sqlite3.Connection:
        # The bound and the totals are kept by triggers of this connection (each process has
        # its own bounds): an append is one statement, not three. Fewer calls into SQLite is
        # what makes appends cheap under load: each one gives up Python's GIL and waits for it.
        db = self._connect()
        db.execute(f"CREATE TEMP TRIGGER bound BEFORE INSERT ON main.batches WHEN (SELECT events + NEW.count > "
                   f"{int(self.max_events)} OR bytes + NEW.bytes > {int(self.max_bytes)} FROM totals) "
                   "BEGIN SELECT RAISE(ABORT, 'spool full'); END")
        db.execute("CREATE TEMP TRIGGER count_in AFTER INSERT ON main.batches BEGIN UPDATE totals SET "
                   "events = events + NEW.count, bytes = bytes + NEW.bytes, accepted = accepted + NEW.count; END")
        return db

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

    def claim(self, limit: int, left: bool = False) -> list:
        """The events of the oldest unclaimed batches, whole batches, at most ``limit`` events unless one batch
        holds more; now this process's. With ``left``, only batches accepted by processes now gone.

        A list of events, each ``(batch id, line)``, oldest first.
        """
        which = "NOT EXISTS (SELECT 1 FROM claims WHERE claims.id = batches.id)" + (
            " AND origin NOT IN (SELECT owner FROM owners)" if left else "")
        with self._lock:
            db = self._side()
            if db.execute(f"SELECT 1 FROM batches WHERE {which} LIMIT 1").fetchone() is None:
                return []
            picked: list = []
            with _transaction(self, db):
                self._register(db)
                total = 0
                for row_id, count in db.execute(f"SELECT id, count FROM batches WHERE {which} ORDER BY id LIMIT ?",
                                                (limit,)):
                    if picked and total + count > limit:
                        break
                    picked.append(row_id)
                    total += count
                db.executemany("INSERT INTO claims VALUES (?, ?)", [(row_id, self.owner) for row_id in picked])
            # Read once claimed, outside the write lock: the rows are this process's now, and
            # reading and splitting them must not hold up the appends.
            events: list = []
            for start in range(0, len(picked), _CHUNK):
                chunk = picked[start:start + _CHUNK]
                for row_id, lines in db.execute(f"SELECT id, lines FROM batches WHERE id IN "
                                                f"({','.join('?' * len(chunk))}) ORDER BY id", chunk):
                    events.extend((row_id, line) for line in lines.split(b"\n")[:-1])
            return events

    def settle(self, events: Iterable[tuple], counter: str) -> int:
        """Take events out of the spool: PostHog took them (``counter`` "forwarded") or refused them alone
        ("dropped"). ``events`` as ``claim`` gave them; how many were still here."""
        if counter not in _SETTLED:
            raise ValueError(f"counter must be one of {', '.join(_SETTLED)}")
        by_batch: dict = {}
        for row_id, line in events:
            lines = by_batch.get(row_id)
            if lines is None:
                by_batch[row_id] = [line]
            else:
                lines.append(line)
        ids = list(by_batch)
        with self._lock:
            db = self._side()
            gone_events = gone_bytes = 0
            with _transaction(self, db):
                whole, part = [], []
                for start in range(0, len(ids), _CHUNK):
                    chunk = ids[start:start + _CHUNK]
                    for row_id, count, size in db.execute(
                            f"SELECT id, count, bytes FROM batches WHERE id IN ({','.join('?' * len(chunk))})", chunk):
                        (whole if len(by_batch[row_id]) >= count else part).append((row_id, count, size))
                for start in range(0, len(whole), _CHUNK):
                    chunk = [row_id for row_id, _, _ in whole[start:start + _CHUNK]]
                    marks = ",".join("?" * len(chunk))
                    db.execute(f"DELETE FROM batches WHERE id IN ({marks})", chunk)
                    db.execute(f"DELETE FROM claims WHERE id IN ({marks})", chunk)
                gone_events = sum(count for _, count, _ in whole)
                gone_bytes = sum(size for _, _, size in whole)
                for row_id, count, size in part:  # some events of a batch (a refused call, split): keep the rest
                    (lines,) = db.execute("SELECT lines FROM batches WHERE id = ?", (row_id,)).fetchone()
                    settled = set(by_batch[row_id])
                    kept = [line for line in lines.split(b"\n")[:-1] if line not in settled]
                    rest = b"".join(line + b"\n" for line in kept)
                    db.execute("UPDATE batches SET count = ?, bytes = ?, lines = ? WHERE id = ?",
                               (len(kept), len(rest), rest, row_id))
                    gone_events += count - len(kept)
                    gone_bytes += size - len(rest)
                db.execute(f"UPDATE totals SET events = events - ?, bytes = bytes - ?, {counter} = {counter} + ?",
                           (gone_events, gone_bytes, gone_events))
            self._full_since_settle = False
            return gone_events

    def release(self) -> None:
        """Hand every event this process claimed back, for any sender to take."""
        with self._lock:
            db = self._side()
            with _transaction(self, db):
                db.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))

    def reclaim(self) -> int:
        """Hand back the batches of owners whose process is gone; how many batches that freed."""
        with self._lock:
            db = self._side()
            freed = 0
            for (owner,) in db.execute("SELECT owner FROM owners").fetchall():
                if owner == self.owner or self._alive(owner):
                    continue
                with _transaction(self, db):
                    freed += db.execute("DELETE FROM claims WHERE owner = ?", (owner,)).rowcount
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
            row = self._side().execute("SELECT queued FROM batches ORDER BY id LIMIT 1").fetchone()
        return None if row is None else max(0.0, self.clock() - row[0])

    @property
    def full(self) -> bool:
        """Whether batches are refused for lack of room: at the bound, or one was refused since the last send."""
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
                with _transaction(self, db):
                    _add_counters(db, deltas)
        except (sqlite3.Error, OSError):
            with self._counts_lock:
                for name, amount in deltas.items():
                    self._deltas[name] = self._deltas.get(name, 0) + amount

    def checkpoint(self) -> None:
        """Copy the log into the database once it has grown past _CHECKPOINT_PAGES (the sender's thread calls it).

        PASSIVE: it takes no write lock, so appends go on meanwhile; what a reader
        still uses stays for the next call.
        """
        try:
            if os.path.getsize(self.path + "-wal") < _CHECKPOINT_PAGES * 4096:
                return
        except OSError:
            return
        try:
            with self._lock:
                self._side().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            pass  # the next call tries again; an append checkpoints past _BACKSTOP_PAGES anyway

    def counters(self) -> dict:
        """Every counter, totalled over every process and restart (this process's unwritten part included)."""
        with self._lock:
            db = self._side()
            totals = dict(db.execute("SELECT name, value FROM counters").fetchall())
            totals.update(zip(_COUNTED, db.execute(f"SELECT {', '.join(_COUNTED)} FROM totals").fetchone()))
        with self._counts_lock:
            for name, amount in self._deltas.items():
                totals[name] = totals.get(name, 0) + amount
        return totals


def _row(parts: list, count: int, now: float, owner: str) -> tuple:
    lines = parts[0] if len(parts) == 1 else b"".join(parts)
    return (count, len(lines), now, owner, lines)


def _add_counters(db: sqlite3.Connection, deltas: Mapping[str, float]) -> None:
    db.executemany("INSERT INTO counters VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                   list(deltas.items()))


class _Writing:
    """The spool's write lock: a thread lock, and a lock on ``spool.lock`` for the other processes.

    SQLite lets one writer in at a time and makes the others poll, sleeping
    1, 2, 5, 10 ms and more between tries; waiting on a file lock instead wakes
    the next writer the moment the lock is free.
    """

    def __init__(self, spool: Spool) -> None:
        self.spool = spool

    def __enter__(self) -> None:
        spool = self.spool
        spool._writer.acquire()
        try:
            if _fcntl is not None:
                if spool._writer_fd is None:
                    spool._writer_fd = os.open(os.path.join(spool.directory, "spool.lock"), os.O_RDWR | os.O_CREAT,
                                               0o600)
                _fcntl.flock(spool._writer_fd, _fcntl.LOCK_EX)
        except BaseException:
            spool._writer.release()
            raise

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        spool = self.spool
        try:
            if _fcntl is not None and spool._writer_fd is not None:
                _fcntl.flock(spool._writer_fd, _fcntl.LOCK_UN)
        finally:
            spool._writer.release()


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT under the spool's write lock, rolled back on any error."""

    def __init__(self, spool: Spool, db: sqlite3.Connection) -> None:
        self.db = db
        self.writing = _Writing(spool)

    def __enter__(self) -> sqlite3.Connection:
        self.writing.__enter__()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.writing.__exit__(None, None, None)
            raise
        return self.db

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        try:
            if kind is None:
                self.db.execute("COMMIT")
            elif self.db.in_transaction:
                self.db.execute("ROLLBACK")
        finally:
            self.writing.__exit__(None, None, None)
