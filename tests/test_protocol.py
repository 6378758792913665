"""The client-server contract beyond the schema, as the CLI and the receiver both use it: one home, the same answers."""
from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from tests.support.events import cli_event
from tests.support.servers import Capture
from tests.support.wsgi import Deliveries, call_app
from zomg.receiver import make_app
from zomg.telemetry import policy, protocol, schema
from zomg.telemetry.files import SpoolBounds


@pytest.mark.parametrize("configured", [None, "https://receiver.example", "http://127.0.0.1:8080/",
                                        "http://127.0.0.1:8080/?team=a"])
def test_the_cli_posts_where_the_receiver_takes_batches(configured):
    # The default endpoint, and a receiver's origin given as the endpoint, name the path the receiver serves.
    env = {} if configured is None else {"ZOMG_TELEMETRY_ENDPOINT": configured}
    url = policy.endpoint(env)
    assert urlsplit(url).path == protocol.EVENTS_PATH
    deliveries = Deliveries()
    response = call_app(make_app(deliveries), schema.encode_batch([cli_event()]), path=urlsplit(url).path)
    assert response.status == 202 and len(deliveries.events) == 1
    assert call_app(make_app(deliveries), schema.encode_batch([cli_event()]), path="/v1/event").status == 404


NOW = 1_800_000_000.0  # Tue, 15 Jan 2027 08:00:00 GMT


@pytest.mark.parametrize("value,seconds", [
    ("120", 120.0),
    (" 7 ", 7.0),
    ("0", 0.0),
    ("Tue, 15 Jan 2027 08:03:20 GMT", 200.0),
    ("Tuesday, 15-Jan-27 08:03:20 GMT", 200.0),  # RFC 850's form, which HTTP readers must take
    ("Tue, 15 Jan 2027 07:00:00 GMT", 0.0),  # already past: go now
    ("9" * 40, 1e12),  # longer than any wait: every caller caps it
    (None, None),
    ("", None),
    ("soon", None),
    ("-5", None),
    ("1.5", None),
    ("\u00b2", None),  # a digit to str.isdigit, not to HTTP (the CLI used to fail its whole answer on it)
])
def test_retry_after_is_delay_seconds_or_an_http_date(value, seconds):
    assert protocol.retry_after(value, NOW) == seconds


def test_backoff_doubles_from_its_base_to_its_cap_and_never_waits_less_than_asked():
    assert [protocol.backoff(n, 5.0, 3600.0) for n in (0, 1, 2, 3, 4, 11, 10**6)] == [5, 5, 10, 20, 40, 3600, 3600]
    # The CLI's bounds wait by the same formula.
    bounds = SpoolBounds(backoff_base=0.5, backoff_cap=30.0)
    assert [bounds.backoff(n) for n in range(1, 9)] == [protocol.backoff(n, 0.5, 30.0) for n in range(1, 9)]
    assert protocol.honour_retry_after(5.0, None, 300.0) == 5.0
    assert protocol.honour_retry_after(5.0, 120.0, 300.0) == 120.0
    assert protocol.honour_retry_after(5.0, 86400.0, 300.0) == 300.0
    assert protocol.honour_retry_after(500.0, 1.0, 300.0) == 500.0


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_no_redirect_is_followed(status):
    elsewhere = Capture()
    endpoint = Capture(statuses=[status], headers={"Location": elsewhere.url})
    try:
        opener = urllib.request.build_opener(protocol.no_redirects())
        with pytest.raises(urllib.error.HTTPError) as raised:
            opener.open(urllib.request.Request(endpoint.url, data=b"{}", method="POST"), timeout=10)
        raised.value.close()
        assert raised.value.code == status
        assert elsewhere.requests == [] and len(endpoint.requests) == 1
    finally:
        endpoint.close()
        elsewhere.close()
