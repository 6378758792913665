"""Writing results to stdout: one JSON convention and one table layout for every command."""
from __future__ import annotations

import sys


def print_json(value: object) -> None:
    import json

    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths)]
        sys.stdout.write("  ".join(cells).rstrip() + "\n")


def note(line: str) -> None:
    """A message for the person, not the pipe: stderr."""
    sys.stderr.write(line + "\n")
