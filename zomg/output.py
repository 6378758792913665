"""Writing results to stdout: one JSON convention and one table layout for every command."""
from __future__ import annotations

import sys


def write_out(text: str) -> None:
    """Write ``text`` to stdout in one piece, and all of it or BrokenPipeError.

    One write means a reader that stops after the first line (`| head -1`) finds
    the whole of a short result in the pipe, so zomg exits 0. Under
    PYTHONUNBUFFERED, stdout writes straight to the pipe and Python drops the
    part of a long write the pipe did not take when its reader left: the loop
    writes the rest, so zomg learns the reader went away (exit 141).
    """
    out = sys.stdout
    raw = getattr(out, "buffer", None)
    if raw is None:
        out.write(text)
        return
    out.flush()
    view = memoryview(text.encode(out.encoding, out.errors or "strict"))
    while view:
        view = view[raw.write(view) or 0:]
    raw.flush()


def print_json(value: object) -> None:
    import json

    write_out(json.dumps(value, indent=2, sort_keys=True) + "\n")


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in (header, *rows))
    write_out("".join(line + "\n" for line in lines))


def note(line: str) -> None:
    """A message for the person, not the pipe: stderr."""
    sys.stderr.write(line + "\n")
