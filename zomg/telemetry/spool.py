"""The on-disk queue of events waiting to be sent, in ``<state dir>/telemetry/``.

``spool.jsonl`` holds one event a line as ``<enqueued epoch seconds> <tries>
<endpoint> <event JSON>``: the prefix lets the due rule read ages without
parsing events; ``tries`` (one digit) counts sends that were never answered
(the process exited first), so a batch already sent once goes after fresh
ones; the endpoint is the one in effect when the event was recorded, the only
one it is ever sent to. Lines written before that (``<epoch> <JSON>``) belong
to the default endpoint.

Every change happens under ``spool.lock``, held only briefly: an append is one
short ``O_APPEND`` write that starts on a fresh line; a rewrite (after a send,
or to enforce the bound) writes and fsyncs its new file *before* taking the
lock, then carries over whatever was appended meanwhile and renames, so no
append ever waits for the disk. ``backoff.json`` says when to try again after
a failure, ``last.json`` what the last attempt gave. Sending
(``zomg.telemetry.sender``) is serialised by ``send.lock``. The spool knows
nothing about event types: it carries encoded events. Where each of its files
lives is ``files.Layout``'s to say.
"""
from __future__ import annotations

import os

from zomg import json_light
from zomg.telemetry.files import FileLock, Layout, clear_path, number, read_bytes, read_json, whole
from zomg.telemetry.policy import DEFAULT_ENDPOINT

_LOCK_WAIT = 2.0
# Below this many bytes a line-count bound cannot be reached (no event is
# shorter than this), so appends skip reading the file.
_MIN_LINE = 128


class SpoolBounds:
    """When a send is due, how much the spool keeps, and how long to back off after a failure.

    Read on every command's own path (the due rule), so it lives here, not in the sender.
    One object so that tests inject their own numbers instead of waiting.
    """

    __slots__ = ("batch_size", "max_age", "backoff_base", "backoff_cap", "max_events", "max_event_age")

    def __init__(
        self,
        batch_size: int = 50,
        max_age: float = 3600.0,
        backoff_base: float = 5.0,
        backoff_cap: float = 3600.0,
        max_events: int = 1000,
        max_event_age: float = 30 * 86400.0,
    ) -> None:
        self.batch_size = batch_size  # a send is due at this many spooled events...
        self.max_age = max_age  # ...or when the oldest is this old (seconds)
        self.backoff_base = backoff_base  # first wait after a failed send, doubled per failure
        self.backoff_cap = backoff_cap
        self.max_events = max_events  # the spool keeps at most this many events...
        self.max_event_age = max_event_age  # ...none older than this (seconds)

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failed sends."""
        return min(self.backoff_cap, self.backoff_base * 2 ** max(0, min(failures - 1, 30)))


_LATEST = 1e11  # seconds since the epoch (year 5138): any later time or retry_at is damage


class Spool:
    """The spool as every recorded run sees it: whether a send is due, and appending one event.

    Everything else done to it (reading lines for a send, rewrites, marks,
    bounds, state files, dropping, clearing) is ``zomg.telemetry.spool_edit``'s,
    as functions of a spool: that code runs in the sender thread and the
    telemetry commands, and loading it on every command's path costs more
    than the append itself.
    """

    def __init__(self, directory: str | None = None, bounds: SpoolBounds | None = None,
                 url: str | None = None, files: Layout | None = None) -> None:
        self.files = files if files is not None else Layout(directory)
        self.dir = self.files.spool_dir
        self.bounds = bounds or SpoolBounds()
        self.url = (url or DEFAULT_ENDPOINT).encode("ascii", "replace")  # where this spool's events go
        self.path = self.files.spool
        self.backoff_path = self.files.backoff
        self.last_path = self.files.last

    def lock(self) -> FileLock:
        return FileLock(self.files.spool_lock)

    # Reading takes no lock: a torn last line only makes a count one short.

    def _raw(self) -> bytes:
        try:
            return read_bytes(self.path)
        except OSError:  # missing, or damaged into a directory (the next append repairs it)
            return b""

    def read(self) -> list[bytes]:
        """The spool's non-empty lines, damaged ones included."""
        return [line for line in self._raw().split(b"\n") if line]

    def count(self) -> int:
        return len(self.read())

    def backoff(self, now: float | None = None) -> tuple[int, float]:
        """(consecutive failures, earliest time of the next attempt); a damaged file is reset.

        With ``now``, a ``retry_at`` later than now + the longest backoff (set by a
        clock that was ahead) counts as expired.
        """
        data, problem, exists = read_json(self.backoff_path)
        if not exists:
            return 0, 0.0
        failures = retry_at = None
        if isinstance(data, dict):
            failures = whole(data.get("failures"), 0, 1000)
            retry_at = number(data.get("retry_at"), 0, _LATEST)
        if failures is None or retry_at is None:
            try:
                clear_path(self.backoff_path)
            except OSError:
                pass
            return 0, 0.0
        if now is not None and retry_at > now + self.bounds.backoff_cap:
            retry_at = now
        return failures, retry_at

    def due(self, now: float) -> bool:
        """Whether a send should start: enough events, or an old one, and no backoff running."""
        if now < self.backoff(now)[1]:
            return False
        # Every run asks this: one scan of the file in C for this endpoint's fresh lines
        # (``<stamp> 0 <endpoint> ``) rather than splitting each line; the sender checks properly.
        data = self._raw()
        marker = b" 0 " + self.url + b" "
        if data.count(marker) >= self.bounds.batch_size:
            return True
        first = data.find(marker)
        if first < 0:
            return False
        stamp = data[data.rfind(b"\n", 0, first) + 1:first]  # the oldest fresh line's
        return stamp.isdigit() and len(stamp) <= 12 and now - int(stamp) >= self.bounds.max_age

    def append(self, encoded_event: bytes, now: float) -> None:
        """Queue one encoded event (compact JSON, no newline). Raises OSError if it cannot."""
        record = b"%d 0 %s %s\n" % (max(0, int(now)), self.url, encoded_event)
        lock = self.lock()
        try:
            got = lock.acquire(_LOCK_WAIT)
        except FileNotFoundError:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            got = lock.acquire(_LOCK_WAIT)
        if not got:
            raise TimeoutError("telemetry spool lock busy")
        try:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            except IsADirectoryError:  # damaged state: make room and start over
                clear_path(self.path)
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                size = os.fstat(fd).st_size
                if size:
                    os.lseek(fd, size - 1, os.SEEK_SET)
                    if os.read(fd, 1) != b"\n":  # a torn last line must not swallow this event
                        record = b"\n" + record
                os.write(fd, record)
            finally:
                os.close(fd)
        finally:
            lock.release()
        if size + len(record) >= self.bounds.max_events * _MIN_LINE:
            # Loaded only here, for a spool that may be over its bound: it needs nothing
            # from this module at run time, so the two import one way.
            from zomg.telemetry import spool_edit

            limit = self.bounds.max_events
            spool_edit.transform(self, lambda lines: spool_edit.bounded(self, lines, now) if len(lines) > limit
                                 else None)

    def append_event(self, event: dict, now: float) -> None:
        """Queue one event, encoded as compact ASCII JSON. Raises OSError if it cannot."""
        self.append(json_light.dumps_compact(event).encode("ascii"), now)

