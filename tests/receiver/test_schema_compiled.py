"""The schema module's fast path and its published JSON Schema say what its rules say."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.receiver.support import new_event
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
    source = f"def ok(v):\n    return {rule.expression('v', env)}\n"
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
    event = new_event()
    if drop:
        del event[field]
    else:
        event[field] = value
    try:
        schema.validate_event(event)
        reference = True
    except schema.SchemaError:
        reference = False
    assert schema._compiled_for("validator", schema.CLI_COMMAND)(event) is reference


def test_every_calendar_day_is_checked_the_same_both_ways():
    rule = dict((name, rule) for name, rule, _ in FIELDS)["timestamp"]
    fast = compiled_rule(rule)
    for year in (1900, 2000, 2024, 2026):
        for month in range(0, 14):
            for day in range(0, 33):
                value = f"{year}-{month:02d}-{day:02d}T12:00:00Z"
                assert fast(value) == (rule(value) is None), value


def test_validate_batch_reports_the_same_reason_as_validate_event():
    bad = new_event(flags=["--b", "--a"])
    with pytest.raises(schema.SchemaError) as batch_error:
        schema.validate_batch({"events": [new_event(), bad]})
    with pytest.raises(schema.SchemaError) as event_error:
        schema.validate_event(bad, 1)
    assert str(batch_error.value) == str(event_error.value) == "events[1].flags: must be sorted and unique"


def test_an_event_type_registered_later_is_compiled_too(monkeypatch):
    fields = (("event", schema._Const("test.only"), ""), ("n", lambda v: None if v == 1 else "must be 1", ""))
    monkeypatch.setitem(schema.EVENT_TYPES, "test.only", (fields, None))
    assert schema.validate_batch({"events": [{"event": "test.only", "n": 1}]})
    with pytest.raises(schema.SchemaError, match=r"events\[0\]\.n: must be 1"):
        schema.validate_batch({"events": [{"event": "test.only", "n": 2}]})


# --- the JSON Schema generated from the module ---------------------------------

def test_the_json_schema_lists_exactly_the_modules_fields():
    published = schema.json_schema()
    definition = published["definitions"][schema.CLI_COMMAND]
    assert definition["required"] == list(schema.field_names(schema.CLI_COMMAND))
    assert list(definition["properties"]) == list(schema.field_names(schema.CLI_COMMAND))
    assert definition["additionalProperties"] is False
    assert published["additionalProperties"] is False
    events = published["properties"]["events"]
    assert (events["minItems"], events["maxItems"]) == (1, schema.MAX_BATCH)
    properties = definition["properties"]
    assert properties["os"]["enum"] == list(schema.OS_VALUES)
    assert properties["error_class"]["enum"][-1] is None
    assert properties["schema_version"]["const"] == schema.SCHEMA_VERSION
    assert properties["flags"]["maxItems"] == schema.MAX_FLAGS
    for name, _, description in FIELDS:
        assert properties[name]["description"] == description


PATTERN_FIELDS = [(name, rule) for name, rule, _ in FIELDS if name in ("event_id", "cli_version", "command",
                                                                        "timestamp")]


@pytest.mark.parametrize("name,rule", PATTERN_FIELDS, ids=[n for n, _ in PATTERN_FIELDS])
@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="0123456789abcdefABZT:-.+!_ \u0660", max_size=40))
def test_published_patterns_accept_what_the_rules_accept(name, rule, text):
    pattern = schema.json_schema()["definitions"][schema.CLI_COMMAND]["properties"][name]["pattern"]
    matches = re.search(pattern, text) is not None
    if name == "timestamp":
        # The calendar (30 February) is left to "format": "date-time".
        assert matches == (rule.match_in_range(text) is not None)
    else:
        assert matches == (rule(text) is None)


def test_published_patterns_accept_valid_values():
    properties = schema.json_schema()["definitions"][schema.CLI_COMMAND]["properties"]
    event = new_event(flags=["--all", "-f"])
    for name in ("event_id", "installation_id", "timestamp", "cli_version", "command", "subcommand"):
        assert re.search(properties[name]["pattern"], event[name]), name
    for flag in event["flags"]:
        assert re.search(properties["flags"]["items"]["pattern"], flag)
