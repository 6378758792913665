"""The receiver's settings: read and check its environment, and build the application from it.

Forward to PostHog, or keep accepted events locally.

Read when the application is created (the dev server's start, a gunicorn
worker's boot) and checked once before anything is served (the dev server's
start, gunicorn's master in ``on_starting``), never at import. A setting that
cannot work stops the receiver there with one line, instead of failing every
request. The start-up line says where accepted events go.

The receiver is its own program: its errors and exit status are decided here,
not by the CLI's ``zomg.errors``.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import TextIO

from zomg.receiver.log import emit
from zomg.receiver.metrics import DIR_VAR as METRICS_DIR_VAR
from zomg.receiver.metrics import Metrics
from zomg.receiver.wsgi import make_app

# The exit status of a receiver stopped at start by a setting (docs/receiver.md).
EXIT_BAD_SETTING = 1


class SettingsError(ValueError):
    """A setting the receiver cannot work with; the message is the one line it stops with."""

    exit_code = EXIT_BAD_SETTING


def refuse_to_start(error: SettingsError) -> int:
    """Say on stderr, in one line, why the receiver does not start; the exit status to stop with."""
    sys.stderr.write(f"zomg-receiver: error: {error}\n")  # one write: the whole line or nothing
    sys.stderr.flush()
    return error.exit_code


TOKEN_VAR = "POSTHOG_PROJECT_API_KEY"
HOST_VAR = "POSTHOG_HOST"
OUTPUT_VAR = "ZOMG_RECEIVER_OUTPUT"
SPOOL_DIR_VAR = "ZOMG_RECEIVER_SPOOL_DIR"
SPOOL_SYNC_VAR = "ZOMG_RECEIVER_SPOOL_SYNC"
STORE_VAR = "ZOMG_RECEIVER_STORE"
# The forwarder's bounds: (variable, Forwarder keyword, type, smallest value).
FORWARDER_VARS = (
    ("ZOMG_RECEIVER_BATCH_EVENTS", "batch_events", int, 1),
    ("ZOMG_RECEIVER_BATCH_INTERVAL", "interval", float, 0.0),
    ("ZOMG_RECEIVER_OUTAGE_SECONDS", "outage_seconds", float, 0.0),
    ("ZOMG_RECEIVER_BACKOFF_CAP", "backoff_cap", float, 0.01),
    ("ZOMG_RECEIVER_PROBE_SECONDS", "probe_seconds", float, 0.01),
    ("ZOMG_RECEIVER_POLL_SECONDS", "poll_seconds", float, 0.01),
)
# The spool's bounds: (variable, Spool keyword, type, smallest value).
SPOOL_VARS = (
    ("ZOMG_RECEIVER_SPOOL_EVENTS", "max_events", int, 100),
    ("ZOMG_RECEIVER_SPOOL_BYTES", "max_bytes", int, 262144),
)


def forwarder_settings(environ: Mapping[str, str]) -> dict:
    """The Forwarder keywords the environment sets; SettingsError for a value that is not a number in range."""
    return _numbers(environ, FORWARDER_VARS)


def spool_settings(environ: Mapping[str, str]) -> dict:
    """The Spool's arguments the environment sets (its directory, created if needed); SettingsError when unusable."""
    from zomg.receiver.spool import SYNC_MODES, default_directory, prepare_directory

    settings = _numbers(environ, SPOOL_VARS)
    directory = environ.get(SPOOL_DIR_VAR, "").strip() or default_directory(environ)
    try:
        settings["directory"] = prepare_directory(os.path.abspath(directory))
    except OSError as exc:
        raise SettingsError(f"spool: {SPOOL_DIR_VAR}: {directory} cannot be used ({exc.strerror or exc})") from None
    sync = environ.get(SPOOL_SYNC_VAR, "").strip().lower() or SYNC_MODES[0]
    if sync not in SYNC_MODES:
        raise SettingsError(f"{SPOOL_SYNC_VAR} must be one of {', '.join(SYNC_MODES)}, not {sync!r}")
    settings["sync"] = sync
    return settings


def _numbers(environ: Mapping[str, str], table: tuple) -> dict:
    settings = {}
    for var, keyword, kind, smallest in table:
        text = environ.get(var, "").strip()
        if not text:
            continue
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value != value or value in (float("inf"),) or value < smallest:
            noun = "a whole number" if kind is int else "a number of seconds"
            raise SettingsError(f"{var} must be {noun} of at least {smallest}, not {text!r}")
        settings[keyword] = value
    return settings


def port_number(text: str) -> int:
    """``--port``'s value (0 to 65535) for the receiver's command lines; argparse's error otherwise."""
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        import argparse

        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return int(text)


def check_output(path: str) -> str:
    """``path`` when its directory exists and it can be appended to; SettingsError otherwise."""
    from zomg.receiver.sink import check_target

    directory = check_target(path, "output", SettingsError)
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise SettingsError(f"output: {path} cannot be written")
    if not os.path.exists(path) and not os.access(directory, os.W_OK | os.X_OK):
        raise SettingsError(f"output: directory {directory} cannot be written")
    return path


def check_env(environ: Mapping[str, str], output: str | None = None) -> str:
    """Check every setting without starting anything; a one-line description of where events go."""
    where = _check_sink(environ, output)
    # The usage store (ZOMG_RECEIVER_STORE), beside forwarding or the local output.
    store = environ.get(STORE_VAR) or None
    if store is None:
        return where
    from zomg.receiver.store import StoreError, check_store

    try:
        check_store(store)
    except StoreError as exc:
        raise SettingsError(str(exc)) from None
    if _store_only(environ, output):
        return f"{TOKEN_VAR} is not set: not forwarding; keeping accepted events in the store {store}"
    return f"{where}; keeping them in the store {store}"


def _store_only(environ: Mapping[str, str], output: str | None) -> bool:
    # With a store, no token and no output, events go to the store alone (not also to stdout).
    return bool(environ.get(STORE_VAR)) and not environ.get(TOKEN_VAR) and not (output or environ.get(OUTPUT_VAR))


def _check_sink(environ: Mapping[str, str], output: str | None) -> str:
    from zomg.receiver.posthog_client import DEFAULT_HOST, check_host, check_token

    token = environ.get(TOKEN_VAR, "")
    if token:
        try:
            check_token(token)
            url = check_host(environ.get(HOST_VAR) or DEFAULT_HOST) + "/batch/"
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        forwarder_settings(environ)
        from zomg.receiver.spool import Spool, SpoolError

        spool = spool_settings(environ)
        directory = spool["directory"]
        try:
            Spool(**spool).check()
        except SpoolError as exc:
            raise SettingsError(f"spool: {exc}") from None
        return f"forwarding accepted events to PostHog at {url}, through the spool in {directory}"
    path = output or environ.get(OUTPUT_VAR) or None
    where = "standard output" if path is None else check_output(path)
    return f"{TOKEN_VAR} is not set: not forwarding; appending accepted events to {where}"


def deliverer_from_env(environ: Mapping[str, str], output: str | None = None) -> tuple[Callable, str]:
    """(the deliver callable, a one-line description of where events go)."""
    where = check_env(environ, output)
    store = environ.get(STORE_VAR) or None
    if store is not None:
        from zomg.receiver.store import Store, StoreSink

        return StoreSink(Store(store), None if _store_only(environ, output) else _sink(environ, output)), where
    return _sink(environ, output), where


def _sink(environ: Mapping[str, str], output: str | None) -> Callable:
    token = environ.get(TOKEN_VAR, "")
    if token:
        from zomg.receiver.forwarder import Forwarder
        from zomg.receiver.posthog_client import DEFAULT_HOST, PostHogClient
        from zomg.receiver.spool import Spool

        client = PostHogClient(token, environ.get(HOST_VAR) or DEFAULT_HOST)
        forwarder = Forwarder(client, Spool(**spool_settings(environ)), **forwarder_settings(environ))
        # Sending starts with the process, not its first request: a previous run may have left events.
        forwarder.start()
        return forwarder
    from zomg.receiver.local_sink import LocalSink

    return LocalSink(output or environ.get(OUTPUT_VAR) or None)


def app_from_env(
    environ: Mapping[str, str], output: str | None = None, announce: TextIO | None = None
) -> Callable:
    """The WSGI application configured by ``environ``; says once on ``announce`` where events go.

    Its figures are published in ``ZOMG_RECEIVER_METRICS_DIR`` when that is set
    (gunicorn's master sets it for its workers), so that /metrics sums them all.
    """
    deliver, where = deliverer_from_env(environ, output)
    emit(f"zomg-receiver: {where}", stream=announce)
    return make_app(deliver, Metrics(environ.get(METRICS_DIR_VAR) or None, sink=deliver))
