"""What a sink is: the one interface between the application and wherever accepted events go.

The application (``wsgi.make_app``) hands every validated batch to a sink:
the forwarder (its spool, then PostHog), the local sink (JSON lines in a
file or on stdout), or the usage store's sink wrapped around either. A sink
keeps the batch or raises ``DeliveryError``, and the client is told to keep
it and retry.

Every sink writes one method, ``deliver_lines``: the batch as the
receiver's JSON lines (ASCII bytes, one event a line, fields in the
schema's order), which is what the canonical check hands on without
decoding. Calling a sink with decoded events (a body in any other form)
encodes them to the same lines first (``Sink.__call__``), so both ways
into a sink agree byte for byte. ``make_app`` also takes any plain callable
of decoded events (the tests' recorders do that).

``check_target`` is the check every file a sink writes to passes at start
(the local sink's output, the usage store).
"""
from __future__ import annotations

import os
from collections.abc import Callable

from zomg.receiver.fastpath import encode_lines


class DeliveryError(Exception):
    """Accepted events could not be handed on; the client keeps them and retries."""

    def __init__(self, message: str, status: int = 502, retry_after: int | None = None,
                 reason: str = "error") -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.reason = reason  # one of metrics.REFUSAL_REASONS: what /metrics counts it as


class Sink:
    """``deliver`` for make_app: keeps a validated batch, as lines or decoded events, or raises DeliveryError."""

    def __call__(self, events: list) -> None:
        self.deliver_lines(encode_lines(events))

    def deliver_lines(self, lines: bytes) -> None:
        """Keep validated events given as the receiver's JSON lines; DeliveryError when they cannot be kept."""
        raise NotImplementedError(f"{type(self).__name__} must say where events go")


def hand_on(deliver: Callable, lines: bytes) -> None:
    """Give validated ``lines`` to ``deliver``: as lines to a sink, decoded to a plain callable."""
    deliver_lines = getattr(deliver, "deliver_lines", None)
    if deliver_lines is not None:
        deliver_lines(lines)
    else:
        import json

        deliver([json.loads(line) for line in lines.splitlines()])


def check_target(path: str, what: str, error: type[Exception]) -> str:
    """The directory of ``path``, a file a sink is to write; ``error`` unless it exists and ``path`` is no directory.

    ``what`` (``output``, ``store``) starts the message, the one line the receiver stops with.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise error(f"{what}: directory {directory} does not exist")
    if os.path.isdir(path):
        raise error(f"{what}: {path} is a directory")
    return directory
