"""Sending spooled events: one POST per batch, from a daemon thread.

Imported only when a send is due: this is the one telemetry module that
loads urllib (and with it http.client, email and ssl). Every failure is
silent; what was not confirmed stays spooled for a later invocation.

The protocol: holding ``send.lock`` (so two processes never send the same
events at once), ``claim`` a batch under the spool lock, POST it without any
lock, then ``settle``: a delivered (or refused for good) batch is removed
from the spool by identity, whatever was appended or trimmed meanwhile. A
process that dies mid-send leaves its events spooled for a later one; the
receiver drops duplicates by ``event_id``.
"""
from __future__ import annotations

import json
import threading

from zomg.telemetry import schema
from zomg.telemetry.spool import Spool

USER_AGENT = "zomg-telemetry"
SENT = "sent"  # 2xx: delivered
REJECTED = "rejected"  # a 4xx other than 408/429: it will never be accepted, drop it
FAILED = "failed"  # network error, 408, 429, 5xx, anything else: keep and back off
_MAX_ROUNDS = 10  # batches one invocation sends at most


def classify(status: int) -> str:
    if 200 <= status < 300:
        return SENT
    if 400 <= status < 500 and status not in (408, 429):
        return REJECTED
    return FAILED


def _retry_after(headers) -> float | None:
    value = (headers.get("Retry-After") or "").strip() if headers is not None else ""
    return float(value) if value.isdigit() else None


def post(url: str, body: bytes, timeout: float) -> tuple[str, float | None]:
    """POST ``body`` to ``url``; return (outcome, Retry-After seconds or None). Never raises."""
    try:
        import urllib.error
        import urllib.request

        class _NoRedirects(urllib.request.HTTPRedirectHandler):
            # A redirect could lead anywhere (plain http, another host): treat it as a failure.
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
                return classify(response.status), None
        except urllib.error.HTTPError as exc:
            outcome, retry = classify(exc.code), _retry_after(exc.headers)
            exc.close()
            return outcome, retry
    except Exception:  # refused, DNS, TLS, timeout, garbage: all the same to the user
        return FAILED, None


def claim(spool: Spool, now: float, installation_id: str | None, force: bool = False) -> list[tuple[bytes, dict]]:
    """Under the spool lock: enforce the bound, drop what can never be sent, pick the next batch.

    Records a failed attempt before returning, so a process that dies
    mid-send still backs off; ``settle`` clears it on success. Returns
    [] when nothing is due (``force`` ignores the due rule and backoff).
    Call only while holding ``spool.send_lock()``.
    """
    with spool.lock():
        lines = spool.read()
        kept: list[bytes] = []
        events: list[dict] = []
        for line in spool.bounded(lines, now):
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
            spool.rewrite(kept)
        failures, retry_at = spool.backoff()
        if not kept or not (force or (now >= retry_at and spool.due_for(kept, now))):
            return []
        spool.write_backoff(failures + 1, now + spool.tuning.backoff(failures + 1))
        return list(zip(kept[: schema.MAX_BATCH], events[: schema.MAX_BATCH]))


def settle(spool: Spool, batch: list[bytes], delivered: bool, now: float, retry_after: float | None = None) -> None:
    """After a send: drop ``batch`` if it was delivered (or refused for good), else keep backing off."""
    with spool.lock():
        if delivered:
            sent = set(batch)
            lines = spool.read()
            remaining = [line for line in lines if line not in sent]
            if len(remaining) != len(lines):
                spool.rewrite(remaining)
            spool.clear_backoff()
        elif retry_after:
            failures, retry_at = spool.backoff()
            wanted = now + min(retry_after, spool.tuning.backoff_cap)
            if wanted > retry_at:
                spool.write_backoff(max(failures, 1), wanted)


def deliver(spool: Spool, url: str, installation_id: str | None, force: bool = False) -> int:
    """Send what is due (everything, with ``force``); return how many events were delivered.

    Only one process sends at a time: the others find ``send.lock`` taken
    and leave the spool to it.
    """
    clock = spool.tuning.clock
    delivered = 0
    lock = spool.send_lock()
    try:
        if not lock.acquire(0):
            return 0
    except OSError:
        return 0
    try:
        for _ in range(_MAX_ROUNDS):
            batch = claim(spool, clock(), installation_id, force=force)
            if not batch:
                break
            body = schema.encode_batch([event for _, event in batch])
            outcome, retry_after = post(url, body, spool.tuning.timeout)
            settle(spool, [line for line, _ in batch], outcome != FAILED, clock(), retry_after)
            if outcome == FAILED:
                break
            if outcome == SENT:
                delivered += len(batch)
    except Exception:  # a full disk or a vanished directory: try again another time
        pass
    finally:
        lock.release()
    return delivered


def start(spool: Spool, url: str, installation_id: str | None) -> threading.Thread:
    """Start ``deliver`` in a daemon thread: it never keeps the process alive."""
    thread = threading.Thread(
        target=deliver, args=(spool, url, installation_id), name="zomg-telemetry", daemon=True
    )
    thread.start()
    return thread
