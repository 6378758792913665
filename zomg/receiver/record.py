"""Keep accepted events locally: one JSON line per event, on stdout or appended to a file.

The receiver does this when it has no PostHog token: a person trying it out
sees what arrives, and an organisation without internet access keeps its own
usage data. Lines are written to a descriptor opened with O_APPEND: to a file,
a batch's lines in one ``os.write`` (the kernel appends it whole, so gunicorn
workers sharing the file never interleave); to stdout, which may be a pipe
shared by workers, one ``os.write`` per line (a line is far below PIPE_BUF, so
it arrives whole). The file is opened per batch, so a log rotator may move it
away at any time.
"""
from __future__ import annotations

import os

from zomg.receiver.app import DeliveryError
from zomg.telemetry import schema

STDOUT_FD = 1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class LineRecorder:
    """``deliver`` for make_app: append each event as a line to ``path``, or to stdout when None."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path

    def describe(self) -> str:
        return self.path if self.path is not None else "standard output"

    def __call__(self, events: list) -> None:
        # Rebuilt field by field from the schema (its order, its types), not copied from the request.
        self.record_texts([schema.encode_event(event) for event in events])

    def record_texts(self, texts: list) -> None:
        """Append events given as their compact JSON (encode_event's, or the schema's canonical check's)."""
        try:
            if self.path is None:
                for text in texts:
                    _write_all(STDOUT_FD, (text + "\n").encode("ascii"))
                return
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(self.path, flags, 0o600)
            try:
                _write_all(fd, ("\n".join(texts) + "\n").encode("ascii"))
            finally:
                os.close(fd)
        except OSError as exc:
            raise DeliveryError(f"output: cannot record events ({exc.strerror})", status=503) from None
