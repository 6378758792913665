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

# Workers share the spool on disk and the directory where they publish their
# figures (metrics.py); each has its own forwarder thread.
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


# One per CPU, at least two (so one can restart while the other serves), unless
# WEB_CONCURRENCY says (gunicorn's own default reads it); --workers and
# GUNICORN_CMD_ARGS override this file. A setting, not a hook's doing: a reload
# (SIGHUP) reads the configuration again and must find the same number.
if not os.environ.get("WEB_CONCURRENCY"):
    workers = default_workers()


def on_starting(server: object) -> None:
    """Check every setting before a socket is opened or a worker started: one line and exit 1 on a bad one.

    Then make the directory where workers publish their figures for /metrics
    and /readyz (``ZOMG_RECEIVER_METRICS_DIR`` if the operator set it, else a
    private temporary one removed at exit); the workers inherit its name.
    """
    import tempfile

    from zomg.receiver import metrics
    from zomg.receiver.settings import SettingsError, check_env, refuse_to_start

    try:
        check_env(os.environ)
    except SettingsError as exc:
        sys.exit(refuse_to_start(exc))
    chosen = os.environ.get(metrics.DIR_VAR)
    if chosen:
        metrics.prepare(chosen)
    else:
        os.environ[metrics.DIR_VAR] = tempfile.mkdtemp(prefix="zomg-receiver-metrics-")
        server._zomg_metrics_temporary = os.environ[metrics.DIR_VAR]


def on_exit(server: object) -> None:
    import shutil

    temporary = getattr(server, "_zomg_metrics_temporary", None)
    if temporary:
        shutil.rmtree(temporary, ignore_errors=True)


def child_exit(server: object, worker: object) -> None:
    """A worker ended (stopped, recycled, killed): keep its counters in the totals, drop its gauges."""
    from zomg.receiver import metrics

    directory = os.environ.get(metrics.DIR_VAR)
    if directory:
        metrics.retire(directory, worker.pid)


def _sink(worker: object) -> object:
    return getattr(getattr(worker, "wsgi", None), "sink", None)


def _metrics(worker: object) -> object:
    return getattr(getattr(worker, "wsgi", None), "metrics", None)


def pre_request(worker: object, req: object) -> None:
    """Nothing: gunicorn's default logs each request's method and path at debug level."""


def post_worker_init(worker: object) -> None:
    for part in (_sink(worker), _metrics(worker)):
        start = getattr(part, "start", None)
        if start is not None:
            start()


def worker_exit(server: object, worker: object) -> None:
    """Drain the worker's forwarder before the process ends, within what gunicorn still allows."""
    close = getattr(_sink(worker), "close", None)
    if close is not None:
        allowed = min(server.cfg.graceful_timeout, server.cfg.timeout)
        spent = time.monotonic() - _stopping_since(worker)
        close(max(0.0, allowed - spent - DRAIN_MARGIN_SECONDS))
    stop = getattr(_metrics(worker), "stop", None)
    if stop is not None:
        stop()  # the figures after the drain, for the master to fold into the totals
