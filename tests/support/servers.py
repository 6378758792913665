"""Loopback servers for tests and benches: a fake receiver, a fake PostHog, a black hole, slow clients."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "phc_test_project_token"
# A receiver log line (zomg/receiver/log.py): UTC time, pid, level, text.
LOG_LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) \[(\d+)\] "
                      r"\[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\] (.*)")


def logged_text(line: str) -> str:
    """The text of one receiver log line; AssertionError when the line is not in the receiver's format."""
    found = LOG_LINE.fullmatch(line.rstrip("\n"))
    assert found, f"not a receiver log line: {line!r}"
    return found.group(4)


class Capture:
    """An HTTP endpoint on 127.0.0.1:0 that records every POST.

    ``statuses`` is consumed one per request (then 200); ``delay`` holds each
    response that many seconds after the body was read; ``port`` takes the
    place of an endpoint that was there before (a bench's receiver coming back);
    the first ``drop`` requests are read, then their connections closed with no
    answer and nothing recorded (a worker killed mid-request, a proxy giving up
    on a client that left): written to the socket, never taken.
    """

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0, headers: dict | None = None,
                 port: int = 0, drop: int = 0) -> None:
        self.statuses = list(statuses or [])
        self.drop = drop
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
                    dropped, capture.drop = capture.drop > 0, max(0, capture.drop - 1)
                    status = capture.statuses.pop(0) if capture.statuses else 200
                if dropped:
                    self.close_connection = True
                    return
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

        self.server = Server(("127.0.0.1", port), Handler)
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


def _listen(backlog: int) -> tuple[socket.socket, str]:
    """A socket listening on 127.0.0.1:0, and the events URL at it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}/v1/events"


def _accept_each(server, handle) -> threading.Thread:
    """Hand every connection ``server.sock`` accepts to ``handle`` until ``server.closed``, in a daemon thread."""

    def loop() -> None:
        while not server.closed:
            try:
                conn, _ = server.sock.accept()
            except OSError:
                return
            handle(conn)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


class Blackhole:
    """Accepts connections on 127.0.0.1:0 and never answers."""

    def __init__(self) -> None:
        self.sock, self.url = _listen(64)
        self.held: list[socket.socket] = []
        self.closed = False
        self.thread = _accept_each(self, self.held.append)

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



class FakePostHog:
    """PostHog's /batch/ endpoint on 127.0.0.1:0: records requests, answers as told.

    Each request is answered by the next of ``answers`` (statuses), then by
    ``status``; with ``retry_after`` set, non-2xx answers carry it.
    Misbehaviours: ``refuse`` (400 for a body holding that text), ``delay``
    (seconds before answering), ``hang`` (no answer until ``release()``),
    ``close_mid_answer`` (reads the request, sends half a status line,
    closes), ``trickle`` (the answer a byte at a time, ``delay`` apart).
    With ``record=False`` (the benchmark) it only counts requests.
    """

    def __init__(self, record: bool = True) -> None:
        self.requests: list = []
        self.count = 0
        self.connections = 0
        self.keep_alive = False  # answer without "Connection: close" and serve the next request
        self.close_silently = False  # with keep_alive: still close after answering, as an idle timeout would
        self._lock = threading.Condition()
        self.status = 200
        self.answers: list = []
        self.retry_after: str | None = None
        self.delay = 0.0
        self.hang = False
        self.close_mid_answer = False
        self.trickle = False
        self.refuse = ""  # answer 400 to any body holding this text
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, a kept-alive
            # connection waits for a delayed ACK between them (Nagle).
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                with fake._lock:
                    fake.connections += 1

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with fake._lock:
                    status = fake.answers.pop(0) if fake.answers else fake.status
                    if fake.refuse and fake.refuse.encode() in body:
                        status = 400
                    if fake.hang or fake.close_mid_answer:
                        status = 0  # never answered: nothing accepted
                    fake.count += 1
                    if record:
                        fake.requests.append({"path": self.path, "headers": dict(self.headers.items()),
                                              "body": body, "status": status})
                    fake._lock.notify_all()
                if fake.hang:
                    fake._release.wait(60)
                    self.close_connection = True
                    return
                if fake.delay and not fake.trickle:
                    fake._release.wait(fake.delay)
                if fake.close_mid_answer:
                    self.wfile.write(b"HTTP/1.1 2")
                    self.wfile.flush()
                    self.close_connection = True
                    return
                payload = b'{"status":1}' if 200 <= status < 300 else b'{"error":"told to fail"}'
                head = [f"HTTP/1.1 {status} Told\r\n", "Content-Type: application/json\r\n",
                        f"Content-Length: {len(payload)}\r\n"]
                if fake.retry_after is not None and not 200 <= status < 300:
                    head.append(f"Retry-After: {fake.retry_after}\r\n")
                if not fake.keep_alive:
                    head.append("Connection: close\r\n")
                answer = "".join(head).encode("ascii") + b"\r\n" + payload
                if fake.trickle:
                    for index in range(len(answer)):
                        self.wfile.write(answer[index:index + 1])
                        self.wfile.flush()
                        if fake._release.wait(fake.delay):
                            break
                else:
                    self.wfile.write(answer)
                self.close_connection = not fake.keep_alive or fake.close_silently

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def accepted(self) -> list:
        """Every PostHog event of every /batch/ request it answered 2xx to."""
        with self._lock:
            requests = list(self.requests)
        return [event for request in requests if 200 <= request["status"] < 300
                for event in json.loads(request["body"])["batch"]]

    def accepted_uuids(self) -> list:
        return [event["uuid"] for event in self.accepted()]

    def wait_for(self, condition, timeout: float = 60) -> bool:
        """Wait until ``condition()`` holds (checked at each request and every 0.05 s); its last value."""
        import time

        end = time.monotonic() + timeout
        with self._lock:
            while not condition() and time.monotonic() < end:
                self._lock.wait(0.05)
        return condition()

    def wait_for_uuids(self, uuids, timeout: float = 60) -> bool:
        wanted = set(uuids)
        return self.wait_for(lambda: wanted <= set(self.accepted_uuids()), timeout)

    def wait_for_requests(self, count: int, timeout: float = 60) -> bool:
        return self.wait_for(lambda: self.count >= count, timeout)

    def release(self) -> None:
        """Stop hanging, delaying and trickling: answer at once from now on."""
        self.hang = False
        self.trickle = False
        self.delay = 0.0
        self._release.set()

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


def clean_env(**extra: str) -> dict:
    """The test's environment for a child process, proxies off for loopback."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Served:
    """A server process started by a test; knows its URL from its own start-up line."""

    def __init__(self, argv: list, env: dict, cwd: str, ready: str) -> None:
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.startup: list = []
        pattern = re.compile(ready)
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.startup.append(line)
            found = pattern.search(line)
            if found:
                self.url = found.group(1)
                break
        else:
            self.proc.wait(10)
            raise AssertionError(f"server did not start: {self.startup}")
        # Keep draining stderr so a chatty server never blocks on a full pipe.
        self.late_stderr: list = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for raw in self.proc.stderr:
            self.late_stderr.append(raw.decode("utf-8", "replace"))

    def stop(self) -> tuple:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return self.proc.returncode, out


def post(url: str, body: bytes, headers: dict | None = None, timeout: float = 20) -> tuple:
    """POST with urllib, proxies off; returns (status, parsed JSON)."""
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def wait_until(condition, timeout: float = 60) -> bool:
    """Poll ``condition()`` until it holds or ``timeout`` passes; its last value (tests assert it)."""
    import time

    end = time.monotonic() + timeout
    while not condition() and time.monotonic() < end:
        time.sleep(0.01)
    return bool(condition())


def slow_request_head(length: int) -> bytes:
    """What a slowloris client sends first: a POST of the events that announces ``length`` bytes, and one of them."""
    from zomg.telemetry.protocol import EVENTS_PATH

    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{" % (EVENTS_PATH.encode("ascii"), length)


def trickle_a_byte(socks: list) -> None:
    """One more byte of body on each slow connection; one the server closed is its owner's to notice."""
    for sock in socks:
        if sock is not None:
            try:
                sock.send(b" ")
            except OSError:
                pass


class SlowClients:
    """``count`` clients that announce a body of ``length`` bytes and send it a byte every ``every`` seconds.

    No single read of the server waits long, and the request never completes.
    """

    def __init__(self, address: tuple, count: int, length: int = 5000, every: float = 0.5,
                 source: str = "127.0.0.1") -> None:
        import socket

        self.socks = []
        for _ in range(count):
            sock = socket.socket()
            sock.bind((source, 0))
            sock.settimeout(60)
            sock.connect(address)
            sock.sendall(slow_request_head(length))
            self.socks.append(sock)
        self._stop = threading.Event()
        self._every = every
        threading.Thread(target=self._trickle, daemon=True).start()

    def _trickle(self) -> None:
        while not self._stop.wait(self._every):
            trickle_a_byte(self.socks)

    def close(self) -> None:
        self._stop.set()
        for sock in self.socks:
            sock.close()


class Trickle:
    """An HTTP endpoint on 127.0.0.1:0 that reads each request, then answers 200 one byte every ``every`` seconds.

    A per-read socket timeout never fires against it: only a deadline over the whole exchange ends a POST.
    """

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Padding: " + b"z" * 40 + b"\r\n\r\n{}"

    def __init__(self, every: float = 0.2) -> None:
        self.every = every
        self.requests = 0
        self.sock, self.url = _listen(16)
        self.closed = False
        _accept_each(self, lambda conn: threading.Thread(target=self._answer, args=(conn,), daemon=True).start())

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                self.requests += 1
                for i in range(len(self.ANSWER)):
                    if self.closed:
                        return
                    conn.sendall(self.ANSWER[i:i + 1])
                    time.sleep(self.every)
            except OSError:
                return

    def close(self) -> None:
        self.closed = True
        self.sock.close()


class Unanswered:
    """A loopback port whose accept queue is full: a connect hangs (its SYN is dropped), as behind a firewall
    that drops packets. No request is ever written to it."""

    def __init__(self) -> None:
        self.sock, self.url = _listen(0)
        address = self.sock.getsockname()
        self.fillers: list[socket.socket] = []
        while len(self.fillers) < 64:  # fill the queue until a connect no longer completes
            client = socket.socket()
            client.settimeout(0.5)
            try:
                client.connect(address)
            except OSError:
                client.close()
                break
            self.fillers.append(client)

    def close(self) -> None:
        for client in self.fillers:
            client.close()
        self.sock.close()


def processes() -> dict:
    """Every process now: pid -> (parent pid, state letter, CPU seconds used), read from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            table[int(entry)] = (int(fields[1]), fields[0], (int(fields[11]) + int(fields[12])) / ticks)
    return table
