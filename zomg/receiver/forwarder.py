"""The worker's forwarder: a bounded queue of accepted events and one thread sending them to PostHog.

A request hands its validated events over and is answered 202 at once; no
step of a request waits on PostHog. The thread merges what many requests
queued into one ``/batch/`` call (at most ``batch_events`` events, sent once
that many wait or the oldest has waited ``interval`` seconds) and sends each
call until PostHog accepts it, the same body every time (so every event keeps
its ``uuid``), backing off exponentially with jitter and never sooner than a
``Retry-After``.

Back-pressure instead of loss: the queue is bounded in events and in bytes
(events being sent count until PostHog accepted them). A batch that does not
fit, or any batch while PostHog has been failing for longer than
``outage_seconds``, or while the worker is stopping, is refused with 503 and
``Retry-After``: the client keeps it and sends it again later.

How PostHog's answers are taken (docs/receiver.md has the table): 2xx done;
401/403 and other refusals that say the configuration is wrong keep the
queue, retry with backoff and log one line per outage; 400/413 split the call
in halves to find the event PostHog will not take, which alone is dropped,
logged by its shape, never its values; network errors, 408, 429 and 5xx are
retried.

Everything that makes it slow or fast is injectable (clock, jitter, bounds),
so the tests decide when things happen instead of waiting on a clock.
"""
from __future__ import annotations

import math
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable

from zomg.receiver.fastpath import encode_event
from zomg.receiver.log import emit
from zomg.receiver.metrics import Metrics
from zomg.receiver.posthog import batch_shape, body_from_lines
from zomg.receiver.wsgi import DeliveryError
from zomg.telemetry.schema import MAX_BATCH, MAX_BODY_BYTES

BATCH_EVENTS = 2000
INTERVAL_SECONDS = 0.2
QUEUE_EVENTS = 20000
QUEUE_BYTES = 16 * 1024 * 1024
OUTAGE_SECONDS = 30.0
BACKOFF_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0
MAX_RETRY_AFTER = 300.0
# PostHog's answers that mean "this body will never be taken": split it to find the event.
REFUSED = frozenset((400, 413))
# Answers that mean "try again": PostHog is busy, briefly down, or asked to slow down.
RETRYABLE = frozenset((408, 429, 500, 502, 503, 504))
TOKEN_PROBLEM = frozenset((401, 403))
# What a client is told for each reason a batch is refused (the reasons are metrics.REFUSAL_REASONS).
_REFUSALS = {
    "stopping": "receiver: stopping; send the events again",
    "upstream_failing": "upstream: PostHog is failing; keep the events and retry later",
    "queue_full": "receiver: queue full; keep the events and retry later",
}


def _outcome_label(status: int | None) -> str:
    """A PostHog answer as metrics.UPSTREAM_OUTCOMES counts it."""
    if status is not None and 200 <= status < 300:
        return "accepted"
    if status in REFUSED:
        return "refused"
    if status in TOKEN_PROBLEM:
        return "token_refused"
    if status is None or status in RETRYABLE:
        return "unavailable"
    return "unexpected"


def _stderr(line: str) -> None:
    emit(line, "WARNING")


class Forwarder:
    """``deliver`` for make_app: queue validated events for PostHog; DeliveryError(503) when they cannot be kept."""

    def __init__(
        self,
        client: object,
        batch_events: int = BATCH_EVENTS,
        interval: float = INTERVAL_SECONDS,
        queue_events: int = QUEUE_EVENTS,
        queue_bytes: int = QUEUE_BYTES,
        outage_seconds: float = OUTAGE_SECONDS,
        backoff: float = BACKOFF_SECONDS,
        backoff_cap: float = BACKOFF_CAP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        log: Callable[[str], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.client = client
        self.url = getattr(client, "url", "")
        self.batch_events = max(1, batch_events)
        self.interval = interval
        self.queue_events = queue_events
        self.queue_bytes = queue_bytes
        self.outage_seconds = outage_seconds
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.clock = clock
        self.jitter = jitter
        self.log = log or _stderr
        self.metrics = metrics or Metrics(state=self.state)
        self._cond = threading.Condition()
        self._waiting: deque = deque()  # (lines, count, queued at), oldest first
        self._waiting_events = 0
        self._sending_since: float | None = None  # when the oldest event of the call in flight was queued
        self._held_events = 0  # waiting + being sent: what the bounds count
        self._held_bytes = 0
        self._failing_since: float | None = None
        self._retry_at = 0.0
        self._reported: str | None = None  # the outage already logged
        self._closing = False
        self._deadline = math.inf
        self._urgent = 0  # flush() callers waiting
        self._hurry = False  # the worker is stopping: send without waiting out the interval
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.sent_calls = 0  # upstream calls made, for the benchmark's figures
        self.dropped = 0  # events PostHog refused with 400/413 one by one

    # The application's side -------------------------------------------------

    def __call__(self, events: list) -> None:
        self.deliver_lines("".join(encode_event(event) + "\n" for event in events).encode("ascii"))

    def deliver_lines(self, lines: bytes) -> None:
        """Queue events given as the schema's JSON lines, or raise DeliveryError(503) with Retry-After."""
        count = lines.count(b"\n")
        with self._cond:
            now = self.clock()
            reason = self._refusing(now, count, len(lines))
            if reason is not None:
                raise DeliveryError(_REFUSALS[reason], 503, retry_after=1 if reason == "stopping" else
                                    self._wait_hint(now), reason=reason)
            was_empty = not self._waiting
            self._waiting.append((lines, count, now))
            self._waiting_events += count
            self._held_events += count
            self._held_bytes += len(lines)
            self._ensure_thread()
            if was_empty or self._waiting_events >= self.batch_events:
                self._cond.notify_all()

    def _refusing(self, now: float, events: int, size: int) -> str | None:
        """Why a batch of ``events`` events and ``size`` bytes would be refused now, or None (under the lock)."""
        if self._closing:
            return "stopping"
        if self._failing_since is not None and now - self._failing_since > self.outage_seconds:
            return "upstream_failing"
        if self._held_events + events > self.queue_events or self._held_bytes + size > self.queue_bytes:
            return "queue_full"
        return None

    def state(self) -> dict:
        """What metrics.Metrics reads: events and bytes held, when the oldest was queued (wall clock), and
        why a largest batch would be refused now (None: it would be taken)."""
        with self._cond:
            now = self.clock()
            queued = [t for t in (self._sending_since, self._waiting[0][2] if self._waiting else None)
                      if t is not None]
            return {
                "pending_events": self._held_events,
                "pending_bytes": self._held_bytes,
                "oldest_at": time.time() - (now - min(queued)) if queued else None,
                "refusing": self._refusing(now, MAX_BATCH, MAX_BODY_BYTES),
            }

    def _wait_hint(self, now: float) -> int:
        """Whole seconds for Retry-After: when the next try toward PostHog is due, at least one."""
        return max(1, min(int(MAX_RETRY_AFTER), math.ceil(max(self._retry_at - now, self.interval))))

    def _ensure_thread(self) -> None:
        # Started on first use in the process that serves (a gunicorn worker, after the fork).
        if self._thread is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="zomg-forwarder", daemon=True)
            self._thread.start()

    def start(self) -> None:
        with self._cond:
            self._ensure_thread()

    @property
    def queued(self) -> int:
        """Events accepted and not yet taken by PostHog."""
        with self._cond:
            return self._held_events

    def flush(self, timeout: float) -> bool:
        """Send what is queued now, without waiting out the interval; True once PostHog has it all."""
        with self._cond:
            self._urgent += 1
            self._cond.notify_all()
            try:
                end = self.clock() + timeout
                while self._held_events and self.clock() < end:
                    self._cond.wait(min(1.0, max(0.0, end - self.clock())))
                return not self._held_events
            finally:
                self._urgent -= 1

    def hurry(self) -> None:
        """From now on send what is queued at once (the worker was told to stop; the drain follows)."""
        with self._cond:
            self._hurry = True
            self._cond.notify_all()

    def begin_close(self, timeout: float) -> None:
        """Refuse new events and send the queued ones now; give up on them ``timeout`` seconds from now."""
        with self._cond:
            if not self._closing:
                self._closing = True
                self._deadline = self.clock() + max(0.0, timeout)
                self.metrics.changed()
            self._cond.notify_all()

    def close(self, timeout: float) -> int:
        """Drain: stop accepting, send what is queued within ``timeout``; the number of events left unsent."""
        self.begin_close(timeout)
        thread = self._thread
        if thread is not None and self._pid == os.getpid():
            thread.join(max(0.0, self._deadline - self.clock()) + 1.0)
        left = self.queued
        if left:
            self.log(f"zomg-receiver: {left} accepted events not delivered to PostHog before exit")
        self.client.close()
        return left

    # The thread's side --------------------------------------------------------

    def _take(self) -> list | None:
        """The next upstream call's lines, once due; None when closing and nothing is left."""
        with self._cond:
            while True:
                if self._waiting:
                    due = self._waiting[0][2] + self.interval
                    if (self._closing or self._urgent or self._hurry or self._waiting_events >= self.batch_events
                            or self.clock() >= due):
                        break
                    self._cond.wait(max(0.0, due - self.clock()))
                elif self._closing:
                    return None
                else:
                    self._cond.wait()
            lines: list = []
            self._sending_since = self._waiting[0][2]
            while self._waiting and (not lines or len(lines) + self._waiting[0][1] <= self.batch_events):
                chunk, count, _ = self._waiting.popleft()
                self._waiting_events -= count
                lines.extend(chunk.split(b"\n")[:-1])
            return lines

    def _run(self) -> None:
        while True:
            lines = self._take()
            if lines is None:
                return
            try:
                self._send(lines)
            except Exception as exc:  # a bug here must not kill the thread and strand the queue
                self.log(f"zomg-receiver: forwarder error ({type(exc).__name__}); {len(lines)} events dropped")
                self.dropped += len(lines)
                self.metrics.count("events_dropped_total", len(lines))
                self._settle(lines, delivered=True)

    def _send(self, lines: list) -> None:
        """Send ``lines`` until PostHog takes them (or refuses them one by one), or the drain deadline passes."""
        body = body_from_lines(self.client.api_key, lines)
        attempt = 0
        unanswered = False  # the last try got no HTTP answer: PostHog may have taken it (a resend may duplicate)
        while True:
            with self._cond:
                if self._closing and self.clock() >= self._deadline:
                    return  # left counted: close() reports them
            if attempt and unanswered:
                self.metrics.count("events_resent_total", len(lines))
            started = time.monotonic()
            outcome = self.client.post(body)
            self.metrics.observe(time.monotonic() - started)
            self.sent_calls += 1
            status = outcome.status
            unanswered = status is None
            self.metrics.count("upstream_calls_total", 1, _outcome_label(status))
            if outcome.accepted:
                self._recovered()
                self.metrics.count("events_forwarded_total", len(lines))
                self._settle(lines, delivered=True)
                return
            if status in REFUSED:
                self._recovered()
                if len(lines) > 1:
                    half = len(lines) // 2
                    self._send(lines[:half])
                    self._send(lines[half:])
                    return
                self.log(f"zomg-receiver: PostHog refused an event (HTTP {status}); dropped it: "
                         f"{batch_shape(lines)}")
                self.dropped += 1
                self.metrics.count("events_dropped_total")
                self._settle(lines, delivered=True)
                return
            self._failed(outcome, attempt)
            attempt += 1
            with self._cond:
                while self.clock() < self._retry_at:
                    if self._closing and self._retry_at >= self._deadline:
                        return
                    self._cond.wait(self._retry_at - self.clock())

    def _failed(self, outcome: object, attempt: int) -> None:
        status = outcome.status
        delay = min(self.backoff_cap, self.backoff * 2 ** min(attempt, 30))
        delay = delay / 2 + delay / 2 * self.jitter()
        if outcome.retry_after is not None:
            delay = max(delay, min(outcome.retry_after, MAX_RETRY_AFTER))
        if status in TOKEN_PROBLEM:
            kind = (f"PostHog refuses the project token (HTTP {status}): check POSTHOG_PROJECT_API_KEY; "
                    "accepted events are kept and retried")
        elif status is None or status in RETRYABLE:
            kind = f"PostHog unavailable ({outcome.problem}); accepted events are kept and retried"
        else:
            kind = (f"PostHog answers HTTP {status} at {self.url}: check POSTHOG_HOST; "
                    "accepted events are kept and retried")
        with self._cond:
            now = self.clock()
            if self._failing_since is None:
                self._failing_since = now
                self.metrics.changed()
            self._retry_at = now + delay
            report = kind.split(" (")[0] if status is None or status in RETRYABLE else kind
            if report != self._reported:
                self._reported = report
                self.log(f"zomg-receiver: {kind}")

    def _recovered(self) -> None:
        with self._cond:
            if self._failing_since is not None:
                outage = self.clock() - self._failing_since
                self.log(f"zomg-receiver: PostHog accepts events again after {outage:.0f} s")
                self.metrics.changed()
            self._failing_since = None
            self._reported = None
            self._retry_at = 0.0

    def _settle(self, lines: list, delivered: bool) -> None:
        with self._cond:
            if delivered:
                self._sending_since = None
                self._held_events -= len(lines)
                self._held_bytes -= sum(len(line) + 1 for line in lines)
            self._cond.notify_all()
