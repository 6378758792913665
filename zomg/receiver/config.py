"""Build the receiver from its environment: forward to PostHog, or record locally.

Read when the application is created (the dev server's start, a gunicorn
worker's boot), never at import, and announced once on stderr so whoever runs
it knows where accepted events go.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import TextIO

from zomg.errors import ConfigError
from zomg.receiver.app import make_app

TOKEN_VAR = "POSTHOG_PROJECT_API_KEY"
HOST_VAR = "POSTHOG_HOST"
OUTPUT_VAR = "ZOMG_RECEIVER_OUTPUT"


def deliverer_from_env(environ: Mapping[str, str], output: str | None = None) -> tuple[Callable, str]:
    """(the deliver callable, a one-line description of where events go)."""
    token = environ.get(TOKEN_VAR, "")
    if token:
        from zomg.receiver.posthog import DEFAULT_HOST, PostHogForwarder

        try:
            forwarder = PostHogForwarder(token, environ.get(HOST_VAR) or DEFAULT_HOST)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return forwarder, f"forwarding accepted events to PostHog at {forwarder.url}"
    from zomg.receiver.record import LineRecorder

    recorder = LineRecorder(output or environ.get(OUTPUT_VAR) or None)
    return recorder, f"{TOKEN_VAR} is not set: not forwarding; appending accepted events to {recorder.describe()}"


def app_from_env(
    environ: Mapping[str, str], output: str | None = None, announce: TextIO | None = None
) -> Callable:
    """The WSGI application configured by ``environ``; says once on ``announce`` where events go."""
    deliver, where = deliverer_from_env(environ, output)
    print(f"zomg-receiver: {where}", file=announce or sys.stderr, flush=True)
    return make_app(deliver)
