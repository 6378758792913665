"""Sending spooled events: one POST per batch, from a daemon thread.

Imported only when a send is due: this is the one telemetry module that
loads urllib (and with it http.client, email and ssl). Every failure is
silent; what was not confirmed stays spooled for a later invocation.

The protocol: holding ``send.lock`` (so two processes never send the same
events at once), ``claim`` a batch of the endpoint's own events, marking
them as tried once more; POST it without any lock; then ``settle`` by whose
fault the answer is (see ``classify``): a delivered batch, or one whose
content the receiver refuses, is removed from the spool by identity, whatever
was appended or trimmed meanwhile; the endpoint's failure keeps it and backs
off. A process that exits mid-send (the exit grace ran out) leaves its batch
spooled and marked: the next send takes fresh events first, so a link slower
than the grace still sees every event, and a run that lives longer (or
`zomg telemetry flush`) confirms the rest. The receiver drops duplicates by
``event_id``.
"""
from __future__ import annotations

import json
import threading
import time

from zomg.telemetry import schema, spool_edit
from zomg.telemetry.files import Spool
from zomg.telemetry.spool_edit import parse

USER_AGENT = "zomg-telemetry"
SENT = "delivered"  # 2xx
REJECTED = "dropped"  # 400, 413, 422: the receiver refuses this batch's content; it never will accept it
FAILED = "kept"  # anything else: the endpoint's problem; keep the events and back off
_MAX_ROUNDS = 10  # batches one invocation sends at most (flush: until the spool is empty)
_REFUSED_CONTENT = (400, 413, 422)


class SendTiming:
    """How long one POST may take, and the wall clock that stamps sends and backoffs.

    Built here, where it is used: a session that sends nothing never loads this module, and hands
    ``start`` None for the defaults. Tests inject their own timeout and clock.
    """

    __slots__ = ("timeout", "clock")

    def __init__(self, timeout: float = 5.0, clock=time.time) -> None:
        self.timeout = timeout  # socket timeout of the sender thread
        self.clock = clock  # wall-clock seconds, like time.time


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


def _retry_after(headers, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date."""
    value = (headers.get("Retry-After") or "").strip() if headers is not None else ""
    if value.isdigit():
        return float(value[:12])
    if value:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return None


def post(url: str, body: bytes, timeout: float, now: float = 0.0) -> Answer:
    """POST ``body`` to ``url``. Never raises."""
    try:
        import urllib.error
        import urllib.request

        class _NoRedirects(urllib.request.HTTPRedirectHandler):
            # A redirect could lead anywhere (plain http, another host): the endpoint's problem.
            def redirect_request(self, *args, **kwargs):
                return None

        # No cookie handler: build_opener adds none unless asked.
        opener = urllib.request.build_opener(_NoRedirects)
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
            answer = _answer(exc.code, _retry_after(exc.headers, now))
            exc.close()
            return answer
    except TimeoutError:
        return Answer(FAILED, None, "timeout")
    except Exception as exc:  # refused, DNS, TLS, garbage: the endpoint's problem
        reason = getattr(exc, "reason", None)
        return Answer(FAILED, None, "timeout" if isinstance(reason, TimeoutError) else "network error")


def _answer(status: int, retry_after: float | None) -> Answer:
    outcome, reason = classify(status)
    return Answer(outcome, status, reason, retry_after)


def _candidates(spool: Spool, now: float, installation_id: str | None, kinds) -> list[tuple[bytes, dict]]:
    """Clean the spool (damaged, too old, legacy and orphaned lines) and return this endpoint's sendable events."""
    found: list[tuple[bytes, dict]] = []

    def clean(lines: list[bytes]) -> list[bytes] | None:
        kept: list[bytes] = []
        found.clear()
        for line in spool_edit.bounded(spool, lines, now):
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

    spool_edit.transform(spool, clean)
    return found


def claim(spool: Spool, now: float, installation_id: str | None, force: bool = False,
          kinds=None) -> tuple[list[tuple[bytes, dict]], int]:
    """Pick the next batch of this endpoint's events and mark it as tried once more.

    Fresh events go first; events a send already reached without an answer go
    after them (in a batch of their own). Returns (batch, how many times its
    events were tried before); the batch is the events' JSON and the events,
    and empty when nothing is due
    (``force`` ignores the due rule and backoff). Call only while holding
    ``spool_edit.send_lock(spool)``.
    """
    spool_edit.remove_stale_temporaries(spool)
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
            if body in present:
                tries[body] = (present[body], event, line)
        if not tries:
            return [], 0
        if not force:
            if now < spool.backoff(now)[1]:
                return [], 0
            if not spool_edit.due_for(spool, [line for _, _, line in tries.values()], now):
                return [], 0
        level = min(t for t, _, _ in tries.values())
        batch = [(body, event) for body, (t, event, _) in tries.items() if t == level][: schema.MAX_BATCH]
        spool_edit.set_tries_locked(spool, {body: level + 1 for body, _ in batch})
    return batch, level


def settle(spool: Spool, batch: list[bytes], answer: Answer, now: float, tries: int = 0) -> None:
    """After an answer: drop ``batch`` (event JSON of each line) if delivered or refused, else keep it and back off."""
    kept = answer.outcome == FAILED
    if kept:
        with spool.lock():
            failures, retry_at = spool.backoff(now)
            failures += 1
            wait = spool.bounds.backoff(failures)
            if answer.retry_after:
                wait = max(wait, min(answer.retry_after, spool.bounds.backoff_cap))
            spool_edit.write_backoff(spool, failures, now + wait)
        spool_edit.set_tries(spool, {body: tries for body in batch})  # the endpoint's problem: as if never tried
    else:
        gone = set(batch)

        def without(lines: list[bytes]) -> list[bytes] | None:
            remaining = [line for line in lines if (parse(line) or (0, 0, b"", line))[3] not in gone]
            return remaining if len(remaining) != len(lines) else None

        spool_edit.transform(spool, without)
        spool_edit.clear_backoff(spool)
    spool_edit.write_last(spool, {"at": int(now), "outcome": answer.outcome, "events": len(batch),
                                  "status": answer.status, "reason": answer.reason,
                                  "endpoint": spool.url.decode("ascii", "replace")})


class Result:
    """What ``deliver`` did: events delivered and dropped, and the last answer (None: nothing was sent)."""

    __slots__ = ("delivered", "dropped", "answer", "busy")

    def __init__(self) -> None:
        self.delivered = 0
        self.dropped = 0
        self.answer: Answer | None = None
        self.busy = False  # another process held the send lock


def deliver(spool: Spool, url: str, installation_id: str | None, force: bool = False, kinds=None,
            wait: float = 0.0, timing: SendTiming | None = None) -> Result:
    """Send what is due (everything, with ``force``) to ``url``, the spool's endpoint.

    Only one process sends at a time: the others find ``send.lock`` taken and
    leave the spool to it (``wait`` seconds at most). After a confirmed batch
    the rest follows without the due rule: the link works now.
    """
    timing = timing or SendTiming()
    clock = timing.clock
    result = Result()
    lock = spool_edit.send_lock(spool)
    try:
        if not lock.acquire(wait):
            result.busy = True
            return result
    except OSError:
        return result
    try:
        # flush goes on until the spool is empty (the bound holds it to 10 batches of 100).
        for rounds in range(_MAX_ROUNDS * (10 if force else 1)):
            batch, tries = claim(spool, clock(), installation_id, force=force or rounds > 0, kinds=kinds)
            if not batch:
                break
            body = schema.encode_batch([event for _, event in batch])
            answer = post(url, body, timing.timeout, clock())
            result.answer = answer
            settle(spool, [line for line, _ in batch], answer, clock(), tries)
            if answer.outcome == FAILED:
                break
            if answer.outcome == SENT:
                result.delivered += len(batch)
            else:
                result.dropped += len(batch)
    except Exception:  # a full disk or a vanished directory: try again another time
        pass
    finally:
        lock.release()
    return result


def start(spool: Spool, url: str, installation_id: str | None, kinds=None,
          timing: SendTiming | None = None) -> threading.Thread:
    """Start ``deliver`` in a daemon thread: it never keeps the process alive."""
    thread = threading.Thread(
        target=deliver, args=(spool, url, installation_id), kwargs={"kinds": kinds, "timing": timing},
        name="zomg-telemetry", daemon=True,
    )
    thread.start()
    return thread
