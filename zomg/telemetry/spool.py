"""The on-disk queue of events waiting to be sent, in ``<state dir>/telemetry/``.

``spool.jsonl`` holds one event a line as ``<enqueued epoch seconds> <event
JSON>``; the prefix lets the due rule read ages without parsing events.
Every change happens under ``spool.lock``: an append is one short locked
``O_APPEND`` write; a rewrite (after a send, or to enforce the bound) is an
atomic replace. Sending is serialised separately by ``send.lock``, held for
the whole send, so two processes never send the same events at once, and a
claimed batch is removed only once delivered: a process that dies mid-send
leaves its events for a later one. ``backoff.json`` says when to try again
after a failure. The spool knows nothing about event types: it carries
encoded events and validates them against the schema before they are sent.
"""
from __future__ import annotations

import json
import os
import time

from zomg import paths
from zomg.fsutil import write_atomic
from zomg.telemetry.locking import FileLock

SPOOL = "spool.jsonl"
BACKOFF = "backoff.json"
LOCK = "spool.lock"
SEND_LOCK = "send.lock"
_LOCK_WAIT = 2.0
# Below this many bytes a line-count bound cannot be reached (no event is
# shorter than this), so appends skip reading the file.
_MIN_LINE = 128


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

    # --- reading (no lock: a torn last line only makes a count one short) ---

    def _read(self) -> list[bytes]:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError:
            return []
        return [line for line in data.split(b"\n") if line]

    def count(self) -> int:
        return len(self._read())

    def backoff(self) -> tuple[int, float]:
        """(consecutive failures, earliest time of the next attempt)."""
        try:
            with open(self.backoff_path, "rb") as f:
                state = json.loads(f.read())
            return int(state["failures"]), float(state["retry_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0, 0.0

    def _due(self, lines: list[bytes], now: float) -> bool:
        if not lines or now < self.backoff()[1]:
            return False
        if len(lines) >= self.tuning.batch_size:
            return True
        ages = [t for t in map(_enqueued, lines) if t is not None]
        return bool(ages) and now - min(ages) >= self.tuning.max_age

    def due(self, now: float) -> bool:
        """Whether a send should start: enough events, or an old one, and no backoff running."""
        if now < self.backoff()[1]:
            return False
        return self._due(self._read(), now)

    # --- writing ---

    def _bounded(self, lines: list[bytes], now: float) -> list[bytes]:
        """Oldest dropped first: nothing older than the age bound, at most the count bound."""
        oldest = now - self.tuning.max_event_age
        kept = [line for line in lines if (_enqueued(line) or 0) >= oldest]
        return kept[-self.tuning.max_events:] if self.tuning.max_events > 0 else []

    def _rewrite(self, lines: list[bytes]) -> None:
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
                    lines = self._read()
                    if len(lines) >= self.tuning.max_events:
                        os.close(fd)
                        fd = -1
                        self._rewrite(self._bounded(lines + [record], now))
                        return
                os.write(fd, record + b"\n")
            finally:
                if fd >= 0:
                    os.close(fd)
        finally:
            lock.release()

    def claim(self, now: float, installation_id: str | None, force: bool = False) -> list[tuple[bytes, dict]]:
        """Under the spool lock: enforce the bound, drop what can never be sent, pick the next batch.

        Records a failed attempt before returning, so a process that dies
        mid-send still backs off; ``settle`` clears it on success. Returns
        [] when nothing is due (``force`` ignores the due rule and backoff).
        Call only while holding ``send_lock``.
        """
        from zomg.telemetry import schema

        with self.lock():
            lines = self._read()
            kept: list[bytes] = []
            events: list[dict] = []
            for line in self._bounded(lines, now):
                try:
                    event = json.loads(line.split(b" ", 1)[1])
                    schema.validate_event(event)
                except (IndexError, ValueError):
                    continue  # torn or unreadable: it would make the whole batch fail
                owner = event.get("installation_id")
                if installation_id is not None and owner is not None and owner != installation_id:
                    continue  # made under an id since deleted by `zomg telemetry off`
                kept.append(line)
                events.append(event)
            if kept != lines:
                self._rewrite(kept)
            if not kept or not (force or self._due(kept, now)):
                return []
            failures = self.backoff()[0] + 1
            self._write_backoff(failures, now + self.tuning.backoff(failures))
            size = schema.MAX_BATCH
            return list(zip(kept[:size], events[:size]))

    def settle(self, batch: list[bytes], delivered: bool, now: float, retry_after: float | None = None) -> None:
        """After a send: drop ``batch`` if it was delivered (or refused for good), else keep backing off."""
        with self.lock():
            if delivered:
                sent = set(batch)
                lines = self._read()
                remaining = [line for line in lines if line not in sent]
                if len(remaining) != len(lines):
                    self._rewrite(remaining)
                try:
                    os.unlink(self.backoff_path)
                except FileNotFoundError:
                    pass
            elif retry_after:
                failures, retry_at = self.backoff()
                wanted = now + min(retry_after, self.tuning.backoff_cap)
                if wanted > retry_at:
                    self._write_backoff(max(failures, 1), wanted)

    def _write_backoff(self, failures: int, retry_at: float) -> None:
        body = json.dumps({"failures": failures, "retry_at": retry_at}).encode("ascii")
        write_atomic(self.backoff_path, body, mode=0o600)

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
