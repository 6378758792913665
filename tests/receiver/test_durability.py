"""No event answered 202 is lost: stops, outages, kills, refusals and plain WSGI hosts, counted by uuid.

Each test is a row of the table in docs/receiver.md ("What survives what"):
the shipped gunicorn configuration (or a plain Python process) against the
PostHog stand-in, every uuid answered 202 looked for in what the stand-in
took, after a restart on the same spool where the row stops or kills the
receiver. Outages are short because the tests shorten the receiver's waits
through its settings; every wait is on a condition with a generous bound.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from tests.receiver.test_gunicorn import forwarding_env, shipped
from tests.support.events import cli_event
from tests.support.servers import clean_env, post, wait_until
from zomg.telemetry import schema

FAST = {"ZOMG_RECEIVER_BATCH_INTERVAL": "0.05", "ZOMG_RECEIVER_PROBE_SECONDS": "0.1",
        "ZOMG_RECEIVER_POLL_SECONDS": "0.2", "ZOMG_RECEIVER_BACKOFF_CAP": "0.5"}


def receiver(serve, fake_posthog, tmp_path, *args: str, **extra: str):
    env = forwarding_env(fake_posthog, ZOMG_RECEIVER_SPOOL_DIR=str(tmp_path / "spool"), **{**FAST, **extra})
    return shipped(serve, *args, **env)


def send(server, batches: int, size: int = 5) -> list:
    """POST ``batches`` new batches; the uuids of those answered 202 (all of them, the test asserts)."""
    accepted = []
    for _ in range(batches):
        events = [cli_event() for _ in range(size)]
        assert post(server.url + "/v1/events", schema.encode_batch(events)) == (202, {"accepted": size})
        accepted += [event["event_id"] for event in events]
    return accepted


def stop(server, sig: int = signal.SIGTERM) -> None:
    server.proc.send_signal(sig)
    assert server.proc.wait(120) == 0


def missing(fake_posthog, uuids: list) -> set:
    return set(uuids) - set(fake_posthog.accepted_uuids())


@pytest.mark.parametrize("probes", ["noticed in the drain", "not before the deadline"])
def test_a_stop_after_a_long_retry_after_leaves_what_it_could_not_send_for_the_next_start(
        serve, fake_posthog, tmp_path, probes):
    # Row 1: PostHog answered 503 with Retry-After: 60, then recovered; the receiver is stopped.
    slow_probes = {"ZOMG_RECEIVER_PROBE_SECONDS": "3600"} if probes == "not before the deadline" else {}
    fake_posthog.status = 503
    fake_posthog.retry_after = "60"
    # One worker: with two, the second may hold no events and never call PostHog, so the
    # wait for its 503 would depend on how the clients' batches were spread.
    server = receiver(serve, fake_posthog, tmp_path, "--graceful-timeout", "4", "--workers", "1", **slow_probes)
    sent = send(server, 20)
    assert fake_posthog.wait_for_requests(1)
    fake_posthog.status = 200
    stop(server)
    if probes == "noticed in the drain":
        assert not missing(fake_posthog, sent)  # the drain did not give up while it had time
        return
    assert missing(fake_posthog, sent)  # PostHog's hour was not waited out by the stop...
    server = receiver(serve, fake_posthog, tmp_path)  # ...and the next start sends what it left
    assert fake_posthog.wait_for_uuids(sent)
    stop(server)


def test_a_stop_during_an_outage_loses_nothing(serve, fake_posthog, tmp_path):
    # Row 2: SIGTERM while PostHog is down; counted by uuid after a restart.
    fake_posthog.status = 503
    server = receiver(serve, fake_posthog, tmp_path, "--graceful-timeout", "4")
    sent = send(server, 30)
    assert fake_posthog.wait_for_requests(3)
    stop(server)
    assert missing(fake_posthog, sent) == set(sent)
    assert "accepted events left in the spool for the next start" in "".join(server.late_stderr)
    fake_posthog.status = 200
    server = receiver(serve, fake_posthog, tmp_path)
    assert fake_posthog.wait_for_uuids(sent)
    stop(server)


def worker_pids(server) -> list:
    lines = "\n".join(server.startup) + "".join(server.late_stderr)
    return [int(line.rsplit(" ", 1)[1]) for line in lines.splitlines() if "Booting worker with pid:" in line]


def test_a_worker_killed_under_load_loses_nothing(serve, fake_posthog, tmp_path):
    # Row 3: SIGKILL of a worker while clients post and calls are in flight.
    fake_posthog.delay = 0.2
    fake_posthog.keep_alive = True
    server = receiver(serve, fake_posthog, tmp_path, "--workers", "2")
    assert wait_until(lambda: len(worker_pids(server)) >= 2)
    sent: list = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(25):
            mine = send_once(server)
            with lock:
                sent.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    assert fake_posthog.wait_for_requests(2)
    victim = worker_pids(server)[0]
    os.kill(victim, signal.SIGKILL)
    for thread in threads:
        thread.join()
    assert sent
    # The worker gunicorn starts in its place, or the other one, sends what the victim held.
    assert fake_posthog.wait_for_uuids(sent), len(missing(fake_posthog, sent))
    stop(server)


def send_once(server) -> list:
    """One batch, sent again if a worker died with the connection (as the CLI keeps and re-sends)."""
    import urllib.error

    events = [cli_event() for _ in range(10)]
    for _ in range(5):
        try:
            status, _ = post(server.url + "/v1/events", schema.encode_batch(events))
        except (urllib.error.URLError, ConnectionError):
            continue
        return [event["event_id"] for event in events] if status == 202 else []
    return []


def test_posthog_refusing_every_call_for_a_while_gets_nothing_dropped(serve, fake_posthog, tmp_path):
    # Row 4: every call answered 400 (a proxy, a WAF, an incident), however it is split.
    fake_posthog.status = 400
    server = receiver(serve, fake_posthog, tmp_path)
    sent = send(server, 20)
    assert fake_posthog.wait_for_requests(60)  # splits, retries and probes, every one refused
    fake_posthog.status = 200
    assert fake_posthog.wait_for_uuids(sent)
    stop(server)
    logged = "".join(server.late_stderr)
    assert "refuses every call (HTTP 400)" in logged
    assert "dropped" not in logged


PLAIN_HOST = """
import io, sys
from zomg.receiver import app
app.sink.exit_drain = float(sys.argv[1])
body = sys.stdin.buffer.read()
environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/events", "CONTENT_LENGTH": str(len(body)),
           "wsgi.input": io.BytesIO(body)}
app(environ, lambda status, headers: print(status, flush=True))
"""

PLAIN_RESTART = """
from zomg.receiver import app
assert app.sink.flush(60)
"""


@pytest.mark.parametrize("posthog", ["up", "down at exit"])
def test_a_plain_wsgi_host_delivers_at_exit_or_at_its_next_start(fake_posthog, tmp_path, posthog):
    # Row 5: `from zomg.receiver import app` in a plain process, one batch answered 202, a normal exit.
    env = clean_env(**forwarding_env(fake_posthog, ZOMG_RECEIVER_SPOOL_DIR=str(tmp_path / "spool"), **FAST))
    if posthog == "down at exit":
        fake_posthog.status = 503
    events = [cli_event() for _ in range(3)]
    sent = [event["event_id"] for event in events]
    # With PostHog up the drain ends as soon as all is sent: its budget is generous for a
    # loaded machine (2 s was not always enough); down, it is spent whole, so it is short.
    drain = "30" if posthog == "up" else "2"
    done = subprocess.run([sys.executable, "-c", PLAIN_HOST, drain], input=schema.encode_batch(events), env=env,
                          cwd=str(tmp_path), capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"202 ")
    if posthog == "up":
        assert not missing(fake_posthog, sent)  # drained before the process ended
        return
    assert b"3 accepted events left in the spool for the next start" in done.stderr
    fake_posthog.status = 200
    again = subprocess.run([sys.executable, "-c", PLAIN_RESTART], env=env, cwd=str(tmp_path), capture_output=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr
    assert not missing(fake_posthog, sent)


def test_recovery_is_noticed_within_seconds_not_after_the_backoff(serve, fake_posthog, tmp_path):
    # Row 8: after an outage, batches are refused until PostHog is back, and no longer.
    fake_posthog.status = 503
    fake_posthog.retry_after = "3600"  # the whole call would wait an hour: only a probe can notice
    server = receiver(serve, fake_posthog, tmp_path, "--workers", "1", ZOMG_RECEIVER_OUTAGE_SECONDS="0")
    sent = send(server, 1)
    assert fake_posthog.wait_for_requests(2)
    body = schema.encode_batch([cli_event()])
    status, answer = post(server.url + "/v1/events", body)
    assert status == 503 and "PostHog is failing" in answer["error"]
    fake_posthog.status = 200
    assert fake_posthog.wait_for_uuids(sent)
    assert wait_until(lambda: post(server.url + "/v1/events", schema.encode_batch([cli_event()]))[0] == 202)
    stop(server)
