"""The local sink (``LocalSink``): accepted events kept as one JSON line each, on stdout or appended to a file.

The receiver does this when it has no PostHog token: a person trying it out
sees what arrives, and an organisation without internet access keeps its own
usage data. Lines are written to a descriptor opened with O_APPEND: to a file,
a batch's lines in one ``os.write`` (the kernel appends it whole, so gunicorn
workers sharing the file never interleave); to stdout, which may be a pipe
shared by workers, one ``os.write`` per line (a line is far below PIPE_BUF, so
it arrives whole). Before each batch the path is checked against the open
file (as logging's WatchedFileHandler does): when a log rotator moved or
deleted it, a new file is opened, so rotation needs no signal or restart.
"""
from __future__ import annotations

import os
import threading

from zomg.receiver.sink import DeliveryError, Sink

STDOUT_FD = 1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class LocalSink(Sink):
    """The sink that appends each event as a line to ``path``, or to stdout when None."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._fd: int | None = None
        self._identity: tuple | None = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        return self.path if self.path is not None else "standard output"

    def deliver_lines(self, lines: bytes) -> None:
        """Append events given as the receiver's JSON lines (rebuilt from the schema, never the request's text)."""
        try:
            if self.path is None:
                for line in lines.rstrip(b"\n").split(b"\n"):
                    _write_all(STDOUT_FD, line + b"\n")
                return
            _write_all(self._current_fd(), lines)
        except OSError as exc:
            raise DeliveryError(f"output: cannot record events ({exc.strerror})", status=503) from None

    def _current_fd(self) -> int:
        with self._lock:
            try:
                st = os.stat(self.path)
                identity = (st.st_dev, st.st_ino)
            except FileNotFoundError:
                identity = None
            if self._fd is None or identity != self._identity:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
                fd = os.open(self.path, flags, 0o600)
                st = os.fstat(fd)
                self._fd, self._identity = fd, (st.st_dev, st.st_ino)
            return self._fd
