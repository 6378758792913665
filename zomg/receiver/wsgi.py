"""The receiver's WSGI application (``make_app``): route, read, validate a batch whole, hand it to a sink.

The application reads exactly four keys of the WSGI environ: REQUEST_METHOD,
PATH_INFO, CONTENT_LENGTH and wsgi.input, and from wsgi.input exactly
CONTENT_LENGTH bytes. It never looks at a request header or the client's
address, so it cannot pass them on. A test hands it an environ that records
every key read.

Where accepted events go is a sink (``zomg.receiver.sink``) given to
``make_app``: the PostHog forwarder (its spool), the local sink, or the
usage store's. Each takes the canonical fast path's lines, so one validation
path serves all. A sink raises DeliveryError when the events could not be
kept, and the client is told to retry later (with Retry-After when the sink
says when). The path is the protocol's ``EVENTS_PATH``, the CLI's too.

Besides the events, three GET routes for operators: ``/healthz`` (liveness:
the process answers), ``/readyz`` (503 while new batches are refused, and
why) and ``/metrics`` (``metrics.Metrics``, every worker's figures summed).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from zomg.receiver.fastpath import canonical_event_lines, encode_json, validate_batch
from zomg.receiver.log import emit
from zomg.receiver.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from zomg.receiver.metrics import Metrics
from zomg.receiver.sink import DeliveryError
from zomg.telemetry import schema
from zomg.telemetry.protocol import EVENTS_PATH

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
MAX_BODY_BYTES = schema.MAX_BODY_BYTES
TOO_LARGE = f"body: larger than {MAX_BODY_BYTES} bytes"  # the 413's message (nginx's too, stack.py)
# Longer than this and the number is past MAX_BODY_BYTES anyway; also keeps
# int() away from the interpreter's limit on very long digit strings.
_MAX_LENGTH_DIGITS = 7


class _Reject(Exception):
    def __init__(self, status: int, message: str, headers: tuple = ()) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


# Every status the receiver answers with, its own and the HTTP server's (gunicorn_parts.ReceiverWorker).
REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _no_constant(name: str) -> object:
    # Python's json accepts NaN and Infinity; JSON does not.
    raise ValueError(f"{name} is not JSON")


# An object with a repeated key counts as its last occurrence, as in most JSON
# parsers; the batch is validated as parsed. (Refusing repeats needs a Python
# hook per object, which would cost a fifth of a request's time.)
_decoder = json.JSONDecoder(parse_constant=_no_constant)


def decode_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise _Reject(400, "body: not UTF-8") from None


def parse_json(text: str) -> object:
    """Strict JSON, or _Reject(400)."""
    try:
        return _decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise _Reject(400, f"body: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (ValueError, RecursionError):
        # NaN/Infinity, integers too long to convert, nesting too deep to parse.
        raise _Reject(400, "body: not JSON") from None


def read_body(environ: dict) -> bytes:
    """Exactly CONTENT_LENGTH bytes of wsgi.input, refusing an over-long body unread."""
    raw = environ.get("CONTENT_LENGTH") or ""
    if not raw:
        raise _Reject(411, "Content-Length: required")
    if not (raw.isascii() and raw.isdigit()):
        raise _Reject(400, "Content-Length: not a number")
    if len(raw) > _MAX_LENGTH_DIGITS or int(raw) > MAX_BODY_BYTES:
        raise _Reject(413, TOO_LARGE)
    remaining = int(raw)
    stream = environ["wsgi.input"]
    chunks = []
    try:
        while remaining:
            chunk = stream.read(remaining)
            if not chunk:
                break
            if len(chunk) == remaining and not chunks:
                return chunk  # the usual case, the whole body in one read: no copy
            chunks.append(chunk)
            remaining -= len(chunk)
    except Exception:
        # A client that stalls or disconnects mid-body surfaces as whatever the
        # server's input stream raises (a socket timeout, a server's own error).
        raise _Reject(400, "body: could not be read to its Content-Length") from None
    if remaining:
        raise _Reject(400, "body: shorter than Content-Length")
    return b"".join(chunks)


def error_body(message: str) -> bytes:
    """The JSON body of every error answer: ``{"error": message}``."""
    return encode_json({"error": message})


def _json_response(start_response: Callable, status: int, payload: object, headers: Iterable = (),
                   content_type: str = "application/json") -> list:
    body = payload if type(payload) is bytes else encode_json(payload)
    start_response(
        f"{status} {REASONS[status]}",
        [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers],
    )
    return [body]


def make_app(deliver: Callable[[list], None], metrics: Metrics | None = None) -> Callable:
    """The WSGI application; ``deliver(events)`` keeps a validated batch or raises DeliveryError.

    A ``deliver`` that only writes each event's compact JSON may also have
    ``deliver_lines(lines)``: for a body in the schema's canonical form (what the
    CLI sends) it gets the lines, as ASCII bytes, straight from the schema's
    canonical check, without decoding and re-encoding; any other body is decoded
    and validated.

    ``metrics`` counts what the application answers and reads ``deliver``'s
    figures and refusal (/metrics, /readyz); by default one for this process
    alone.
    """
    deliver_lines = getattr(deliver, "deliver_lines", None)
    if metrics is None:
        metrics = Metrics(sink=deliver)
    count = metrics.count

    def operator_route(path: str, method: str) -> tuple:
        if method not in ("GET", "HEAD"):
            raise _Reject(405, "method not allowed", (("Allow", "GET, HEAD"),))
        if path == HEALTH_PATH:
            return 200, {"status": "ok"}, "application/json"
        if path == METRICS_PATH:
            return 200, metrics.render(), METRICS_CONTENT_TYPE
        reason = metrics.refusal()
        if reason is not None:
            raise _Reject(503, f"not ready: {reason.replace('_', ' ')}", (("Retry-After", "1"),))
        return 200, {"status": "ready"}, "application/json"

    def receive(environ: dict) -> tuple:
        # Routing first: a wrong path or method is answered without reading anything else.
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD") or ""
        if path in (HEALTH_PATH, READY_PATH, METRICS_PATH):
            return operator_route(path, method)
        if path != EVENTS_PATH:
            raise _Reject(404, "not found")
        if method != "POST":
            raise _Reject(405, "method not allowed", (("Allow", "POST"),))
        body = read_body(environ)
        lines = canonical_event_lines(body) if deliver_lines is not None else None
        if lines is None:
            try:
                events = validate_batch(parse_json(decode_text(body)))
            except schema.SchemaError as exc:
                raise _Reject(400, str(exc)) from None
        size = len(events) if lines is None else lines.count(b"\n")
        try:
            if lines is None:
                deliver(events)
            else:
                deliver_lines(lines)
        except DeliveryError as exc:
            count("batches_refused_total", 1, exc.reason)
            count("events_refused_total", size, exc.reason)
            headers = () if exc.retry_after is None else (("Retry-After", str(exc.retry_after)),)
            raise _Reject(exc.status, str(exc), headers) from None
        count("batches_accepted_total")
        count("events_accepted_total", size)
        return 202, b'{"accepted":%d}' % size, "application/json"

    def app(environ: dict, start_response: Callable) -> list:
        content_type = "application/json"
        try:
            status, payload, content_type = receive(environ)
            headers = ()
        except _Reject as exc:
            status, payload, headers = exc.status, {"error": str(exc)}, exc.headers
            if status < 500 and environ.get("PATH_INFO") == EVENTS_PATH:
                count("requests_invalid_total", 1, str(status))
        except Exception:
            # A bug, never a client's doing: say so in the server's log, without the request.
            import traceback

            emit("zomg-receiver: internal error:\n" + traceback.format_exc(), "ERROR")
            status, payload, headers = 500, {"error": "internal error"}, ()
        response = _json_response(start_response, status, payload, headers, content_type)
        if environ.get("REQUEST_METHOD") == "HEAD":
            return [b""]
        return response

    app.sink = deliver  # for the server's hooks: gunicorn_conf drains a forwarder at exit
    app.metrics = metrics  # and publishes this process's figures for the others' scrapes
    return app
