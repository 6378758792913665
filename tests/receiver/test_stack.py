"""The production deployment as ``scripts/receiver-stack`` runs it: nginx in front of gunicorn.

Skipped only when nginx cannot be found (Debian: ``apt-get install
nginx-light``; .ci/run installs it). Waits are on conditions and generous
client timeouts, never on durations: how fast it answers under load is
bench/receiver_slow_clients_bench.py's to measure.
"""
from __future__ import annotations

import os
import pathlib
import re
import signal
import socket
import sys

import pytest

from tests.receiver.test_gunicorn import read_all
from tests.receiver.test_operations import CANARY, MALFORMED, check_json_answer, fetch, metrics
from tests.receiver.test_servers import CANARIES, assert_no_canary
from tests.support.events import cli_event
from tests.support.servers import LOG_LINE, TOKEN, SlowClients, clean_env, post, processes, wait_until
from zomg.telemetry import schema

STACK = str(pathlib.Path(__file__).resolve().parents[2] / "scripts" / "receiver-stack")
CLIENT_ADDRESS = "127.0.0.6"


@pytest.fixture
def nginx():
    from zomg.receiver.stack import StackError, find_nginx

    try:
        return find_nginx(os.environ)
    except StackError as exc:
        pytest.skip(str(exc))


def start_stack(serve, **env: str):
    return serve([sys.executable, STACK, "--port", "0"], clean_env(**env), ready=r"listening on (http://\S+)")


def descendants(pid: int) -> set:
    table = processes()
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for child, (its_parent, _, _) in table.items():
            if its_parent == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


def running(pids: set) -> set:
    """Those of ``pids`` still running (a zombie has ended)."""
    return {pid for pid, (_, state, _) in processes().items() if pid in pids and state != "Z"}


def connect_from(url: str, source: str) -> socket.socket:
    host, port = url[len("http://"):].rsplit(":", 1)
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(60)
    sock.connect((host, int(port)))
    return sock


def read_answer(sock: socket.socket) -> bytes:
    """One HTTP answer, read to its Content-Length (nginx may keep the connection open a while after)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_the_stack_serves_forwards_and_stops_cleanly(serve, nginx, fake_posthog, signame):
    server = start_stack(serve, POSTHOG_PROJECT_API_KEY=TOKEN, POSTHOG_HOST=fake_posthog.url,
                         ZOMG_RECEIVER_BATCH_INTERVAL="0")
    assert fetch(server.url + "/healthz")[0] == 200
    assert fetch(server.url + "/readyz")[0] == 200
    events = [cli_event() for _ in range(3)]
    assert post(server.url + "/v1/events", schema.encode_batch(events)) == (202, {"accepted": 3})
    assert fake_posthog.wait_for_uuids(e["event_id"] for e in events)
    assert wait_until(lambda: metrics(server.url)["zomg_receiver_events_forwarded_total"] == 3)
    parts = descendants(server.proc.pid)
    assert len(parts) >= 4  # nginx's master and worker, gunicorn's master and workers
    rundir = re.search(r"unix:(\S+)/gunicorn.sock", "\n".join(server.startup)).group(1)
    server.proc.send_signal(getattr(signal, signame))
    assert server.proc.wait(90) == 0, "".join(server.late_stderr)[-3000:]
    assert wait_until(lambda: not running(parts))  # no orphans
    assert not os.path.exists(rundir)


def test_idle_and_slow_clients_leave_healthz_and_posts_answered(serve, nginx, tmp_path):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 4096
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"1,300 client sockets need {needed} file descriptors; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    server = start_stack(serve, ZOMG_RECEIVER_OUTPUT=str(tmp_path / "events.jsonl"))
    host, port = server.url[len("http://"):].rsplit(":", 1)
    idle = []
    slow = None
    try:
        for _ in range(1000):
            idle.append(socket.create_connection((host, int(port)), timeout=60))  # and say nothing
        slow = SlowClients((host, int(port)), 300)
        for _ in range(5):
            # Answered, not queued behind them: with gunicorn alone these wait until the slow ones are cut off.
            assert fetch(server.url + "/healthz")[0] == 200
            assert post(server.url + "/v1/events", schema.encode_batch([cli_event()]), timeout=60)[0] == 202
        assert wait_until(lambda: len((tmp_path / "events.jsonl").read_text().splitlines()) == 5)
    finally:
        if slow is not None:
            slow.close()
        for sock in idle:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_nginx_answers_in_json_and_keeps_the_client_out_of_logs_and_posthog(serve, nginx, fake_posthog):
    server = start_stack(serve, POSTHOG_PROJECT_API_KEY=TOKEN, POSTHOG_HOST=fake_posthog.url,
                         ZOMG_RECEIVER_BATCH_INTERVAL="0", GUNICORN_CMD_ARGS="--log-level debug")
    # nginx refuses these itself (its limits are 4 KiB per line and header; gunicorn, which gets no
    # client header through it, never sees the 60 headers of MALFORMED's second request).
    nginx_refused = [
        (b"GET /" + CANARY * 500 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + CANARY * 500 + b"\r\n\r\n", 431),
        (b"GARBAGE\x01 /" + CANARY + b" HTTP/1.1\r\n\r\n", 400),
        (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n", 413),
        (b"GET /zomg-error/400 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
    ]
    for request, status in nginx_refused + [(r, s) for r, s in MALFORMED if s in (400, 501)]:
        sock = connect_from(server.url, CLIENT_ADDRESS)
        sock.sendall(request)
        check_json_answer(read_answer(sock), status)
        sock.close()
    events = [cli_event()]
    body = schema.encode_batch(events)
    sock = connect_from(server.url, CLIENT_ADDRESS)
    head = "".join(f"{name}: {value}\r\n" for name, value in CANARIES.items())
    sock.sendall(f"POST /v1/events?canary=1 HTTP/1.1\r\nHost: x\r\n{head}X-Forwarded-For: 198.51.100.7\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    assert read_all(sock).startswith(b"HTTP/1.1 202")
    sock.close()
    assert fake_posthog.wait_for_uuids([events[0]["event_id"]])
    forwarded = b"".join(request["body"] + repr(request["headers"]).encode() for request in fake_posthog.requests)
    assert CLIENT_ADDRESS.encode() not in forwarded and b"198.51.100.7" not in forwarded
    assert_no_canary(forwarded.decode())
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(90) == 0
    logged = "\n".join(server.startup) + "".join(server.late_stderr)
    assert "Booting worker" in logged
    assert CLIENT_ADDRESS not in logged and "198.51.100.7" not in logged
    assert "canary" not in logged.lower()
    assert_no_canary(logged)
    for line in logged.splitlines():
        assert LOG_LINE.fullmatch(line) or line.startswith("  "), line  # a debug record may span lines


def test_a_port_in_use_stops_the_stack_in_one_line(nginx, tmp_path):
    import subprocess

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, STACK, "--port", str(port)], env=clean_env(), cwd=str(tmp_path),
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr == f"zomg-receiver: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
