"""Keep accepted events locally: one JSON line per event, on stdout or appended to a file.

The receiver does this when it has no PostHog token: a person trying it out
sees what arrives, and an organisation without internet access keeps its own
usage data. Each line is written by one ``os.write`` to a descriptor opened
with O_APPEND, so several gunicorn workers appending to one file (or one pipe,
for lines under PIPE_BUF) never interleave inside a line. The file is opened
per batch, so a log rotator may move it away at any time.
"""
from __future__ import annotations

import json
import os

from zomg.receiver.app import DeliveryError
from zomg.telemetry import schema

STDOUT_FD = 1


def event_line(event: dict) -> bytes:
    """One validated event as a JSON line, fields in the schema's order."""
    ordered = {name: event[name] for name in schema.field_names(event["event"])}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"


def _write_all(fd: int, line: bytes) -> None:
    view = memoryview(line)
    while view:
        view = view[os.write(fd, view):]


class LineRecorder:
    """``deliver`` for make_app: append each event as a line to ``path``, or to stdout when None."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path

    def describe(self) -> str:
        return self.path if self.path is not None else "standard output"

    def __call__(self, events: list) -> None:
        lines = [event_line(event) for event in events]
        try:
            if self.path is None:
                for line in lines:
                    _write_all(STDOUT_FD, line)
                return
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            try:
                for line in lines:
                    _write_all(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:
            raise DeliveryError(f"output: cannot record events ({exc.strerror})", status=503) from None
