"""The telemetry wire schema: the one source of truth for the CLI and the receiver.

The CLI builds its events against these definitions and the receiver validates
incoming batches with ``validate_batch``. Nothing else in zomg spells a field
name, an allowed value or a limit of the wire format.

Wire format: ``POST <endpoint>`` with ``{"events": [EVENT, ...]}`` (1 to
``MAX_BATCH`` events); each EVENT has exactly the keys its event type defines.
"""
from __future__ import annotations

import re

from zomg.errors import ERROR_CLASSES

SCHEMA_VERSION = 1
MAX_BATCH = 100
BATCH_KEY = "events"

CLI_COMMAND = "cli.command"

OS_VALUES = ("linux", "darwin", "windows", "freebsd", "other")
ARCH_VALUES = ("x86_64", "arm64", "x86", "arm", "other")
DURATION_BUCKETS = ("<1s", "1s-10s", "10s-1m", "1m-10m", ">10m")
RESULTS = ("success", "error", "interrupted")

# Names the parser defines are lowercase words; the patterns keep anything else
# (a path, a sentence, a secret) from ever passing the receiver.
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")
_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z\Z")
_VERSION = re.compile(r"[0-9][0-9A-Za-z.+!-]{0,31}\Z")
_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}\Z")
_FLAG = re.compile(r"--?[a-z0-9][a-z0-9-]{0,31}\Z")
MAX_FLAGS = 32


class SchemaError(ValueError):
    """A payload that does not match the schema; the message names the field."""


# --- field checkers -----------------------------------------------------------
# Each returns None when the value is valid, else a short reason.


def _const(expected: object):
    def check(value: object) -> str | None:
        if type(value) is not type(expected) or value != expected:
            return f"must be {expected!r}"
        return None

    return check


def _enum(allowed: tuple, nullable: bool = False):
    allowed_set = frozenset(allowed)

    def check(value: object) -> str | None:
        if value is None and nullable:
            return None
        if type(value) is not str or value not in allowed_set:
            return "must be one of " + ", ".join(allowed) + (" or null" if nullable else "")
        return None

    return check


def _pattern(regex: re.Pattern, what: str, nullable: bool = False):
    def check(value: object) -> str | None:
        if value is None and nullable:
            return None
        if type(value) is not str or regex.match(value) is None:
            return f"must be {what}"
        return None

    return check


def _check_timestamp(value: object) -> str | None:
    m = _TIMESTAMP.match(value) if type(value) is str else None
    if m is None:
        return "must be a UTC timestamp YYYY-MM-DDTHH:MM:SSZ"
    year, month, day, hour, minute, second = (int(g) for g in m.groups())
    days = (31, 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28,
            31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    if not (1 <= month <= 12 and 1 <= day <= days[month - 1] and hour < 24 and minute < 60 and second < 60):
        return "must be a real UTC date and time"
    return None


def _check_bool(value: object) -> str | None:
    return None if type(value) is bool else "must be true or false"


def _check_flags(value: object) -> str | None:
    if type(value) is not list:
        return "must be a list of option names"
    if len(value) > MAX_FLAGS:
        return f"must hold at most {MAX_FLAGS} option names"
    previous = ""
    for item in value:
        if type(item) is not str or _FLAG.match(item) is None:
            return "must hold only option names like --force"
        if item <= previous:
            return "must be sorted and unique"
        previous = item
    return None


_check_uuid = _pattern(_UUID4, "a lowercase random UUID (version 4)")


# Every field of cli.command v1: (name, checker, what a user is told about it).
CLI_COMMAND_FIELDS: tuple[tuple[str, object, str], ...] = (
    ("event", _const(CLI_COMMAND), f'always "{CLI_COMMAND}"'),
    ("schema_version", _const(SCHEMA_VERSION), f"always {SCHEMA_VERSION}"),
    ("event_id", _check_uuid, "a random UUID, new for every event (lets duplicates be dropped)"),
    ("installation_id", _check_uuid, "a random UUID made on first use; not derived from anything about you"),
    ("timestamp", _check_timestamp, "when the command ran, UTC, to the second"),
    ("cli_version", _pattern(_VERSION, "a version string"), "the zomg version"),
    ("command", _pattern(_NAME, "a command name or null", nullable=True),
     "the top-level command as the parser defines it (box, exec, ...), or null"),
    ("subcommand", _pattern(_NAME, "a subcommand name or null", nullable=True),
     "the second-level command as the parser defines it (create, list, ...), or null"),
    ("flags", _check_flags, "sorted names of the options you gave that zomg defines (--force), never their values"),
    ("os", _enum(OS_VALUES), " | ".join(OS_VALUES)),
    ("arch", _enum(ARCH_VALUES), " | ".join(ARCH_VALUES)),
    ("ci", _check_bool, "true when running under a CI system"),
    ("duration_bucket", _enum(DURATION_BUCKETS), " | ".join(DURATION_BUCKETS)),
    ("result", _enum(RESULTS), " | ".join(RESULTS)),
    ("error_class", _enum(ERROR_CLASSES, nullable=True), "null, or when result is error: " + " | ".join(ERROR_CLASSES)),
)


def _cross_check_cli_command(event: dict) -> str | None:
    if (event["result"] == "error") != (event["error_class"] is not None):
        return "error_class: must be set exactly when result is error"
    return None


# event name -> (ordered fields, check across fields). Other event types
# (deployment metrics) register here, so one batch may carry several kinds.
EVENT_TYPES: dict[str, tuple[tuple[tuple[str, object, str], ...], object]] = {
    CLI_COMMAND: (CLI_COMMAND_FIELDS, _cross_check_cli_command),
}


def field_names(event_name: str) -> tuple[str, ...]:
    return tuple(name for name, _, _ in EVENT_TYPES[event_name][0])


def validate_event(event: object, index: int = 0) -> None:
    """Raise SchemaError unless ``event`` is exactly one valid event of a known type."""
    where = f"events[{index}]"
    if type(event) is not dict:
        raise SchemaError(f"{where}: must be an object")
    name = event.get("event")
    spec = EVENT_TYPES.get(name) if type(name) is str else None
    if spec is None:
        raise SchemaError(f"{where}.event: unknown event type")
    fields, cross_check = spec
    if len(event) != len(fields) or any(key not in event for key, _, _ in fields):
        expected = {key for key, _, _ in fields}
        unknown = sorted(str(k) for k in event if k not in expected)
        if unknown:
            raise SchemaError(f"{where}.{unknown[0][:40]}: unknown field")
        missing = [key for key, _, _ in fields if key not in event]
        raise SchemaError(f"{where}.{missing[0]}: missing field")
    for key, check, _ in fields:
        reason = check(event[key])
        if reason is not None:
            raise SchemaError(f"{where}.{key}: {reason}")
    reason = cross_check(event) if cross_check else None
    if reason is not None:
        raise SchemaError(f"{where}.{reason}")


def validate_batch(body: object) -> list:
    """Validate a decoded request body; return its events or raise SchemaError."""
    if type(body) is not dict:
        raise SchemaError("body: must be a JSON object")
    if len(body) != 1 or BATCH_KEY not in body:
        extra = sorted(str(k) for k in body if k != BATCH_KEY)
        if extra:
            raise SchemaError(f"{extra[0][:40]}: unknown top-level field")
        raise SchemaError(f"{BATCH_KEY}: missing")
    events = body[BATCH_KEY]
    if type(events) is not list:
        raise SchemaError(f"{BATCH_KEY}: must be a list")
    if not 1 <= len(events) <= MAX_BATCH:
        raise SchemaError(f"{BATCH_KEY}: must hold 1 to {MAX_BATCH} events, not {len(events)}")
    for index, event in enumerate(events):
        validate_event(event, index)
    return events


def encode_batch(events: list) -> bytes:
    """The exact bytes POSTed for ``events`` (and printed in log mode)."""
    import json

    return json.dumps({BATCH_KEY: events}, separators=(",", ":"), ensure_ascii=True).encode("ascii")
