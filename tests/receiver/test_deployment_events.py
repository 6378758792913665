"""The receiver validates and forwards deployment.metrics events like cli.command ones."""
from __future__ import annotations

import json

import pytest

from tests.support.events import DEPLOYMENT_ID, cli_event, deployment_event
from tests.support.wsgi import call_app
from zomg.telemetry import schema


@pytest.fixture
def forwarded(forwarding):
    return forwarding()


def test_a_deployment_event_is_forwarded_personless_under_the_deployment_id(forwarded, fake_posthog):
    event = deployment_event(event_id="2b3c4d5e-6f70-4182-9a3b-4c5d6e7f8091")
    response = call_app(forwarded.app, schema.encode_batch([event, cli_event()]))
    assert (response.status, response.json()) == (202, {"accepted": 2})
    forwarded.flush()
    [request] = fake_posthog.requests
    deployment, cli = json.loads(request["body"])["batch"]
    assert deployment == {
        "event": "deployment.metrics",
        "distinct_id": DEPLOYMENT_ID,
        "uuid": "2b3c4d5e-6f70-4182-9a3b-4c5d6e7f8091",
        "timestamp": "2026-03-04T05:06:07Z",
        "properties": {
            "schema_version": 1,
            "cli_version": "0.1.0",
            "os": "linux",
            "arch": "arm64",
            "cpu_bucket": "5-8",
            "memory_bucket": "16-64GiB",
            "active_boxes_bucket": "2-5",
            "storage_used_bucket": "25-50%",
            "box_bytes_bucket": "1-10GiB",
            "$process_person_profile": False,
            "$geoip_disable": True,
            "$lib": "zomg-receiver",
            "$ip": "0.0.0.0",
        },
    }
    assert cli["distinct_id"] == cli_event()["installation_id"]
    assert DEPLOYMENT_ID not in json.dumps(cli), "nothing joins the two data sets"


@pytest.mark.parametrize(
    "change,field",
    [
        ({"installation_id": "5f0c6a56-2a4e-4b8e-9d3f-2b1c0e7a9d11"}, "installation_id"),
        ({"cpu_bucket": "12"}, "cpu_bucket"),
        ({"active_boxes_bucket": "unknown"}, "active_boxes_bucket"),
        ({"deployment_id": "not-a-uuid"}, "deployment_id"),
        ({"hostname": "build-7"}, "hostname"),
        ({"users": 3}, "users"),
    ],
)
def test_invalid_deployment_events_reject_the_whole_batch(forwarded, fake_posthog, change, field):
    response = call_app(forwarded.app, schema.encode_batch([cli_event(), deployment_event(**change)]))
    assert response.status == 400
    assert f"events[1].{field}" in response.json()["error"]
    forwarded.flush()
    assert fake_posthog.requests == []


def test_a_missing_deployment_field_is_rejected(forwarded, fake_posthog):
    event = deployment_event()
    del event["box_bytes_bucket"]
    response = call_app(forwarded.app, schema.encode_batch([event]))
    assert response.status == 400 and "box_bytes_bucket" in response.json()["error"]
