"""zomg's telemetry receiver: a WSGI application with a forwarder per process (see docs/receiver.md).

``zomg.receiver:app`` is the application for a WSGI server; in production
``gunicorn -c python:zomg.receiver.gunicorn_conf zomg.receiver:app``. It is built from the environment the first
time it is asked for (a gunicorn worker's boot), not when this package is
imported, so importing stays free of side effects. ``make_app`` builds one
with an explicit ``deliver``.

Layout: ``wsgi`` (the application), ``fastpath`` (the schema compiled for
speed), ``sink`` (what every sink is), ``spool`` (accepted events on disk),
``forwarder``, ``posthog_events`` and ``posthog_client`` (delivery to
PostHog), ``local_sink`` (delivery to a local file), ``store`` (the usage
store), ``report`` (the usage report), ``settings`` (the
environment), ``metrics`` (the figures of /metrics and /readyz), ``log`` (the
log line), ``gunicorn_conf`` and ``gunicorn_parts`` (gunicorn's part of
production serving), ``stack`` (nginx in front of gunicorn:
scripts/receiver-stack), ``__main__`` (the dev server). It
depends on ``zomg.telemetry.schema`` and ``zomg.telemetry.protocol`` (what it
shares with the CLI) and the standard library, nothing else of zomg.
"""
from __future__ import annotations

from zomg.receiver.wsgi import make_app

__all__ = ["app", "make_app"]


def __getattr__(name: str) -> object:
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import os

    from zomg.receiver.settings import app_from_env

    application = app_from_env(os.environ)
    globals()["app"] = application
    return application
