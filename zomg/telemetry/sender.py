"""Sending spooled events: one POST per batch, from a daemon thread.

Imported only when a send is due: this is the one telemetry module that
loads urllib (and with it http.client, email and ssl). Every failure is
silent; what was not confirmed stays spooled for a later invocation.

The protocol: holding ``send.lock`` (so two processes never send the same
events at once), ``claim`` a batch of the endpoint's own events and note the
attempt as in flight in ``last.json``; POST it without any lock, and only once
the whole request has been written to the socket mark its events as sent once
more (the tries digit); then ``settle`` by whose fault the answer is (see
``classify``): a delivered batch, or one whose content the receiver refuses,
is removed from the spool by identity, whatever was appended or trimmed
meanwhile; the endpoint's failure keeps it (unmarked) and backs off.

A process that exits mid-send (the exit grace ran out) leaves its batch
spooled: unmarked if the request never left (a blackholed link costs no try),
marked if it did. The next attempt finds the attempt still in flight and
counts it as cut short (`zomg telemetry status` shows the count). A request
that left is not proof that the receiver took it (a receiver or proxy may
drop a request whose client has gone, or answer 503 to nobody), so no event
is ever given up for lack of an answer. Fresh events go first; an event
already sent goes again in a run only while its command still runs (a
resend started after the command ended would be cut short by the grace as
well), and never by a run once ``spool_edit.MAX_SENDS`` sends went
unanswered; `zomg telemetry flush`, which waits for every answer, sends
every event, however often it was sent. When the spool needs room, copies
already sent go first. The receiver drops duplicates by ``event_id``.

Every POST has a deadline for the whole exchange (connect, request, answer),
however slowly a server trickles its answer: the socket is shut when it passes.
"""
from __future__ import annotations

import json
import threading
import time

from zomg.telemetry import schema, spool_edit
from zomg.telemetry.files import Spool
from zomg.telemetry.spool_edit import SpoolEditor, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

USER_AGENT = "zomg-telemetry"
SENT = "delivered"  # 2xx
REJECTED = "dropped"  # 400, 413, 422: the receiver refuses this batch's content; it never will accept it
FAILED = "kept"  # anything else: the endpoint's problem; keep the events and back off
_MAX_ROUNDS = 10  # batches one invocation sends at most (flush: until the spool is empty)
_REFUSED_CONTENT = (400, 413, 422)
FLUSH_DEADLINE = 30.0  # seconds: the most a whole `zomg telemetry flush` takes, however the endpoint answers


class SendTiming:
    """How long one POST may take, and the wall clock that stamps sends and backoffs.

    Built here, where it is used: a session that sends nothing never loads this module, and hands
    ``start`` None for the defaults. Tests inject their own timeout and clock.
    """

    __slots__ = ("timeout", "clock", "deadline")

    def __init__(self, timeout: float = 5.0, clock=time.time, deadline: float = FLUSH_DEADLINE) -> None:
        self.timeout = timeout  # the most one POST may take, from connecting to the end of the answer
        self.clock = clock  # wall-clock seconds, like time.time
        self.deadline = deadline  # the most `zomg telemetry flush` takes in all


class Answer:
    """What one POST gave: the outcome, the HTTP status (None without one), a reason class, Retry-After."""

    __slots__ = ("outcome", "status", "reason", "retry_after")

    def __init__(self, outcome: str, status: int | None, reason: str, retry_after: float | None = None) -> None:
        self.outcome = outcome
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


def classify(status: int) -> tuple[str, str]:
    """(outcome, reason class) of an HTTP status: whose fault it is decides what happens to the batch."""
    if 200 <= status < 300:
        return SENT, "delivered"
    if status in _REFUSED_CONTENT:
        return REJECTED, "refused content"
    if 300 <= status < 400:
        return FAILED, "redirect"
    if status in (401, 403):
        return FAILED, "not authorised"
    if status in (404, 410):
        return FAILED, "not found"
    if status in (408, 429):
        return FAILED, "throttled"
    if 500 <= status < 600:
        return FAILED, "server error"
    if 400 <= status < 500:
        return FAILED, "client error"
    return FAILED, "unexpected answer"


def post(url: str, body: bytes, timeout: float, now: float = 0.0, written: Callable[[], None] | None = None,
         deadline: float | None = None) -> Answer:
    """POST ``body`` to ``url``. Never raises.

    ``written`` is called once the whole request is on the socket (before the
    answer is awaited). The exchange ends after ``timeout`` seconds, or at
    ``deadline`` (``time.monotonic``) if that comes first, whatever the server does.
    """
    cut: list[bool] = []
    try:
        import urllib.error
        import urllib.request

        from zomg.telemetry import protocol

        opener = _opener(min(time.monotonic() + timeout, deadline or float("inf")), written, cut)
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
        )
        try:
            with opener.open(request, timeout=timeout) as response:
                return _answer(response.status, None)
        except urllib.error.HTTPError as exc:
            answer = _answer(exc.code, protocol.retry_after((exc.headers or {}).get("Retry-After"), now))
            exc.close()
            return answer
    except TimeoutError:
        return Answer(FAILED, None, "timeout")
    except Exception as exc:  # refused, DNS, TLS, garbage: the endpoint's problem
        reason = getattr(exc, "reason", None)
        timed_out = cut or isinstance(reason, TimeoutError)
        return Answer(FAILED, None, "timeout" if timed_out else "network error")


def _opener(cutoff: float, written, cut: list):
    """An opener that follows no redirect, tells ``written`` when the request has left, and hangs up at ``cutoff``."""
    import http.client
    import socket
    import urllib.request

    from zomg.telemetry.protocol import no_redirects

    class Watched:
        """Mixed into http.client's connections: the deadline over the whole exchange, and the written signal."""

        _timer = None

        def connect(self) -> None:
            remaining = cutoff - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("deadline passed")
            self.timeout = min(self.timeout, remaining) if self.timeout else remaining
            super().connect()
            # A per-read timeout never fires for a server that trickles a byte at a time: shut the socket instead.
            self._timer = threading.Timer(max(0.0, cutoff - time.monotonic()), self._hang_up)
            self._timer.daemon = True  # never keeps the process alive
            self._timer.start()

        def _hang_up(self) -> None:
            cut.append(True)
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except (OSError, AttributeError):
                pass

        def getresponse(self):
            # urllib calls this once request() has written the whole request.
            if written is not None:
                written()
            try:
                return super().getresponse()
            finally:
                if self._timer is not None:  # the status line and headers are in: nothing more is read
                    self._timer.cancel()

        def close(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
            super().close()

    class WatchedHTTP(Watched, http.client.HTTPConnection):
        pass

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(WatchedHTTP, req)

    handlers = [no_redirects(), HTTP]
    if hasattr(http.client, "HTTPSConnection"):  # Python built with ssl
        class WatchedHTTPS(Watched, http.client.HTTPSConnection):
            pass

        class HTTPS(urllib.request.HTTPSHandler):
            def https_open(self, req):
                return self.do_open(WatchedHTTPS, req)

        handlers.append(HTTPS)
    # No cookie handler: build_opener adds none unless asked.
    return urllib.request.build_opener(*handlers)


def _answer(status: int, retry_after: float | None) -> Answer:
    outcome, reason = classify(status)
    return Answer(outcome, status, reason, retry_after)


def _candidates(spool: Spool, now: float, installation_id: str | None, kinds) -> list[tuple[bytes, dict]]:
    """Clean the spool (damaged, too old, legacy and orphaned lines) and return this endpoint's sendable events."""
    found: list[tuple[bytes, dict]] = []
    editor = SpoolEditor(spool)

    def clean(lines: list[bytes]) -> list[bytes] | None:
        kept: list[bytes] = []
        found.clear()
        for line in editor.bounded(lines, now):
            stamp, tries, url, body = parse(line)
            if url != spool.url:
                kept.append(line)  # recorded for another endpoint: it waits for that one
                continue
            try:
                event = json.loads(body)
                schema.validate_event(event)
            except Exception:
                continue  # damaged: it would make the whole batch fail
            owner = event.get("installation_id")
            if installation_id is not None and owner is not None and owner != installation_id:
                continue  # made under an id since deleted by `zomg telemetry off`
            line = b"%d %d %s %s" % (stamp, tries, url, body)  # lines of the old format get a tries digit
            kept.append(line)
            if kinds is None or event.get("event") in kinds:
                found.append((line, event))
        return kept if kept != lines else None

    editor.transform(clean)
    return found


def claim(spool: Spool, now: float, installation_id: str | None, force: bool = False,
          kinds=None, below: int = spool_edit.MAX_SENDS) -> tuple[list[tuple[bytes, dict]], int]:
    """Pick the next batch of this endpoint's events (``deliver`` marks it once the request has left).

    Fresh events go first; events a send already reached without an answer go
    after them (in a batch of their own), only those sent fewer than ``below``
    times (``UNBOUNDED``: however often). Returns (batch, how many times its
    events were sent before); the batch is the events' JSON and the events,
    and empty when nothing is due (``force`` ignores the due rule and
    backoff). Call only while holding ``SpoolEditor(spool).send_lock()``.
    """
    editor = SpoolEditor(spool)
    editor.remove_stale_temporaries()
    found = _candidates(spool, now, installation_id, kinds)
    with spool.lock():
        present = {}
        for line in spool.read():
            parsed = parse(line)
            if parsed is not None:
                present[parsed[3]] = parsed[1]
        tries = {}
        for line, event in found:
            body = parse(line)[3]
            if present.get(body, below) < below:
                tries[body] = (present[body], event, line)
        if not tries:
            return [], 0
        if not force:
            if now < spool.backoff(now)[1]:
                return [], 0
            if not editor.due_for([line for _, _, line in tries.values()], now):
                return [], 0
        level = min(t for t, _, _ in tries.values())
        batch = [(body, event) for body, (t, event, _) in tries.items() if t == level][: schema.MAX_BATCH]
    return batch, level


UNBOUNDED = 10  # above any tries digit: `zomg telemetry flush` waits for its answers, so it sends every event


def settle(spool: Spool, batch: list[bytes], answer: Answer, now: float, tries: int = 0) -> None:
    """After an answer: drop ``batch`` (event JSON of each line) if delivered or refused, else keep it and back off.

    Raises OSError when the spool cannot be changed (a full disk): the caller
    then knows that the receiver took events that are still spooled.
    """
    editor = SpoolEditor(spool)
    kept = answer.outcome == FAILED
    if kept:
        with spool.lock():
            failures, retry_at = spool.backoff(now)
            failures += 1
            from zomg.telemetry.protocol import honour_retry_after

            wait = honour_retry_after(spool.bounds.backoff(failures), answer.retry_after, spool.bounds.backoff_cap)
            editor.write_backoff(failures, now + wait)
        editor.set_tries({body: tries for body in batch})  # the endpoint's problem: as if never tried
    else:
        gone = set(batch)

        def without(lines: list[bytes]) -> list[bytes] | None:
            remaining = [line for line in lines if (parse(line) or (0, 0, b"", line))[3] not in gone]
            return remaining if len(remaining) != len(lines) else None

        editor.transform(without)
        editor.clear_backoff()
    editor.end_attempt({"at": int(now), "outcome": answer.outcome, "events": len(batch), "status": answer.status,
                        "reason": answer.reason, "endpoint": spool.url.decode("ascii", "replace")})


class Result:
    """What ``deliver`` did: events delivered and dropped, and the last answer (None: nothing was sent).

    ``unremoved`` counts events the receiver took (or refused) that could not
    be removed from the spool, ``fault`` says why (a full disk): they are
    still spooled, and may be sent again (the receiver drops the copies).
    """

    __slots__ = ("delivered", "dropped", "answer", "busy", "unremoved", "fault")

    def __init__(self) -> None:
        self.delivered = 0
        self.dropped = 0
        self.answer: Answer | None = None
        self.busy = False  # another process held the send lock
        self.unremoved = 0
        self.fault: str | None = None


def deliver(spool: Spool, url: str, installation_id: str | None, force: bool = False, kinds=None,
            wait: float = 0.0, timing: SendTiming | None = None, deadline: float | None = None,
            finishing: threading.Event | None = None) -> Result:
    """Send what is due (everything, with ``force``) to ``url``, the spool's endpoint.

    Only one process sends at a time: the others find ``send.lock`` taken and
    leave the spool to it (``wait`` seconds at most). After a confirmed batch
    the rest follows without the due rule: the link works now. Nothing is
    started after ``deadline`` (``time.monotonic``), and a POST under way is cut there.

    ``force`` is `zomg telemetry flush`: it waits for its answers, so it sends
    every event, however often it was sent before. A run sends events already
    sent (fewer than ``MAX_SENDS`` times) only in a later round that starts
    before ``finishing`` is set (its command still runs); after, fresh ones only.
    """
    timing = timing or SendTiming()
    clock = timing.clock
    result = Result()
    editor = SpoolEditor(spool)
    lock = editor.send_lock()
    try:
        if not lock.acquire(wait):
            result.busy = True
            return result
    except OSError as exc:
        result.fault = f"{spool.layout.send_lock} cannot be opened: {exc.strerror or exc}"
        return result
    try:
        # flush goes on until the spool is empty (the bound holds it to 10 batches of 100).
        for rounds in range(_MAX_ROUNDS * (10 if force else 1)):
            if force:
                below = UNBOUNDED
            elif rounds and finishing is not None and finishing.is_set():
                below = 1  # the grace has begun: a resend now would be cut short as well
            else:
                below = spool_edit.MAX_SENDS
            batch, tries = claim(spool, clock(), installation_id, force=force or rounds > 0, kinds=kinds,
                                 below=below)
            if not batch:
                break
            if deadline is not None and time.monotonic() >= deadline:
                result.answer = Answer(FAILED, None, "timeout")
                break
            lines = [line for line, _ in batch]
            body = schema.encode_batch([event for _, event in batch])
            try:
                editor.begin_attempt(clock(), len(batch))
            except (OSError, TimeoutError):
                pass  # a full disk: the note is lost, not the send

            def written(lines=lines, tries=tries) -> None:
                try:
                    editor.set_tries({line: tries + 1 for line in lines})
                except (OSError, TimeoutError):
                    pass  # unmarked, the batch counts as never sent: at worst one more copy

            answer = post(url, body, timing.timeout, clock(), written, deadline)
            result.answer = answer
            try:
                settle(spool, lines, answer, clock(), tries)
            except (OSError, TimeoutError) as exc:
                if answer.outcome != FAILED:
                    result.unremoved += len(batch)
                    result.fault = f"the spool could not be changed: {getattr(exc, 'strerror', None) or exc}"
                raise
            if answer.outcome == FAILED:
                break
            if answer.outcome == SENT:
                result.delivered += len(batch)
            else:
                result.dropped += len(batch)
    except Exception as exc:  # a full disk or a vanished directory: try again another time
        if result.fault is None:
            result.fault = f"the spool could not be read or changed: {getattr(exc, 'strerror', None) or exc}"
    finally:
        lock.release()
    return result


def start(spool: Spool, url: str, installation_id: str | None, kinds=None,
          timing: SendTiming | None = None, finishing: threading.Event | None = None) -> threading.Thread:
    """Start ``deliver`` in a daemon thread: it never keeps the process alive.

    ``finishing`` is set when the run's command has ended (its exit grace begins).
    """
    thread = threading.Thread(
        target=deliver, args=(spool, url, installation_id),
        kwargs={"kinds": kinds, "timing": timing, "finishing": finishing},
        name="zomg-telemetry", daemon=True,
    )
    thread.start()
    return thread
