"""Development server: ``python -m zomg.receiver [--host H] [--port P] [--output PATH]``; and the store's tools.

``python -m zomg.receiver report ...`` and ``expire ...`` are the usage
store's command lines (``zomg.receiver.report.cli``).

The standard library's WSGI server, one thread per request, with the same
application and forwarder as production: on Ctrl-C or SIGTERM it stops
listening and sends what it can of the spool to PostHog before it exits (the
rest waits on disk for the next start). It logs no requests: its default
access line would record each client's address. For production, run the
same application under gunicorn (docs/receiver.md).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

EXIT_OK = 0
EXIT_ERROR = 1  # cannot listen; a bad setting exits with settings.EXIT_BAD_SETTING
# A client that stops sending mid-request frees its thread after this long.
REQUEST_TIMEOUT_SECONDS = 30
# At exit, spooled events get this long to reach PostHog (as gunicorn's graceful timeout).
DRAIN_SECONDS = 25


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class ThreadingWSGIServer6(ThreadingWSGIServer):
    address_family = socket.AF_INET6


class QuietHandler(WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT_SECONDS

    def log_message(self, format: str, *args: object) -> None:
        pass


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The usage store's tools: `report` and `expire` (docs/receiver.md, "Your own usage report").
    if argv[:1] == ["report"] or argv[:1] == ["expire"]:
        from zomg.receiver.report.cli import TOOLS

        return TOOLS[argv[0]](argv[1:])
    from zomg.receiver.settings import SettingsError, app_from_env, port_number, refuse_to_start

    parser = argparse.ArgumentParser(
        prog="python -m zomg.receiver",
        description="Receive zomg telemetry batches and forward them to PostHog (or record them locally).",
        allow_abbrev=False,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=8080,
                        help="port to listen on, 0 for any free one (default 8080)")
    parser.add_argument(
        "--output",
        metavar="PATH",
        help="without POSTHOG_PROJECT_API_KEY: append accepted events to PATH instead of standard output",
    )
    args = parser.parse_args(argv)
    try:
        application = app_from_env(os.environ, output=args.output)
    except SettingsError as exc:
        return refuse_to_start(exc)
    server_class = ThreadingWSGIServer6 if ":" in args.host else ThreadingWSGIServer
    try:
        server = make_server(args.host, args.port, application, server_class, QuietHandler)
    except OSError as exc:
        print(f"zomg-receiver: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"zomg-receiver: listening on http://{shown}:{port}", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        close = getattr(application.sink, "close", None)
        if close is not None:
            close(DRAIN_SECONDS)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
