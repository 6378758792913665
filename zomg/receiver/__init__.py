"""zomg's telemetry receiver: a WSGI application with a forwarder per process (see docs/receiver.md).

``zomg.receiver:app`` is the application for a WSGI server; in production
``gunicorn -c python:zomg.receiver.gunicorn_conf zomg.receiver:app``. It is built from the environment the first
time it is asked for (a gunicorn worker's boot), not when this package is
imported, so importing stays free of side effects. ``make_app`` builds one
with an explicit ``deliver``.
"""
from __future__ import annotations

from zomg.receiver.app import make_app

# Importing the submodule bound the name `app` here to it; drop that, so the
# name means the WSGI application and reaches __getattr__ below.
globals().pop("app", None)

__all__ = ["app", "make_app"]


def __getattr__(name: str) -> object:
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import os

    from zomg.receiver.config import app_from_env

    application = app_from_env(os.environ)
    globals()["app"] = application
    return application
