"""The shared wire schema: what it depends on, the error classes it allows, and its published JSON Schema."""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.events import cli_event
from zomg import errors
from zomg.telemetry import schema

FIELDS = schema.EVENT_TYPES[schema.CLI_COMMAND][0]


def test_the_schema_imports_nothing_of_zomg():
    # The CLI and the receiver both depend on the schema; it depends on neither.
    with open(schema.__file__, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert [name for name in imported if name == "zomg" or name.startswith("zomg.")] == []


def test_checking_and_encoding_one_event_does_not_load_the_generator():
    # The CLI validates one event before sending it; the receiver's code generator is not its cost.
    code = (
        "import json, sys; from zomg.telemetry import schema;"
        "event = json.loads(sys.argv[1]); schema.validate_event(event); schema.encode_batch([event]);"
        "print('zomg.receiver.fastpath' in sys.modules, any(m.startswith('zomg.receiver') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code, json.dumps(cli_event())], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "False"]


def _error_classes_raised() -> set:
    classes, todo = set(), [errors.ZomgError]
    while todo:
        kind = todo.pop()
        classes.add(kind.error_class)
        todo.extend(kind.__subclasses__())
    return classes


def test_every_error_class_the_cli_can_produce_is_one_the_schema_allows():
    # The schema owns the values; zomg.errors decides which failure has which. This is the link.
    produced = _error_classes_raised() | set(getattr(errors, "ERROR_CLASSES", ()))
    assert "internal" in produced and "usage" in produced
    assert produced <= set(schema.ERROR_CLASSES), sorted(produced - set(schema.ERROR_CLASSES))
    assert len(set(schema.ERROR_CLASSES)) == len(schema.ERROR_CLASSES)
    error_class = dict((name, rule) for name, rule, _ in FIELDS)["error_class"]
    for value in produced:
        assert error_class(value) is None, value


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
        assert matches == (rule.match_exact(text) is not None)
    else:
        assert matches == (rule(text) is None)


def test_published_patterns_accept_valid_values():
    properties = schema.json_schema()["definitions"][schema.CLI_COMMAND]["properties"]
    event = cli_event(flags=["--all", "-f"])
    for name in ("event_id", "installation_id", "timestamp", "cli_version", "command", "subcommand"):
        assert re.search(properties[name]["pattern"], event[name]), name
    for flag in event["flags"]:
        assert re.search(properties["flags"]["items"]["pattern"], flag)
