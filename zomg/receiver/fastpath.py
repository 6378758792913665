"""The receiver's fast paths: the rules of ``zomg.telemetry.schema`` compiled into code.

The schema module is the reference: validate_event checks one rule at a time
and writes the reasons. Here the same rules are generated into one function per
event type with every rule inlined (validate_batch asks it first and goes to
validate_event only for an event it does not pass), into encode_event, and
into one pattern that checks a whole batch in the canonical form the CLI sends
(canonical_event_lines). Each is compiled on first use; the CLI, which
handles one event per run, never imports this module. The source is made only
from the rules, never from input: it reads each rule through the schema's
public rule classes and their settings (allowed values, pattern bodies,
nullable), never the schema's private names.

Beside them, the receiver's two encodings: ``encode_lines`` (validated events
as the JSON lines every sink takes, the same bytes canonical_event_lines
gives) and ``encode_json`` (any other JSON the receiver writes: its answers,
PostHog's bodies).
"""
from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from json.encoder import encode_basestring_ascii

from zomg.telemetry import schema
from zomg.telemetry.schema import (
    BATCH_KEY,
    MAX_BATCH,
    MAX_FLAGS,
    Bool,
    Const,
    Enum,
    Flags,
    Pattern,
    SetExactlyWhen,
    Timestamp,
    batch_events,
    validate_event,
)

# One encoder for every JSON the receiver writes but an event's: json.dumps with any option
# builds a new encoder per call, which costs more than encoding an event.
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


def encode_json(value: object) -> bytes:
    """Compact, ASCII-only JSON: the receiver's answers, PostHog's bodies."""
    return _encoder.encode(value).encode("ascii")


_CANONICAL_START = '{"' + BATCH_KEY + '":['
_CANONICAL_START_BYTES = _CANONICAL_START.encode("ascii")

# Atomic groups and possessive repeats (Python 3.11+) tell the pattern engine
# it will never back up into what they matched, so it keeps no state for that:
# a quarter fewer steps per body. They change no verdict here: an event's text
# ends at its only "}" and a flags list at its only "]", so no other way of
# splitting a body could match. Older Pythons get the same patterns without them.
_POSSESSIVE = "+" if sys.version_info >= (3, 11) else ""


def _atomic(pattern: str) -> str:
    return f"(?>{pattern})" if _POSSESSIVE else pattern


def _bind(env: dict, value: object) -> str:
    """Put ``value`` in the compiled code's namespace; return the name to use."""
    name = f"_k{len(env)}"
    env[name] = value
    return name


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
    texts = [json.dumps(value) for value in values]
    if not texts or any("{" in text or "}" in text for text in texts):
        return None
    return "(?:" + "|".join(re.escape(text) for text in texts) + ")"


# --- each rule as code ----------------------------------------------------------
# A rule can be said three more ways: as a Python expression, which the
# validator inlines (one call per field would cost more than the checks); as
# an expression giving its value's compact JSON text, for the encoder; and as a
# pattern for that text, for the canonical check. Each form reads the rule's
# own settings (allowed values, pattern body, nullable) rather than repeating
# them, and tests check that it agrees with the rule's call. A checker without
# forms here (any callable may be one) is called as it is: slower, never wrong.


class _Code:
    """The forms of a checker this module knows nothing about."""

    def __init__(self, rule: object) -> None:
        self.rule = rule

    def expression(self, v: str, env: dict) -> str:
        return f"{_bind(env, self.rule)}({v}) is None"

    def json_text(self, v: str, env: dict) -> str:
        return f"{_bind(env, _encoder.encode)}({v})"

    def canonical(self, t: str, env: dict) -> tuple | None:
        """(pattern for the value's canonical text, source of a test of that text ``t`` or None
        [, a narrower pattern: only texts it matches need the test]), or None when there is no such pattern."""
        return None


class _ConstCode(_Code):
    def expression(self, v: str, env: dict) -> str:
        expected = self.rule.expected
        return f"(type({v}) is {_bind(env, type(expected))} and {v} == {_bind(env, expected)})"

    def json_text(self, v: str, env: dict) -> str:
        return repr(json.dumps(self.rule.expected))

    def canonical(self, t: str, env: dict) -> tuple | None:
        pattern = _json_alternatives([self.rule.expected])
        return None if pattern is None else (pattern, None)


class _EnumCode(_Code):
    def expression(self, v: str, env: dict) -> str:
        test = f"(type({v}) is str and {v} in {_bind(env, self.rule.allowed_set)})"
        return f"({v} is None or {test})" if self.rule.nullable else test

    def json_text(self, v: str, env: dict) -> str:
        texts = {value: json.dumps(value) for value in self.rule.allowed}
        texts[None] = "null"
        return f"{_bind(env, texts)}[{v}]"

    def canonical(self, t: str, env: dict) -> tuple | None:
        pattern = _json_alternatives(list(self.rule.allowed) + ([None] if self.rule.nullable else []))
        return None if pattern is None else (pattern, None)


class _PatternCode(_Code):
    def expression(self, v: str, env: dict) -> str:
        test = f"(type({v}) is str and {_bind(env, self.rule.match.matcher())}({v}) is not None)"
        return f"({v} is None or {test})" if self.rule.nullable else test

    def json_text(self, v: str, env: dict) -> str:
        text = f"{_bind(env, encode_basestring_ascii)}({v})"
        return f"('null' if {v} is None else {text})" if self.rule.nullable else text

    def canonical(self, t: str, env: dict) -> tuple | None:
        if not _plain(self.rule.body):
            return None
        quoted = f'"(?:{self.rule.body})"'
        return (f"(?:null|{quoted})" if self.rule.nullable else quoted), None


class _TimestampCode(_Code):
    def expression(self, v: str, env: dict) -> str:
        return f"(type({v}) is str and {_bind(env, self.rule.match_exact.matcher())}({v}) is not None)"

    def json_text(self, v: str, env: dict) -> str:
        return f"{_bind(env, encode_basestring_ascii)}({v})"

    def canonical(self, t: str, env: dict) -> tuple | None:
        return f'"(?:{self.rule.match_exact.body})"', None


class _BoolCode(_Code):
    def expression(self, v: str, env: dict) -> str:
        return f"({v} is True or {v} is False)"

    def json_text(self, v: str, env: dict) -> str:
        return f"('true' if {v} else 'false')"

    def canonical(self, t: str, env: dict) -> tuple | None:
        return "(?:true|false)", None


class _FlagsCode(_Code):
    def expression(self, v: str, env: dict) -> str:
        # Most commands have no flags: the empty list needs no call.
        return f"(type({v}) is list and ({v} == [] or {_bind(env, self.rule)}({v}) is None))"

    def json_text(self, v: str, env: dict) -> str:
        return f"('[' + ','.join(map({_bind(env, encode_basestring_ascii)}, {v})) + ']')"

    @staticmethod
    def _text_sorted(text: bytes) -> bool:
        """Whether the flags in a non-empty canonical text ``["--a","--b"]`` are sorted and unique.

        The text is ASCII (the pattern allows nothing else), so its bytes sort as the flags do."""
        previous = b""
        for item in text[2:-2].split(b'","'):
            if item <= previous:
                return False
            previous = item
        return True

    def canonical(self, t: str, env: dict) -> tuple | None:
        # Only a list of two or more can be out of order: only those are tested.
        item = f'"(?:{self.rule.match.body})"'
        every = f"\\[(?:{item}(?:,{item}){{0,{MAX_FLAGS - 1}}}{_POSSESSIVE})?\\]"
        several = f"\\[{item}(?:,{item}){{1,{MAX_FLAGS - 1}}}\\]"
        return every, f"{_bind(env, self._text_sorted)}({t})", several


class _SetExactlyWhenCode(_Code):
    def expression(self, e: str, env: dict) -> str:
        rule = self.rule
        return f"(({e}[{rule.other!r}] == {rule.value!r}) == ({e}[{rule.field!r}] is not None))"

    def canonical_pair(self, rules: dict) -> str | None:
        """A pattern for both fields, ``other`` then ``field``, as they stand side by side in canonical text."""
        rule = self.rule
        other, field = rules[rule.other], rules[rule.field]
        if not (isinstance(other, Enum) and isinstance(field, Enum) and field.nullable):
            return None
        other_key = re.escape(json.dumps(rule.other)) + ":"
        field_key = "," + re.escape(json.dumps(rule.field)) + ":"
        when = [value for value in other.allowed if value == rule.value]
        otherwise = [value for value in other.allowed if value != rule.value] + ([None] if other.nullable else [])
        patterns = [_json_alternatives(values) for values in (when, list(field.allowed), otherwise)]
        branches = []
        if when:
            branches.append(other_key + f"{patterns[0]}{field_key}{patterns[1]}")
        if otherwise:
            branches.append(other_key + f"{patterns[2]}{field_key}null")
        if not branches or (when and None in patterns[:2]) or (otherwise and patterns[2] is None):
            return None
        return "(?:" + "|".join(branches) + ")"


_CODE = {
    Const: _ConstCode, Enum: _EnumCode, Pattern: _PatternCode, Timestamp: _TimestampCode,
    Bool: _BoolCode, Flags: _FlagsCode, SetExactlyWhen: _SetExactlyWhenCode,
}


def _code(rule: object) -> _Code:
    for kind in type(rule).__mro__:
        if kind in _CODE:
            return _CODE[kind](rule)
    return _Code(rule)


# --- generated functions and patterns per event type ------------------------------


def _compile_validator(event_name: str, fields: tuple, cross_check: object) -> Callable:
    env: dict = {}
    lines = ["def valid(e):", f"    if len(e) != {len(fields)}:", "        return False", "    try:"]
    for key, check, _ in fields:
        test = _code(check).expression("v", env)
        lines += [f"        v = e[{key!r}]", f"        if not {test}:", "            return False"]
    lines += ["    except KeyError:", "        return False"]
    if cross_check is None:
        lines.append("    return True")
    else:
        lines.append(f"    return {_code(cross_check).expression('e', env)}")
    exec(compile("\n".join(lines) + "\n", f"<schema validator for {event_name}>", "exec"), env)
    return env["valid"]


def _compile_encoder(event_name: str, fields: tuple, cross_check: object) -> Callable:
    env: dict = {}
    parts = []
    for index, (key, check, _) in enumerate(fields):
        parts.append(repr(("{" if index == 0 else ",") + json.dumps(key) + ":"))
        parts.append(_code(check).json_text(f"e[{key!r}]", env))
    parts.append(repr("}"))
    source = "def encode(e):\n    return ''.join((" + ", ".join(parts) + ",))\n"
    exec(compile(source, f"<schema encoder for {event_name}>", "exec"), env)
    return env["encode"]


def _canonical_event(fields: tuple, cross_check: object) -> tuple | None:
    """(pattern for an event's canonical text between its braces, [(field pattern, test)]), or None.

    A field whose rule needs more than a pattern (flags are sorted) comes back
    with a pattern capturing its text and a test to run on that text.
    """
    keys = [key for key, _, _ in fields]
    paired = None
    if cross_check is not None:
        # The check across fields becomes one pattern for the two of them, when they are neighbours.
        pair = getattr(_code(cross_check), "canonical_pair", None)
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
        form = _code(check).canonical("t", env)
        if form is None:
            return None
        pattern, test = form[:2]
        name = re.escape(json.dumps(key)) + ":"
        parts.append(name + pattern)
        if test:
            # A third pattern, when given, narrows which texts need the test.
            scanned = form[2] if len(form) > 2 else pattern
            # One call tests every text the scan found: a call per text would cost more than the tests.
            source = (f"def test(found):\n    for t in found:\n        if not {test}:\n"
                      "            return False\n    return True\n")
            exec(compile(source, f"<schema canonical test for {key}>", "exec"), env)
            scans.append((name, f"({scanned})", env.pop("test")))
    # A scan for the only field whose text can hold a "[" need not name the field: a
    # search for a rare first byte is faster than for the '"' every key starts with.
    lists = sum("\\[" in part for part in parts)
    return ",".join(parts), [(scanned if lists == 1 else name + scanned, test) for name, scanned, test in scans]


def _compile_canonical(event_name: str, fields: tuple, cross_check: object) -> tuple | None:
    """(fullmatch of a whole canonical batch of this type, [(findall, test of all it found)]), or None.

    The patterns are bytes: the canonical form is ASCII, so the body need not be decoded to be checked."""
    form = _canonical_event(fields, cross_check)
    if form is None:
        return None
    event, scans = form
    one = _atomic(f"\\{{{event}\\}}")
    batch = f"{re.escape(_CANONICAL_START)}{one}(?:,{one}){{0,{MAX_BATCH - 1}}}{_POSSESSIVE}\\]\\}}"
    return (re.compile(batch.encode("ascii")).fullmatch,
            [(re.compile(pattern.encode("ascii")).findall, test) for pattern, test in scans])


_COMPILERS = {"validator": _compile_validator, "encoder": _compile_encoder, "canonical": _compile_canonical}
_compiled: dict = {}


def compiled_for(kind: str, event_name: object) -> object:
    """The compiled ``kind`` (validator, encoder, canonical) for ``event_name``, or None for anything that is not a
    known type. Compiled again when the type's definition in schema.EVENT_TYPES is replaced."""
    spec = schema.EVENT_TYPES.get(event_name) if type(event_name) is str else None
    if spec is None:
        return None
    cached = _compiled.get((kind, event_name))
    if cached is None or cached[0] is not spec:
        cached = _compiled[kind, event_name] = (spec, _COMPILERS[kind](event_name, *spec))
    return cached[1]


def encode_event(event: dict) -> str:
    """Compact, ASCII-only JSON of one event that passed validation, fields in the schema's order.

    Only for validated events: the generated code relies on the types the rules checked.
    """
    return compiled_for("encoder", event["event"])(event)


def encode_lines(events: list) -> bytes:
    """Validated events as the receiver's JSON lines: encode_event's text, a newline after each, ASCII bytes."""
    return "".join([encode_event(event) + "\n" for event in events]).encode("ascii")


def canonical_event_lines(body: bytes) -> bytes | None:
    """The events of a body in canonical form as JSON lines (ASCII bytes), or None.

    Canonical form is what encode_batch writes for events of one type built in
    the schema's field order, as the CLI builds them. When every event of such
    a body is valid, the answer is exactly encode_event's text for each decoded
    event, each followed by a newline, so a receiver that only writes lines
    need not decode and re-encode: one generated pattern checks the whole body.
    For anything else (another order, whitespace, escapes, non-ASCII, mixed
    types, an invalid event) it answers None, and decoding plus validate_batch
    decide.
    """
    if not body.startswith(_CANONICAL_START_BYTES):
        return None
    for event_name in schema.EVENT_TYPES:
        form = compiled_for("canonical", event_name)
        if form is None or form[0](body) is None:
            continue
        for findall, test in form[1]:
            if not test(findall(body)):
                return None
        # No value of a canonical event holds a brace, so "},{" only ever joins two events.
        return body[len(_CANONICAL_START_BYTES):-2].replace(b"},{", b"}\n{") + b"\n"
    return None


def validate_batch(body: object) -> list:
    """Validate a decoded request body; return its events or raise SchemaError.

    The same verdicts and reasons as schema.validate_batch: the generated
    function answers for the valid events, validate_event runs only for the
    others, to name the field and reason.
    """
    events = batch_events(body)
    for index, event in enumerate(events):
        valid = compiled_for("validator", event.get("event")) if type(event) is dict else None
        if valid is None or not valid(event):
            validate_event(event, index)
    return events
