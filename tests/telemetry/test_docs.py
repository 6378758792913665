"""docs/telemetry.md publishes the schema: every field, and an example that is valid on the wire."""
from __future__ import annotations

import json
import os

import pytest

from zomg.telemetry import schema

pytestmark = pytest.mark.telemetry_on

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs",
                   "telemetry.md")


def test_the_published_schema_matches_the_code():
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    for name in schema.field_names(schema.CLI_COMMAND):
        assert any(row.startswith(f"| `{name}` |") for row in rows), name
    for value in schema.OS_VALUES + schema.ARCH_VALUES + schema.DURATION_BUCKETS + schema.RESULTS:
        assert f"`{value}`" in text, value
    [example] = [line for line in text.splitlines() if line.startswith('{"events":')]
    events = schema.validate_batch(json.loads(example))
    assert example.encode() == schema.encode_batch(events)


def test_the_published_deployment_schema_matches_the_code():
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("## Deployment metrics"):]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    for name in schema.field_names(schema.DEPLOYMENT_METRICS):
        assert any(row.startswith(f"| `{name}` |") for row in rows), name
    for value in (schema.CPU_BUCKETS + schema.MEMORY_BUCKETS + schema.ACTIVE_BOXES_BUCKETS
                  + schema.STORAGE_SHARE_BUCKETS + schema.BOX_BYTES_BUCKETS):
        assert f"`{value}`" in section, value


def _section(title: str) -> str:
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    start = text.index(title)
    end = text.find("\n#", start + len(title))
    return text[start:end if end > 0 else len(text)]


def test_the_published_answer_table_is_what_the_sender_does():
    import re

    from zomg.telemetry import sender

    rows = [line for line in _section("**Answers, by whose fault they are:**").splitlines() if line.startswith("| `")]
    expected = {"delivered": sender.SENT, "dropped": sender.REJECTED, "kept": sender.FAILED}
    seen = set()
    # "other `4xx`": the codes a row names one by one are not part of another row's range.
    named = {int(a + b) for row in rows for a, b in re.findall(r"`(\d)(\d\d)`", row)}
    for row in rows:
        answers, _, effect = row.strip("|").split("|")
        outcome = expected[effect.split()[0].rstrip(":;")]
        for code in re.findall(r"`(\d)(\d\d|xx)`", answers):
            statuses = [int(code[0] + code[1])] if code[1] != "xx" else [int(code[0]) * 100 + n for n in (0, 1, 99)]
            for status in statuses if code[1] != "xx" else [n for n in statuses if n not in named]:
                assert sender.classify(status)[0] == outcome, (status, row)
                seen.add(status)
    assert {400, 404, 413, 422, 429, 500, 301} <= seen


def test_the_published_status_keys_are_the_ones_status_json_has(zomg):
    section = _section("### The delivery story in `zomg telemetry status`")
    documented = {line.split("`")[1] for line in section.splitlines() if line.startswith("| `")}
    info = json.loads(zomg("telemetry", "status", "--json").out)
    assert documented <= set(info)
    assert {"last_attempt", "next_attempt", "hint", "unsent_events_other_endpoints"} <= documented
