"""Reading telemetry's own small files defensively, and putting a damaged one out of the way.

Every file telemetry reads (the user's config, the system file, the spool's
state files) may have been damaged by a full disk, an editor or a test: wrong
types, NaN, Infinity, numbers with thousands of digits, nesting deep enough
to exhaust the parser's recursion, a directory where a file belongs. None of
that may raise past these helpers: a value that cannot be used reads as
absent, and the caller falls back to its documented default.
"""
from __future__ import annotations

import json
import os

_MAX_BYTES = 1 << 20  # far above anything zomg writes; a bigger file is not zomg's


def read_json(path: str) -> tuple[object, str | None, bool]:
    """(parsed JSON, problem, exists). Never raises."""
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_BYTES + 1)
    except (FileNotFoundError, NotADirectoryError):
        return None, None, False
    except IsADirectoryError:
        return None, "is a directory, not a file", True
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror or exc}", True
    if len(raw) > _MAX_BYTES:
        return None, "is too large", True
    try:
        return json.loads(raw.decode("utf-8")), None, True
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        return None, "is not valid JSON", True


def number(value: object, low: float, high: float) -> float | None:
    """``value`` as a float when it is a JSON number in [low, high]; None for NaN, infinities, bools, the rest."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if low <= value <= high else None  # NaN fails both comparisons


def whole(value: object, low: int, high: int) -> int | None:
    """``value`` when it is a JSON integer (not a bool, not 1.0) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if low <= value <= high else None


def clear_path(path: str) -> None:
    """Make room for a file at ``path``: remove a file, or a directory that stands there.

    A directory that holds something is renamed aside (``<name>.damaged-<random>``)
    rather than deleted: what is in it is not zomg's to destroy.
    """
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            try:
                os.rmdir(path)
            except OSError:
                os.replace(path, f"{path}.damaged-{os.urandom(3).hex()}")
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
