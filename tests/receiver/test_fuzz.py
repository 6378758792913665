"""Fuzzing the application: mutated valid bodies and random bytes.

Whatever arrives, the answer is 202 or a 4xx, never a 5xx other than the
upstream's 502/503; a rejected batch never reaches ``deliver``; an accepted one
reaches it whole and is valid by the schema's reference check.
"""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.strategies import quick_cli_events
from tests.support.wsgi import Deliveries, LineDeliveries, call_app
from zomg.receiver import make_app
from zomg.receiver.fastpath import encode_event
from zomg.receiver.sink import DeliveryError
from zomg.telemetry import schema

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)

@st.composite
def mutated_bodies(draw) -> bytes:
    events = draw(st.lists(quick_cli_events(), min_size=1, max_size=4))
    body: object = {"events": events}
    how = draw(st.sampled_from(["field value", "drop field", "add field", "event", "top level", "events",
                                "flip byte", "truncate", "insert bytes", "none"]))
    index = draw(st.integers(0, len(events) - 1))
    fields = schema.field_names(schema.CLI_COMMAND)
    if how == "field value":
        events[index][draw(st.sampled_from(fields))] = draw(json_values)
    elif how == "drop field":
        del events[index][draw(st.sampled_from(fields))]
    elif how == "add field":
        events[index][draw(st.text(max_size=12))] = draw(json_values)
    elif how == "event":
        events[index] = draw(json_values)
    elif how == "top level":
        body[draw(st.text(max_size=12))] = draw(json_values)
    elif how == "events":
        body = {"events": draw(json_values)} if draw(st.booleans()) else draw(json_values)
    raw = json.dumps(body).encode()
    if how == "flip byte":
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1:]
    elif how == "truncate":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif how == "insert bytes":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    return raw


def check_one_request(body: bytes, upstream_down: bool) -> None:
    # The same body to a forwarding-like deliver and to a line-recording one, which
    # takes the schema's canonical fast path when it can: both must decide alike.
    for deliveries in (Deliveries(), LineDeliveries()):
        if upstream_down:
            deliveries.failure = DeliveryError("upstream: down", status=502)
        response = call_app(make_app(deliveries), body)
        payload = response.json()
        assert response.status in (202, 400, 502), response
        if response.status == 400:
            assert isinstance(payload["error"], str) and payload["error"]
            assert deliveries.batches == []
            continue
        # Accepted by a fast path: the reference check must agree, event by event.
        events = json.loads(body)["events"]
        for index, event in enumerate(events):
            schema.validate_event(event, index)
        if response.status == 502:
            assert upstream_down
            continue
        assert payload == {"accepted": len(events)}
        assert deliveries.batches == [events]
        if isinstance(deliveries, LineDeliveries):
            assert deliveries.lines == [[encode_event(event) for event in events]]


@FUZZ
@given(mutated_bodies(), st.booleans())
def test_mutated_valid_bodies(body, upstream_down):
    check_one_request(body, upstream_down)


@FUZZ
@given(st.binary(max_size=2048) | json_values.map(lambda v: json.dumps(v).encode()), st.booleans())
def test_random_bytes_and_random_json(body, upstream_down):
    check_one_request(body, upstream_down)


@settings(max_examples=300, deadline=None)
@given(st.lists(quick_cli_events(), min_size=1, max_size=schema.MAX_BATCH))
def test_every_valid_batch_is_accepted_and_delivered_unchanged(events):
    deliveries = Deliveries()
    response = call_app(make_app(deliveries), schema.encode_batch(events))
    assert (response.status, response.json()) == (202, {"accepted": len(events)})
    assert deliveries.batches == [events]
