"""Plain helpers for the receiver's tests: valid events, a WSGI caller, a fake PostHog, servers."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hypothesis import strategies as st

from zomg.receiver.fastpath import encode_event
from zomg.telemetry import schema
from zomg.telemetry.schema import ERROR_CLASSES

TOKEN = "phc_test_project_token"


def new_event(**overrides: object) -> dict:
    event = {
        "event": schema.CLI_COMMAND,
        "schema_version": schema.SCHEMA_VERSION,
        "event_id": str(uuid.uuid4()),
        "installation_id": "5f0c6a56-2a4e-4b8e-9d3f-2b1c0e7a9d11",
        "timestamp": "2026-03-04T05:06:07Z",
        "cli_version": "0.1.0",
        "command": "box",
        "subcommand": "list",
        "flags": ["--all", "--json"],
        "os": "linux",
        "arch": "x86_64",
        "ci": False,
        "duration_bucket": "<1s",
        "result": "success",
        "error_class": None,
    }
    event.update(overrides)
    return event


class Response:
    def __init__(self, status: int, headers: dict, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> object:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.body[:200]!r})"


class TrackingInput:
    """A wsgi.input that counts what the application read from it."""

    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self.bytes_read += len(chunk)
        return chunk


def call_app(app, body: bytes = b"", method: str = "POST", path: str = "/v1/events",
             content_length: str | None = None, stream: object = None, extra: dict | None = None) -> Response:
    """Run one request through a WSGI application in-process."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(body)) if content_length is None else content_length,
        "wsgi.input": stream if stream is not None else TrackingInput(body),
    }
    environ.update(extra or {})
    seen = {}

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(headers)

    chunks = app(environ, start_response)
    return Response(seen["status"], seen["headers"], b"".join(chunks))


class Deliveries:
    """A ``deliver`` that records every batch handed to it, and can be told to fail."""

    def __init__(self) -> None:
        self.batches: list = []
        self.failure: Exception | None = None

    def __call__(self, events: list) -> None:
        if self.failure is not None:
            raise self.failure
        self.batches.append(json.loads(json.dumps(events)))

    @property
    def events(self) -> list:
        return [event for batch in self.batches for event in batch]


class LineDeliveries(Deliveries):
    """Like the local sink: also takes canonical texts, and says which way each batch came."""

    def __init__(self) -> None:
        super().__init__()
        self.ways: list = []
        self.lines: list = []

    def __call__(self, events: list) -> None:
        super().__call__(events)
        self.ways.append("decoded")
        self.lines.append([encode_event(event) for event in events])

    def deliver_lines(self, lines: bytes) -> None:
        if self.failure is not None:
            raise self.failure
        texts = lines.decode("ascii").splitlines()
        self.batches.append([json.loads(text) for text in texts])
        self.ways.append("canonical")
        self.lines.append(texts)


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


def valid_events_of(event_name: str):
    """A hypothesis strategy for valid events of any registered type, read off its rules."""
    fields, cross_check = schema.EVENT_TYPES[event_name]

    def values(rule):
        kind = type(rule).__name__
        if kind == "_Const":
            return st.just(rule.expected)
        if kind == "_Enum":
            return st.sampled_from(list(rule.allowed) + ([None] if rule.nullable else []))
        if kind == "_Pattern":
            text = st.from_regex(rule.body, fullmatch=True, alphabet=st.characters(codec="ascii"))
            return st.none() | text if rule.nullable else text
        if kind == "_Timestamp":
            return st.datetimes().map(lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%SZ").rjust(20, "0"))
        if kind == "_Bool":
            return st.booleans()
        if kind == "_Flags":
            flag = st.from_regex(schema._FLAG, fullmatch=True, alphabet=st.characters(codec="ascii"))
            return st.lists(flag, max_size=4, unique=True).map(sorted)
        raise AssertionError(f"no strategy for {kind}")

    def fix(event: dict) -> dict:
        if cross_check is not None:
            wanted = event[cross_check.other] == cross_check.value
            if wanted and event[cross_check.field] is None:
                rule = dict((key, rule) for key, rule, _ in fields)[cross_check.field]
                event[cross_check.field] = rule.allowed[0]
            elif not wanted:
                event[cross_check.field] = None
        return {key: event[key] for key, _, _ in fields}  # the schema's order, as the CLI builds them

    return st.fixed_dictionaries({key: values(rule) for key, rule, _ in fields}).map(fix)


# Small pools keep generation cheap; the values cover every character class the patterns allow.
_names = st.sampled_from(["box", "exec", "list", "create", "a", "z9", "x-y-1", "n" * 32])
_versions = st.sampled_from(["0.1.0", "1", "2.0.0rc1", "1.2+local.7", "3!1.0", "9-a.B"])
_flag_pool = st.sampled_from(["--all", "--json", "-f", "-9", "--force", "--x-y", "--" + "q" * 32])


@st.composite
def quick_cli_events(draw) -> dict:
    """Valid cli.command events, cheaply: small pools of values instead of regex generation."""
    result = draw(st.sampled_from(schema.RESULTS))
    return new_event(
        event_id=str(draw(st.uuids(version=4))),
        installation_id=str(draw(st.uuids(version=4))),
        timestamp=draw(st.datetimes()).strftime("%Y-%m-%dT%H:%M:%SZ").rjust(20, "0"),
        cli_version=draw(_versions),
        command=draw(st.none() | _names),
        subcommand=draw(st.none() | _names),
        flags=sorted(draw(st.sets(_flag_pool, max_size=4))),
        os=draw(st.sampled_from(schema.OS_VALUES)),
        arch=draw(st.sampled_from(schema.ARCH_VALUES)),
        ci=draw(st.booleans()),
        duration_bucket=draw(st.sampled_from(schema.DURATION_BUCKETS)),
        result=result,
        error_class=draw(st.sampled_from(ERROR_CLASSES)) if result == "error" else None,
    )


def wait_until(condition, timeout: float = 60) -> bool:
    """Poll ``condition()`` until it holds or ``timeout`` passes; its last value (tests assert it)."""
    import time

    end = time.monotonic() + timeout
    while not condition() and time.monotonic() < end:
        time.sleep(0.01)
    return bool(condition())


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
            sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{" % length)
            self.socks.append(sock)
        self._stop = threading.Event()
        self._every = every
        threading.Thread(target=self._trickle, daemon=True).start()

    def _trickle(self) -> None:
        while not self._stop.wait(self._every):
            for sock in self.socks:
                try:
                    sock.send(b" ")
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        for sock in self.socks:
            sock.close()
