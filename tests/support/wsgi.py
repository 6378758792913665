"""Running a WSGI application in-process, and recording what it hands on."""
from __future__ import annotations

import io
import json

from zomg.receiver.fastpath import encode_event

from .servers import TOKEN


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


class Forwarding:
    """The receiver forwarding to the fake PostHog in-process through a spool in ``directory``, with tiny waits.

    ``bounds`` are the Forwarder's keywords, and the Spool's ``max_events``, ``max_bytes`` and ``sync``.
    """

    def __init__(self, fake, directory: str, **bounds) -> None:
        from zomg.receiver import make_app
        from zomg.receiver.forwarder import Forwarder
        from zomg.receiver.posthog_client import PostHogClient
        from zomg.receiver.spool import Spool

        self.lines: list = []
        self.client = PostHogClient(TOKEN, fake.url, timeout=bounds.pop("timeout", 2.0),
                                    deadline=bounds.pop("deadline", 5.0))
        spool = {key: bounds.pop(key) for key in ("max_events", "max_bytes", "sync") if key in bounds}
        self.spool = Spool(directory, **spool)
        settings = {"interval": 0.0, "backoff": 0.01, "backoff_cap": 0.05, "probe_seconds": 0.02,
                    "poll_seconds": 0.05, "log": self.lines.append}
        settings.update(bounds)
        self.forwarder = Forwarder(self.client, self.spool, **settings)
        self.app = make_app(self.forwarder)

    def flush(self) -> None:
        assert self.forwarder.flush(60), f"still queued: {self.forwarder.queued}; log: {self.lines}"
