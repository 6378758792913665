"""Everything done to the spool beyond an append and the due check: see ``zomg.telemetry.files``.

The line format's parser, rewrites that write and fsync their new file
before taking the spool lock, in-place marks of the tries digit, the due
rule and the bounds as the sender applies them, the state files
(``backoff.json``, ``last.json``), the send lock, dropping and clearing:
functions of a ``Spool``. Loaded by the sender thread and the telemetry
commands, never on a command's own path (start-up cost).
"""
from __future__ import annotations

import json
import os
import time

from zomg.telemetry.files import _STALE_AFTER, FileLock, forget, lines_of, make_room, read_fd, read_json
from zomg.telemetry.policy import DEFAULT_ENDPOINT

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only
    from zomg.telemetry.files import Spool

_DEFAULT = DEFAULT_ENDPOINT.encode("ascii")  # where lines from before endpoints were recorded go
_MAX_GAP = 86400.0  # the most one gap between events (or to now) adds to their age


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


def send_lock(spool: Spool) -> FileLock:
    """The lock that serialises sending, across processes and threads."""
    return FileLock(spool.files.send_lock)


def event_type(line: bytes) -> str | None:
    """The event type of a spool line; None for a line that cannot be read (it could never be sent)."""
    parsed = parse(line)
    try:
        name = json.loads(parsed[3]).get("event")
    except (TypeError, ValueError, RecursionError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def counts(spool: Spool) -> tuple[int, int]:
    """(events waiting for this spool's endpoint, events waiting for another one)."""
    mine = other = 0
    for parsed in map(parse, spool.read()):
        if parsed is not None:
            if parsed[2] == spool.url:
                mine += 1
            else:
                other += 1
    return mine, other


def due_for(spool: Spool, lines: list[bytes], now: float) -> bool:
    """The due rule alone (the caller checks the backoff): enough fresh events, or an old one.

    Only this endpoint's events that no send has reached yet count: a batch
    sent by a run that exited before the answer waits for the next send.
    """
    stamps = [p[0] for p in map(parse, lines) if p is not None and p[1] == 0 and p[2] == spool.url]
    if len(stamps) >= spool.bounds.batch_size:
        return True
    return bool(stamps) and now - min(stamps) >= spool.bounds.max_age


def bounded(spool: Spool, lines: list[bytes], now: float) -> list[bytes]:
    """Damaged lines dropped; then oldest first: nothing older than the age bound, at most the count bound.

    An event's age is the sum of the gaps between it and each later event,
    and from the newest to now, each gap counted as at most ``_MAX_GAP``
    (and never below zero): a spool in use through a month-long outage
    ages a month, but a clock that jumps a year ahead (or back) adds at
    most a day, so it never drops an event as too old.
    """
    parsed = [(line, parse(line)) for line in lines]
    parsed = [(line, p[0]) for line, p in parsed if p is not None]
    kept = []
    age, later = 0.0, now
    for line, stamp in reversed(parsed):
        age += min(max(later - stamp, 0.0), _MAX_GAP)
        later = stamp
        if age > spool.bounds.max_event_age:
            break  # every earlier line is older still
        kept.append(line)
    kept.reverse()
    return kept[-spool.bounds.max_events:] if spool.bounds.max_events > 0 else []


def transform(spool: Spool, change) -> None:
    """Replace the lines with ``change(lines)`` (None: leave them), appends made meanwhile kept.

    The new file is written and fsynced without the lock; under it, the
    replace happens only if the file has merely grown since it was read
    (its new lines are carried over); otherwise ``change`` runs again.
    """
    from zomg.fsutil import discard, prepare, replace

    for _ in range(3):
        with spool.lock():
            before = spool._raw()
        new = change(lines_of(before))
        if new is None:
            return
        body = b"".join(line + b"\n" for line in new)
        tmp = prepare(spool.path, body, 0o600) if body else None
        with spool.lock():
            current = spool._raw()
            if current.startswith(before):
                appended = lines_of(current[len(before):])
                if appended and tmp is None:
                    tmp = prepare(spool.path, b"".join(line + b"\n" for line in appended), 0o600, sync=False)
                elif appended:
                    with open(tmp, "ab") as f:
                        f.write(b"".join(line + b"\n" for line in appended))
                if tmp is not None:
                    make_room(spool.path)
                    replace(tmp, spool.path)
                else:
                    forget(spool.path)
                return
        if tmp is not None:
            discard(tmp)
    raise TimeoutError("the telemetry spool keeps changing")


def set_tries_locked(spool: Spool, tries: dict[bytes, int]) -> None:
    """``set_tries`` for a caller that holds the spool lock."""
    try:
        fd = os.open(spool.path, os.O_RDWR)
    except OSError:
        return
    try:
        offset = 0
        for line in read_fd(fd).split(b"\n"):
            parts = line.split(b" ", 3)
            if len(parts) == 4 and parts[3] in tries and len(parts[1]) == 1:
                os.lseek(fd, offset + len(parts[0]) + 1, os.SEEK_SET)
                os.write(fd, b"%d" % min(9, tries[parts[3]]))
            offset += len(line) + 1
    finally:
        os.close(fd)


def trim(spool: Spool, now: float) -> None:
    """Hold the spool to its count bound, when an append said it is over it."""
    limit = spool.bounds.max_events
    transform(spool, lambda lines: bounded(spool, lines, now) if len(lines) > limit else None)


def set_tries(spool: Spool, tries: dict[bytes, int]) -> None:
    """Set the tries digit of the lines whose event JSON is a key of ``tries``, in place.

    One byte each, written under the lock: no rewrite, nothing to fsync.
    """
    with spool.lock():
        set_tries_locked(spool, tries)


def _write_state(path: str, state: dict) -> None:
    from zomg.fsutil import write_atomic

    make_room(path)
    # Not fsynced: losing it to a crash costs one early or late attempt, never an event.
    write_atomic(path, json.dumps(state).encode("ascii"), mode=0o600, sync=False)


def write_backoff(spool: Spool, failures: int, retry_at: float) -> None:
    _write_state(spool.backoff_path, {"failures": failures, "retry_at": retry_at})


def clear_backoff(spool: Spool) -> None:
    forget(spool.backoff_path)


def write_last(spool: Spool, state: dict) -> None:
    """What the last attempt gave, for `zomg telemetry status`."""
    _write_state(spool.last_path, state)


def last_attempt(spool: Spool) -> dict | None:
    data, _, _ = read_json(spool.last_path)
    return data if isinstance(data, dict) else None


def drop_events(spool: Spool, event_name: str) -> int:
    """Delete the unsent events of one type; return how many. With none left, the files go too."""
    if not os.path.isdir(spool.dir):
        return 0
    dropped = []

    def without(lines: list[bytes]) -> list[bytes] | None:
        kept = [line for line in lines if event_type(line) not in (event_name, None)]
        dropped[:] = [len(lines) - len(kept)]
        return kept if len(kept) != len(lines) else None

    transform(spool, without)
    if not spool.read():
        clear(spool)
    return dropped[0] if dropped else 0


def clear(spool: Spool) -> int:
    """Delete every unsent event and the spool's files; return how many events there were."""
    if not os.path.isdir(spool.dir):
        return 0
    with spool.lock():
        dropped = spool.count()
        for path in (spool.files.spool, spool.files.backoff, spool.files.last):
            forget(path)
    for path in (spool.files.spool_lock, spool.files.send_lock):
        try:
            os.unlink(path)
        except OSError:
            pass
    try:
        os.rmdir(spool.dir)
    except OSError:
        pass
    return dropped


def remove_stale_temporaries(spool: Spool) -> None:
    """Temporary files left by another process that exited mid-write (a slow disk at exit)."""
    try:
        names = os.listdir(spool.dir)
    except OSError:
        return
    now = time.time()  # the file system's clock, not an injected one
    mine = f".{os.getpid()}."
    for name in names:
        if name.startswith(".") and name.endswith(".tmp") and mine not in name:
            path = os.path.join(spool.dir, name)
            try:
                if now - os.stat(path).st_mtime > _STALE_AFTER:
                    os.unlink(path)
            except OSError:
                pass

