"""The receiver's log line: one write per line, with a UTC timestamp, the level and the process id.

Several gunicorn workers share one stderr. A line written as two writes (its
text, then its newline, as ``print`` does) can be split by another worker's
line; a single ``write`` of a whole line below the pipe's atomic size
(PIPE_BUF, 4096 bytes on Linux) never is, and an ``O_APPEND`` file gets each
write whole too. So every line the receiver logs, its own and gunicorn's (the
handler below serves ``gunicorn_parts.PrivateLogger``), is formatted in full
and handed to the operating system in one call:

    2026-03-04T05:06:07.123Z [4242] [WARNING] zomg-receiver: PostHog unavailable (...)
"""
from __future__ import annotations

import logging
import os
import re
import sys
import time
from typing import TextIO

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")


def mask_addresses(text: str) -> str:
    """``text`` with every IPv4 literal replaced by ``<address>``: a last guard for lines a server builds."""
    return _IPV4.sub("<address>", text)


def format_line(text: str, level: str = "INFO", when: float | None = None, pid: int | None = None) -> str:
    """``text`` as one log line (ending in a newline); a multi-line text stays one record."""
    when = time.time() if when is None else when
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when))
    millis = int(when * 1000) % 1000
    return f"{stamp}.{millis:03d}Z [{pid or os.getpid()}] [{level}] {text.rstrip(chr(10))}\n"


def write_whole(stream: TextIO, line: str) -> None:
    """Hand ``line`` to the operating system in one write (a stream without a descriptor gets one ``write``)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is None:
        stream.write(line)
        stream.flush()
        return
    data = line.encode("utf-8", "replace")
    stream.flush()  # anything the stream still buffers goes first, in order
    while data:
        try:
            written = os.write(fd, data)
        except InterruptedError:
            continue
        except OSError:
            return  # a closed or broken stderr: a log line is not worth a crash
        data = data[written:]


def emit(text: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Log ``text`` at ``level`` to ``stream`` (standard error by default) as one line, in one write."""
    write_whole(stream or sys.stderr, format_line(text, level))


class LineFormatter(logging.Formatter):
    """logging's records in the receiver's line format (a traceback, if any, stays in the same record)."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return format_line(text, record.levelname, record.created).rstrip("\n")


class OneWriteHandler(logging.Handler):
    """A logging handler that writes each record to a stream as one line in one write."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self.setFormatter(LineFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_whole(self.stream, self.format(record) + "\n")
        except Exception:
            self.handleError(record)
