"""The receiver as it runs: ``python -m zomg.receiver`` and gunicorn, as real processes."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request

import pytest

from tests.support.events import cli_event
from tests.support.servers import TOKEN, clean_env, logged_text, post
from zomg.telemetry import schema

CANARIES = {
    "X-Forwarded-For": "198.51.100.77",
    "X-Real-Ip": "198.51.100.78",
    "Forwarded": "for=198.51.100.79",
    "User-Agent": "canary-agent/7.7.7",
    "Cookie": "session=canary-cookie-5f1e",
    "Authorization": "Bearer canary-token-9a3c",
}


def get(url: str) -> tuple:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=20) as response:
        return response.status, json.loads(response.read())


def assert_no_canary(text: str) -> None:
    for value in CANARIES.values():
        assert value not in text
    for fragment in ("198.51.100", "canary"):
        assert fragment not in text


def test_dev_server_records_locally_without_a_token(receiver_process, tmp_path):
    out = tmp_path / "events.jsonl"
    server = receiver_process("--output", str(out))
    assert logged_text(server.startup[0]) == (
        f"zomg-receiver: POSTHOG_PROJECT_API_KEY is not set: not forwarding; appending accepted events to {out}"
    )
    assert get(server.url + "/healthz") == (200, {"status": "ok"})
    events = [cli_event(), cli_event()]
    assert post(server.url + "/v1/events", schema.encode_batch(events), CANARIES) == (202, {"accepted": 2})
    assert post(server.url + "/v1/events", b'{"events":[]}')[0] == 400
    code, stdout = server.stop()
    assert code == 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == events
    assert_no_canary(out.read_text() + stdout.decode() + "".join(server.startup + server.late_stderr))


def test_dev_server_forwards_with_a_token_and_passes_on_no_client_header(receiver_process, fake_posthog):
    server = receiver_process(POSTHOG_PROJECT_API_KEY=TOKEN, POSTHOG_HOST=fake_posthog.url)
    assert logged_text(server.startup[0]).startswith(
        f"zomg-receiver: forwarding accepted events to PostHog at {fake_posthog.url}/batch/, through the spool in ")
    events = [cli_event() for _ in range(3)]
    assert post(server.url + "/v1/events", schema.encode_batch(events), CANARIES) == (202, {"accepted": 3})
    assert fake_posthog.wait_for_requests(1)
    [request] = fake_posthog.requests
    assert [e["uuid"] for e in json.loads(request["body"])["batch"]] == [e["event_id"] for e in events]
    assert_no_canary(json.dumps(request["headers"]) + request["body"].decode())
    code, stdout = server.stop()
    assert_no_canary(stdout.decode() + "".join(server.startup + server.late_stderr))


def test_dev_server_answers_at_once_while_posthog_is_down_and_delivers_after(receiver_process, fake_posthog):
    server = receiver_process(POSTHOG_PROJECT_API_KEY=TOKEN, POSTHOG_HOST=fake_posthog.url)
    fake_posthog.status = 503
    events = [cli_event()]
    assert post(server.url + "/v1/events", schema.encode_batch(events)) == (202, {"accepted": 1})
    assert fake_posthog.wait_for_requests(2)  # tried, and tried again
    fake_posthog.status = 200
    assert fake_posthog.wait_for_uuids([events[0]["event_id"]])
    assert fake_posthog.accepted_uuids() == [events[0]["event_id"]]


def test_an_oversized_body_is_refused_before_it_is_sent(receiver_process, tmp_path):
    server = receiver_process("--output", str(tmp_path / "events.jsonl"))
    host, port = server.url[len("http://"):].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        # Only the headers: the body never comes, and the answer does not wait for it.
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    answer = b"".join(chunks).decode()
    assert answer.startswith("HTTP/1.0 413") or answer.startswith("HTTP/1.1 413")
    assert '{"error":"body: larger than 262144 bytes"}' in answer


def test_dev_server_refuses_a_bad_posthog_host_in_one_line(tmp_path):
    env = clean_env(POSTHOG_PROJECT_API_KEY=TOKEN, POSTHOG_HOST="eu.i.posthog.com")
    result = subprocess.run([sys.executable, "-m", "zomg.receiver", "--port", "0"], env=env, cwd=str(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == (
        "zomg-receiver: error: POSTHOG_HOST must be an http:// or https:// URL, not 'eu.i.posthog.com'\n"
    )


@pytest.mark.parametrize("args", [["--port", "http"], ["--port", "70000"], ["--bogus"]])
def test_dev_server_usage_errors_exit_2(tmp_path, args):
    result = subprocess.run([sys.executable, "-m", "zomg.receiver", *args], env=clean_env(), cwd=str(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_dev_server_reports_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "zomg.receiver", "--port", str(port), "--output",
                                 str(tmp_path / "e.jsonl")], env=clean_env(), cwd=str(tmp_path),
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(f"zomg-receiver: error: cannot listen on 127.0.0.1:{port}")


def gunicorn(serve, **env: str):
    argv = [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", "127.0.0.1:0", "zomg.receiver:app"]
    return serve(argv, clean_env(**env), ready=r"Listening at: (http://\S+)")


def test_gunicorn_serves_the_app_and_forwards(serve, fake_posthog):
    server = gunicorn(serve, POSTHOG_PROJECT_API_KEY=TOKEN, POSTHOG_HOST=fake_posthog.url)
    assert get(server.url + "/healthz") == (200, {"status": "ok"})
    for _ in range(4):
        events = [cli_event() for _ in range(10)]
        assert post(server.url + "/v1/events", schema.encode_batch(events), CANARIES) == (202, {"accepted": 10})
    assert post(server.url + "/v1/events", schema.encode_batch([cli_event(ci="no")]))[0] == 400
    assert post(server.url + "/v1/events", b"\xff" * 10)[0] == 400
    assert fake_posthog.wait_for(lambda: len(fake_posthog.accepted()) >= 40)
    assert len(fake_posthog.accepted()) == 40
    for request in fake_posthog.requests:
        assert_no_canary(json.dumps(request["headers"]) + request["body"].decode())
    code, stdout = server.stop()
    assert code == 0
    assert_no_canary(stdout.decode() + "".join(server.startup + server.late_stderr))


def test_gunicorn_records_to_the_output_file_from_every_worker(serve, tmp_path):
    out = tmp_path / "events.jsonl"
    server = gunicorn(serve, ZOMG_RECEIVER_OUTPUT=str(out))
    sent = []
    for _ in range(6):
        events = [cli_event() for _ in range(5)]
        sent += events
        assert post(server.url + "/v1/events", schema.encode_batch(events)) == (202, {"accepted": 5})
    server.stop()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["event_id"] for line in lines) == sorted(e["event_id"] for e in sent)


def test_dev_server_threads_share_kept_open_connections_to_posthog(receiver_process, fake_posthog):
    fake_posthog.keep_alive = True
    server = receiver_process(POSTHOG_PROJECT_API_KEY=TOKEN, POSTHOG_HOST=fake_posthog.url)
    for count in range(1, 5):  # one thread per request, one after another
        assert post(server.url + "/v1/events", schema.encode_batch([cli_event()])) == (202, {"accepted": 1})
        assert fake_posthog.wait_for_requests(count)
    assert (len(fake_posthog.requests), fake_posthog.connections) == (4, 1)


def test_dev_server_drains_its_queue_to_posthog_when_stopped(receiver_process, fake_posthog):
    # Events wait in the queue (an interval no one waits out) until the stop drains them.
    server = receiver_process(POSTHOG_PROJECT_API_KEY=TOKEN, POSTHOG_HOST=fake_posthog.url,
                              ZOMG_RECEIVER_BATCH_INTERVAL="3600", ZOMG_RECEIVER_BATCH_EVENTS="100000")
    events = [cli_event() for _ in range(6)]
    for event in events:
        assert post(server.url + "/v1/events", schema.encode_batch([event])) == (202, {"accepted": 1})
    assert fake_posthog.count == 0
    code, _ = server.stop()
    assert code == 0
    assert sorted(fake_posthog.accepted_uuids()) == sorted(e["event_id"] for e in events)
