"""The on-disk queue of events waiting to be sent, in ``<state dir>/telemetry/``.

``spool.jsonl`` holds one event a line as ``<enqueued epoch seconds> <event
JSON>``; the prefix lets the due rule read ages without parsing events.
Every change happens under ``spool.lock``: an append is one short locked
``O_APPEND`` write; a rewrite (after a send, or to enforce the bound) is an
atomic replace. ``backoff.json`` says when to try again after a failure.
Sending (``zomg.telemetry.sender``) is serialised by ``send.lock``. The spool
knows nothing about event types: it carries encoded events.
"""
from __future__ import annotations

import json
import os
import sys
import time

from zomg import paths

SPOOL = "spool.jsonl"
BACKOFF = "backoff.json"
LOCK = "spool.lock"
SEND_LOCK = "send.lock"
_LOCK_WAIT = 2.0
# Below this many bytes a line-count bound cannot be reached (no event is
# shorter than this), so appends skip reading the file.
_MIN_LINE = 128


# --- locks ---------------------------------------------------------------------
# Inter-process file locks for the telemetry config and spool.
#
# POSIX uses ``os.lockf`` on a lock file: the kernel drops the lock when its
# holder exits or dies, so a killed zomg never leaves a stale lock, and it
# needs no import (``fcntl`` alone costs more to load than the rest of a
# spool append). Such locks belong to the process, not to a descriptor, so
# threads of one process are kept apart by an in-process mutex taken *before*
# the file is opened; that also keeps a second descriptor of the same file
# from being closed (which would drop the process's lock) while it is held.
# The mutex exists once ``threading`` is loaded, which happens before any
# second thread of zomg's can. Windows uses ``msvcrt.locking``; anywhere else
# an ``O_EXCL`` marker file stands in, and a marker older than
# ``_STALE_AFTER`` seconds is taken to be left by a dead process.

msvcrt = None
if not hasattr(os, "lockf"):
    try:
        import msvcrt
    except ImportError:
        pass

_STALE_AFTER = 60.0
_mutexes: dict = {}


def _mutex(path: str):
    threading = sys.modules.get("threading")
    if threading is None:
        return None  # no thread of ours can exist yet
    mutex = _mutexes.get(path)
    if mutex is None:
        mutex = _mutexes.setdefault(path, threading.Lock())
    return mutex


class FileLock:
    """An exclusive lock on ``path``; ``acquire(wait)`` gives up after ``wait`` seconds."""

    def __init__(self, path: str, backend: str | None = None) -> None:
        self.path = path
        self.backend = backend or ("lockf" if hasattr(os, "lockf") else "msvcrt" if msvcrt else "marker")
        self._fd: int | None = None
        self._mutex = None

    def _try_once(self) -> bool:
        if self.backend == "marker":
            try:
                fd = os.open(self.path + ".held", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                self._break_if_stale()
                return False
            self._fd = fd
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if self.backend == "lockf":
                os.lockf(fd, os.F_TLOCK, 0)
            else:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _break_if_stale(self) -> None:
        try:
            if time.time() - os.stat(self.path + ".held").st_mtime > _STALE_AFTER:
                os.unlink(self.path + ".held")
        except OSError:
            pass

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lock; poll for up to ``wait`` seconds. OSError if the file cannot be made."""
        deadline = time.monotonic() + wait
        mutex = _mutex(self.path)
        if mutex is not None and not (mutex.acquire(timeout=wait) if wait > 0 else mutex.acquire(False)):
            return False
        pause = 0.001
        try:
            while not self._try_once():
                if time.monotonic() + pause > deadline:
                    break
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
        except BaseException:
            if mutex is not None:
                mutex.release()
            raise
        if self._fd is None:
            if mutex is not None:
                mutex.release()
            return False
        self._mutex = mutex
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        mutex, self._mutex = self._mutex, None
        if fd is None:
            return
        try:
            if self.backend == "marker":
                os.unlink(self.path + ".held")
            elif self.backend == "lockf":
                os.lockf(fd, os.F_ULOCK, 0)
            else:
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
        finally:
            os.close(fd)
            if mutex is not None:
                mutex.release()

    def __enter__(self) -> FileLock:
        if not self.acquire(wait=2.0):
            raise TimeoutError(f"lock busy: {self.path}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# Hard ceiling on how long a command may wait for a send at exit, whatever a caller injects.
MAX_GRACE = 0.5


class Tuning:
    """When a send is due, how long to back off, how long to wait; and the clock.

    One object so that tests inject their own numbers and clock instead of waiting.
    """

    __slots__ = (
        "batch_size",
        "max_age",
        "backoff_base",
        "backoff_cap",
        "grace",
        "timeout",
        "max_events",
        "max_event_age",
        "clock",
    )

    def __init__(
        self,
        batch_size: int = 10,
        max_age: float = 3600.0,
        backoff_base: float = 5.0,
        backoff_cap: float = 3600.0,
        grace: float = MAX_GRACE,
        timeout: float = 5.0,
        max_events: int = 1000,
        max_event_age: float = 30 * 86400.0,
        clock=time.time,
    ) -> None:
        self.batch_size = batch_size  # a send is due at this many spooled events...
        self.max_age = max_age  # ...or when the oldest is this old (seconds)
        self.backoff_base = backoff_base  # first wait after a failed send, doubled per failure
        self.backoff_cap = backoff_cap
        self.grace = min(grace, MAX_GRACE)  # longest wait at exit for an in-flight send
        self.timeout = timeout  # socket timeout of the sender thread
        self.max_events = max_events  # the spool keeps at most this many events...
        self.max_event_age = max_event_age  # ...none older than this (seconds)
        self.clock = clock  # wall-clock seconds, like time.time

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failed sends."""
        return min(self.backoff_cap, self.backoff_base * 2 ** max(0, min(failures - 1, 30)))


def default_dir() -> str:
    return os.path.join(paths.state_dir(), "telemetry")


def _enqueued(line: bytes) -> int | None:
    head = line.split(b" ", 1)[0]
    return int(head) if head.isdigit() else None


def _event_name(line: bytes) -> str | None:
    """The event type of a spool line; None for a line that cannot be read (it could never be sent)."""
    try:
        name = json.loads(line.split(b" ", 1)[1]).get("event")
    except (IndexError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


class Spool:
    def __init__(self, directory: str | None = None, tuning: Tuning | None = None) -> None:
        self.dir = directory or default_dir()
        self.tuning = tuning or Tuning()
        self.path = os.path.join(self.dir, SPOOL)
        self.backoff_path = os.path.join(self.dir, BACKOFF)

    def lock(self) -> FileLock:
        return FileLock(os.path.join(self.dir, LOCK))

    def send_lock(self) -> FileLock:
        return FileLock(os.path.join(self.dir, SEND_LOCK))

    # Reading takes no lock: a torn last line only makes a count one short.

    def read(self) -> list[bytes]:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError:
            return []
        return [line for line in data.split(b"\n") if line]

    def count(self) -> int:
        return len(self.read())

    def backoff(self) -> tuple[int, float]:
        """(consecutive failures, earliest time of the next attempt)."""
        try:
            with open(self.backoff_path, "rb") as f:
                state = json.loads(f.read())
            return int(state["failures"]), float(state["retry_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0, 0.0

    def due_for(self, lines: list[bytes], now: float) -> bool:
        """The due rule alone (the caller checks the backoff): enough events, or an old one."""
        if not lines:
            return False
        if len(lines) >= self.tuning.batch_size:
            return True
        ages = [t for t in map(_enqueued, lines) if t is not None]
        return bool(ages) and now - min(ages) >= self.tuning.max_age

    def due(self, now: float) -> bool:
        """Whether a send should start: enough events, or an old one, and no backoff running."""
        if now < self.backoff()[1]:
            return False
        return self.due_for(self.read(), now)

    def bounded(self, lines: list[bytes], now: float) -> list[bytes]:
        """Oldest dropped first: nothing older than the age bound, at most the count bound."""
        oldest = now - self.tuning.max_event_age
        kept = [line for line in lines if (_enqueued(line) or 0) >= oldest]
        return kept[-self.tuning.max_events:] if self.tuning.max_events > 0 else []

    def rewrite(self, lines: list[bytes]) -> None:
        from zomg.fsutil import write_atomic

        if lines:
            write_atomic(self.path, b"".join(line + b"\n" for line in lines), mode=0o600)
        else:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def append(self, encoded_event: bytes, now: float) -> None:
        """Queue one encoded event (compact JSON, no newline). Raises OSError if it cannot."""
        record = b"%d %s" % (int(now), encoded_event)
        lock = self.lock()
        try:
            got = lock.acquire(_LOCK_WAIT)
        except FileNotFoundError:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            got = lock.acquire(_LOCK_WAIT)
        if not got:
            raise TimeoutError("telemetry spool lock busy")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if os.fstat(fd).st_size >= self.tuning.max_events * _MIN_LINE:
                    lines = self.read()
                    if len(lines) >= self.tuning.max_events:
                        os.close(fd)
                        fd = -1
                        self.rewrite(self.bounded(lines + [record], now))
                        return
                os.write(fd, record + b"\n")
            finally:
                if fd >= 0:
                    os.close(fd)
        finally:
            lock.release()

    def append_event(self, event: dict, now: float) -> None:
        """Queue one event, encoded as compact ASCII JSON. Raises OSError if it cannot."""
        self.append(json.dumps(event, separators=(",", ":"), ensure_ascii=True).encode("ascii"), now)

    def write_backoff(self, failures: int, retry_at: float) -> None:
        from zomg.fsutil import write_atomic

        body = json.dumps({"failures": failures, "retry_at": retry_at}).encode("ascii")
        write_atomic(self.backoff_path, body, mode=0o600)

    def clear_backoff(self) -> None:
        try:
            os.unlink(self.backoff_path)
        except FileNotFoundError:
            pass

    def drop_events(self, event_name: str) -> int:
        """Delete the unsent events of one type; return how many. With none left, the files go too."""
        if not os.path.isdir(self.dir):
            return 0
        with self.lock():
            lines = self.read()
            kept = [line for line in lines if _event_name(line) not in (event_name, None)]
            if len(kept) != len(lines):
                self.rewrite(kept)
        if not kept:
            self.clear()
        return len(lines) - len(kept)

    def clear(self) -> int:
        """Delete every unsent event and the spool's files; return how many events there were."""
        if not os.path.isdir(self.dir):
            return 0
        with self.lock():
            dropped = self.count()
            for name in (SPOOL, BACKOFF):
                try:
                    os.unlink(os.path.join(self.dir, name))
                except FileNotFoundError:
                    pass
        for name in (LOCK, SEND_LOCK):
            try:
                os.unlink(os.path.join(self.dir, name))
            except OSError:
                pass
        try:
            os.rmdir(self.dir)
        except OSError:
            pass
        return dropped
