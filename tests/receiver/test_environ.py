"""Proof that the application never reads a request header or the client's address."""
from __future__ import annotations

import pytest

from tests.support.events import cli_event
from tests.support.wsgi import TrackingInput
from zomg.receiver import make_app
from zomg.telemetry import schema

ALLOWED = {"REQUEST_METHOD", "PATH_INFO", "CONTENT_LENGTH", "wsgi.input"}


class RecordingEnviron(dict):
    """A WSGI environ that records every key the application looks at, however it looks."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.read: set = set()

    def _everything(self) -> None:
        self.read.update(dict.keys(self))

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key) -> bool:
        self.read.add(key)
        return super().__contains__(key)

    def pop(self, key, *default):
        self.read.add(key)
        return super().pop(key, *default)

    def setdefault(self, key, default=None):
        self.read.add(key)
        return super().setdefault(key, default)

    def __iter__(self):
        self._everything()
        return super().__iter__()

    def keys(self):
        self._everything()
        return super().keys()

    def items(self):
        self._everything()
        return super().items()

    def values(self):
        self._everything()
        return super().values()

    def copy(self):
        self._everything()
        return super().copy()

    def __repr__(self) -> str:
        self._everything()
        return super().__repr__()


def environ_like_a_server(method: str, path: str, body: bytes, trailing: bytes = b"") -> RecordingEnviron:
    """What a WSGI server hands over for a request carrying identifying headers."""
    return RecordingEnviron({
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "utm_source=canary",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "SERVER_NAME": "receiver.example",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "REMOTE_PORT": "51515",
        "HTTP_HOST": "receiver.example",
        "HTTP_USER_AGENT": "canary-agent/1.0",
        "HTTP_X_FORWARDED_FOR": "198.51.100.7",
        "HTTP_X_REAL_IP": "198.51.100.7",
        "HTTP_COOKIE": "session=canary",
        "HTTP_AUTHORIZATION": "Bearer canary",
        "wsgi.input": TrackingInput(body + trailing),
        "wsgi.errors": None,
        "wsgi.url_scheme": "https",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    })


def _start_response(status, headers, exc_info=None):
    return None


VALID = schema.encode_batch([cli_event(), cli_event()])
INVALID = schema.encode_batch([cli_event(os="plan9")])


@pytest.mark.parametrize("method,path,body,expected", [
    ("POST", "/v1/events", VALID, "202"),
    ("POST", "/v1/events", INVALID, "400"),
    ("POST", "/v1/events", b"\xff\xfe", "400"),
    ("POST", "/v1/events", b" " * (schema.MAX_BODY_BYTES + 1), "413"),
    ("GET", "/v1/events", b"", "405"),
    ("GET", "/healthz", b"", "200"),
    ("HEAD", "/healthz", b"", "200"),
    ("GET", "/elsewhere", b"", "404"),
])
def test_the_app_reads_no_header_no_address_and_only_its_four_keys(method, path, body, expected):
    statuses = []
    environ = environ_like_a_server(method, path, body, trailing=b"NEXT REQUEST")
    app = make_app(lambda events: None)
    app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    assert statuses[0].startswith(expected)
    assert environ.read <= ALLOWED, environ.read - ALLOWED
    assert not any(key.startswith("HTTP_") for key in environ.read)
    assert "REMOTE_ADDR" not in environ.read


def test_the_app_reads_exactly_content_length_bytes():
    environ = environ_like_a_server("POST", "/v1/events", VALID, trailing=b"NEXT REQUEST")
    make_app(lambda events: None)(environ, _start_response)
    assert environ["wsgi.input"].bytes_read == len(VALID)


def test_the_recorder_really_notices_a_header_read():
    # The proof is only as good as the recorder: reading a header must show up.
    environ = environ_like_a_server("GET", "/healthz", b"")
    environ.get("HTTP_X_FORWARDED_FOR")
    "REMOTE_ADDR" in environ  # noqa: B015
    dict(environ)
    assert {"HTTP_X_FORWARDED_FOR", "REMOTE_ADDR", "HTTP_COOKIE"} <= environ.read
