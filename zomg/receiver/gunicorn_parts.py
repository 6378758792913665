"""The pieces gunicorn_conf names: a threaded worker that bounds request reads, and a logger that keeps clients out.

Imported only by gunicorn (through gunicorn_conf); nothing else in zomg needs gunicorn.

ReceiverWorker is gunicorn's gthread worker with one change: each client
socket waits at most READ_STEP_SECONDS for any single read and
REQUEST_SECONDS for a whole request (headers and body), counted from when a
thread starts on it; gunicorn's drain before closing a connection (which runs
on the worker's main loop) gets no time past that deadline either. A client
that trickles its body is cut off there and its thread freed; with enough
threads per worker, slow clients never stop the others or /healthz. SIGTERM
also tells the forwarder to send without waiting out its interval, so the
drain at exit starts early.

ReceiverWorker also answers what gunicorn itself refuses (a malformed
request line, a line or headers over the limits, an unsupported
Transfer-Encoding) in JSON, as the application answers everything, with a
fixed message that never quotes the request; gunicorn's own page is HTML
that echoes the request line or a header back.

PrivateLogger is gunicorn's logger with nothing of a client in it: gunicorn
formats some messages with the client's address or the request itself
("Invalid request from ip=..."); those are cut to their fixed start and
logged at debug level, tracebacks become the exception's type name, any
IPv4 literal left is masked, and the access log (when an operator turns it
on) holds status, size and duration only, whatever access_log_format says.
Its lines are the receiver's (log.py): UTC timestamp, pid and level, each
line one write.
"""
from __future__ import annotations

import logging
import socket
import time
import weakref

from gunicorn.glogging import Logger
from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import ThreadWorker

from zomg.receiver.log import LineFormatter, OneWriteHandler, mask_addresses
from zomg.receiver.wsgi import REASONS, error_body

READ_STEP_SECONDS = 5.0
REQUEST_SECONDS = 10.0

_deadlines: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _BoundedSocket(socket.socket):
    """A client socket whose blocking reads end at the request's deadline (class swapped in, same layout)."""

    __slots__ = ()

    def setblocking(self, flag: bool) -> None:
        if flag:
            # A thread takes the connection: the request's clock starts, unless it runs
            # already (gunicorn sets blocking again to close, and must not get more time).
            deadline = _deadlines.setdefault(self, time.monotonic() + REQUEST_SECONDS)
            super().settimeout(min(READ_STEP_SECONDS, max(0.001, deadline - time.monotonic())))
        else:
            _deadlines.pop(self, None)
            super().setblocking(False)

    def settimeout(self, value: float | None) -> None:
        # gunicorn's own bounded waits (the drain before a close) may shorten a read, never lengthen it.
        deadline = _deadlines.get(self)
        if deadline is None:
            super().settimeout(value)
        else:
            left = max(0.001, deadline - time.monotonic())
            super().settimeout(min(READ_STEP_SECONDS, left) if value is None else min(value, left))

    def _bound(self) -> None:
        deadline = _deadlines.get(self)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("request not read within its deadline")
            current = self.gettimeout()
            super().settimeout(min(READ_STEP_SECONDS, left) if current is None else min(current, left))

    def recv(self, size: int, *flags: int) -> bytes:
        self._bound()
        return super().recv(size, *flags)

    def recv_into(self, buffer: object, *args: int) -> int:
        self._bound()
        return super().recv_into(buffer, *args)


class ReceiverWorker(ThreadWorker):
    def enqueue_req(self, conn: object) -> None:
        if type(conn.sock) is socket.socket:
            conn.sock.__class__ = _BoundedSocket
        super().enqueue_req(conn)

    def handle_exit(self, sig: int, frame: object) -> None:
        if not getattr(self, "_zomg_stop_started", None):
            self._zomg_stop_started = time.monotonic()  # gunicorn_conf.worker_exit counts the drain from here
        sink = getattr(getattr(self, "wsgi", None), "sink", None)
        hurry = getattr(sink, "hurry", None)
        if hurry is not None:
            hurry()
        super().handle_exit(sig, frame)

    def handle_error(self, req: object, client: object, addr: object, exc: BaseException) -> None:
        """Answer what gunicorn refused, or an error outside the application, in JSON that quotes nothing."""
        status, message = refusal_of(exc, self.cfg)
        if status == 500:
            self.log.exception("Error handling request")  # PrivateLogger keeps the exception's type only
        else:
            self.log.debug("Invalid request from")  # at debug level, and cut to its fixed start
        try:
            client.sendall(http_error(status, message))
        except OSError:
            self.log.debug("Failed to send error message")


def _error_class(name: str) -> tuple:
    found = getattr(http_errors, name, None)  # some are newer than the oldest gunicorn the receiver runs on
    return (found,) if found is not None else ()


def refusal_of(exc: BaseException, cfg: object) -> tuple:
    """(status, fixed message) for an error gunicorn raised before or around the application."""
    import ssl

    app_fault = _error_class("InvalidResponseHeader") + _error_class("InvalidResponseHeaderName")
    if app_fault and isinstance(exc, app_fault):
        return 500, "internal error"
    if isinstance(exc, http_errors.LimitRequestLine):
        return 414, f"request line: longer than {cfg.limit_request_line} bytes"
    if isinstance(exc, http_errors.LimitRequestHeaders):
        return 431, (f"headers: more than {cfg.limit_request_fields} or one longer than "
                     f"{cfg.limit_request_field_size} bytes")
    if isinstance(exc, _error_class("UnsupportedTransferCoding")):
        return 501, "Transfer-Encoding: not supported"
    if isinstance(exc, _error_class("ExpectationFailed")):
        return 417, "Expect: not supported"
    if isinstance(exc, _error_class("ForbiddenProxyRequest")):
        return 403, "forbidden"
    if isinstance(exc, _error_class("ConfigurationProblem")):
        return 500, "internal error"
    if isinstance(exc, (http_errors.ParseException, ssl.SSLError)):
        return 400, "request: not valid HTTP/1.1"
    return 500, "internal error"


def http_error(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 error answer with a JSON body, closing the connection."""
    body = error_body(message)
    head = (f"HTTP/1.1 {status} {REASONS[status]}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


# Messages gunicorn builds with a client's address, request line, headers or
# parse error (which quotes the request): only their fixed start is kept.
_CLIENT_MESSAGES = (
    "Invalid request from",
    "Error handling request",
    "Socket error processing request",
    "Ignored premature client disconnection",
    "Closing connection",
    "HTTP/2",
    "Failed to send error message",
)


def private_record(level: int, msg: object, args: tuple, kwargs: dict) -> tuple:
    """(level, message, args, kwargs) with nothing of a client left in them."""
    exc_info = kwargs.pop("exc_info", None)
    text = str(msg)
    if text == "%s %s":  # the default pre_request hook: method and path
        return logging.DEBUG, "request (not logged)", (), kwargs
    for start in _CLIENT_MESSAGES:
        if text.startswith(start):
            return logging.DEBUG, start + " (client details not logged)", (), kwargs
    if args:
        try:
            text = text % args
        except (TypeError, ValueError, KeyError):
            pass  # the fixed template alone, rather than arguments no one checked
    if exc_info:
        import sys

        kind = (exc_info if isinstance(exc_info, tuple) else sys.exc_info())[0]
        if kind is not None:
            text += f" ({kind.__name__})"
    if not text.startswith("Listening at"):
        text = mask_addresses(text)
    return level, text.replace("%", "%%"), (), kwargs


class PrivateLogger(Logger):
    def setup(self, cfg: object) -> None:
        """gunicorn's handlers, with the receiver's line format and each line written whole."""
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for index, handler in enumerate(list(log.handlers)):
                if type(handler) is logging.StreamHandler:
                    whole = OneWriteHandler(handler.stream)
                    whole._gunicorn = getattr(handler, "_gunicorn", False)  # gunicorn finds its own by this
                    log.handlers[index] = whole
                else:
                    handler.setFormatter(LineFormatter())

    def log(self, lvl: object, msg: object, *args: object, **kwargs: object) -> None:
        if isinstance(lvl, str):
            lvl = self.LOG_LEVELS.get(lvl.lower(), logging.INFO)
        level, text, args, kwargs = private_record(lvl, msg, args, kwargs)
        self.error_log.log(level, text, *args, **kwargs)

    def critical(self, msg: object, *args: object, **kwargs: object) -> None:
        self.log(logging.CRITICAL, msg, *args, **kwargs)

    def error(self, msg: object, *args: object, **kwargs: object) -> None:
        self.log(logging.ERROR, msg, *args, **kwargs)

    def warning(self, msg: object, *args: object, **kwargs: object) -> None:
        self.log(logging.WARNING, msg, *args, **kwargs)

    def info(self, msg: object, *args: object, **kwargs: object) -> None:
        self.log(logging.INFO, msg, *args, **kwargs)

    def debug(self, msg: object, *args: object, **kwargs: object) -> None:
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def exception(self, msg: object, *args: object, **kwargs: object) -> None:
        kwargs["exc_info"] = True
        self.log(logging.ERROR, msg, *args, **kwargs)

    def _access_log_on(self) -> bool:
        enabled = getattr(self, "access_log_enabled", None)
        if enabled is not None:
            return bool(enabled)
        # Older gunicorn (23, what Python 3.9 gets here) has no such property: this is its own test.
        cfg = self.cfg
        return bool(cfg.accesslog or cfg.logconfig or cfg.logconfig_dict or getattr(cfg, "logconfig_json", None)
                    or (cfg.syslog and not cfg.disable_redirect_access_to_syslog))

    def access(self, resp: object, req: object, environ: dict, request_time: object) -> None:
        if not self._access_log_on():
            return
        seconds = request_time.seconds + request_time.microseconds / 1e6
        self.access_log.info("%s %s %.3f", getattr(resp, "status_code", "-"), getattr(resp, "sent", "-"), seconds)
