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
