"""Forwarding to a fake PostHog on 127.0.0.1: the exact body, personless events, failures."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.events import cli_event, deployment_event
from tests.support.servers import TOKEN
from tests.support.strategies import valid_events_of
from tests.support.wsgi import call_app
from zomg import __version__
from zomg.receiver.fastpath import encode_event
from zomg.receiver.posthog_client import PostHogClient, check_host
from zomg.receiver.posthog_events import DISTINCT_ID_FIELDS, batch_body, body_from_lines
from zomg.telemetry import schema


@pytest.fixture
def forwarded(forwarding):
    """The receiver forwarding to the fake; ``forwarded.flush()`` waits until PostHog has everything."""
    return forwarding()


def test_the_exact_body_posted_to_batch(forwarded, fake_posthog):
    app = forwarded.app
    first = cli_event(event_id="0b8c3f7e-5a1d-4e2b-8c9f-1a2b3c4d5e6f")
    second = cli_event(event_id="1c9d4a8f-6b2e-4f3c-9d0a-2b3c4d5e6f70", timestamp="2026-03-04T05:06:09Z",
                       command="exec", subcommand=None, flags=[], ci=True, result="error",
                       error_class="subprocess", duration_bucket="1s-10s", os="darwin", arch="arm64")
    response = call_app(app, schema.encode_batch([first, second]))
    assert (response.status, response.json()) == (202, {"accepted": 2})
    forwarded.flush()

    [request] = fake_posthog.requests
    assert request["path"] == "/batch/"
    assert json.loads(request["body"]) == {
        "api_key": TOKEN,
        "batch": [
            {
                "event": "cli.command",
                "distinct_id": "5f0c6a56-2a4e-4b8e-9d3f-2b1c0e7a9d11",
                "uuid": "0b8c3f7e-5a1d-4e2b-8c9f-1a2b3c4d5e6f",
                "timestamp": "2026-03-04T05:06:07Z",
                "properties": {
                    "schema_version": 1,
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
                    "$process_person_profile": False,
                    "$geoip_disable": True,
                    "$lib": "zomg-receiver",
                    "$ip": "0.0.0.0",
                },
            },
            {
                "event": "cli.command",
                "distinct_id": "5f0c6a56-2a4e-4b8e-9d3f-2b1c0e7a9d11",
                "uuid": "1c9d4a8f-6b2e-4f3c-9d0a-2b3c4d5e6f70",
                "timestamp": "2026-03-04T05:06:09Z",
                "properties": {
                    "schema_version": 1,
                    "cli_version": "0.1.0",
                    "command": "exec",
                    "subcommand": None,
                    "flags": [],
                    "os": "darwin",
                    "arch": "arm64",
                    "ci": True,
                    "duration_bucket": "1s-10s",
                    "result": "error",
                    "error_class": "subprocess",
                    "$process_person_profile": False,
                    "$geoip_disable": True,
                    "$lib": "zomg-receiver",
                    "$ip": "0.0.0.0",
                },
            },
        ],
    }


def test_the_forward_request_carries_only_the_receivers_own_headers(forwarded, fake_posthog):
    call_app(forwarded.app, schema.encode_batch([cli_event()]))
    forwarded.flush()
    [request] = fake_posthog.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == f"zomg-receiver/{__version__}"
    assert set(headers) <= {"host", "content-type", "content-length", "user-agent", "accept-encoding", "connection"}


def test_events_are_personless_and_carry_no_address_or_send_time(forwarded, fake_posthog):
    call_app(forwarded.app, schema.encode_batch([cli_event() for _ in range(5)]))
    forwarded.flush()
    body = json.loads(fake_posthog.requests[0]["body"])
    assert set(body) == {"api_key", "batch"}
    for event in body["batch"]:
        assert set(event) == {"event", "distinct_id", "uuid", "timestamp", "properties"}
        assert event["properties"]["$process_person_profile"] is False
        assert event["properties"]["$geoip_disable"] is True
        # Truthy, so PostHog keeps it instead of filling in the address the request came from.
        assert event["properties"]["$ip"] == "0.0.0.0"
        assert not {"ip", "sent_at", "$lib_version", "$os", "$useragent"} & set(event["properties"])


def test_a_rejected_batch_never_reaches_posthog(forwarded, fake_posthog):
    response = call_app(forwarded.app, schema.encode_batch([cli_event(), cli_event(os="plan9")]))
    assert response.status == 400
    forwarded.flush()
    assert fake_posthog.requests == []


def test_both_ways_into_the_queue_forward_the_same_events(forwarded, fake_posthog):
    # The canonical fast path (what the CLI sends) and a pretty-printed body that is decoded and validated.
    events = [cli_event(), cli_event(command="exec", subcommand=None, flags=[])]
    assert call_app(forwarded.app, schema.encode_batch(events)).status == 202
    assert call_app(forwarded.app, json.dumps({"events": events}, indent=2).encode()).status == 202
    forwarded.flush()
    first, second = fake_posthog.accepted()[:2], fake_posthog.accepted()[2:]
    assert first == second


def test_the_host_may_have_a_trailing_slash_or_a_path_prefix(fake_posthog):
    client = PostHogClient(TOKEN, fake_posthog.url + "/ingest/", timeout=1)
    assert client.post(batch_body(TOKEN, [cli_event()])).accepted
    assert fake_posthog.requests[0]["path"] == "/ingest/batch/"


@pytest.mark.parametrize("host", ["us.i.posthog.com", "ftp://example.com", "https://", "https://h/?x=1", "",
                                  "http://h:port", "http://[::1", "https://h:99999"])
def test_a_host_that_is_not_an_http_url_is_refused(host):
    with pytest.raises(ValueError, match="POSTHOG_HOST"):
        check_host(host)


def test_every_event_type_has_the_fields_posthog_needs():
    for event_name in schema.EVENT_TYPES:
        names = set(schema.field_names(event_name))
        assert {"event", "event_id", "timestamp"} <= names
        assert len(names & set(DISTINCT_ID_FIELDS)) == 1, event_name


def test_the_connection_to_posthog_is_kept_open_between_batches(forwarded, fake_posthog):
    fake_posthog.keep_alive = True
    for _ in range(3):
        assert call_app(forwarded.app, schema.encode_batch([cli_event()])).status == 202
        forwarded.flush()
    assert (len(fake_posthog.requests), fake_posthog.connections) == (3, 1)
    assert forwarded.lines == []


def test_a_connection_posthog_closed_while_idle_is_replaced_without_a_failed_try(forwarded, fake_posthog):
    fake_posthog.keep_alive = fake_posthog.close_silently = True
    for _ in range(3):
        assert call_app(forwarded.app, schema.encode_batch([cli_event()])).status == 202
        forwarded.flush()
    assert (len(fake_posthog.requests), fake_posthog.connections) == (3, 3)
    assert forwarded.lines == []


def test_a_proxy_from_the_environment_is_used(fake_posthog, monkeypatch):
    # The fake stands in for the proxy here: a proxy gets the absolute URL.
    monkeypatch.setenv("http_proxy", fake_posthog.url)
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("no_proxy", "")
    client = PostHogClient(TOKEN, "http://posthog.invalid", timeout=1)
    assert client.post(batch_body(TOKEN, [cli_event()])).accepted
    [request] = fake_posthog.requests
    assert request["path"] == "http://posthog.invalid/batch/"
    assert json.loads(request["body"])["api_key"] == TOKEN


# The forwarder builds each call's body from the spool's lines; rearranged as text, it must be
# byte for byte the body the decoded events give.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(schema.EVENT_TYPES)).flatmap(lambda name: st.lists(valid_events_of(name), min_size=1,
                                                                                max_size=30)))
def test_the_body_from_spooled_lines_is_the_body_of_the_decoded_events(events):
    lines = [encode_event(event).encode("ascii") for event in events]
    assert body_from_lines(TOKEN, lines) == batch_body(TOKEN, events)


@pytest.mark.parametrize("form", ["spaced", "reordered", "mixed types"])
def test_the_body_of_lines_in_any_other_form_is_still_exact(form):
    events = [cli_event(flags=["--all", "-v"]), cli_event(), deployment_event()]
    lines = [encode_event(event).encode("ascii") for event in events]
    if form == "spaced":
        lines[1] = json.dumps(events[1]).encode("ascii")
    elif form == "reordered":
        lines[1] = json.dumps(dict(sorted(events[1].items())), separators=(",", ":")).encode("ascii")
    if form != "mixed types":
        lines, events = lines[:2], events[:2]
    assert body_from_lines(TOKEN, lines) == batch_body(TOKEN, events)


@pytest.mark.parametrize("proxied", [False, True])
def test_posthog_s_retry_after_as_an_http_date_is_read_as_the_cli_reads_it(fake_posthog, monkeypatch, proxied):
    # Retry-After may be delay-seconds or an HTTP date; the receiver read only the first and
    # ignored a date, retrying a PostHog that asked it to wait long before its time.
    import time
    from email.utils import formatdate

    if proxied:
        monkeypatch.setenv("http_proxy", fake_posthog.url)
        monkeypatch.setenv("NO_PROXY", "")
        monkeypatch.setenv("no_proxy", "")
    fake_posthog.status = 503
    fake_posthog.retry_after = formatdate(time.time() + 600, usegmt=True)
    client = PostHogClient(TOKEN, "http://posthog.invalid" if proxied else fake_posthog.url, timeout=1)
    outcome = client.post(batch_body(TOKEN, [cli_event()]))
    assert outcome.status == 503
    assert outcome.retry_after is not None and 590 < outcome.retry_after <= 600
