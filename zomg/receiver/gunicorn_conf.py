"""gunicorn settings for the receiver in production (docs/receiver.md):

    gunicorn -c python:zomg.receiver.gunicorn_conf zomg.receiver:app

gunicorn reads this module once at start; the command line and
GUNICORN_CMD_ARGS override any value here (``--bind``, ``--threads``, ...),
and WEB_CONCURRENCY sets the number of workers, as gunicorn's own default does.

Threads, not the sync worker: a thread waiting on a slow client holds only
itself, reads are bounded (gunicorn_parts.REQUEST_SECONDS), and a worker
takes no more connections than it has threads, so a busy worker leaves new
ones to a free one. The forwarder (one per worker) starts with the worker and
at exit sends what it can of the spool within the graceful timeout; the rest
stays on disk for the next worker. No log line holds a
client's address, a header or a request line.
"""
from __future__ import annotations

import os
import sys
import time

# Workers share the spool on disk; each has its own forwarder thread. Not set here:
# gunicorn's own default reads WEB_CONCURRENCY; when neither it nor --workers
# says, on_starting makes it one per CPU (at least two, so one can restart
# while the other serves).
worker_class = "zomg.receiver.gunicorn_parts.ReceiverWorker"
# Threads mostly wait on sockets (slow clients); 64 per worker keeps 40 slow
# clients from taking every thread of a two-worker receiver.
threads = 64
# No more connections than threads: a worker whose threads are all busy stops
# accepting, and the kernel hands new connections to another worker. Hence no
# keep-alive (an idle kept-alive connection would hold a slot); a CLI sends one
# request per connection anyway.
worker_connections = threads
keepalive = 0
timeout = 30
graceful_timeout = 25
# Time the forwarder leaves itself before gunicorn's SIGKILL.
DRAIN_MARGIN_SECONDS = 2.0

# Request-line and header limits well above what a CLI sends, well below gunicorn's defaults.
limit_request_line = 1024
limit_request_fields = 50
limit_request_field_size = 4096

logger_class = "zomg.receiver.gunicorn_parts.PrivateLogger"
loglevel = "info"
errorlog = "-"
accesslog = None
# Were the access log turned on, PrivateLogger writes status, size and duration only.
access_log_format = '%(s)s %(B)s %(L)s'
# The receiver never reads X-Forwarded-* headers; gunicorn must not turn them into an address either.
forwarded_allow_ips = ""
proxy_allow_ips = ""
# gunicorn 23+ would otherwise open a control socket under $HOME or $XDG_RUNTIME_DIR.
control_socket_disable = True


def _stopping_since(worker: object) -> float:
    return getattr(worker, "_zomg_stop_started", None) or time.monotonic()


def default_workers() -> int:
    return max(2, os.cpu_count() or 1)


def workers_chosen(environ: dict, argv: list) -> bool:
    """Whether WEB_CONCURRENCY, GUNICORN_CMD_ARGS or the command line sets the number of workers."""
    import shlex

    if environ.get("WEB_CONCURRENCY"):
        return True
    try:
        words = shlex.split(environ.get("GUNICORN_CMD_ARGS", "")) + list(argv)
    except ValueError:
        words = list(argv)
    return any(word == "-w" or word.startswith(("-w", "--workers")) for word in words)


def on_starting(server: object) -> None:
    """Check every setting before a socket is opened or a worker started: one line and exit 1 on a bad one."""
    from zomg.receiver.settings import SettingsError, check_env, refuse_to_start

    try:
        check_env(os.environ)
    except SettingsError as exc:
        sys.exit(refuse_to_start(exc))
    if not workers_chosen(os.environ, sys.argv[1:]):
        server.cfg.set("workers", default_workers())
        server.num_workers = server.cfg.workers


def _sink(worker: object) -> object:
    return getattr(getattr(worker, "wsgi", None), "sink", None)


def pre_request(worker: object, req: object) -> None:
    """Nothing: gunicorn's default logs each request's method and path at debug level."""


def post_worker_init(worker: object) -> None:
    start = getattr(_sink(worker), "start", None)
    if start is not None:
        start()


def worker_exit(server: object, worker: object) -> None:
    """Drain the worker's forwarder before the process ends, within what gunicorn still allows."""
    close = getattr(_sink(worker), "close", None)
    if close is None:
        return
    allowed = min(server.cfg.graceful_timeout, server.cfg.timeout)
    spent = time.monotonic() - _stopping_since(worker)
    close(max(0.0, allowed - spent - DRAIN_MARGIN_SECONDS))
