"""The telemetry wire schema: the one source of truth for the CLI and the receiver.

The CLI builds its events against these definitions and the receiver validates
incoming batches with ``validate_batch``. Nothing else in zomg spells a field
name, an allowed value or a limit of the wire format; the JSON Schema published
for other tools is generated from here too (``json_schema()``).

Wire format: ``POST <endpoint>`` with ``{"events": [EVENT, ...]}`` (1 to
``MAX_BATCH`` events, at most ``MAX_BODY_BYTES`` bytes); each EVENT has exactly
the keys its event type defines.
"""
from __future__ import annotations

import re

from zomg.errors import ERROR_CLASSES

SCHEMA_VERSION = 1
MAX_BATCH = 100
BATCH_KEY = "events"
_CANONICAL_START = '{"' + BATCH_KEY + '":['
# The largest request body a receiver accepts. The largest valid batch, encoded
# by encode_batch, is well below it (a test checks), so it only stops abuse.
MAX_BODY_BYTES = 256 * 1024

CLI_COMMAND = "cli.command"

OS_VALUES = ("linux", "darwin", "windows", "freebsd", "other")
ARCH_VALUES = ("x86_64", "arm64", "x86", "arm", "other")
DURATION_BUCKETS = ("<1s", "1s-10s", "10s-1m", "1m-10m", ">10m")
RESULTS = ("success", "error", "interrupted")

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
# reason. It can say the same thing two more ways: as a Python expression, which
# the compiled batch validator inlines (one call per field would cost more than
# the checks), and as a JSON Schema fragment. Each rule keeps the three side by
# side; tests check that the call and the expression agree.


class _Regex:
    """A fully anchored pattern, compiled on first use: the CLI imports this
    module on every run and should not pay for patterns it never checks."""

    def __init__(self, body: str) -> None:
        self.body = body
        self._match = None

    def matcher(self):
        if self._match is None:
            self._match = re.compile(self.body + r"\Z").match
        return self._match

    def __call__(self, value: str) -> object:
        return (self._match or self.matcher())(value)


def _bind(env: dict, value: object) -> str:
    """Put ``value`` in the compiled code's namespace; return the name to use."""
    name = f"_k{len(env)}"
    env[name] = value
    return name


def _json_escape(env: dict) -> str:
    """The name under which the compiled encoder finds json's own string escaper."""
    from json.encoder import encode_basestring_ascii

    return _bind(env, encode_basestring_ascii)


# A pattern is "plain" when it can only match characters that JSON writes as
# themselves: literal letters, digits, ':' and '-', and classes made of those
# (plus '.', '+', '!'), with ranges only within digits or one case of letters.
# For such a pattern, the canonical JSON text of a matching string is the
# string in quotes, so the canonical-form check below can match the raw text.
_PLAIN_PATTERN = (
    r"(?:\[(?:[0-9]-[0-9]|[a-z]-[a-z]|[A-Z]-[A-Z]|[0-9A-Za-z.+!]|-(?=\]))+\]"
    r"|[0-9A-Za-z:-]|\{[0-9]+(?:,[0-9]+)?\}|\(\?:|[)?*+|])*"
)


def _plain(body: str) -> bool:
    return re.fullmatch(_PLAIN_PATTERN, body) is not None


def _json_alternatives(values: list) -> str | None:
    """A pattern for the JSON texts of ``values``; None for none, or for a text
    with a brace (the canonical check splits a batch into events at braces)."""
    import json

    texts = [json.dumps(value) for value in values]
    if not texts or any("{" in text or "}" in text for text in texts):
        return None
    return "(?:" + "|".join(re.escape(text) for text in texts) + ")"


def _nullable_type(json_type: str, nullable: bool) -> object:
    return [json_type, "null"] if nullable else json_type


class _Const:
    def __init__(self, expected: object) -> None:
        self.expected = expected
        self.reason = f"must be {expected!r}"

    def __call__(self, value: object) -> str | None:
        if type(value) is not type(self.expected) or value != self.expected:
            return self.reason
        return None

    def expression(self, v: str, env: dict) -> str:
        return f"(type({v}) is {_bind(env, type(self.expected))} and {v} == {_bind(env, self.expected)})"

    def json_text(self, v: str, env: dict) -> str:
        import json

        return repr(json.dumps(self.expected))

    def canonical(self, t: str, env: dict) -> tuple | None:
        pattern = _json_alternatives([self.expected])
        return None if pattern is None else (pattern, None)

    def json_schema(self) -> dict:
        return {"type": _JSON_TYPES[type(self.expected)], "const": self.expected}


class _Enum:
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

    def expression(self, v: str, env: dict) -> str:
        test = f"(type({v}) is str and {v} in {_bind(env, self.allowed_set)})"
        return f"({v} is None or {test})" if self.nullable else test

    def json_text(self, v: str, env: dict) -> str:
        import json

        texts = {value: json.dumps(value) for value in self.allowed}
        texts[None] = "null"
        return f"{_bind(env, texts)}[{v}]"

    def canonical(self, t: str, env: dict) -> tuple | None:
        pattern = _json_alternatives(list(self.allowed) + ([None] if self.nullable else []))
        return None if pattern is None else (pattern, None)

    def json_schema(self) -> dict:
        values = list(self.allowed) + ([None] if self.nullable else [])
        return {"type": _nullable_type("string", self.nullable), "enum": values}


class _Pattern:
    def __init__(self, body: str, what: str, nullable: bool = False) -> None:
        self.body = body
        self.match = _Regex(body)
        self.nullable = nullable
        self.reason = f"must be {what}"

    def __call__(self, value: object) -> str | None:
        if value is None and self.nullable:
            return None
        if type(value) is not str or self.match(value) is None:
            return self.reason
        return None

    def expression(self, v: str, env: dict) -> str:
        test = f"(type({v}) is str and {_bind(env, self.match.matcher())}({v}) is not None)"
        return f"({v} is None or {test})" if self.nullable else test

    def json_text(self, v: str, env: dict) -> str:
        text = f"{_json_escape(env)}({v})"
        return f"('null' if {v} is None else {text})" if self.nullable else text

    def canonical(self, t: str, env: dict) -> tuple | None:
        if not _plain(self.body):
            return None
        quoted = f'"(?:{self.body})"'
        return (f"(?:null|{quoted})" if self.nullable else quoted), None

    def json_schema(self) -> dict:
        return {"type": _nullable_type("string", self.nullable), "pattern": f"^{self.body}$"}


class _Timestamp:
    form = "must be a UTC timestamp YYYY-MM-DDTHH:MM:SSZ"
    unreal = "must be a real UTC date and time"

    def __init__(self) -> None:
        self.match_form = _Regex(_TIMESTAMP)
        self.match_exact = _Regex(_TIMESTAMP_EXACT)

    def __call__(self, value: object) -> str | None:
        if type(value) is not str or self.match_form(value) is None:
            return self.form
        if self.match_exact(value) is None:
            return self.unreal
        return None

    def expression(self, v: str, env: dict) -> str:
        return f"(type({v}) is str and {_bind(env, self.match_exact.matcher())}({v}) is not None)"

    def json_text(self, v: str, env: dict) -> str:
        return f"{_json_escape(env)}({v})"

    def canonical(self, t: str, env: dict) -> tuple | None:
        return f'"(?:{_TIMESTAMP_EXACT})"', None

    def json_schema(self) -> dict:
        return {"type": "string", "pattern": f"^{_TIMESTAMP_EXACT}$", "format": "date-time"}


class _Bool:
    reason = "must be true or false"

    def __call__(self, value: object) -> str | None:
        return None if type(value) is bool else self.reason

    def expression(self, v: str, env: dict) -> str:
        return f"({v} is True or {v} is False)"

    def json_text(self, v: str, env: dict) -> str:
        return f"('true' if {v} else 'false')"

    def canonical(self, t: str, env: dict) -> tuple | None:
        return "(?:true|false)", None

    def json_schema(self) -> dict:
        return {"type": "boolean"}


class _Flags:
    def __init__(self) -> None:
        self.match = _Regex(_FLAG)

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

    def expression(self, v: str, env: dict) -> str:
        # Most commands have no flags: the empty list needs no call.
        return f"(type({v}) is list and ({v} == [] or {_bind(env, self)}({v}) is None))"

    def json_text(self, v: str, env: dict) -> str:
        return f"('[' + ','.join(map({_json_escape(env)}, {v})) + ']')"

    @staticmethod
    def _text_sorted(text: str) -> bool:
        """Whether the flags in a non-empty canonical text ``["--a","--b"]`` are sorted and unique."""
        previous = ""
        for item in text[2:-2].split('","'):
            if item <= previous:
                return False
            previous = item
        return True

    def canonical(self, t: str, env: dict) -> tuple | None:
        # Only a list of two or more can be out of order: only those are tested.
        item = f'"(?:{_FLAG})"'
        every = f"\\[(?:{item}(?:,{item}){{0,{MAX_FLAGS - 1}}})?\\]"
        several = f"\\[{item}(?:,{item}){{1,{MAX_FLAGS - 1}}}\\]"
        return every, f"{_bind(env, self._text_sorted)}({t})", several

    def json_schema(self) -> dict:
        # JSON Schema cannot say "sorted"; it can say unique.
        return {
            "type": "array",
            "maxItems": MAX_FLAGS,
            "uniqueItems": True,
            "items": {"type": "string", "pattern": f"^{_FLAG}$"},
        }


class _SetExactlyWhen:
    """A check across fields: ``field`` is non-null exactly when ``other`` is ``value``."""

    def __init__(self, field: str, other: str, value: str) -> None:
        self.field, self.other, self.value = field, other, value
        self.reason = f"{field}: must be set exactly when {other} is {value}"

    def __call__(self, event: dict) -> str | None:
        if (event[self.other] == self.value) != (event[self.field] is not None):
            return self.reason
        return None

    def expression(self, e: str, env: dict) -> str:
        return f"(({e}[{self.other!r}] == {self.value!r}) == ({e}[{self.field!r}] is not None))"

    def canonical_pair(self, rules: dict) -> str | None:
        """A pattern for both fields, ``other`` then ``field``, as they stand side by side in canonical text."""
        import json

        other, field = rules[self.other], rules[self.field]
        if not (isinstance(other, _Enum) and isinstance(field, _Enum) and field.nullable):
            return None
        other_key = re.escape(json.dumps(self.other)) + ":"
        field_key = "," + re.escape(json.dumps(self.field)) + ":"
        when = [value for value in other.allowed if value == self.value]
        otherwise = [value for value in other.allowed if value != self.value] + ([None] if other.nullable else [])
        patterns = [_json_alternatives(values) for values in (when, list(field.allowed), otherwise)]
        branches = []
        if when:
            branches.append(other_key + f"{patterns[0]}{field_key}{patterns[1]}")
        if otherwise:
            branches.append(other_key + f"{patterns[2]}{field_key}null")
        if not branches or (when and None in patterns[:2]) or (otherwise and patterns[2] is None):
            return None
        return "(?:" + "|".join(branches) + ")"

    def json_schema(self) -> dict:
        return {
            "if": {"properties": {self.other: {"const": self.value}}},
            "then": {"properties": {self.field: {"not": {"type": "null"}}}},
            "else": {"properties": {self.field: {"type": "null"}}},
        }


_check_uuid = _Pattern(_UUID4, "a lowercase random UUID (version 4)")


# Every field of cli.command v1: (name, checker, what a user is told about it).
CLI_COMMAND_FIELDS: tuple[tuple[str, object, str], ...] = (
    ("event", _Const(CLI_COMMAND), f'always "{CLI_COMMAND}"'),
    ("schema_version", _Const(SCHEMA_VERSION), f"always {SCHEMA_VERSION}"),
    ("event_id", _check_uuid, "a random UUID, new for every event (lets duplicates be dropped)"),
    ("installation_id", _check_uuid, "a random UUID made on first use; not derived from anything about you"),
    ("timestamp", _Timestamp(), "when the command ran, UTC, to the second"),
    ("cli_version", _Pattern(_VERSION, "a version string"), "the zomg version"),
    ("command", _Pattern(_NAME, "a command name or null", nullable=True),
     "the top-level command as the parser defines it (box, exec, ...), or null"),
    ("subcommand", _Pattern(_NAME, "a subcommand name or null", nullable=True),
     "the second-level command as the parser defines it (create, list, ...), or null"),
    ("flags", _Flags(), "sorted names of the options you gave that zomg defines (--force), never their values"),
    ("os", _Enum(OS_VALUES), " | ".join(OS_VALUES)),
    ("arch", _Enum(ARCH_VALUES), " | ".join(ARCH_VALUES)),
    ("ci", _Bool(), "true when running under a CI system"),
    ("duration_bucket", _Enum(DURATION_BUCKETS), " | ".join(DURATION_BUCKETS)),
    ("result", _Enum(RESULTS), " | ".join(RESULTS)),
    ("error_class", _Enum(ERROR_CLASSES, nullable=True), "null, or when result is error: " + " | ".join(ERROR_CLASSES)),
)

_cross_check_cli_command = _SetExactlyWhen("error_class", "result", "error")


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
    ("event", _Const(DEPLOYMENT_METRICS), f'always "{DEPLOYMENT_METRICS}"'),
    ("schema_version", _Const(SCHEMA_VERSION), f"always {SCHEMA_VERSION}"),
    ("event_id", _check_uuid, "a random UUID, new for every event (lets duplicates be dropped)"),
    ("deployment_id", _check_uuid,
     "a random UUID made when you opt in, deleted when you opt out; never the installation id"),
    ("timestamp", _Timestamp(), "when the metrics were measured, UTC, to the second"),
    ("cli_version", _Pattern(_VERSION, "a version string"), "the zomg version"),
    ("os", _Enum(OS_VALUES), " | ".join(OS_VALUES)),
    ("arch", _Enum(ARCH_VALUES), " | ".join(ARCH_VALUES)),
    ("cpu_bucket", _Enum(_or_unknown(CPU_BUCKETS)), "CPU count: " + " | ".join(_or_unknown(CPU_BUCKETS))),
    ("memory_bucket", _Enum(_or_unknown(MEMORY_BUCKETS)),
     "physical memory: " + " | ".join(_or_unknown(MEMORY_BUCKETS))),
    ("active_boxes_bucket", _Enum(ACTIVE_BOXES_BUCKETS),
     "boxes used (exec or console) in the last 7 days: " + " | ".join(ACTIVE_BOXES_BUCKETS)),
    ("storage_used_bucket", _Enum(_or_unknown(STORAGE_SHARE_BUCKETS)),
     "share of the file system holding the boxes that is in use: " + " | ".join(_or_unknown(STORAGE_SHARE_BUCKETS))),
    ("box_bytes_bucket", _Enum(_or_unknown(BOX_BYTES_BUCKETS)),
     "disk space used by all boxes: " + " | ".join(_or_unknown(BOX_BYTES_BUCKETS))),
)


# event name -> (ordered fields, check across fields). Other event types
# (deployment metrics) register here, so one batch may carry several kinds.
# A checker is any callable (value -> None or reason); those with
# ``expression``/``json_schema`` (the rules above) are also compiled and published.
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


# --- compiled code -------------------------------------------------------------
# validate_event is the reference and writes the reasons; validate_batch first
# asks one generated function per event type, with every rule inlined, and goes
# to validate_event only for an event that function does not pass. encode_event
# is generated the same way. Both are compiled on first use, so the CLI, which
# handles one event per run, never pays for them. The source is made only from
# the rules above, never from input.

_compiled: dict = {}


def _compile_validator(event_name: str, fields: tuple, cross_check: object) -> object:
    env: dict = {}
    lines = ["def valid(e):", f"    if len(e) != {len(fields)}:", "        return False", "    try:"]
    for key, check, _ in fields:
        test = check.expression("v", env) if hasattr(check, "expression") else f"{_bind(env, check)}(v) is None"
        lines += [f"        v = e[{key!r}]", f"        if not {test}:", "            return False"]
    lines += ["    except KeyError:", "        return False"]
    if cross_check is None:
        lines.append("    return True")
    elif hasattr(cross_check, "expression"):
        lines.append(f"    return {cross_check.expression('e', env)}")
    else:
        lines.append(f"    return {_bind(env, cross_check)}(e) is None")
    exec(compile("\n".join(lines) + "\n", f"<schema validator for {event_name}>", "exec"), env)
    return env["valid"]


def _compile_encoder(event_name: str, fields: tuple, cross_check: object) -> object:
    import json

    env: dict = {}
    parts = []
    for index, (key, check, _) in enumerate(fields):
        parts.append(repr(("{" if index == 0 else ",") + json.dumps(key) + ":"))
        value = f"e[{key!r}]"
        if hasattr(check, "json_text"):
            parts.append(check.json_text(value, env))
        else:
            compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode
            parts.append(f"{_bind(env, compact)}({value})")
    parts.append(repr("}"))
    source = "def encode(e):\n    return ''.join((" + ", ".join(parts) + ",))\n"
    exec(compile(source, f"<schema encoder for {event_name}>", "exec"), env)
    return env["encode"]


def _canonical_event(fields: tuple, cross_check: object) -> tuple | None:
    """(pattern for an event's canonical text between its braces, [(field pattern, test)]), or None.

    A field whose rule needs more than a pattern (flags are sorted) comes back
    with a pattern capturing its text and a test to run on that text.
    """
    import json

    keys = [key for key, _, _ in fields]
    paired = None
    if cross_check is not None:
        # The check across fields becomes one pattern for the two of them, when they are neighbours.
        pair = getattr(cross_check, "canonical_pair", None)
        other = keys.index(cross_check.other) if pair and cross_check.other in keys else -1
        if other < 0 or keys[other + 1:other + 2] != [cross_check.field]:
            return None
        paired = (other, pair({key: check for key, check, _ in fields}))
        if paired[1] is None:
            return None
    env: dict = {}
    parts, scans = [], []
    index = 0
    while index < len(fields):
        if paired is not None and index == paired[0]:
            parts.append(paired[1])
            index += 2
            continue
        key, check, _ = fields[index]
        index += 1
        form = check.canonical("t", env) if hasattr(check, "canonical") else None
        if form is None:
            return None
        pattern, test = form[:2]
        name = re.escape(json.dumps(key)) + ":"
        parts.append(name + pattern)
        if test:
            # A third pattern, when given, narrows which texts need the test.
            scanned = form[2] if len(form) > 2 else pattern
            exec(compile(f"def test(t):\n    return {test}\n", f"<schema canonical test for {key}>", "exec"), env)
            scans.append((f"{name}({scanned})", env.pop("test")))
    return ",".join(parts), scans


def _compile_canonical(event_name: str, fields: tuple, cross_check: object) -> object:
    """(fullmatch of a whole canonical batch of this type, [(findall, test)]), or None."""
    form = _canonical_event(fields, cross_check)
    if form is None:
        return None
    event, scans = form
    # The event pattern once: each event is followed by a comma and another event, or by the end.
    batch = f"{re.escape(_CANONICAL_START)}(?:\\{{{event}\\}}(?:,(?=\\{{)|(?=\\]))){{1,{MAX_BATCH}}}\\]\\}}"
    return re.compile(batch).fullmatch, [(re.compile(pattern).findall, test) for pattern, test in scans]


_COMPILERS = {"validator": _compile_validator, "encoder": _compile_encoder, "canonical": _compile_canonical}


def _compiled_for(kind: str, event_name: object) -> object:
    """The compiled ``kind`` for ``event_name``, or None for anything that is not a known type."""
    spec = EVENT_TYPES.get(event_name) if type(event_name) is str else None
    if spec is None:
        return None
    cached = _compiled.get((kind, event_name))
    if cached is None or cached[0] is not spec:
        cached = _compiled[kind, event_name] = (spec, _COMPILERS[kind](event_name, *spec))
    return cached[1]


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
        valid = _compiled_for("validator", event.get("event")) if type(event) is dict else None
        if valid is None or not valid(event):
            validate_event(event, index)
    return events


def encode_event(event: dict) -> str:
    """Compact, ASCII-only JSON of one event that passed validation, fields in the schema's order.

    Only for validated events: the generated code relies on the types the rules checked.
    """
    return _compiled_for("encoder", event["event"])(event)


def canonical_event_lines(text: str) -> str | None:
    """The events of a body in canonical form as JSON lines, or None.

    Canonical form is what encode_batch writes for events of one type built in
    the schema's field order, as the CLI builds them. When every event of such
    a body is valid, the answer is exactly encode_event's text for each decoded
    event, each followed by a newline, so a receiver that only writes lines
    need not decode and re-encode: one generated pattern checks the whole body.
    For anything else (another order, whitespace, escapes, mixed types, an
    invalid event) it answers None, and decoding plus validate_batch decide.
    """
    if not text.startswith(_CANONICAL_START):
        return None
    for event_name in EVENT_TYPES:
        form = _compiled_for("canonical", event_name)
        if form is None or form[0](text) is None:
            continue
        for findall, test in form[1]:
            for found in findall(text):
                if not test(found):
                    return None
        # No value of a canonical event holds a brace, so "},{" only ever joins two events.
        return text[len(_CANONICAL_START):-2].replace("},{", "}\n{") + "\n"
    return None


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
