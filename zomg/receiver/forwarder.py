"""The process's forwarder: accepted events into the spool, and one thread sending the spool to PostHog.

A request's validated events are written to the spool (zomg/receiver/spool.py,
on local disk) and answered 202 once committed; no step of a request waits
on PostHog. The thread claims the oldest unclaimed events of the spool (any
process's: a worker that died leaves its events to the others), merges them
into one ``/batch/`` call (at most ``batch_events``, sent once that many wait
or the oldest has waited ``interval`` seconds) and sends each call until
PostHog takes it, the same body every time (so every event keeps its
``uuid``), backing off exponentially with jitter, never sooner than a
``Retry-After`` for the whole call, but probing with one event every
``probe_seconds`` so that a PostHog that is back is noticed within seconds.
Events leave the spool only once PostHog took them.

Back-pressure instead of loss: a batch that does not fit in the spool's bound,
any batch while PostHog has been failing for longer than ``outage_seconds``, or
while the process is stopping, is refused with 503 and ``Retry-After``.

How PostHog's answers are taken (docs/receiver.md has the table): 2xx done;
network errors, 408, 429, 5xx, 401/403 and anything unexpected are upstream
faults: keep, retry, log one line per outage. 400/413 split the call in halves
to find what PostHog refuses. An event is dropped only when PostHog refused
it alone ``confirm`` times, and took another call between each two of those
refusals: a PostHog (or a proxy in front of it) that refuses every call,
however it is split, never gets an event dropped.

Stopping never abandons an event: what is not sent by the drain's deadline
stays in the spool for the next process. Everything that makes it slow or
fast is injectable (clock, jitter, bounds), so the tests decide when things
happen instead of waiting on a clock.
"""
from __future__ import annotations

import atexit
import math
import random
import threading
import time
from collections.abc import Callable

from zomg.receiver.log import emit
from zomg.receiver.posthog_events import batch_shape, body_from_lines
from zomg.receiver.sink import DeliveryError, Sink
from zomg.receiver.spool import Spool, SpoolError, SpoolFull, on_fork
from zomg.telemetry import protocol

BATCH_EVENTS = 2000
INTERVAL_SECONDS = 0.2
OUTAGE_SECONDS = 30.0
BACKOFF_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0
PROBE_SECONDS = 2.0
# How often an idle sender looks for events it did not accept itself (a dead
# worker's, a previous run's) and writes its counters.
POLL_SECONDS = 1.0
MAX_RETRY_AFTER = 300.0
# Refused alone this many times, with PostHog taking other calls in between: dropped.
CONFIRM_REFUSALS = 3
# A process that exits without a server's drain (a plain WSGI host) sends for at most this long.
EXIT_DRAIN_SECONDS = 5.0
# PostHog's answers that may mean "this body will never be taken": split it to find the event.
REFUSED = frozenset((400, 413))
# Answers that mean "try again": PostHog is busy, briefly down, or asked to slow down.
RETRYABLE = frozenset((408, 429, 500, 502, 503, 504))
TOKEN_PROBLEM = frozenset((401, 403))
# Upper bounds (seconds) of the upstream call latency histogram.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)


def _stderr(line: str) -> None:
    emit(line, "WARNING")


class Forwarder(Sink):
    """The sink that keeps validated events in the spool for PostHog; DeliveryError(503) when it cannot.

    What an operator may read (plain, for /metrics and /readyz): ``refusal``,
    ``spool.depth()``, ``spool.oldest_age()``, ``spool.counters()``.
    """

    def __init__(
        self,
        client: object,
        spool: Spool,
        batch_events: int = BATCH_EVENTS,
        interval: float = INTERVAL_SECONDS,
        outage_seconds: float = OUTAGE_SECONDS,
        backoff: float = BACKOFF_SECONDS,
        backoff_cap: float = BACKOFF_CAP_SECONDS,
        probe_seconds: float = PROBE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        confirm: int = CONFIRM_REFUSALS,
        exit_drain: float = EXIT_DRAIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.spool = spool
        self.url = getattr(client, "url", "")
        self.batch_events = max(1, batch_events)
        self.interval = interval
        self.outage_seconds = outage_seconds
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.probe_seconds = probe_seconds
        self.poll_seconds = poll_seconds
        self.confirm = max(1, confirm)
        self.exit_drain = exit_drain
        self.clock = clock
        self.jitter = jitter
        self.log = log or _stderr
        self._reset()
        on_fork(self, Forwarder._reset)

    def _reset(self) -> None:
        # Per process (the first, or a fork's child, where the parent's thread does not exist).
        self._cond = threading.Condition()
        self._local = 0  # events this process appended since its thread last claimed
        self._local_since = 0.0
        self._failing_since: float | None = None
        self._retry_at = 0.0
        self._next_probe = 0.0
        self._reported: str | None = None  # the outage already logged
        self._spool_failing = False  # the spool's failure already logged
        self._closing = False
        self._closed = False
        self._deadline = math.inf
        self._urgent = 0  # flush() callers waiting
        self._hurry = False  # the process is stopping: send without waiting out the interval
        self._thread: threading.Thread | None = None
        self._accepted_calls = 0  # calls PostHog took: the witnesses of a per-event refusal
        self._suspects: dict = {}  # event line -> (refusals alone, _accepted_calls at the last one)
        self.sent_calls = 0  # upstream calls made by this process, for the benchmark's figures
        self._next_flush = 0.0  # when _post next writes the counters to the spool

    # The application's side -------------------------------------------------

    def deliver_lines(self, lines: bytes) -> None:
        """Keep events given as the schema's JSON lines on disk, or raise DeliveryError(503) with Retry-After."""
        count = lines.count(b"\n")
        with self._cond:
            now = self.clock()
            reason = "stopping" if self._closing else "outage" if self._in_outage(now) else None
            hint = 1 if self._closing else self._wait_hint(now)
        try:
            # The reasons are metrics.REFUSAL_REASONS; the refused_* counters and /metrics use them.
            if reason == "stopping":
                raise DeliveryError("receiver: stopping; send the events again", 503, retry_after=1,
                                    reason=reason)
            if reason == "outage":
                raise DeliveryError("upstream: PostHog is failing; keep the events and retry later", 503,
                                    retry_after=hint, reason=reason)
            try:
                self.spool.append(lines, count)
            except SpoolFull as exc:
                reason = "full"
                raise DeliveryError(str(exc), 503, retry_after=hint, reason=reason) from None
            except SpoolError as exc:
                reason = "error"
                if not self._spool_failing:  # once until an append works again, not once per request
                    self._spool_failing = True
                    self.log(f"zomg-receiver: {exc}")
                raise DeliveryError(str(exc), 503, retry_after=1, reason=reason) from None
            if self._spool_failing:
                self._spool_failing = False
                self.log("zomg-receiver: the spool takes events again")
        except DeliveryError:
            self.spool.count(f"refused_{reason}", count)
            raise
        with self._cond:
            if not self._local:
                self._local_since = now
            self._local += count
            self._ensure_thread()
            if self._local == count or self._local >= self.batch_events:
                self._cond.notify_all()

    def _in_outage(self, now: float) -> bool:
        return self._failing_since is not None and now - self._failing_since > self.outage_seconds

    def _wait_hint(self, now: float) -> int:
        """Whole seconds for Retry-After: when the whole call is due again (PostHog's word included), at least 1."""
        return max(1, min(int(MAX_RETRY_AFTER), math.ceil(max(self._retry_at - now, self.interval))))

    @property
    def refusal(self) -> str | None:
        """Why new batches are refused right now ("stopping", "outage", "full"), or None while they are accepted."""
        with self._cond:
            if self._closing:
                return "stopping"
            if self._in_outage(self.clock()):
                return "outage"
        try:
            return "full" if self.spool.full else None
        except Exception:  # an unreadable spool refuses every batch
            return "full"

    def _ensure_thread(self, look_now: bool = False) -> None:
        # Started in the process that serves (a gunicorn worker, after the fork).
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, args=(look_now,), name="zomg-forwarder", daemon=True)
            self._thread.start()
            atexit.register(self._at_exit)

    def start(self) -> None:
        """Start sending now: what a previous process left in the spool goes without waiting for a request."""
        with self._cond:
            self._ensure_thread(look_now=True)

    @property
    def queued(self) -> int:
        """Events accepted and not yet taken by PostHog, by every process sharing the spool."""
        return self.spool.depth()[0]

    def flush(self, timeout: float) -> bool:
        """Send what is spooled now, without waiting out the interval; True once PostHog has it all."""
        end = time.monotonic() + timeout
        with self._cond:
            self._urgent += 1
            self._ensure_thread()
            self._cond.notify_all()
        try:
            while self.queued:
                if time.monotonic() >= end:
                    return False
                with self._cond:
                    self._cond.notify_all()
                    self._cond.wait(0.02)
            return True
        finally:
            with self._cond:
                self._urgent -= 1

    def hurry(self) -> None:
        """From now on send what is spooled at once (the process was told to stop; the drain follows)."""
        with self._cond:
            self._hurry = True
            self._cond.notify_all()

    def begin_close(self, timeout: float) -> None:
        """Refuse new events and send the spooled ones now; stop sending ``timeout`` seconds from now."""
        with self._cond:
            if not self._closing:
                self._closing = True
                self._deadline = self.clock() + max(0.0, timeout)
            self._cond.notify_all()

    def close(self, timeout: float) -> int:
        """Drain: stop accepting, send within ``timeout``; the events left in the spool for the next start."""
        self.begin_close(timeout)
        with self._cond:
            thread, self._closed = self._thread, True
        if thread is not None:
            thread.join(max(0.0, self._deadline - self.clock()) + 1.0)
        try:
            self.spool.release()
            self.spool.flush_counters()
            left = self.queued
        except Exception as exc:  # the events are on disk whatever this says
            self.log(f"zomg-receiver: spool unreadable at exit ({type(exc).__name__})")
            left = 0
        if left:
            self.log(f"zomg-receiver: {left} accepted events left in the spool for the next start")
        self.client.close()
        return left

    def _at_exit(self) -> None:
        if not self._closed:
            self.close(self.exit_drain)

    # The thread's side --------------------------------------------------------

    def _run(self, look_now: bool) -> None:
        # Started with the process: at once, for what processes now gone left (only that: what
        # live ones accept waits out its interval); started by a request: polls after an interval.
        next_poll = self.clock() + (0.0 if look_now else self.poll_seconds)
        left = look_now
        idle = False  # the last claim found nothing: only new events or the next poll wake it
        while True:
            try:
                with self._cond:
                    while True:
                        now = self.clock()
                        if self._closing and now >= self._deadline:
                            return self._leave()
                        pushed = self._closing or self._urgent or self._hurry
                        if self._local and (pushed or self._local >= self.batch_events
                                            or now >= self._local_since + self.interval):
                            break
                        if now >= next_poll or self._closing or (self._urgent and not idle):
                            break
                        wake = next_poll if not self._local else min(next_poll, self._local_since + self.interval)
                        self._cond.wait(max(0.0, wake - now))
                    self._local = 0
                if now >= next_poll:
                    self.spool.reclaim()
                    self.spool.flush_counters()
                    self.spool.checkpoint()
                    next_poll = now + self.poll_seconds
                rows = self.spool.claim(self.batch_events, left)
                if not rows and left:
                    left = False
                    rows = self.spool.claim(self.batch_events) if self._closing else []
                idle = not rows
                if idle and self._closing:
                    return self._leave()
                if rows:
                    self._send(rows)
                    if len(rows) >= self.batch_events:
                        idle = False
                        next_poll = min(next_poll, self.clock())  # more may wait: look again at once
            except Exception as exc:  # a bug or a broken spool must not kill the thread; nothing is lost
                self.log(f"zomg-receiver: forwarder error ({type(exc).__name__}: {exc}); retrying")
                try:
                    self.spool.release()  # what the failed send held goes back, for whoever sends next
                except Exception:
                    pass  # still claimed: freed once this process is gone
                with self._cond:
                    self._cond.wait(self.poll_seconds)
                next_poll = self.clock()

    def _leave(self) -> None:
        try:
            self.spool.release()
            self.spool.flush_counters()
        except Exception:
            pass  # unreleased claims are freed once this process is gone (spool.reclaim)

    def _out_of_time(self) -> bool:
        with self._cond:
            return self._closing and self.clock() >= self._deadline

    def _send(self, rows: list) -> None:
        """Send ``rows`` until PostHog takes them (or refuses them one by one), or the drain's deadline passes."""
        attempt = 0
        unknown = False  # an attempt got no answer: PostHog may hold these events already
        while rows:
            if self._out_of_time():
                return  # left in the spool; _leave hands them back
            outcome = self._post(rows)
            if outcome.accepted:
                self._settle(rows, "forwarded", unknown)
                self._recovered()
                return
            if outcome.status in REFUSED:
                rows, took = self._isolate(rows)
                if not rows:
                    self._recovered()
                    return
                if took:
                    # PostHog takes other events: what it refused goes again at once, and an
                    # event refused alone again is one step nearer to being dropped.
                    self._recovered()
                    attempt = 0
                    continue
            unknown = unknown or outcome.status is None
            self._failed(outcome, attempt)
            attempt += 1
            rows = self._wait_and_probe(rows)

    def _post(self, rows: list) -> object:
        """One call with ``rows``; counts it (calls, failures, latency) and its acceptance as a witness."""
        body = body_from_lines(self.client.api_key, [line for _, line in rows])
        started = time.perf_counter()
        outcome = self.client.post(body)
        seconds = time.perf_counter() - started
        self.sent_calls += 1
        spool = self.spool
        spool.count("upstream_calls")
        spool.count("upstream_seconds_sum", seconds)
        for bound in LATENCY_BUCKETS:
            if seconds <= bound:
                spool.count(f"upstream_seconds_le_{bound:g}")
        if outcome.accepted:
            self._accepted_calls += 1
        else:
            spool.count("upstream_failures")
        now = self.clock()
        if now >= self._next_flush:
            # A long outage keeps this thread in _send, away from the poll that writes the counters:
            # the other workers' /metrics would not see these calls until it ends.
            self._next_flush = now + self.poll_seconds
            spool.flush_counters()
            spool.checkpoint()
        return outcome

    def _isolate(self, rows: list) -> tuple:
        """PostHog refused the call holding ``rows``: split it to find what it refuses; (still unsettled, took any).

        Depth first, halves of halves. Once as many calls in a row are refused as
        it takes to reach a single event and its neighbour, PostHog is taken to be
        refusing everything: the rest waits for the retry.
        """
        limit = math.ceil(math.log2(len(rows))) + 2 if len(rows) > 1 else 1
        streak = 1  # the refusal of the whole call
        took = False
        unsettled: list = []
        stack: list = []

        def refused(part: list) -> None:
            if len(part) > 1:
                half = len(part) // 2
                stack.extend((part[half:], part[:half]))
            elif self._refused_alone(part[0]):
                self.log(f"zomg-receiver: PostHog refused an event alone {self.confirm} times while taking others; "
                         f"dropped it: {batch_shape([part[0][1]])}")
                self._settle(part, "dropped", False)
            else:
                unsettled.extend(part)

        refused(rows)
        while stack:
            part = stack.pop()
            if streak >= limit:
                unsettled.extend(part)
                continue
            outcome = self._post(part)
            if outcome.accepted:
                self._settle(part, "forwarded", False)
                took = True
                streak = 0
            elif outcome.status in REFUSED:
                streak += 1
                refused(part)
            else:  # PostHog is in trouble of another kind: all the rest waits for the retry
                unsettled.extend(part)
                streak = limit
        unsettled.sort()
        return unsettled, took

    def _refused_alone(self, event: tuple) -> bool:
        """Count a refusal of this event alone; True once it is confirmed (see the module docstring)."""
        line = event[1]
        refusals, witnessed = self._suspects.get(line, (0, -1))
        if refusals == 0 or self._accepted_calls > witnessed:
            refusals += 1
        if refusals >= self.confirm:
            self._suspects.pop(line, None)
            return True
        self._suspects[line] = (refusals, self._accepted_calls)
        return False

    def _wait_and_probe(self, rows: list) -> list:
        """Wait until the whole call is due again, probing with one event meanwhile; the call's rows.

        A probe that PostHog takes ends the wait (PostHog is back). It is the oldest
        unclaimed event of the spool, or else one of the call's own.
        """
        while True:
            with self._cond:
                now = self.clock()
                if self._closing and now >= self._deadline:
                    return rows
                if now >= self._retry_at:
                    return rows
                wake = min(self._retry_at, self._next_probe)
                if self._closing:
                    wake = min(wake, self._deadline)
                if now < wake:
                    self._cond.wait(wake - now)
                    continue
                self._schedule_probe(now)
            # A whole batch: its other events join the call, up to the call's bound.
            claimed = self.spool.claim(1) if len(rows) < self.batch_events else []
            rows = sorted(rows + claimed)
            probe = [claimed[0] if claimed else rows[int(self.jitter() * len(rows)) % len(rows)]]
            outcome = self._post(probe)
            if outcome.accepted:
                self._settle(probe, "forwarded", False)
                rows = [event for event in rows if event != probe[0]]
                self._recovered()
                return rows

    def _schedule_probe(self, now: float) -> None:
        self._next_probe = now + self.probe_seconds * (0.5 + 0.5 * self.jitter())

    def _failed(self, outcome: object, attempt: int) -> None:
        status = outcome.status
        delay = protocol.backoff(attempt + 1, self.backoff, self.backoff_cap)
        # Equal jitter: the workers of one receiver (and the receivers behind one balancer) spread out.
        delay = protocol.honour_retry_after(delay / 2 + delay / 2 * self.jitter(), outcome.retry_after, MAX_RETRY_AFTER)
        if status in TOKEN_PROBLEM:
            kind = (f"PostHog refuses the project token (HTTP {status}): check POSTHOG_PROJECT_API_KEY; "
                    "accepted events are kept and retried")
        elif status in REFUSED:
            kind = (f"PostHog refuses every call (HTTP {status}), even single events: a proxy or an incident "
                    "more likely than bad events; accepted events are kept and retried")
        elif status is None or status in RETRYABLE:
            kind = f"PostHog unavailable ({outcome.problem}); accepted events are kept and retried"
        else:
            kind = (f"PostHog answers HTTP {status} at {self.url}: check POSTHOG_HOST; "
                    "accepted events are kept and retried")
        with self._cond:
            now = self.clock()
            if self._failing_since is None:
                self._failing_since = now
            self._retry_at = now + delay
            if self._next_probe <= now:
                self._schedule_probe(now)
            report = kind.split(" (")[0] if status is None or status in RETRYABLE else kind
            if report != self._reported:
                self._reported = report
                self.log(f"zomg-receiver: {kind}")

    def _recovered(self) -> None:
        with self._cond:
            if self._failing_since is not None:
                outage = self.clock() - self._failing_since
                self.log(f"zomg-receiver: PostHog accepts events again after {outage:.0f} s")
            self._failing_since = None
            self._reported = None
            self._retry_at = 0.0
            self._next_probe = 0.0

    def _settle(self, events: list, counter: str, unknown: bool) -> None:
        if unknown:  # counted first: once settled, a reader may see the spool empty and read the counters
            self.spool.count("duplicated", len(events))
        self.spool.settle(events, counter)
        self.spool.checkpoint()
        if self._suspects:  # rarely any: no need to hash every line
            for _, line in events:
                self._suspects.pop(line, None)
        with self._cond:
            self._cond.notify_all()
