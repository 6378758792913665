"""The telemetry wire schema: the one source of truth for the CLI and the receiver.

The CLI builds its events against these definitions and the receiver validates
incoming batches against it. Nothing else in zomg spells a field name, an
allowed value or a limit of the wire format; the JSON Schema published for
other tools is generated from here too (``json_schema()``), and so are the
receiver's fast paths (``zomg.receiver.fastpath``). This module imports nothing
from zomg: the CLI and the receiver both depend on it, never it on them.

Wire format: ``POST <endpoint>`` with ``{"events": [EVENT, ...]}`` (1 to
``MAX_BATCH`` events, at most ``MAX_BODY_BYTES`` bytes); each EVENT has exactly
the keys its event type defines.
"""
from __future__ import annotations

import re

SCHEMA_VERSION = 1
MAX_BATCH = 100
BATCH_KEY = "events"
# The largest request body a receiver accepts. The largest valid batch, encoded
# by encode_batch, is well below it (a test checks), so it only stops abuse.
MAX_BODY_BYTES = 256 * 1024

CLI_COMMAND = "cli.command"

OS_VALUES = ("linux", "darwin", "windows", "freebsd", "other")
ARCH_VALUES = ("x86_64", "arm64", "x86", "arm", "other")
DURATION_BUCKETS = ("<1s", "1s-10s", "10s-1m", "1m-10m", ">10m")
RESULTS = ("success", "error", "interrupted")
# The coarse error classes an event may carry, in the order they are published.
# zomg.errors decides which class each failure has; a test checks that every
# class it can produce is one of these.
ERROR_CLASSES = (
    "usage",
    "config",
    "not_found",
    "permission",
    "conflict",
    "network",
    "timeout",
    "subprocess",
    "internal",
)

# Names the parser defines are lowercase words; the patterns keep anything else
# (a path, a sentence, a secret) from ever passing the receiver. Each is written
# once, without anchors, so the checks and the JSON Schema cannot disagree.
# ASCII classes only: `\d` would let any Unicode digit through.
_UUID4 = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
_TIMESTAMP = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"
# Exactly the dates of the proleptic Gregorian calendar (29 February only in
# leap years: divisible by 4, and centuries only when divisible by 400), so a
# single pattern says "a real date and time", here and in the JSON Schema.
_DATE = (
    "(?:[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
    "|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)"
)
_TIMESTAMP_EXACT = _DATE + "T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z"
_VERSION = "[0-9][0-9A-Za-z.+!-]{0,31}"
_NAME = "[a-z][a-z0-9-]{0,31}"
_FLAG = "--?[a-z0-9][a-z0-9-]{0,31}"
MAX_FLAGS = 32

_JSON_TYPES = {str: "string", int: "integer", bool: "boolean"}


class SchemaError(ValueError):
    """A payload that does not match the schema; the message names the field."""


# --- field rules --------------------------------------------------------------
# A rule is called with a value and returns None when it is valid, else a short
# reason; json_schema() says the same as a JSON Schema fragment. The receiver's
# fast paths (zomg.receiver.fastpath) are generated from each rule's
# attributes (allowed values, pattern body, nullable); tests check that every
# generated form agrees with the rule's call. So the rule classes and those
# attributes are public: they are the schema's seam with the receiver.


class Regex:
    """A fully anchored pattern, compiled on first use: the CLI checks a few
    events per send and should not pay for patterns it never checks."""

    def __init__(self, body: str) -> None:
        self.body = body
        self._match = None

    def matcher(self):
        if self._match is None:
            self._match = re.compile(self.body + r"\Z").match
        return self._match

    def __call__(self, value: str) -> object:
        return (self._match or self.matcher())(value)


def _nullable_type(json_type: str, nullable: bool) -> object:
    return [json_type, "null"] if nullable else json_type


class Const:
    def __init__(self, expected: object) -> None:
        self.expected = expected
        self.reason = f"must be {expected!r}"

    def __call__(self, value: object) -> str | None:
        if type(value) is not type(self.expected) or value != self.expected:
            return self.reason
        return None

    def json_schema(self) -> dict:
        return {"type": _JSON_TYPES[type(self.expected)], "const": self.expected}


class Enum:
    def __init__(self, allowed: tuple, nullable: bool = False) -> None:
        self.allowed = allowed
        self.allowed_set = frozenset(allowed)
        self.nullable = nullable
        self.reason = "must be one of " + ", ".join(allowed) + (" or null" if nullable else "")

    def __call__(self, value: object) -> str | None:
        if value is None and self.nullable:
            return None
        if type(value) is not str or value not in self.allowed_set:
            return self.reason
        return None

    def json_schema(self) -> dict:
        values = list(self.allowed) + ([None] if self.nullable else [])
        return {"type": _nullable_type("string", self.nullable), "enum": values}


class Pattern:
    def __init__(self, body: str, what: str, nullable: bool = False) -> None:
        self.body = body
        self.match = Regex(body)
        self.nullable = nullable
        self.reason = f"must be {what}"

    def __call__(self, value: object) -> str | None:
        if value is None and self.nullable:
            return None
        if type(value) is not str or self.match(value) is None:
            return self.reason
        return None

    def json_schema(self) -> dict:
        return {"type": _nullable_type("string", self.nullable), "pattern": f"^{self.body}$"}


class Timestamp:
    form = "must be a UTC timestamp YYYY-MM-DDTHH:MM:SSZ"
    unreal = "must be a real UTC date and time"

    def __init__(self) -> None:
        self.match_form = Regex(_TIMESTAMP)
        self.match_exact = Regex(_TIMESTAMP_EXACT)

    def __call__(self, value: object) -> str | None:
        if type(value) is not str or self.match_form(value) is None:
            return self.form
        if self.match_exact(value) is None:
            return self.unreal
        return None

    def json_schema(self) -> dict:
        return {"type": "string", "pattern": f"^{_TIMESTAMP_EXACT}$", "format": "date-time"}


class Bool:
    reason = "must be true or false"

    def __call__(self, value: object) -> str | None:
        return None if type(value) is bool else self.reason

    def json_schema(self) -> dict:
        return {"type": "boolean"}


class Flags:
    def __init__(self) -> None:
        self.match = Regex(_FLAG)

    def __call__(self, value: object) -> str | None:
        if type(value) is not list:
            return "must be a list of option names"
        if len(value) > MAX_FLAGS:
            return f"must hold at most {MAX_FLAGS} option names"
        previous = ""
        match = self.match.matcher()
        for item in value:
            if type(item) is not str or match(item) is None:
                return "must hold only option names like --force"
            if item <= previous:
                return "must be sorted and unique"
            previous = item
        return None

    def json_schema(self) -> dict:
        # JSON Schema cannot say "sorted"; it can say unique.
        return {
            "type": "array",
            "maxItems": MAX_FLAGS,
            "uniqueItems": True,
            "items": {"type": "string", "pattern": f"^{_FLAG}$"},
        }


class SetExactlyWhen:
    """A check across fields: ``field`` is non-null exactly when ``other`` is ``value``."""

    def __init__(self, field: str, other: str, value: str) -> None:
        self.field, self.other, self.value = field, other, value
        self.reason = f"{field}: must be set exactly when {other} is {value}"

    def __call__(self, event: dict) -> str | None:
        if (event[self.other] == self.value) != (event[self.field] is not None):
            return self.reason
        return None

    def json_schema(self) -> dict:
        return {
            "if": {"properties": {self.other: {"const": self.value}}},
            "then": {"properties": {self.field: {"not": {"type": "null"}}}},
            "else": {"properties": {self.field: {"type": "null"}}},
        }


_check_uuid = Pattern(_UUID4, "a lowercase random UUID (version 4)")


# Every field of cli.command v1: (name, checker, what a user is told about it).
CLI_COMMAND_FIELDS: tuple[tuple[str, object, str], ...] = (
    ("event", Const(CLI_COMMAND), f'always "{CLI_COMMAND}"'),
    ("schema_version", Const(SCHEMA_VERSION), f"always {SCHEMA_VERSION}"),
    ("event_id", _check_uuid, "a random UUID, new for every event (lets duplicates be dropped)"),
    ("installation_id", _check_uuid, "a random UUID made on first use; not derived from anything about you"),
    ("timestamp", Timestamp(), "when the command ran, UTC, to the second"),
    ("cli_version", Pattern(_VERSION, "a version string"), "the zomg version"),
    ("command", Pattern(_NAME, "a command name or null", nullable=True),
     "the top-level command as the parser defines it (box, exec, ...), or null"),
    ("subcommand", Pattern(_NAME, "a subcommand name or null", nullable=True),
     "the second-level command as the parser defines it (create, list, ...), or null"),
    ("flags", Flags(), "sorted names of the options you gave that zomg defines (--force), never their values"),
    ("os", Enum(OS_VALUES), " | ".join(OS_VALUES)),
    ("arch", Enum(ARCH_VALUES), " | ".join(ARCH_VALUES)),
    ("ci", Bool(), "true when running under a CI system"),
    ("duration_bucket", Enum(DURATION_BUCKETS), " | ".join(DURATION_BUCKETS)),
    ("result", Enum(RESULTS), " | ".join(RESULTS)),
    ("error_class", Enum(ERROR_CLASSES, nullable=True), "null, or when result is error: " + " | ".join(ERROR_CLASSES)),
)

_cross_check_cli_command = SetExactlyWhen("error_class", "result", "error")


# deployment.metrics v1: sent only after an opt-in in `zomg setup`. Its own
# random deployment_id, never the installation id: the two data sets share no key.
DEPLOYMENT_METRICS = "deployment.metrics"
UNKNOWN = "unknown"  # the measurement is not possible on this system
CPU_BUCKETS = ("1", "2", "3-4", "5-8", "9-16", "17-64", ">64")
MEMORY_BUCKETS = ("<=2GiB", "2-4GiB", "4-8GiB", "8-16GiB", "16-64GiB", "64-256GiB", ">256GiB")
ACTIVE_BOXES_BUCKETS = ("0", "1", "2-5", "6-20", "21-100", ">100")
STORAGE_SHARE_BUCKETS = ("<=10%", "10-25%", "25-50%", "50-75%", "75-90%", ">90%")
BOX_BYTES_BUCKETS = ("<=1MiB", "1-100MiB", "100MiB-1GiB", "1-10GiB", "10-100GiB", ">100GiB")


def _or_unknown(buckets: tuple) -> tuple:
    return buckets + (UNKNOWN,)


DEPLOYMENT_METRICS_FIELDS: tuple[tuple[str, object, str], ...] = (
    ("event", Const(DEPLOYMENT_METRICS), f'always "{DEPLOYMENT_METRICS}"'),
    ("schema_version", Const(SCHEMA_VERSION), f"always {SCHEMA_VERSION}"),
    ("event_id", _check_uuid, "a random UUID, new for every event (lets duplicates be dropped)"),
    ("deployment_id", _check_uuid,
     "a random UUID made when you opt in, deleted when you opt out; never the installation id"),
    ("timestamp", Timestamp(), "when the metrics were measured, UTC, to the second"),
    ("cli_version", Pattern(_VERSION, "a version string"), "the zomg version"),
    ("os", Enum(OS_VALUES), " | ".join(OS_VALUES)),
    ("arch", Enum(ARCH_VALUES), " | ".join(ARCH_VALUES)),
    ("cpu_bucket", Enum(_or_unknown(CPU_BUCKETS)), "CPU count: " + " | ".join(_or_unknown(CPU_BUCKETS))),
    ("memory_bucket", Enum(_or_unknown(MEMORY_BUCKETS)),
     "physical memory: " + " | ".join(_or_unknown(MEMORY_BUCKETS))),
    ("active_boxes_bucket", Enum(ACTIVE_BOXES_BUCKETS),
     "boxes used (exec or console) in the last 7 days: " + " | ".join(ACTIVE_BOXES_BUCKETS)),
    ("storage_used_bucket", Enum(_or_unknown(STORAGE_SHARE_BUCKETS)),
     "share of the file system holding the boxes that is in use: " + " | ".join(_or_unknown(STORAGE_SHARE_BUCKETS))),
    ("box_bytes_bucket", Enum(_or_unknown(BOX_BYTES_BUCKETS)),
     "disk space used by all boxes: " + " | ".join(_or_unknown(BOX_BYTES_BUCKETS))),
)


# event name -> (ordered fields, check across fields). Other event types
# (deployment metrics) register here, so one batch may carry several kinds.
# A checker is any callable (value -> None or reason); the rules above are also
# compiled into the receiver's fast paths and published as JSON Schema.
EVENT_TYPES: dict[str, tuple[tuple[tuple[str, object, str], ...], object]] = {
    CLI_COMMAND: (CLI_COMMAND_FIELDS, _cross_check_cli_command),
    DEPLOYMENT_METRICS: (DEPLOYMENT_METRICS_FIELDS, None),
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


def batch_events(body: object) -> list:
    """The events list of a decoded request body, its envelope checked; SchemaError otherwise.

    The events themselves are not checked yet: validate_batch checks them here,
    and the receiver's fast path with code generated from the same rules.
    """
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
    return events


def validate_batch(body: object) -> list:
    """Validate a decoded request body; return its events or raise SchemaError.

    The reference check, one rule at a time; the receiver reaches the same
    verdicts faster with zomg.receiver.fastpath.validate_batch.
    """
    events = batch_events(body)
    for index, event in enumerate(events):
        validate_event(event, index)
    return events


def encode_batch(events: list) -> bytes:
    """The exact bytes POSTed for ``events`` (and printed in log mode)."""
    import json

    return json.dumps({BATCH_KEY: events}, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def json_schema() -> dict:
    """The wire format as a JSON Schema (draft 7), generated from the rules above.

    For people and other tools; zomg validates with validate_batch. Two things
    the rules say that JSON Schema cannot: flags are sorted, and 1.0 is not 1.
    """
    definitions = {}
    for event_name, (fields, cross_check) in EVENT_TYPES.items():
        properties = {}
        for key, check, description in fields:
            fragment = check.json_schema() if hasattr(check, "json_schema") else {}
            properties[key] = {**fragment, "description": description}
        definition = {
            "type": "object",
            "properties": properties,
            "required": [key for key, _, _ in fields],
            "additionalProperties": False,
        }
        if hasattr(cross_check, "json_schema"):
            definition.update(cross_check.json_schema())
        definitions[event_name] = definition
    refs = [{"$ref": f"#/definitions/{event_name}"} for event_name in definitions]
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": f"zomg telemetry batch, schema version {SCHEMA_VERSION}",
        "type": "object",
        "properties": {
            BATCH_KEY: {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH,
                "items": refs[0] if len(refs) == 1 else {"anyOf": refs},
            }
        },
        "required": [BATCH_KEY],
        "additionalProperties": False,
        "definitions": definitions,
    }
