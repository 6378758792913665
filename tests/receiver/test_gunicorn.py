"""The shipped production configuration in a real gunicorn: slow clients, private logs, drains, refusals.

    gunicorn -c python:zomg.receiver.gunicorn_conf zomg.receiver:app

Every wait is on a condition (an answer, a closed socket, an exit) with a
generous bound; nothing is timed.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from tests.receiver.test_servers import CANARIES, assert_no_canary
from tests.support.events import cli_event
from tests.support.servers import TOKEN, SlowClients, clean_env, post, wait_until
from zomg.telemetry import schema

CONF = ["-c", "python:zomg.receiver.gunicorn_conf"]
CLIENT_ADDRESS = "127.0.0.5"  # a loopback address of its own, so no other line can hold it by chance


def shipped(serve, *args: str, **env: str):
    argv = [sys.executable, "-m", "gunicorn", *CONF, "--bind", "127.0.0.1:0", *args, "zomg.receiver:app"]
    return serve(argv, clean_env(**env), ready=r"Listening at: (http://\S+)")


def forwarding_env(fake_posthog, **extra: str) -> dict:
    return {"POSTHOG_PROJECT_API_KEY": TOKEN, "POSTHOG_HOST": fake_posthog.url, **extra}


def address(server) -> tuple:
    host, port = server.url[len("http://"):].rsplit(":", 1)
    return host, int(port)


def connect(server, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(60)
    sock.connect(address(server))
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        pass
    return b"".join(chunks)


def get(url: str) -> tuple:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=60) as response:
        return response.status, json.loads(response.read())


def all_output(server, stdout: bytes) -> str:
    return "\n".join(server.startup) + "".join(server.late_stderr) + stdout.decode("utf-8", "replace")


def test_slow_clients_hold_neither_other_clients_nor_healthz_and_are_cut_off(serve, fake_posthog):
    server = shipped(serve, **forwarding_env(fake_posthog))
    slow = SlowClients(address(server), 40)
    try:
        for _ in range(5):
            assert get(server.url + "/healthz") == (200, {"status": "ok"})
            events = [cli_event()]
            assert post(server.url + "/v1/events", schema.encode_batch(events), timeout=60) == (202, {"accepted": 1})
        # The slow clients are answered and let go at the request deadline, not held for ever.
        answers = [read_all(sock) for sock in slow.socks]
    finally:
        slow.close()
    assert all(answer.startswith(b"HTTP/1.1 400") for answer in answers), answers[:3]
    assert all(b"could not be read" in answer for answer in answers)


def test_no_client_address_header_or_request_line_reaches_any_log(serve, fake_posthog):
    # At debug level, the most gunicorn ever says.
    server = shipped(serve, **forwarding_env(fake_posthog, GUNICORN_CMD_ARGS="--log-level debug"))
    malformed = [
        b"GARBAGE /canary-path-5f1e HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /canary-path-5f1e HTTP/1.1\r\nX-Forwarded-For: 198.51.100.77\r\nnot a header line\r\n\r\n",
        b"GET /" + b"canary" * 300 + b" HTTP/1.1\r\n\r\n",
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\nUser-Agent: canary-agent/7.7.7\r\n\r\n",
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: canary\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03canary-tls-hello",
        b"GET /canary-path-5f1e HTTP/1.1\r\n" + b"X-Canary: " + b"c" * 9000 + b"\r\n\r\n",
    ]
    for request in malformed:
        sock = connect(server, CLIENT_ADDRESS)
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        read_all(sock)
        sock.close()
    sock = connect(server, CLIENT_ADDRESS)  # one that says nothing and hangs up
    sock.close()
    body = schema.encode_batch([cli_event()])
    sock = connect(server, CLIENT_ADDRESS)
    head = "".join(f"{name}: {value}\r\n" for name, value in CANARIES.items())
    sock.sendall(f"POST /v1/events?canary=1 HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
                 + body)
    assert read_all(sock).startswith(b"HTTP/1.1 202")
    sock.close()
    assert fake_posthog.wait_for_requests(1)
    code, stdout = server.stop()
    assert code == 0
    logged = all_output(server, stdout)
    assert "Booting worker" in logged  # the log is there; what it holds is checked below
    assert CLIENT_ADDRESS not in logged
    assert "canary" not in logged.lower()
    assert_no_canary(logged)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_stopping_drains_every_queued_event_to_posthog(serve, fake_posthog, signame):
    # Events wait in the queue (an interval no one waits out) until the stop drains them.
    env = forwarding_env(fake_posthog, ZOMG_RECEIVER_BATCH_INTERVAL="3600", ZOMG_RECEIVER_BATCH_EVENTS="100000",
                          ZOMG_RECEIVER_POLL_SECONDS="3600")
    server = shipped(serve, **env)
    sent = []
    for _ in range(8):
        events = [cli_event() for _ in range(5)]
        sent += [e["event_id"] for e in events]
        assert post(server.url + "/v1/events", schema.encode_batch(events)) == (202, {"accepted": 5})
    assert fake_posthog.count == 0
    server.proc.send_signal(getattr(signal, signame))
    assert server.proc.wait(60) == 0
    assert sorted(fake_posthog.accepted_uuids()) == sorted(sent)


def post_as_the_cli_does(url: str, body: bytes) -> tuple:
    """POST, sending again when the connection breaks without an answer, as the CLI keeps and re-sends.

    A worker that stops (recycled, or replaced on reload) closes a connection it
    accepted but had not yet read; nothing of that request was accepted.
    """
    import urllib.error

    for _ in range(4):
        try:
            return post(url, body)
        except (urllib.error.URLError, ConnectionError) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                raise
            problem = exc
    raise AssertionError(f"no answer in four tries: {problem}")


def test_reload_and_worker_recycling_lose_nothing(serve, fake_posthog):
    env = forwarding_env(fake_posthog, ZOMG_RECEIVER_BATCH_INTERVAL="3600", ZOMG_RECEIVER_BATCH_EVENTS="100000",
                          ZOMG_RECEIVER_POLL_SECONDS="3600")
    server = shipped(serve, "--max-requests", "3", **env)
    sent = []
    for round_ in range(3):
        for _ in range(7):  # more than --max-requests: every worker recycles at least once
            events = [cli_event() for _ in range(3)]
            sent += [e["event_id"] for e in events]
            answer = post_as_the_cli_does(server.url + "/v1/events", schema.encode_batch(events))
            assert answer == (202, {"accepted": 3})
        if round_ == 1:
            server.proc.send_signal(signal.SIGHUP)  # reload: new workers, the old ones drain
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(60) == 0
    accepted = fake_posthog.accepted_uuids()
    assert sorted(accepted) == sorted(sent)
    assert len(accepted) == len(set(accepted))


def boots(server) -> int:
    return "".join(server.startup + server.late_stderr).count("Booting worker")


def test_workers_default_to_the_cpu_count_unless_chosen(serve, tmp_path):
    from zomg.receiver.gunicorn_conf import default_workers

    server = shipped(serve, ZOMG_RECEIVER_OUTPUT=str(tmp_path / "events.jsonl"))
    assert wait_until(lambda: boots(server) >= default_workers())
    server.stop()
    assert boots(server) == default_workers() >= 2


def test_web_concurrency_and_gunicorn_cmd_args_are_honoured(serve, tmp_path):
    out = str(tmp_path / "events.jsonl")
    server = shipped(serve, ZOMG_RECEIVER_OUTPUT=out, WEB_CONCURRENCY="3")
    assert wait_until(lambda: "".join(server.late_stderr).count("Booting worker") >= 3)
    server.stop()
    assert "".join(server.late_stderr).count("Booting worker") == 3
    server = shipped(serve, ZOMG_RECEIVER_OUTPUT=out, WEB_CONCURRENCY="3", GUNICORN_CMD_ARGS="--workers 1")
    assert post(server.url + "/v1/events", schema.encode_batch([cli_event()])) == (202, {"accepted": 1})
    server.stop()
    assert "".join(server.startup + server.late_stderr).count("Booting worker") == 1


REFUSALS = [
    ({"POSTHOG_PROJECT_API_KEY": "phx_" + "a" * 40},
     "POSTHOG_PROJECT_API_KEY is a personal API key (phx_...); use the project token (phc_...)"),
    ({"POSTHOG_PROJECT_API_KEY": "phc_" + "a" * 61},
     "POSTHOG_PROJECT_API_KEY is 65 characters; a project token has at most 64"),
    ({"POSTHOG_PROJECT_API_KEY": TOKEN, "POSTHOG_HOST": "eu.i.posthog.com"},
     "POSTHOG_HOST must be an http:// or https:// URL, not 'eu.i.posthog.com'"),
    ({"POSTHOG_PROJECT_API_KEY": TOKEN, "POSTHOG_HOST": "https://eu.i.posthog.com:port"},
     "POSTHOG_HOST must be an http:// or https:// URL, not 'https://eu.i.posthog.com:port'"),
    ({"ZOMG_RECEIVER_OUTPUT": "{tmp}/missing/events.jsonl"}, "output: directory {tmp}/missing does not exist"),
    ({"ZOMG_RECEIVER_OUTPUT": "{tmp}"}, "output: {tmp} is a directory"),
    ({"POSTHOG_PROJECT_API_KEY": TOKEN, "ZOMG_RECEIVER_SPOOL_EVENTS": "lots"},
     "ZOMG_RECEIVER_SPOOL_EVENTS must be a whole number of at least 100, not 'lots'"),
]


def _refusal(case: tuple, tmp_path) -> tuple:
    env, line = case
    tmp = str(tmp_path)
    return {k: v.replace("{tmp}", tmp) for k, v in env.items()}, line.replace("{tmp}", tmp)


@pytest.mark.parametrize("case", REFUSALS, ids=[line.split()[0] + str(i) for i, (_, line) in enumerate(REFUSALS)])
@pytest.mark.parametrize("server", ["gunicorn", "dev"])
def test_a_bad_setting_stops_the_receiver_at_start_in_one_line(tmp_path, case, server):
    env, line = _refusal(case, tmp_path)
    if server == "gunicorn":
        argv = [sys.executable, "-m", "gunicorn", *CONF, "--bind", "127.0.0.1:0", "zomg.receiver:app"]
    else:
        argv = [sys.executable, "-m", "zomg.receiver", "--port", "0"]
    result = subprocess.run(argv, env=clean_env(**env), cwd=str(tmp_path), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert f"zomg-receiver: error: {line}\n" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Listening at" not in result.stderr and "listening on" not in result.stderr
    assert "Booting worker" not in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_output_directory_that_cannot_be_written_stops_the_receiver(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = subprocess.run([sys.executable, "-m", "zomg.receiver", "--port", "0", "--output",
                             str(locked / "events.jsonl")], env=clean_env(), cwd=str(tmp_path),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr == f"zomg-receiver: error: output: directory {locked} cannot be written\n"


def test_an_access_log_turned_on_holds_status_size_and_duration_only(serve, tmp_path):
    fmt = "%(h)s %(r)s %(a)s %({x-canary}i)s"
    access_log = tmp_path / "access.log"
    server = shipped(serve, ZOMG_RECEIVER_OUTPUT=str(tmp_path / "events.jsonl"),
                     GUNICORN_CMD_ARGS=f"--access-logfile {access_log} --access-logformat '{fmt}'")
    sock = connect(server, CLIENT_ADDRESS)
    sock.sendall(b"GET /healthz?canary=1 HTTP/1.1\r\nHost: x\r\nX-Canary: canary-header\r\n"
                 b"User-Agent: canary-agent/7.7.7\r\n\r\n")
    assert read_all(sock).startswith(b"HTTP/1.1 200")
    sock.close()

    def access_lines() -> list:
        return access_log.read_text().splitlines() if access_log.exists() else []

    # The worker writes the line after the answer: wait for it rather than race the stop.
    assert wait_until(lambda: any("] 200 " in line for line in access_lines())), access_lines()
    code, stdout = server.stop()
    stdout += access_log.read_bytes()
    logged = all_output(server, stdout)
    assert CLIENT_ADDRESS not in logged and "canary" not in logged and "healthz" not in logged
