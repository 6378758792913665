"""Measuring deployment metrics and building the deployment.metrics event.

Only what the local deployment really measures: node shape (CPU count and
memory, bucketed; os; arch), boxes used in the last 7 days, the share of the
file system holding the boxes that is in use, and the bytes the boxes use.
The local backend has no users or services, so the event has no such fields.
Imported only when an event is due (at most once a day) or previewed.
"""
from __future__ import annotations

import os

from zomg.telemetry import schema

ACTIVE_WINDOW = 7 * 24 * 3600
# Walking the boxes to add up their size stops after this many entries: the
# measurement must stay cheap on a deployment with huge workspaces.
WALK_LIMIT = 200_000

_GIB = 1024**3
_MIB = 1024**2


def bucket(value: float, upper_bounds: tuple[float, ...], labels: tuple[str, ...]) -> str:
    """The label of the first bucket whose (inclusive) upper bound holds ``value``; the last takes the rest."""
    for bound, label in zip(upper_bounds, labels):
        if value <= bound:
            return label
    return labels[len(upper_bounds)]


def cpu_bucket(count: int | None) -> str:
    if not count:
        return schema.UNKNOWN
    return bucket(count, (1, 2, 4, 8, 16, 64), schema.CPU_BUCKETS)


def memory_bucket(total_bytes: int | None) -> str:
    if not total_bytes:
        return schema.UNKNOWN
    return bucket(total_bytes, (2 * _GIB, 4 * _GIB, 8 * _GIB, 16 * _GIB, 64 * _GIB, 256 * _GIB), schema.MEMORY_BUCKETS)


def active_boxes_bucket(count: int) -> str:
    return bucket(count, (0, 1, 5, 20, 100), schema.ACTIVE_BOXES_BUCKETS)


def storage_share_bucket(share: float | None) -> str:
    if share is None:
        return schema.UNKNOWN
    return bucket(share, (0.10, 0.25, 0.50, 0.75, 0.90), schema.STORAGE_SHARE_BUCKETS)


def box_bytes_bucket(total: int | None) -> str:
    if total is None:
        return schema.UNKNOWN
    return bucket(total, (_MIB, 100 * _MIB, _GIB, 10 * _GIB, 100 * _GIB), schema.BOX_BYTES_BUCKETS)


def total_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def storage_share(directory: str) -> float | None:
    """Share of the file system holding ``directory`` (or its nearest existing parent) that is used."""
    while not os.path.exists(directory) and os.path.dirname(directory) != directory:
        directory = os.path.dirname(directory)
    try:
        st = os.statvfs(directory)
    except (AttributeError, OSError):
        return None
    if not st.f_blocks:
        return None
    return (st.f_blocks - st.f_bfree) / st.f_blocks


def disk_usage(directory: str, limit: int = WALK_LIMIT) -> int | None:
    """Bytes used by the files under ``directory``; None when it holds more than ``limit`` entries."""
    total, seen, stack = 0, 0, [directory]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                seen += 1
                if seen > limit:
                    return None
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    else:
                        st = entry.stat(follow_symlinks=False)
                        total += getattr(st, "st_blocks", 0) * 512 or st.st_size
                except OSError:
                    continue
    return total


def measure(now: float) -> dict:
    """The metrics fields of a deployment.metrics event, measured now."""
    from zomg import boxes
    from zomg.telemetry import event

    root = boxes.root()
    found, _ = boxes.list_boxes()
    active = sum(1 for box in found if (box.last_used() or 0) >= now - ACTIVE_WINDOW)
    return {
        "os": event.os_name(),
        "arch": event.arch(),
        "cpu_bucket": cpu_bucket(os.cpu_count()),
        "memory_bucket": memory_bucket(total_memory()),
        "active_boxes_bucket": active_boxes_bucket(active),
        "storage_used_bucket": storage_share_bucket(storage_share(root)),
        "box_bytes_bucket": box_bytes_bucket(disk_usage(root) if os.path.isdir(root) else 0),
    }


def build(deployment_id: str, now: float) -> dict:
    """A complete deployment.metrics event, validated against the schema."""
    from zomg import __version__
    from zomg.telemetry import event, files

    built = {
        "event": schema.DEPLOYMENT_METRICS,
        "schema_version": schema.SCHEMA_VERSION,
        "event_id": files.uuid4(),
        "deployment_id": deployment_id,
        "timestamp": event.timestamp(now),
        "cli_version": __version__,
        **measure(now),
    }
    schema.validate_event(built)
    return built
