"""The WSGI application in-process: routes, every rejection, and what reaches ``deliver``."""
from __future__ import annotations

import json

import pytest

from tests.support.events import cli_event
from tests.support.wsgi import TrackingInput, call_app
from zomg.receiver import make_app
from zomg.receiver.sink import DeliveryError
from zomg.receiver.wsgi import MAX_BODY_BYTES
from zomg.telemetry import schema


@pytest.fixture
def app(deliveries):
    return make_app(deliveries)


def batch(*events: dict) -> bytes:
    return schema.encode_batch(list(events))


def test_a_valid_batch_is_accepted_and_delivered_as_sent(app, deliveries):
    events = [cli_event(), cli_event(result="error", error_class="usage", flags=[]), cli_event(command=None,
                                                                                               subcommand=None)]
    response = call_app(app, batch(*events))
    assert (response.status, response.json()) == (202, {"accepted": 3})
    assert response.headers["Content-Type"] == "application/json"
    assert deliveries.batches == [events]


def test_each_batch_is_delivered_in_one_call(app, deliveries):
    call_app(app, batch(cli_event(), cli_event()))
    call_app(app, batch(cli_event()))
    assert [len(b) for b in deliveries.batches] == [2, 1]


def test_a_full_batch_of_max_batch_events_is_accepted(app, deliveries):
    response = call_app(app, batch(*[cli_event() for _ in range(schema.MAX_BATCH)]))
    assert (response.status, response.json()) == (202, {"accepted": schema.MAX_BATCH})


def test_the_largest_valid_batch_fits_under_the_body_limit(app, deliveries):
    flags = sorted(f"--{i:02d}" + "x" * 30 for i in range(schema.MAX_FLAGS))
    biggest = cli_event(flags=flags, cli_version="1" + "a" * 31, command="c" * 32, subcommand="s" * 32,
                        duration_bucket="1m-10m", result="interrupted", os="freebsd")
    body = batch(*[dict(biggest, event_id=cli_event()["event_id"]) for _ in range(schema.MAX_BATCH)])
    assert len(body) < MAX_BODY_BYTES
    assert call_app(app, body).status == 202


def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_refused_unread(app, deliveries):
    body = batch(cli_event())
    padded = body + b" " * (MAX_BODY_BYTES - len(body))
    assert call_app(app, padded).status == 202
    stream = TrackingInput(padded + b" ")
    response = call_app(app, padded + b" ", stream=stream)
    assert response.status == 413
    assert str(MAX_BODY_BYTES) in response.json()["error"]
    assert stream.bytes_read == 0
    assert len(deliveries.batches) == 1


def test_a_huge_content_length_is_refused_without_reading(app, deliveries):
    stream = TrackingInput(b"{}")
    response = call_app(app, content_length="9" * 5000, stream=stream)
    assert response.status == 413
    assert stream.bytes_read == 0


def _mutated(index: int, change) -> bytes:
    events = [cli_event() for _ in range(3)]
    change(events[index])
    return batch(*events)


def _set(key, value):
    return lambda event: event.__setitem__(key, value)


def _drop(key):
    return lambda event: event.pop(key)


EVENT_REJECTIONS = [
    ("unknown key", _set("hostname", "laptop"), "events[1].hostname: unknown field"),
    ("missing key", _drop("os"), "events[1].os: missing field"),
    ("wrong type bool", _set("ci", "false"), "events[1].ci: must be true or false"),
    ("wrong type version", _set("schema_version", "1"), "events[1].schema_version: must be 1"),
    ("bool is not an integer", _set("schema_version", True), "events[1].schema_version"),
    ("wrong type list", _set("flags", "--all"), "events[1].flags: must be a list"),
    ("outside enum", _set("os", "plan9"), "events[1].os: must be one of"),
    ("enum is case sensitive", _set("result", "Success"), "events[1].result: must be one of"),
    ("outside pattern", _set("command", "rm -rf /"), "events[1].command: must be a command name"),
    ("flag with value", _set("flags", ["--name=secret"]), "events[1].flags: must hold only option names"),
    ("flags unsorted", _set("flags", ["--json", "--all"]), "events[1].flags: must be sorted and unique"),
    ("not a uuid", _set("event_id", "not-a-uuid"), "events[1].event_id: must be a lowercase random UUID"),
    ("uppercase uuid", _set("installation_id", "5F0C6A56-2A4E-4B8E-9D3F-2B1C0E7A9D11"),
     "events[1].installation_id: must be a lowercase random UUID"),
    ("uuid version 1", _set("event_id", "5f0c6a56-2a4e-1b8e-9d3f-2b1c0e7a9d11"), "events[1].event_id"),
    ("bad timestamp form", _set("timestamp", "2026-03-04 05:06:07"), "events[1].timestamp: must be a UTC timestamp"),
    ("timestamp with offset", _set("timestamp", "2026-03-04T05:06:07+01:00"), "events[1].timestamp"),
    ("timestamp not a date", _set("timestamp", "2026-02-29T00:00:00Z"), "events[1].timestamp: must be a real"),
    ("timestamp not a time", _set("timestamp", "2026-03-04T24:00:00Z"), "events[1].timestamp: must be a real"),
    ("timestamp in other digits", _set("timestamp", "\u0662\u0660\u0662\u0666-03-04T05:06:07Z"),
     "events[1].timestamp: must be a UTC timestamp"),
    ("error without class", _set("result", "error"), "events[1].error_class: must be set exactly when result is"),
    ("class without error", _set("error_class", "usage"), "events[1].error_class: must be set exactly"),
    ("unknown event type", _set("event", "cli.other"), "events[1].event: unknown event type"),
    ("event not an object", None, "events[1]: must be an object"),
]


@pytest.mark.parametrize("change,expected", [(c, e) for _, c, e in EVENT_REJECTIONS],
                         ids=[name for name, _, _ in EVENT_REJECTIONS])
def test_one_bad_event_rejects_the_whole_batch_naming_field_and_index(app, deliveries, change, expected):
    if change is None:
        body = json.dumps({"events": [cli_event(), ["not", "an", "event"], cli_event()]}).encode()
    else:
        body = _mutated(1, change)
    response = call_app(app, body)
    assert response.status == 400
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"].startswith(expected)
    assert deliveries.batches == []


BODY_REJECTIONS = [
    ("more than max batch", batch(*[cli_event() for _ in range(schema.MAX_BATCH + 1)]),
     "events: must hold 1 to 100 events, not 101"),
    ("empty list", b'{"events":[]}', "events: must hold 1 to 100 events, not 0"),
    ("extra top-level key", json.dumps({"events": [cli_event()], "sent_at": "now"}).encode(),
     "sent_at: unknown top-level field"),
    ("no events key", b"{}", "events: missing"),
    ("events not a list", b'{"events":{}}', "events: must be a list"),
    ("body not an object", b"[]", "body: must be a JSON object"),
    ("not JSON", b"events=1", "body: not JSON"),
    ("truncated JSON", batch(cli_event())[:-2], "body: not JSON"),
    ("empty body", b"", "body: not JSON"),
    ("NaN", b'{"events":[NaN]}', "body: not JSON"),
    ("repeated key, last one counts", b'{"events":[{}],"events":[]}', "events: must hold 1 to 100 events, not 0"),
    ("nested too deep", b"[" * 200000, "body: not JSON"),
    ("integer too long", b'{"events":' + b"1" * 5000 + b"}", "body: not JSON"),
    ("not UTF-8", b'{"events":["\xff"]}', "body: not UTF-8"),
    ("UTF-16", json.dumps({"events": [cli_event()]}).encode("utf-16"), "body: not UTF-8"),
    ("UTF-8 with BOM", b"\xef\xbb\xbf" + batch(cli_event()), "body: not JSON"),
]


@pytest.mark.parametrize("body,expected", [(b, e) for _, b, e in BODY_REJECTIONS],
                         ids=[name for name, _, _ in BODY_REJECTIONS])
def test_a_bad_body_is_rejected(app, deliveries, body, expected):
    response = call_app(app, body)
    assert response.status == 400
    assert response.json()["error"].startswith(expected)
    assert deliveries.batches == []


@pytest.mark.parametrize("length,status,expected", [
    ("", 411, "Content-Length: required"),
    ("-5", 400, "Content-Length: not a number"),
    ("12abc", 400, "Content-Length: not a number"),
    ("\u00b2", 400, "Content-Length: not a number"),
])
def test_content_length_must_be_a_plain_number(app, deliveries, length, status, expected):
    response = call_app(app, batch(cli_event()), content_length=length)
    assert (response.status, response.json()) == (status, {"error": expected})
    assert deliveries.batches == []


def test_a_body_shorter_than_its_content_length_is_rejected(app, deliveries):
    body = batch(cli_event())
    response = call_app(app, body, content_length=str(len(body) + 10))
    assert (response.status, response.json()) == (400, {"error": "body: shorter than Content-Length"})
    assert deliveries.batches == []


def test_a_stream_that_fails_mid_body_is_a_client_error(app, deliveries):
    class Broken:
        def read(self, size: int = -1) -> bytes:
            raise TimeoutError("timed out")

    response = call_app(app, content_length="100", stream=Broken())
    assert response.status == 400
    assert deliveries.batches == []


def test_only_exactly_content_length_bytes_are_read(app, deliveries):
    body = batch(cli_event())
    stream = TrackingInput(body + b"trailing bytes of the next request")
    assert call_app(app, body, stream=stream).status == 202
    assert stream.bytes_read == len(body)


@pytest.mark.parametrize("status", [502, 503])
def test_a_delivery_failure_is_passed_on_so_the_client_retries(app, deliveries, status):
    deliveries.failure = DeliveryError("upstream: down", status=status)
    response = call_app(app, batch(cli_event()))
    assert (response.status, response.json()) == (status, {"error": "upstream: down"})


def test_a_bug_in_delivery_is_a_500_with_a_json_body(app, deliveries, capsys):
    deliveries.failure = RuntimeError("bug")
    response = call_app(app, batch(cli_event()))
    assert (response.status, response.json()) == (500, {"error": "internal error"})
    assert "RuntimeError: bug" in capsys.readouterr().err


def test_healthz(app):
    response = call_app(app, method="GET", path="/healthz")
    assert (response.status, response.json()) == (200, {"status": "ok"})
    head = call_app(app, method="HEAD", path="/healthz")
    assert (head.status, head.body) == (200, b"")
    assert head.headers["Content-Length"] == response.headers["Content-Length"]


@pytest.mark.parametrize("method,path", [("GET", "/"), ("POST", "/v1/event"), ("POST", "/v1/events/"),
                                         ("GET", "/v2/events"), ("DELETE", "/anything"), ("POST", "")])
def test_any_other_path_is_404(app, deliveries, method, path):
    response = call_app(app, batch(cli_event()), method=method, path=path)
    assert (response.status, response.json()) == (404, {"error": "not found"})
    assert deliveries.batches == []


@pytest.mark.parametrize("method,path,allow", [
    ("GET", "/v1/events", "POST"), ("PUT", "/v1/events", "POST"), ("DELETE", "/v1/events", "POST"),
    ("OPTIONS", "/v1/events", "POST"), ("POST", "/healthz", "GET, HEAD"), ("PATCH", "/healthz", "GET, HEAD"),
])
def test_any_other_method_is_405_with_allow(app, deliveries, method, path, allow):
    response = call_app(app, batch(cli_event()), method=method, path=path)
    assert (response.status, response.json()) == (405, {"error": "method not allowed"})
    assert response.headers["Allow"] == allow
    assert deliveries.batches == []
