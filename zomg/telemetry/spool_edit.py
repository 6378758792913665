"""The spool's cold half, ``SpoolEditor``: everything done to a spool beyond the due check and an append.

``zomg.telemetry.files.Spool`` is the hot half (what every recorded command
does: the due check and one append) and says what the spool is. A
``SpoolEditor`` wraps one ``Spool`` and does the rest: rewrites that write
and fsync their new file before taking the spool lock, in-place marks of
the tries digit, the due rule and the bounds as the sender applies them, the
state files (``backoff.json``, ``last.json``), the send lock, dropping and
clearing. The line format's parser (``parse``, ``event_type``) is here too.
Loaded by the sender thread, the telemetry commands and a trim, never on a
command's own path (start-up cost).
"""
from __future__ import annotations

import json
import os
import time

from zomg.fsutil import STALE_AFTER, FileLock, Planted, forget, read_fd, read_json
from zomg.telemetry.directory import Directory
from zomg.telemetry.files import MAX_SPOOL_BYTES, lines_of, whole
from zomg.telemetry.policy import DEFAULT_ENDPOINT

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only
    from zomg.telemetry.files import Spool

_DEFAULT = DEFAULT_ENDPOINT.encode("ascii")  # where lines from before endpoints were recorded go
_MAX_GAP = 86400.0  # the most one gap between events (or to now) adds to their age
# A run sends no event whose request was written this many times without an
# answer: it has been sent twice, and a written request is not proof that the
# receiver took it. Only `zomg telemetry flush`, which waits for its answers,
# sends it again; until then it is the first to go when the bound needs room.
MAX_SENDS = 2


def parse(line: bytes) -> tuple[int, int, bytes, bytes] | None:
    """(enqueued, tries, endpoint, event JSON) of a spool line; None when the line is damaged."""
    parts = line.split(b" ", 3)
    if len(parts) == 4:
        stamp, tries, url, body = parts
    elif len(parts) == 2:  # written before events were tied to an endpoint
        (stamp, body), tries, url = parts, b"0", _DEFAULT
    else:
        return None
    # 12 digits at most: int() of a 5,000-digit number raises, and no real time needs more.
    if not (stamp.isdigit() and len(stamp) <= 12 and tries.isdigit() and len(tries) == 1 and body[:1] == b"{"):
        return None
    return int(stamp), int(tries), url, body


def event_type(line: bytes) -> str | None:
    """The event type of a spool line; None for a line that cannot be read (it could never be sent)."""
    parsed = parse(line)
    try:
        name = json.loads(parsed[3]).get("event")
    except (TypeError, ValueError, RecursionError, AttributeError):
        return None
    return name if isinstance(name, str) else None


CUT_SHORT = "cut short"  # the outcome of an attempt whose run exited before the answer


STATE_FILES = ("spool", "backoff", "last", "spool_lock", "send_lock")  # the Layout names clear() removes


class SpoolEditor:
    """The cold half of one ``Spool``: reads for a send, rewrites, marks, bounds, state files, drops, clearing."""

    __slots__ = ("spool",)

    def __init__(self, spool: Spool) -> None:
        self.spool = spool

    def send_lock(self) -> FileLock:
        """The lock that serialises sending, across processes and threads."""
        return FileLock(self.spool.layout.send_lock)

    def counts(self) -> tuple[int, dict[str, int], int]:
        """(events waiting for this spool's endpoint, {other endpoint: events waiting for it}, how many of this
        endpoint's were sent ``MAX_SENDS`` times without an answer: only flush sends them again)."""
        mine, spent, others = 0, 0, {}
        for parsed in map(parse, self.spool.read()):
            if parsed is not None:
                if parsed[2] == self.spool.url:
                    mine += 1
                    spent += parsed[1] >= MAX_SENDS
                else:
                    other = parsed[2].decode("ascii", "replace")
                    others[other] = others.get(other, 0) + 1
        return mine, others, spent

    def due_for(self, lines: list[bytes], now: float) -> bool:
        """The due rule alone (the caller checks the backoff): enough fresh events, or an old one.

        Only this endpoint's events that no send has reached yet count: a batch
        sent by a run that exited before the answer waits for the next send.
        """
        stamps = [p[0] for p in map(parse, lines) if p is not None and p[1] == 0 and p[2] == self.spool.url]
        if len(stamps) >= self.spool.bounds.batch_size:
            return True
        return bool(stamps) and now - min(stamps) >= self.spool.bounds.max_age

    def bounded(self, lines: list[bytes], now: float) -> list[bytes]:
        """Damaged lines dropped; then oldest first: nothing older than the age bound, at most the count bound.

        An event's age is the sum of the gaps between it and each later event,
        and from the newest to now, each gap counted as at most ``_MAX_GAP``
        (and never below zero): a spool in use through a month-long outage
        ages a month, but a clock that jumps a year ahead (or back) adds at
        most a day, so it never drops an event as too old.
        """
        parsed = [(line, parse(line)) for line in lines]
        parsed = [(line, p[0], p[1]) for line, p in parsed if p is not None]
        kept = []
        age, later = 0.0, now
        for line, stamp, tries in reversed(parsed):
            age += min(max(later - stamp, 0.0), _MAX_GAP)
            later = stamp
            if age > self.spool.bounds.max_event_age:
                break  # every earlier line is older still
            kept.append((line, tries))
        kept.reverse()
        excess = len(kept) - max(0, self.spool.bounds.max_events)
        if excess > 0:
            # Room is made from copies already sent (the most sent first, then the oldest)
            # before any event no receiver has seen.
            order = sorted(range(len(kept)), key=lambda i: (-kept[i][1], i))
            gone = set(order[:excess])
            kept = [entry for i, entry in enumerate(kept) if i not in gone]
        return [line for line, _ in kept]

    def _spool_name(self) -> str:
        return os.path.basename(self.spool.path)

    def transform(self, change) -> None:
        """Replace the lines with ``change(lines)`` (None: leave them), appends made meanwhile kept.

        The new file is written and fsynced without the lock; under it, the
        replace happens only if the file has merely grown since it was read
        (its new lines are carried over); otherwise ``change`` runs again.
        Every step goes through the checked spool directory: a planted link is
        never followed (``Planted`` is raised instead).
        """
        from zomg.fsutil import discard, prepare, replace

        with Directory(self.spool.dir) as directory:
            name = directory.at(self._spool_name())
            self._cut_to_size(directory)
            for _ in range(3):
                with self.spool.lock():
                    before = self.spool.raw()
                new = change(lines_of(before))
                if new is None:
                    return
                body = b"".join(line + b"\n" for line in new)
                tmp = prepare(name, body, 0o600, dir_fd=directory.fd) if body else None
                with self.spool.lock():
                    current = self.spool.raw()
                    if current.startswith(before):
                        appended = lines_of(current[len(before):])
                        if appended and tmp is None:
                            tmp = prepare(name, b"".join(line + b"\n" for line in appended), 0o600, sync=False,
                                          dir_fd=directory.fd)
                        elif appended:
                            fd = directory.open(tmp, os.O_WRONLY | os.O_APPEND)
                            try:
                                os.write(fd, b"".join(line + b"\n" for line in appended))
                            finally:
                                os.close(fd)
                        if tmp is not None:
                            directory.make_room(name)
                            replace(tmp, name, directory.fd)
                        else:
                            directory.remove(name)
                        return
                if tmp is not None:
                    discard(tmp, directory.fd)
        raise TimeoutError("the telemetry spool keeps changing")

    def _cut_to_size(self, directory: Directory) -> None:
        """A spool over ``MAX_SPOOL_BYTES`` (damage, or a file not zomg's) keeps only the whole, valid lines of its
        newest half-bound: read from its end, so memory and time stay bounded whatever its size or line length."""
        from zomg.fsutil import prepare, replace

        name = directory.at(self._spool_name())
        with self.spool.lock():
            try:
                fd = directory.open(name)
            except OSError:
                return
            try:
                size = os.fstat(fd).st_size
                if size <= MAX_SPOOL_BYTES:
                    return
                keep = MAX_SPOOL_BYTES // 2
                os.lseek(fd, size - keep, os.SEEK_SET)
                tail = read_fd(fd, keep)
            finally:
                os.close(fd)
            lines = [line for line in lines_of(tail)[1:] if parse(line) is not None]  # the first may be cut
            tmp = prepare(name, b"".join(line + b"\n" for line in lines), 0o600, sync=False, dir_fd=directory.fd)
            replace(tmp, name, directory.fd)

    def set_tries_locked(self, tries: dict[bytes, int]) -> None:
        """``set_tries`` for a caller that holds the spool lock."""
        try:
            with Directory(self.spool.dir) as directory:
                fd = directory.open(self._spool_name(), os.O_RDWR)
        except OSError:
            return
        try:
            offset = 0
            for line in read_fd(fd, MAX_SPOOL_BYTES).split(b"\n"):
                parts = line.split(b" ", 3)
                if len(parts) == 4 and parts[3] in tries and len(parts[1]) == 1:
                    os.lseek(fd, offset + len(parts[0]) + 1, os.SEEK_SET)
                    os.write(fd, b"%d" % min(9, tries[parts[3]]))
                offset += len(line) + 1
        finally:
            os.close(fd)

    def trim(self, now: float) -> None:
        """Hold the spool to its count bound, when an append said it is over it."""
        limit = self.spool.bounds.max_events
        self.transform(lambda lines: self.bounded(lines, now) if len(lines) > limit else None)
        # (transform first cuts a file over its byte bound down to size, whatever its count.)

    def set_tries(self, tries: dict[bytes, int]) -> None:
        """Set the tries digit of the lines whose event JSON is a key of ``tries``, in place.

        One byte each, written under the lock: no rewrite, nothing to fsync.
        """
        with self.spool.lock():
            self.set_tries_locked(tries)

    def write_state(self, path: str, state: dict) -> None:
        """Replace one of the spool directory's small state files (``path``) with ``state``, through the
        checked directory."""
        from zomg.fsutil import write_atomic

        with Directory(self.spool.dir, create=True) as directory:
            name = directory.at(os.path.basename(path))
            directory.make_room(name)
            # Not fsynced: losing it to a crash costs one early or late attempt, never an event.
            write_atomic(name, json.dumps(state).encode("ascii"), mode=0o600, sync=False, dir_fd=directory.fd)

    def write_backoff(self, failures: int, retry_at: float) -> None:
        self.write_state(self.spool.backoff_path, {"failures": failures, "retry_at": retry_at})

    def clear_backoff(self) -> None:
        forget(self.spool.backoff_path)

    def write_last(self, state: dict) -> None:
        """What the last attempt gave, for `zomg telemetry status`."""
        self.write_state(self.spool.last_path, state)

    def begin_attempt(self, now: float, events: int) -> None:
        """Note a send as in flight before it starts; an attempt found still in flight was cut short at exit.

        A run whose exit grace ends mid-send cannot write anything after: the next
        attempt (under the send lock, so the one found is not running) counts it.
        """
        last = self.last_attempt() or {}
        cut = whole(last.get("cut_short"), 0, 1 << 31) or 0
        flight = last.get("in_flight")
        if isinstance(flight, dict):
            cut += 1
            last = {"at": flight.get("at"), "outcome": CUT_SHORT, "events": flight.get("events"), "status": None,
                    "reason": "the run exited before the answer", "endpoint": flight.get("endpoint")}
        last["cut_short"] = cut
        last["in_flight"] = {"at": int(now), "events": events, "endpoint": self.spool.url.decode("ascii", "replace")}
        self.write_last(last)

    def end_attempt(self, state: dict) -> None:
        """Record how an attempt ended (``state``), keeping the count of attempts cut short."""
        last = self.last_attempt() or {}
        state["cut_short"] = whole(last.get("cut_short"), 0, 1 << 31) or 0
        self.write_last(state)

    def last_attempt(self) -> dict | None:
        data, _, _ = read_json(self.spool.last_path)
        return data if isinstance(data, dict) else None

    def drop_events(self, event_name: str) -> int:
        """Delete the unsent events of one type; return how many. With none left, the files go too.

        A spool directory that is not one zomg made (a link, a file) is left alone: nothing of it is zomg's.
        """
        try:
            Directory(self.spool.dir).close()
        except OSError:
            return 0
        dropped = []

        def without(lines: list[bytes]) -> list[bytes] | None:
            kept = [line for line in lines if event_type(line) not in (event_name, None)]
            dropped[:] = [len(lines) - len(kept)]
            return kept if len(kept) != len(lines) else None

        self.transform(without)
        if not self.spool.read():
            self.clear()
        return dropped[0] if dropped else 0

    def clear(self) -> int:
        """Delete every unsent event and the spool's files; return how many events there were.

        Whatever stands in their place (a FIFO, a link) is removed, never followed;
        a spool directory that is itself a link or not the user's is left alone.
        """
        try:
            directory = Directory(self.spool.dir)
        except OSError:
            return 0
        with directory:
            with self.spool.lock():
                dropped = self.spool.count()
                for attr in STATE_FILES[:3]:
                    directory.remove(os.path.basename(getattr(self.spool.layout, attr)))
            for attr in STATE_FILES[3:]:
                try:
                    directory.remove(os.path.basename(getattr(self.spool.layout, attr)))
                except OSError:
                    pass
        try:
            os.rmdir(self.spool.dir)
        except OSError:
            pass
        return dropped

    def remove_stale_temporaries(self) -> None:
        """Temporary files left by another process that exited mid-write (a slow disk at exit).

        Only zomg's own names in the checked spool directory: ``.<file>.<pid>.<hex>.tmp``.
        """
        try:
            directory = Directory(self.spool.dir)
        except OSError:
            return
        now = time.time()  # the file system's clock, not an injected one
        mine = f".{os.getpid()}."
        temporaries_of = STATE_FILES[:3] + ("deployment_state",)
        ours = tuple(f".{os.path.basename(getattr(self.spool.layout, attr))}." for attr in temporaries_of)
        with directory:
            try:
                names = directory.names()
            except OSError:
                return
            for name in names:
                if name.startswith(ours) and name.endswith(".tmp") and mine not in name:
                    try:
                        st = directory.lstat(name)
                        if now - st.st_mtime > STALE_AFTER:
                            directory.remove(name)
                    except OSError:
                        pass

    def faults(self) -> list[str]:
        """What keeps telemetry's spool from working, one line each: planted objects, unreadable files.

        Read-only: `zomg telemetry status` and `flush` report these instead of a count of 0.
        """
        found = []
        try:
            directory = Directory(self.spool.dir)
        except FileNotFoundError:
            return found
        except OSError as exc:
            return [f"{self.spool.dir} {exc.strerror if not isinstance(exc, Planted) else exc}: left alone; "
                    "telemetry keeps nothing until it is moved away (zomg never removes it)"]
        with directory:
            for attr in STATE_FILES:
                path = getattr(self.spool.layout, attr)
                flags = os.O_RDWR if attr.endswith("lock") else os.O_RDONLY
                try:
                    os.close(directory.open(directory.at(os.path.basename(path)), flags))
                except FileNotFoundError:
                    continue
                except Planted as exc:
                    found.append(f"{path} {exc}: left alone (zomg telemetry reset removes it)")
                except OSError as exc:
                    found.append(f"{path} cannot be {'opened' if attr.endswith('lock') else 'read'}: "
                                 f"{exc.strerror or exc}")
        return found
