"""The one builder of valid events (cli.command and deployment.metrics) for tests and benches."""
from __future__ import annotations

import uuid

from zomg.telemetry import schema

INSTALLATION_ID = "5f0c6a56-2a4e-4b8e-9d3f-2b1c0e7a9d11"
DEPLOYMENT_ID = "9a8b7c6d-5e4f-4a1b-8c2d-3e4f5a6b7c8d"

# A valid example of each event type; every field the schema defines, nothing else.
_EXAMPLES = {
    schema.CLI_COMMAND: {
        "event": schema.CLI_COMMAND,
        "schema_version": schema.SCHEMA_VERSION,
        "event_id": None,  # a fresh uuid4 per event unless given
        "installation_id": INSTALLATION_ID,
        "timestamp": "2026-03-04T05:06:07Z",
        "cli_version": "0.1.0",
        "command": "box",
        "subcommand": "list",
        "flags": ["--all", "--json"],
        "os": "linux",
        "arch": "x86_64",
        "ci": False,
        "duration_bucket": "<1s",
        "result": "success",
        "error_class": None,
    },
    schema.DEPLOYMENT_METRICS: {
        "event": schema.DEPLOYMENT_METRICS,
        "schema_version": schema.SCHEMA_VERSION,
        "event_id": None,
        "deployment_id": DEPLOYMENT_ID,
        "timestamp": "2026-03-04T05:06:07Z",
        "cli_version": "0.1.0",
        "os": "linux",
        "arch": "arm64",
        "cpu_bucket": "5-8",
        "memory_bucket": "16-64GiB",
        "active_boxes_bucket": "2-5",
        "storage_used_bucket": "25-50%",
        "box_bytes_bucket": "1-10GiB",
    },
}


def build_event(name: str, **overrides: object) -> dict:
    """A valid event of type ``name``, with ``overrides`` replacing (or adding) fields."""
    event = dict(_EXAMPLES[name])
    event["event_id"] = str(uuid.uuid4())
    for key, value in event.items():
        if isinstance(value, list):
            event[key] = list(value)  # callers may change it in place
    event.update(overrides)
    return event


def cli_event(**overrides: object) -> dict:
    """A valid cli.command event (``zomg box list --all --json`` on Linux) with ``overrides``."""
    return build_event(schema.CLI_COMMAND, **overrides)


def deployment_event(**overrides: object) -> dict:
    """A valid deployment.metrics event with ``overrides``."""
    return build_event(schema.DEPLOYMENT_METRICS, **overrides)
