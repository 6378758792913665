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

PrivateLogger is gunicorn's logger with nothing of a client in it: gunicorn
formats some messages with the client's address or the request itself
("Invalid request from ip=..."); those are cut to their fixed start and
logged at debug level, tracebacks become the exception's type name, any
IPv4 literal left is masked, and the access log (when an operator turns it
on) holds status, size and duration only, whatever access_log_format says.
"""
from __future__ import annotations

import logging
import re
import socket
import time
import weakref

from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker

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
_IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")


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
        text = _IPV4.sub("<address>", text)
    return level, text.replace("%", "%%"), (), kwargs


class PrivateLogger(Logger):
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
