"""The receiver's fast paths, generated from the schema's rules, say what the rules say."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.events import cli_event
from tests.support.strategies import quick_cli_events, valid_events_of
from zomg.receiver import fastpath
from zomg.telemetry import schema

FIELDS = schema.EVENT_TYPES[schema.CLI_COMMAND][0]

values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text(max_size=40)
    | st.sampled_from(["linux", "box", "--all", "0.1.0", "2026-02-29T00:00:00Z", "2024-02-29T23:59:59Z",
                       "2026-04-31T00:00:00Z", "5f0c6a56-2a4e-4b8e-9d3f-2b1c0e7a9d11", "cli.command", "error"]),
    lambda children: st.lists(children, max_size=4),
    max_leaves=6,
)


def compiled_rule(rule):
    env: dict = {}
    source = f"def ok(v):\n    return {fastpath._code(rule).expression('v', env)}\n"
    exec(source, env)
    return env["ok"]


@pytest.mark.parametrize("name,rule", [(name, rule) for name, rule, _ in FIELDS], ids=[n for n, _, _ in FIELDS])
@settings(max_examples=150, deadline=None)
@given(value=values)
def test_each_rules_expression_agrees_with_its_check(name, rule, value):
    assert compiled_rule(rule)(value) == (rule(value) is None)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([name for name, _, _ in FIELDS]), values, st.booleans())
def test_the_compiled_event_check_agrees_with_validate_event(field, value, drop):
    event = cli_event()
    if drop:
        del event[field]
    else:
        event[field] = value
    try:
        schema.validate_event(event)
        reference = True
    except schema.SchemaError:
        reference = False
    assert fastpath.compiled_for("validator", schema.CLI_COMMAND)(event) is reference


def test_the_timestamp_rule_knows_the_calendar():
    import calendar

    rule = dict((name, rule) for name, rule, _ in FIELDS)["timestamp"]
    fast = compiled_rule(rule)

    def real(year: int, month: int, day: int) -> bool:
        if not 1 <= month <= 12:
            return False
        leap = calendar.isleap(year) if year else True  # year 0 is divisible by 400
        return 1 <= day <= (29 if month == 2 and leap else calendar.monthrange(2001, month)[1])

    cases = [(year, 2, day) for year in range(10000) for day in (28, 29, 30)]
    cases += [(year, month, day) for year in (0, 1, 4, 100, 1900, 2000, 2024, 2026, 9999)
              for month in range(0, 14) for day in range(0, 33)]
    for year, month, day in cases:
        value = f"{year:04d}-{month:02d}-{day:02d}T23:59:59Z"
        expected = real(year, month, day)
        assert (rule(value) is None) == expected, value
        assert fast(value) == expected, value
        if not expected:
            assert rule(value) == "must be a real UTC date and time"


def test_validate_batch_reports_the_same_reason_as_validate_event():
    bad = cli_event(flags=["--b", "--a"])
    with pytest.raises(schema.SchemaError) as batch_error:
        fastpath.validate_batch({"events": [cli_event(), bad]})
    with pytest.raises(schema.SchemaError) as event_error:
        schema.validate_event(bad, 1)
    assert str(batch_error.value) == str(event_error.value) == "events[1].flags: must be sorted and unique"


def test_an_event_type_registered_later_is_compiled_too(monkeypatch):
    fields = (("event", schema.Const("test.only"), ""), ("n", lambda v: None if v == 1 else "must be 1", ""))
    monkeypatch.setitem(schema.EVENT_TYPES, "test.only", (fields, None))
    assert fastpath.validate_batch({"events": [{"event": "test.only", "n": 1}]})
    with pytest.raises(schema.SchemaError, match=r"events\[0\]\.n: must be 1"):
        fastpath.validate_batch({"events": [{"event": "test.only", "n": 2}]})


# --- the compiled encoder and the canonical-form check ---------------------------

EVENT_NAMES = sorted(schema.EVENT_TYPES)


@pytest.mark.parametrize("event_name", EVENT_NAMES)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_encode_event_is_compact_json_in_schema_order(event_name, data):
    event = data.draw(valid_events_of(event_name))
    shuffled = dict(reversed(list(event.items())))
    text = fastpath.encode_event(shuffled)
    assert text == json.dumps(event, separators=(",", ":"), ensure_ascii=True)


@pytest.mark.parametrize("event_name", EVENT_NAMES)
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_a_canonical_body_of_valid_events_takes_the_fast_path(event_name, data):
    events = data.draw(st.lists(valid_events_of(event_name), min_size=1, max_size=5))
    lines = "".join(fastpath.encode_event(event) + "\n" for event in events)
    assert fastpath.canonical_event_lines(schema.encode_batch(events)) == lines.encode("ascii")


def canonical_mutations():
    """Canonical bodies of valid events, then changed the way a client or an attacker might."""
    @st.composite
    def build(draw):
        events = draw(st.lists(quick_cli_events(), min_size=1, max_size=3))
        text = schema.encode_batch(events).decode()
        how = draw(st.sampled_from(["replace", "insert", "delete", "swap value"]))
        at = draw(st.integers(0, len(text) - 1))
        piece = draw(st.sampled_from(['"', "\\\\", ",", "]", "}", "[", " ", "1", "a", "Z", "-", "null", "\\u0061",
                                      '"error"', '"usage"', "29", "02", "--b", '","']) | st.text(max_size=3))
        if how == "replace":
            return text[:at] + piece + text[at + 1:]
        if how == "insert":
            return text[:at] + piece + text[at:]
        if how == "delete":
            return text[:at] + text[at + draw(st.integers(1, 20)):]
        key = draw(st.sampled_from(list(schema.field_names(schema.CLI_COMMAND))))
        events[draw(st.integers(0, len(events) - 1))][key] = draw(values)
        return json.dumps({"events": events}, separators=(",", ":"))

    return build()


@settings(max_examples=1000, deadline=None)
@given(canonical_mutations())
def test_the_fast_path_accepts_only_what_decoding_and_validating_accepts(text):
    lines = fastpath.canonical_event_lines(text.encode("utf-8", "surrogatepass"))
    if lines is None:
        return
    events = schema.validate_batch(json.loads(text))
    assert lines.decode("ascii") == "".join(fastpath.encode_event(event) + "\n" for event in events)


def test_the_fast_path_leaves_other_forms_to_the_full_check():
    events = [cli_event(), cli_event(flags=[])]
    compact = schema.encode_batch(events).decode()
    assert fastpath.canonical_event_lines(compact.encode()) is not None
    for other in (
        json.dumps({"events": events}),  # spaces
        json.dumps({"events": [dict(reversed(list(e.items()))) for e in events]}, separators=(",", ":")),
        compact.replace('"box"', '"\\u0062ox"'),  # same value, escaped
        compact + "\n",
        compact.replace('"flags":["--all","--json"]', '"flags":["--json","--all"]'),  # unsorted
        compact.replace("2026-03-04T", "2026-02-30T"),  # no such day
        compact.replace('"error_class":null', '"error_class":"usage"', 1),  # class without an error
        schema.encode_batch([cli_event() for _ in range(schema.MAX_BATCH + 1)]).decode(),
        '{"events":[]}',
    ):
        assert fastpath.canonical_event_lines(other.encode()) is None, other[:80]


@pytest.mark.parametrize("body", [schema._UUID4, schema._TIMESTAMP_EXACT, schema._VERSION, schema._NAME,
                                  schema._FLAG])
def test_the_schemas_patterns_are_plain(body):
    assert fastpath._plain(body)


@pytest.mark.parametrize("body", [".*", "[^a]", '[a"]', "[!-z]", r"\d", "a.b", "[a-z\\\\]", "(a)", '"'])
def test_patterns_that_could_match_escaped_text_are_not_plain(body):
    assert not fastpath._plain(body)


def test_a_batch_mixing_event_types_is_left_to_the_full_check(monkeypatch):
    fields = (("event", schema.Const("test.other"), ""), ("event_id", schema._check_uuid, ""),
              ("size", schema.Enum(("small", "large")), ""))
    monkeypatch.setitem(schema.EVENT_TYPES, "test.other", (fields, None))
    other = {"event": "test.other", "event_id": cli_event()["event_id"], "size": "large"}
    alone = schema.encode_batch([other, other])
    assert fastpath.canonical_event_lines(alone) == 2 * (fastpath.encode_event(other) + "\n").encode()
    mixed = schema.encode_batch([cli_event(), other])
    assert fastpath.canonical_event_lines(mixed) is None
    assert len(fastpath.validate_batch(json.loads(mixed))) == 2
