"""What an operator of the receiver sees under real gunicorn: readiness, metrics, reloads, error answers, log lines.

Each test starts the shipped configuration (tests/receiver/test_gunicorn.py's
``shipped``) against a fake PostHog. Waits are on conditions with generous
bounds, never on durations.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

from tests.receiver.test_gunicorn import boots, connect, forwarding_env, post_as_the_cli_does, read_all, shipped
from tests.support.events import cli_event
from tests.support.servers import LOG_LINE, post, processes, wait_until
from zomg.telemetry import schema


def fetch(url: str) -> tuple:
    """GET with urllib, proxies off: (status, headers, body); asked again when a recycled worker drops it."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for attempt in range(4):
        try:
            with opener.open(url, timeout=60) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, dict(exc.headers.items()), exc.read()
        except (urllib.error.URLError, ConnectionError):
            if attempt == 3:
                raise
    raise AssertionError("unreachable")


def metrics(url: str) -> dict:
    """/metrics as {series: value}, checked to be Prometheus' text format."""
    status, headers, body = fetch(url + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    values = {}
    for line in body.decode("ascii").splitlines():
        if line.startswith("#"):
            assert re.fullmatch(r"# (HELP|TYPE) zomg_receiver_\w+ .+", line), line
            continue
        series, value = line.rsplit(" ", 1)
        values[series] = float(value)
    return values


def readiness(url: str) -> int:
    return fetch(url + "/readyz")[0]


def test_readyz_and_metrics_follow_a_posthog_outage_across_all_workers(serve, fake_posthog, tmp_path):
    fake_posthog.status = 503
    env = forwarding_env(fake_posthog, WEB_CONCURRENCY="2", ZOMG_RECEIVER_OUTAGE_SECONDS="0",
                         ZOMG_RECEIVER_BATCH_INTERVAL="0", ZOMG_RECEIVER_METRICS_DIR=str(tmp_path / "metrics"))
    server = shipped(serve, **env)
    assert wait_until(lambda: metrics(server.url)["zomg_receiver_workers"] == 2)  # both booted and publishing
    assert readiness(server.url) == 200
    accepted: list = []
    refused = 0
    seen = []

    def outage_seen() -> bool:
        nonlocal refused
        if seen:
            return True
        events = [cli_event(), cli_event()]
        status, _ = post(server.url + "/v1/events", schema.encode_batch(events), timeout=60)
        if status == 202:
            accepted.extend(e["event_id"] for e in events)
        else:
            assert status == 503
            refused += 1
        if readiness(server.url) == 503:
            seen.append(True)
        return bool(seen)

    # Every worker that takes a batch tries PostHog, fails, and from then on refuses.
    assert wait_until(outage_seen), (fake_posthog.count, refused, len(accepted), "".join(server.late_stderr))
    # Whichever worker answers, once the refusing worker has published its refusal (within
    # REFUSAL_CHECK_SECONDS): six answers in a row from the refusing worker itself proved nothing
    # about the other, which had not read it yet (a rare failure of this test).
    def published_refusals() -> list:
        found = []
        for name in os.listdir(tmp_path / "metrics"):
            if name.endswith(".json") and name != "retired.json":
                try:
                    found.append(json.loads((tmp_path / "metrics" / name).read_text()).get("refusing"))
                except (OSError, ValueError):
                    pass
        return found

    assert wait_until(lambda: "outage" in published_refusals()), "".join(server.late_stderr)
    for _ in range(6):
        status, headers, body = fetch(server.url + "/readyz")
        assert (status, json.loads(body)) == (503, {"error": "not ready: outage"})
    assert fetch(server.url + "/healthz")[0] == 200  # liveness only
    # Each worker publishes its figures every second: the other's may lag that much.
    assert wait_until(lambda: metrics(server.url)["zomg_receiver_events_accepted_total"] == len(accepted))
    # The spool's call counters are written about once a second, too.
    assert wait_until(lambda: all(metrics(server.url)[name] >= 1 for name in (
        "zomg_receiver_upstream_failures_total", "zomg_receiver_upstream_call_seconds_count") for _ in range(4)))
    figures = metrics(server.url)
    assert figures['zomg_receiver_refusing{reason="outage"}'] == 1
    assert figures["zomg_receiver_events_forwarded_total"] == 0
    # Every scrape reaches one worker; each answers with the totals of both.
    assert wait_until(lambda: metrics(server.url)["zomg_receiver_pending_events"] == len(accepted))
    assert wait_until(lambda: metrics(server.url)['zomg_receiver_batches_refused_total{reason="outage"}']
                      == refused)
    for _ in range(6):
        figures = metrics(server.url)
        assert figures["zomg_receiver_workers"] == 2
        assert figures["zomg_receiver_events_accepted_total"] == len(accepted)
    assert metrics(server.url)["zomg_receiver_oldest_pending_age_seconds"] > 0

    fake_posthog.status = 200
    assert fake_posthog.wait_for_uuids(accepted)
    assert wait_until(lambda: readiness(server.url) == 200)
    assert wait_until(lambda: metrics(server.url)["zomg_receiver_events_forwarded_total"] == len(accepted))
    figures = metrics(server.url)
    assert figures["zomg_receiver_pending_events"] == 0
    assert figures["zomg_receiver_oldest_pending_age_seconds"] == 0
    assert figures['zomg_receiver_refusing{reason="outage"}'] == 0
    # Nothing of a client in any figure: only names and numbers this receiver defines.
    assert all(re.fullmatch(r'zomg_receiver_\w+(\{\w+="[\w.+]+"\})?', series) for series in figures)


def test_metrics_keep_a_stopped_workers_counts(serve, tmp_path):
    server = shipped(serve, "--max-requests", "2", ZOMG_RECEIVER_OUTPUT=str(tmp_path / "events.jsonl"),
                     WEB_CONCURRENCY="1")
    sent = 0
    for _ in range(5):  # the worker is recycled after two requests, twice
        assert post_as_the_cli_does(server.url + "/v1/events", schema.encode_batch([cli_event()]))[0] == 202
        sent += 1
    assert wait_until(lambda: boots(server) >= 3)
    assert wait_until(lambda: metrics(server.url)["zomg_receiver_events_accepted_total"] == sent)


def live_children(pid: int) -> list:
    return [child for child, (parent, state, _) in processes().items() if parent == pid and state != "Z"]


def test_sighup_keeps_the_default_worker_count(serve, tmp_path):
    from zomg.receiver.gunicorn_conf import default_workers

    workers = default_workers()
    server = shipped(serve, ZOMG_RECEIVER_OUTPUT=str(tmp_path / "events.jsonl"))
    assert wait_until(lambda: len(live_children(server.proc.pid)) == workers)
    before = set(live_children(server.proc.pid))
    server.proc.send_signal(signal.SIGHUP)
    # New workers replace the old ones, as many as before.
    assert wait_until(lambda: not before & set(live_children(server.proc.pid))
                      and len(live_children(server.proc.pid)) == workers, timeout=30), \
        (before, live_children(server.proc.pid))
    assert boots(server) == 2 * workers
    assert post(server.url + "/v1/events", schema.encode_batch([cli_event()]))[0] == 202


CANARY = b"canary-7f3a"
MALFORMED = [
    # (what gunicorn refuses, the status)
    (b"GET /" + CANARY * 200 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),  # request line over 1024 bytes
    (b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, CANARY) for i in range(60)) + b"\r\n", 431),
    (b"GET /healthz HTTP/1.1\r\nX-Big: " + CANARY * 500 + b"\r\n\r\n", 431),
    (b"get /" + CANARY + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: " + CANARY + b"\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nBad Header " + CANARY + b"\r\n\r\n", 400),
    (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + CANARY + b"\r\n\r\n", 501),
]


def check_json_answer(answer: bytes, status: int) -> dict:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status}"), answer[:200]
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    assert headers["content-type"] == "application/json", answer[:200]
    assert int(headers["content-length"]) == len(body)
    assert CANARY not in answer  # nothing of the request is echoed back
    payload = json.loads(body)
    assert set(payload) == {"error"} and payload["error"]
    return payload


def ask(server, request: bytes) -> bytes:
    sock = connect(server)
    try:
        sock.sendall(request)
        return read_all(sock)
    finally:
        sock.close()


def test_gunicorns_own_refusals_are_json_and_echo_nothing(serve, tmp_path):
    server = shipped(serve, ZOMG_RECEIVER_OUTPUT=str(tmp_path / "events.jsonl"))
    for request, status in MALFORMED:
        check_json_answer(ask(server, request), status)
    assert check_json_answer(ask(server, MALFORMED[0][0]), 414) == {"error": "request line: longer than 1024 bytes"}


def test_every_log_line_has_utc_time_pid_and_level(serve, tmp_path):
    from tests.support.servers import refused_url

    env = {"POSTHOG_PROJECT_API_KEY": "phc_test_project_token", "POSTHOG_HOST": refused_url().rsplit("/v1", 1)[0],
           "WEB_CONCURRENCY": "2", "ZOMG_RECEIVER_BATCH_INTERVAL": "0",
           "GUNICORN_CMD_ARGS": "--graceful-timeout 3"}  # PostHog never comes back: a short drain
    server = shipped(serve, **env)
    for _ in range(6):  # each worker that takes one tries PostHog and says it is unavailable
        assert post(server.url + "/v1/events", schema.encode_batch([cli_event()]))[0] in (202, 503)
    ask(server, MALFORMED[0][0])
    assert wait_until(lambda: "PostHog unavailable" in "".join(server.late_stderr))
    code, stdout = server.stop()
    lines = server.startup + "".join(server.late_stderr).splitlines()
    pids = set()
    for line in lines:
        found = LOG_LINE.fullmatch(line)
        assert found, line
        pids.add(int(found.group(2)))
    assert server.proc.pid in pids and len(pids) >= 3  # the master and both workers
    assert any("[WARNING] zomg-receiver: PostHog unavailable" in line for line in lines)


_WRITER = """
import sys
from zomg.receiver.log import emit
for i in range(400):
    emit(sys.argv[1] * 900 + str(i), "INFO")
"""


def test_log_lines_of_concurrent_processes_never_mix():
    # Four processes write long lines to one pipe at once, as gunicorn's workers share stderr.
    read_end, write_end = os.pipe()
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, letter], stderr=write_end)
             for letter in "abcd"]
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        output = pipe.read().decode("ascii")
    for proc in procs:
        assert proc.wait(60) == 0
    lines = output.splitlines()
    assert len(lines) == 1600
    for line in lines:
        found = LOG_LINE.fullmatch(line)
        assert found, line[:120]
        assert re.fullmatch(r"([abcd])\1{899}\d+", found.group(4)), line[:120]


def test_a_log_line_is_one_write(monkeypatch):
    import io

    from zomg.receiver import log

    writes = []
    monkeypatch.setattr(log.os, "write", lambda fd, data: writes.append(data) or len(data))
    stream = io.TextIOWrapper(io.BufferedWriter(io.FileIO(os.devnull, "w")))
    log.emit("zomg-receiver: first\nsecond part of one record", "ERROR", stream=stream)
    assert len(writes) == 1 and writes[0].endswith(b"second part of one record\n")
    assert LOG_LINE.fullmatch(writes[0].decode().split("\n")[0])


def test_readyz_answers_503_while_the_forwarder_is_stopping(forwarding):
    from tests.support.wsgi import call_app

    forwarded = forwarding()
    assert call_app(forwarded.app, b"", method="GET", path="/readyz").status == 200
    forwarded.forwarder.begin_close(0)
    answer = call_app(forwarded.app, b"", method="GET", path="/readyz")
    assert (answer.status, answer.json()) == (503, {"error": "not ready: stopping"})
    assert call_app(forwarded.app, b"", method="GET", path="/healthz").status == 200
    assert call_app(forwarded.app, b"", method="POST", path="/readyz").status == 405


def test_a_worker_ending_while_another_is_folded_in_does_not_deadlock_the_master(tmp_path, monkeypatch):
    # gunicorn's master reaps workers in its SIGCHLD handler: a second worker can end
    # while the first one's counters are being folded in. Both must be folded, and the
    # master must not wait on its own lock (it hung a SIGTERM'd receiver this way).
    import threading

    from zomg.receiver import metrics

    directory = str(tmp_path / "metrics")
    os.mkdir(directory)
    for pid in (101, 102):
        with open(os.path.join(directory, f"{pid}.json"), "w") as handle:
            json.dump({"pid": pid, "counters": {key: 1 for key in metrics.COUNTER_KEYS}}, handle)
    real_read = metrics._read
    nested = []

    def read_and_be_interrupted(path):
        if not nested:
            nested.append(True)
            metrics.retire(directory, 102)  # what the signal handler does mid-fold
        return real_read(path)

    monkeypatch.setattr(metrics, "_read", read_and_be_interrupted)
    done = threading.Thread(target=metrics.retire, args=(directory, 101), daemon=True)
    done.start()
    done.join(30)
    assert not done.is_alive(), "the fold waited on its own lock"
    with open(os.path.join(directory, metrics.RETIRED)) as handle:
        totals = json.load(handle)["counters"]
    assert all(totals[key] == 2 for key in metrics.COUNTER_KEYS)
    assert sorted(os.listdir(directory)) == sorted([metrics.RETIRED, metrics._LOCK])
