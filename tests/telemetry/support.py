"""Helpers for the telemetry tests: loopback endpoints, a fake clock, running zomg."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Capture:
    """An HTTP endpoint on 127.0.0.1:0 that records every POST.

    ``statuses`` is consumed one per request (then 200); ``delay`` holds each
    response that many seconds after the body was read.
    """

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0, headers: dict | None = None) -> None:
        self.statuses = list(statuses or [])
        self.delay = delay
        self.extra_headers = headers or {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                started = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with capture.lock:
                    status = capture.statuses.pop(0) if capture.statuses else 200
                record = {"path": self.path, "headers": dict(self.headers.items()), "body": body,
                          "status": status, "start": started}
                if capture.delay:
                    time.sleep(capture.delay)
                record["end"] = time.monotonic()
                with capture.lock:
                    capture.requests.append(record)
                self.send_response(status)
                for key, value in capture.extra_headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that gave up waiting (the grace ran out) is expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/events"

    def events(self, accepted_only: bool = True) -> list[dict]:
        with self.lock:
            requests = list(self.requests)
        return [e for r in requests if not accepted_only or 200 <= r["status"] < 300
                for e in json.loads(r["body"])["events"]]

    def unique_ids(self) -> set[str]:
        return {e["event_id"] for e in self.events()}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Blackhole:
    """Accepts connections on 127.0.0.1:0 and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.held: list[socket.socket] = []
        self.closed = False
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1/events"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.closed = True
        for conn in self.held:
            conn.close()
        self.sock.close()


def refused_url() -> str:
    """A loopback address where nothing listens (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/v1/events"


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def run(*argv: str, env: dict | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, with the test's environment plus ``env``."""
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "zomg", *argv], capture_output=True, text=True,
                          env=full, cwd=cwd, timeout=60)


def state_dir() -> str:
    from zomg import paths

    return os.path.join(paths.state_dir(), "telemetry")


def spooled() -> list[dict]:
    """The events waiting in the spool."""
    from zomg.telemetry.spool_edit import parse

    try:
        with open(os.path.join(state_dir(), "spool.jsonl"), "rb") as f:
            return [json.loads(parse(line)[3]) for line in f.read().splitlines() if line]
    except FileNotFoundError:
        return []


def user_config() -> dict:
    from zomg.telemetry import settings

    try:
        with open(settings.user_path(), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def write_user_config(data: dict) -> None:
    from zomg.telemetry import settings

    os.makedirs(os.path.dirname(settings.user_path()), exist_ok=True)
    with open(settings.user_path(), "w", encoding="utf-8") as f:
        json.dump(data, f)


def notice_seen(installation_id: str | None = None) -> None:
    """Record that this user has seen the current notice (the usual state after the first run)."""
    from zomg import telemetry
    from zomg.telemetry import settings

    write_user_config({"notice_version": telemetry.NOTICE_VERSION,
                       "installation_id": installation_id or settings.uuid4()})


def write_system_config(data: object) -> str:
    from zomg import paths

    directory = paths.system_config_dirs()[0]
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "telemetry.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write(data if isinstance(data, str) else json.dumps(data))
    return path


def files_under(root: str) -> set[str]:
    found = set()
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(directory, name), root))
    return found
