"""The forwarder against a fake PostHog that is slow, hung, failing, cut off or trickling.

What a user of the receiver notices: the answers clients get (202 at once,
503 with Retry-After under back-pressure) and the events PostHog ends up
with. Waits are on conditions with generous bounds, never on durations; the
forwarder's clock and jitter are injected where a test needs to say when.
"""
from __future__ import annotations

import json
import threading

import pytest

from tests.support.events import cli_event
from tests.support.servers import wait_until
from tests.support.wsgi import call_app
from zomg.telemetry import schema

NEVER = 1e9  # an interval no test waits out: calls go when a batch is full, flushed or drained


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def send(forwarded, count: int = 1):
    """POST one batch of ``count`` new events; (the response, their event ids)."""
    events = [cli_event() for _ in range(count)]
    return call_app(forwarded.app, schema.encode_batch(events)), [e["event_id"] for e in events]


def test_each_uuid_arrives_once_from_many_concurrent_clients(forwarding, fake_posthog):
    forwarded = forwarding()
    fake_posthog.keep_alive = True
    sent: list = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(20):
            response, ids = send(forwarded, 5)
            assert response.status == 202
            with lock:
                sent.extend(ids)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    forwarded.flush()
    assert sorted(fake_posthog.accepted_uuids()) == sorted(sent)
    assert len(sent) == 800
    assert forwarded.lines == []


def test_batches_from_many_requests_merge_into_one_call_bounded_by_count(forwarding, fake_posthog):
    forwarded = forwarding(interval=NEVER, poll_seconds=NEVER, batch_events=50)
    sent = []
    for _ in range(10):
        response, ids = send(forwarded, 5)
        assert response.status == 202
        sent += ids
    assert fake_posthog.wait_for_requests(1)  # the tenth batch filled a call
    forwarded.flush()
    [request] = fake_posthog.requests
    assert [e["uuid"] for e in json.loads(request["body"])["batch"]] == sent


def test_a_call_never_exceeds_the_count_bound(forwarding, fake_posthog):
    forwarded = forwarding(interval=NEVER, poll_seconds=NEVER, batch_events=10)
    fake_posthog.hang = True
    for _ in range(7):
        assert send(forwarded, 3)[0].status == 202
    fake_posthog.release()
    forwarded.flush()
    sizes = [len(json.loads(r["body"])["batch"]) for r in fake_posthog.requests if r["status"] == 200]
    assert sum(sizes) == 21 and max(sizes) <= 10


def test_answers_do_not_wait_for_a_hung_posthog(forwarding, fake_posthog):
    forwarded = forwarding()
    fake_posthog.hang = True
    sent = []
    for _ in range(5):
        response, ids = send(forwarded)
        assert (response.status, response.json()) == (202, {"accepted": 1})
        sent += ids
    assert call_app(forwarded.app, b"", method="GET", path="/healthz").status == 200
    fake_posthog.release()
    forwarded.flush()
    assert sorted(set(fake_posthog.accepted_uuids())) == sorted(sent)


def test_a_slow_posthog_is_waited_for_one_call_per_batch(forwarding, fake_posthog):
    forwarded = forwarding(timeout=30.0, deadline=60.0)
    fake_posthog.delay = 1.0
    _, ids = send(forwarded, 4)
    assert send(forwarded)[0].status == 202  # answered while the call is in flight
    forwarded.flush()
    assert fake_posthog.accepted_uuids()[:4] == ids
    assert len(fake_posthog.requests) <= 2 and forwarded.lines == []


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_temporary_failures_are_retried_with_the_same_uuids_until_accepted(forwarding, fake_posthog, status):
    forwarded = forwarding(probe_seconds=NEVER)  # the whole call's retries, without probes
    fake_posthog.answers = [status, status]
    response, ids = send(forwarded, 3)
    assert response.status == 202
    forwarded.flush()
    assert [r["status"] for r in fake_posthog.requests] == [status, status, 200]
    assert len({r["body"] for r in fake_posthog.requests}) == 1  # the same body, so the same uuids
    assert fake_posthog.accepted_uuids() == ids
    assert sum("unavailable" in line for line in forwarded.lines) == 1  # one line per outage
    assert "accepts events again" in forwarded.lines[-1]


def test_retry_after_from_posthog_is_honoured_and_passed_to_clients(forwarding, fake_posthog):
    clock = Clock()
    forwarded = forwarding(clock=clock, jitter=lambda: 0.0, outage_seconds=0)
    fake_posthog.answers = [503]
    fake_posthog.retry_after = "120"
    _, ids = send(forwarded)
    assert wait_until(lambda: any("unavailable" in line for line in forwarded.lines))
    assert forwarded.forwarder.queued == 1
    # PostHog said 120 s: while that holds, a client is told when to come back.
    clock.now += 1
    refused, refused_ids = send(forwarded)
    assert refused.status == 503 and refused.headers["Retry-After"] == "119"
    clock.now += 200
    forwarded.flush()
    assert fake_posthog.accepted_uuids() == ids
    assert send(forwarded)[0].status == 202  # recovered: accepted again


def test_the_wait_between_tries_of_a_call_is_the_protocol_s_backoff(forwarding, fake_posthog):
    # The formula the CLI backs off by (zomg.telemetry.protocol.backoff); jitter 1.0 takes all of each wait.
    from zomg.telemetry import protocol

    clock = Clock()
    forwarded = forwarding(clock=clock, jitter=lambda: 1.0, outage_seconds=0, backoff=4.0, backoff_cap=100.0,
                           probe_seconds=NEVER)
    fake_posthog.answers = [503, 503]
    _, ids = send(forwarded)
    first, second = protocol.backoff(1, 4.0, 100.0), protocol.backoff(2, 4.0, 100.0)
    assert (first, second) == (4.0, 8.0)
    assert wait_until(lambda: any("unavailable" in line for line in forwarded.lines))
    clock.now += 1  # past the first failure: an outage (outage_seconds 0), clients are told when to come back
    refused, _ = send(forwarded)
    assert refused.status == 503 and refused.headers["Retry-After"] == str(int(first) - 1)
    clock.now += first - 1  # the call is due again
    forwarded.forwarder.flush(0.05)  # wakes the thread
    assert wait_until(lambda: send(forwarded)[0].headers.get("Retry-After") == str(int(second)))
    clock.now += second
    forwarded.flush()
    assert fake_posthog.accepted_uuids() == ids
    assert [r["status"] for r in fake_posthog.requests] == [503, 503, 200]


def test_a_full_queue_is_503_with_retry_after_and_the_resent_events_arrive(forwarding, fake_posthog):
    forwarded = forwarding(max_events=100)
    fake_posthog.hang = True
    first, first_ids = send(forwarded, 100)
    assert first.status == 202
    refused, refused_ids = send(forwarded, 1)
    assert refused.status == 503
    assert int(refused.headers["Retry-After"]) >= 1
    assert "retry" in refused.json()["error"]
    fake_posthog.release()
    forwarded.flush()
    # The client kept the refused batch and sends it again.
    body = schema.encode_batch([cli_event(event_id=refused_ids[0])])
    assert call_app(forwarded.app, body).status == 202
    forwarded.flush()
    accepted = fake_posthog.accepted_uuids()
    assert sorted(accepted) == sorted(first_ids + refused_ids)
    assert len(accepted) == len(set(accepted))


def test_the_queue_is_bounded_in_bytes_too(forwarding, fake_posthog):
    forwarded = forwarding(max_bytes=2000)
    fake_posthog.hang = True
    answers = [send(forwarded, 1)[0].status for _ in range(10)]
    assert answers[0] == 202 and 503 in answers
    assert answers.index(503) == answers.count(202)  # once full, it stays full while PostHog hangs


def test_a_long_outage_refuses_new_batches_before_the_queue_fills(forwarding, fake_posthog):
    clock = Clock()
    forwarded = forwarding(clock=clock, outage_seconds=30, backoff=5, jitter=lambda: 1.0)
    fake_posthog.status = 503
    _, ids = send(forwarded)
    assert wait_until(lambda: any("unavailable" in line for line in forwarded.lines))
    clock.now += 10
    assert send(forwarded)[0].status == 202  # failing for 10 s: still kept
    clock.now += 30
    refused = send(forwarded)[0]
    assert refused.status == 503 and int(refused.headers["Retry-After"]) >= 1
    fake_posthog.status = 200
    clock.now += 100
    forwarded.flush()
    assert ids[0] in fake_posthog.accepted_uuids()


@pytest.mark.parametrize("status", [401, 403])
def test_a_token_refusal_keeps_the_queue_and_logs_one_clear_line(forwarding, fake_posthog, status):
    forwarded = forwarding()
    fake_posthog.status = status
    _, ids = send(forwarded, 2)
    assert fake_posthog.wait_for_requests(4)
    token_lines = [line for line in forwarded.lines if "POSTHOG_PROJECT_API_KEY" in line]
    assert len(token_lines) == 1 and f"HTTP {status}" in token_lines[0]
    assert forwarded.forwarder.queued == 2
    fake_posthog.status = 200
    forwarded.flush()
    assert sorted(fake_posthog.accepted_uuids()) == sorted(ids)


def test_a_wrong_host_path_keeps_the_queue_and_names_the_setting(forwarding, fake_posthog):
    forwarded = forwarding()
    fake_posthog.status = 404
    send(forwarded)
    assert fake_posthog.wait_for_requests(3)
    assert sum("POSTHOG_HOST" in line for line in forwarded.lines) == 1
    fake_posthog.status = 200
    forwarded.flush()


def test_a_400_isolates_the_refused_event_drops_only_it_and_logs_no_value(forwarding, fake_posthog):
    forwarded = forwarding(interval=NEVER)
    events = [cli_event() for _ in range(5)]
    bad = events[3]
    fake_posthog.refuse = bad["event_id"]
    assert call_app(forwarded.app, schema.encode_batch(events)).status == 202
    sent = [e["event_id"] for e in events if e is not bad]
    # Refused alone, it is dropped only once PostHog took other calls between its refusals:
    # other clients' batches keep coming, as they do.
    for _ in range(50):
        if forwarded.spool.counters().get("dropped"):
            break
        response, ids = send(forwarded, 2)
        assert response.status == 202
        sent += ids
        assert fake_posthog.wait_for_uuids(ids)
    forwarded.flush()
    assert sorted(fake_posthog.accepted_uuids()) == sorted(sent)
    assert forwarded.spool.counters()["dropped"] == 1
    [line] = [line for line in forwarded.lines if "dropped" in line]
    assert "1 x cli.command [event,schema_version,event_id" in line
    for value in (bad["event_id"], bad["installation_id"], "box", "--json", "linux"):
        assert value not in line


def test_a_posthog_that_refuses_every_call_for_a_while_gets_nothing_dropped(forwarding, fake_posthog):
    # A proxy, a WAF or an incident answering 400 to everything, however the calls are split.
    forwarded = forwarding()
    fake_posthog.status = 400
    sent = []
    for _ in range(6):
        response, ids = send(forwarded, 7)
        assert response.status == 202
        sent += ids
    assert fake_posthog.wait_for_requests(40)  # splits, retries and probes, all refused
    assert forwarded.forwarder.queued == len(sent)
    assert sum("refuses every call (HTTP 400)" in line for line in forwarded.lines) == 1
    fake_posthog.status = 200
    forwarded.flush()
    assert sorted(set(fake_posthog.accepted_uuids())) == sorted(sent)
    assert forwarded.spool.counters().get("dropped", 0) == 0


def test_a_probe_notices_posthog_is_back_long_before_its_retry_after(forwarding, fake_posthog):
    forwarded = forwarding(probe_seconds=0.05)
    fake_posthog.status = 503
    fake_posthog.retry_after = "3600"
    _, ids = send(forwarded, 5)
    assert fake_posthog.wait_for_requests(3)  # the call, then probes of one event
    assert all(len(json.loads(r["body"])["batch"]) == 1 for r in fake_posthog.requests[1:])
    fake_posthog.status = 200
    # Well before the hour PostHog asked for: the probe is taken and the rest goes at once.
    assert fake_posthog.wait_for_uuids(ids)
    assert "accepts events again" in forwarded.lines[-1]
    assert send(forwarded)[0].status == 202


def test_a_connection_closed_mid_answer_is_retried_and_nothing_is_lost(forwarding, fake_posthog):
    forwarded = forwarding()
    fake_posthog.close_mid_answer = True
    _, ids = send(forwarded, 2)
    assert fake_posthog.wait_for_requests(2)
    fake_posthog.close_mid_answer = False
    forwarded.flush()
    assert sorted(fake_posthog.accepted_uuids()) == sorted(ids)
    # Each event kept its uuid in every try; the call may have been sent again whole or probed one by one.
    tried = {event["uuid"] for r in fake_posthog.requests for event in json.loads(r["body"])["batch"]}
    assert tried == set(ids)
    assert forwarded.spool.counters()["duplicated"] >= 1  # no answer: PostHog may hold them twice


def test_a_trickling_answer_is_cut_at_the_attempts_deadline(forwarding, fake_posthog):
    forwarded = forwarding(timeout=5.0, deadline=0.5)
    fake_posthog.trickle = True
    fake_posthog.delay = 0.2  # a byte every 0.2 s: no single read times out
    _, ids = send(forwarded)
    assert fake_posthog.wait_for_requests(2)  # the first attempt was given up, not waited out
    assert send(forwarded)[0].status == 202
    fake_posthog.release()
    forwarded.flush()
    assert set(ids) <= set(fake_posthog.accepted_uuids())
    assert any("no whole answer" in line for line in forwarded.lines)


def test_close_drains_the_queue_before_returning(forwarding, fake_posthog):
    forwarded = forwarding(interval=NEVER)
    sent = []
    for _ in range(3):
        sent += send(forwarded, 4)[1]
    assert fake_posthog.count == 0  # nothing was due yet
    assert forwarded.forwarder.close(30) == 0
    assert sorted(fake_posthog.accepted_uuids()) == sorted(sent)
    refused = send(forwarded)[0]
    assert refused.status == 503 and refused.headers["Retry-After"] == "1"


def test_close_with_posthog_down_stops_at_its_deadline_and_leaves_the_events_on_disk(forwarding, fake_posthog):
    forwarded = forwarding(interval=NEVER, backoff=1000, backoff_cap=1000)
    fake_posthog.status = 503
    _, ids = send(forwarded, 3)
    assert forwarded.forwarder.close(1) == 3
    assert forwarded.lines[-1] == "zomg-receiver: 3 accepted events left in the spool for the next start"
    # The next process on the same spool sends them.
    fake_posthog.status = 200
    again = forwarding(directory=forwarded.spool.directory)
    again.forwarder.start()
    again.flush()
    assert set(ids) <= set(fake_posthog.accepted_uuids())


def test_probes_during_a_long_outage_never_grow_a_call_past_its_bound(forwarding, fake_posthog):
    forwarded = forwarding(batch_events=10, probe_seconds=0.01)
    fake_posthog.status = 503
    fake_posthog.retry_after = "3600"
    sent = []
    for _ in range(8):
        response, ids = send(forwarded, 5)
        assert response.status == 202
        sent += ids
    assert fake_posthog.wait_for_requests(30)  # each probe takes a batch from the spool while it can
    fake_posthog.status = 200
    forwarded.flush()
    assert sorted(set(fake_posthog.accepted_uuids())) == sorted(sent)
    assert max(len(json.loads(r["body"])["batch"]) for r in fake_posthog.requests) <= 10


def test_a_spool_that_cannot_be_written_refuses_with_503_and_says_so_once(forwarding, fake_posthog, monkeypatch):
    import sqlite3

    forwarded = forwarding()

    def full_disk() -> None:
        raise sqlite3.OperationalError("database or disk is full")

    # A full disk cannot be made here (the tests may run as root, on a big disk): the spool's
    # connection for appends fails to open as SQLite fails on one.
    monkeypatch.setattr(forwarded.spool, "_appender", full_disk)
    answers = [send(forwarded)[0] for _ in range(3)]
    assert [answer.status for answer in answers] == [503, 503, 503]
    assert "spool cannot be written (database or disk is full)" in answers[0].json()["error"]
    assert sum("spool cannot be written" in line for line in forwarded.lines) == 1
    assert forwarded.spool.counters()["refused_error"] == 3
    monkeypatch.undo()
    response, ids = send(forwarded)
    assert response.status == 202
    assert forwarded.lines[-1] == "zomg-receiver: the spool takes events again"
    forwarded.flush()
    assert fake_posthog.accepted_uuids() == ids
