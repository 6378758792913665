"""Delivery against loopback endpoints: up, refused, never answering, slow, failing then recovering, concurrent.

In-process runs inject the due rule, backoff and clock (see the ``cli``
fixture); the subprocess runs use the real ones. Every check is about what a
user sees (exit code, stdout, stderr) and what the endpoint finally holds.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.cli import notice_seen, run, spooled, state_dir
from tests.support.servers import Blackhole, Capture, refused_url

pytestmark = pytest.mark.telemetry_on


def _backoff() -> dict:
    with open(os.path.join(state_dir(), "backoff.json"), encoding="utf-8") as f:
        return json.load(f)


def _same_as_off(cli, monkeypatch, argv):
    """Run ``argv`` with telemetry on and off; the user-visible result must be identical."""
    r = cli(*argv)
    cli.drain()
    monkeypatch.setenv("ZOMG_TELEMETRY", "off")
    quiet = cli(*argv)
    monkeypatch.delenv("ZOMG_TELEMETRY")
    assert (r.code, r.out, r.err) == (quiet.code, quiet.out, quiet.err)
    return r


def test_up_sends_due_events_as_one_batch_with_neutral_headers(cli, capture, monkeypatch):
    notice_seen()
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    cli.bounds.batch_size = 3
    for _ in range(3):
        cli("box", "list")
    cli.drain()
    assert capture.requests == []
    cli("box", "show", "nope")  # due at start: sends the three
    cli.drain()
    # The three go in one batch; the run's own event, appended meanwhile, may join
    # it or follow in a second one from the same send.
    requests = capture.requests
    assert 1 <= len(requests) <= 2
    from zomg.telemetry import schema

    sent = []
    for request in requests:
        assert request["path"] == "/v1/events"
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"] == "zomg-telemetry"
        assert "cookie" not in headers and "authorization" not in headers
        events = schema.validate_batch(json.loads(request["body"]))
        assert request["body"] == schema.encode_batch(events)
        sent.append(events)
    assert [e["subcommand"] for e in sent[0]][:3] == ["list"] * 3
    assert [e["subcommand"] for batch in sent for e in batch] + [e["subcommand"] for e in spooled()] == [
        "list", "list", "list", "show"]


# Runs zomg in a fresh interpreter and prints the telemetry modules it loaded.
_LOADED = r"""
import json, sys
from zomg.cli import main
code = main(sys.argv[1:])
sys.stdout.write("\n" + json.dumps(sorted(m for m in sys.modules if m.startswith("zomg.telemetry"))))
"""


def test_a_recorded_run_loads_only_what_recording_needs(capture, monkeypatch):
    """docs/architecture.md: every module on this path costs every recorded command; sending, the schema
    and the editors load only where they are needed."""
    notice_seen()
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    proc = subprocess.run([sys.executable, "-c", _LOADED, "box", "list"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == [
        "zomg.telemetry", "zomg.telemetry.event", "zomg.telemetry.files", "zomg.telemetry.policy"]
    assert [e["command"] for e in spooled()] == ["box"]


@pytest.mark.parametrize("kind", ["refused", "blackhole", "dns"])
def test_unreachable_endpoints_change_nothing_and_keep_the_events(cli, capture, monkeypatch, kind):
    notice_seen()
    cli.sending.timeout = 0.3
    cli.timing.grace = 0.05
    hole = Blackhole() if kind == "blackhole" else None
    url = {"refused": refused_url(), "blackhole": hole and hole.url,
           "dns": "https://telemetry.invalid/v1/events"}[kind]
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", url)
    if kind == "dns":  # resolve nothing for real: the name fails as an unknown host would
        import socket

        real_getaddrinfo = socket.getaddrinfo

        def no_dns(host, *args, **kwargs):
            if host == "telemetry.invalid":
                raise socket.gaierror(-2, "Name or service not known")
            return real_getaddrinfo(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    try:
        cli("box", "list")
        cli.drain()
        for argv in (["box", "list"], ["box", "show", "nope"], ["box", "list", "--json"]):
            _same_as_off(cli, monkeypatch, argv)
        cli.drain()
    finally:
        if hole:
            hole.close()
    old_ids = {e["event_id"] for e in spooled()}
    assert len(old_ids) == 4
    failures = _backoff()["failures"]
    assert failures == 1  # one attempt, then the backoff held every later run off

    # Another endpoint is configured: the events recorded for the unreachable one are not its to take.
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    cli.bounds.batch_size = 2
    cli.clock.advance(cli.bounds.backoff(failures))
    cli("box", "list")
    cli("box", "list")
    cli("box", "list")
    cli.drain()
    assert len(capture.unique_ids()) == len(capture.events()) >= 2  # the third may go with the first two
    assert not capture.unique_ids() & old_ids
    info = json.loads(cli("telemetry", "status", "--json").out)
    assert (len(capture.events()) + info["unsent_events"], info["unsent_events_other_endpoints"]) == (3, 4)
    assert old_ids <= {e["event_id"] for e in spooled()}


def test_failures_back_off_doubling_to_the_cap_then_recover(cli, monkeypatch):
    notice_seen()
    server = Capture(statuses=[500, 503, 502, 500, 500, 500])
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", server.url)
    cli.bounds.backoff_cap = 30
    try:
        cli("box", "list")
        cli("box", "list")  # the first attempt: 500
        cli.drain()
        assert len(server.requests) == 1
        waits = []
        for _ in range(5):
            before = len(server.requests)
            cli("box", "list")  # still backing off: no attempt
            cli.drain()
            assert len(server.requests) == before
            state = _backoff()
            waits.append(state["retry_at"] - cli.clock())
            cli.clock.advance(waits[-1])
            cli("box", "list")  # backoff over: one attempt, which fails again
            cli.drain()
            assert len(server.requests) == before + 1
        assert waits == [5, 10, 20, 30, 30]
        assert server.events() == []
        cli.clock.advance(_backoff()["retry_at"] - cli.clock())
        cli("box", "list")  # the seventh attempt gets 200
        cli.drain()
        recorded = 2 + 5 * 2 + 1
        assert len(server.unique_ids()) + len(spooled()) == recorded
        assert len(server.events()) == len(server.unique_ids())
        assert not os.path.exists(os.path.join(state_dir(), "backoff.json"))
    finally:
        server.close()


@pytest.mark.parametrize("status,kept", [(400, False), (413, False), (422, False), (404, True), (410, True),
                                         (405, True), (401, True), (403, True), (408, True), (429, True),
                                         (500, True), (503, True), (302, True), (301, True)])
def test_rejected_batches_are_dropped_and_transient_ones_kept(cli, monkeypatch, status, kept):
    notice_seen()
    server = Capture(statuses=[status], headers={"Location": "http://127.0.0.1:9/elsewhere"})
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", server.url)
    try:
        cli("box", "list")
        cli("box", "list")
        cli.drain()
        # After a rejection the sender goes on with what was spooled meanwhile; after a failure it stops.
        assert len(server.requests) == 1 if kept else len(server.requests) >= 1
        assert server.requests[0]["status"] == status
        first = json.loads(server.requests[0]["body"])["events"][0]["event_id"]
        assert (first in {e["event_id"] for e in spooled()}) is kept
    finally:
        server.close()


def test_retry_after_is_honoured_as_a_minimum(cli, monkeypatch):
    notice_seen()
    server = Capture(statuses=[429], headers={"Retry-After": "120"})
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", server.url)
    try:
        cli("box", "list")
        cli("box", "list")
        cli.drain()
        assert _backoff()["retry_at"] - cli.clock() == 120
    finally:
        server.close()


def test_a_slow_endpoint_never_loses_or_doubles_an_event(cli, monkeypatch):
    """The command stops waiting after the grace; the send finishes behind it and is settled once."""
    notice_seen()
    server = Capture(delay=0.3)
    cli.timing.grace = 0.01
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", server.url)
    try:
        for _ in range(5):
            _same_as_off(cli, monkeypatch, ["box", "list"])
        cli.drain()
        from zomg.telemetry import flush

        flush(bounds=cli.bounds, sending=cli.sending)
        assert len(server.events()) == len(server.unique_ids()) == 5
        assert spooled() == []
    finally:
        server.close()


def test_an_unusable_endpoint_records_and_sends_nothing(cli, monkeypatch, tmp_path):
    notice_seen()
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", "http://telemetry.example.com/v1/events")
    for _ in range(3):
        _same_as_off(cli, monkeypatch, ["box", "list"])
    assert spooled() == []
    assert cli.sessions == []


# --- real processes, real thresholds ------------------------------------------------


def test_subprocesses_with_a_slow_endpoint_resend_what_was_not_confirmed(monkeypatch):
    """The process exits after the grace while the endpoint still holds the request: nothing is lost,
    and what arrives twice is recognisable by its event_id."""
    server = Capture(delay=1.0)
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", server.url)
    try:
        notice_seen()
        quiet = run("box", "list", env={"ZOMG_TELEMETRY": "off"})
        for _ in range(11):
            r = run("box", "list")
            assert (r.returncode, r.stdout, r.stderr) == (quiet.returncode, quiet.stdout, quiet.stderr)
        from zomg.telemetry import flush

        server.delay = 0
        flush()
        assert len(server.unique_ids()) == 11
        assert spooled() == []
    finally:
        server.close()


def test_concurrent_invocations_lose_nothing_and_never_send_one_event_twice_at_once(capture, monkeypatch):
    notice_seen()
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    procs = [subprocess.Popen([sys.executable, "-m", "zomg", "box", "list"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(30)]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and b"zomg-telemetry" not in err and b"Traceback" not in err
    from zomg.telemetry import flush

    flush()
    assert len(capture.unique_ids()) == 30
    assert spooled() == []
    # No event was in two requests at the same time.
    requests = capture.requests
    for i, a in enumerate(requests):
        ids_a = {e["event_id"] for e in json.loads(a["body"])["events"]}
        for b in requests[i + 1:]:
            if a["start"] < b["end"] and b["start"] < a["end"]:
                ids_b = {e["event_id"] for e in json.loads(b["body"])["events"]}
                assert not ids_a & ids_b
