"""The client-server contract beyond the event schema: where batches go, how an answer is read, how a client backs off.

The CLI's sender and the receiver's PostHog client are both HTTP clients,
and the receiver is the CLI's server: what they must agree on, or do the
same way, is written once, here. ``schema.py`` owns what a batch holds;
this module owns the rest of the exchange:

- ``EVENTS_PATH``: where a receiver takes batches (``POST``), and where the
  CLI posts when its endpoint names only a receiver's origin;
- ``retry_after``: a ``Retry-After`` header read as seconds to wait, in
  either of HTTP's forms (delay-seconds or an HTTP date);
- ``no_redirects``: the urllib handler that follows no redirect (a 3xx could
  lead anywhere, and would turn a POST into a GET): a redirect is the
  endpoint's failure;
- ``backoff`` and ``honour_retry_after``: the wait after failed tries,
  doubling from a base up to a cap, never shorter than what the server asked
  for (up to a bound).

Like the schema it imports nothing of zomg, so the receiver may use it
(tests/cli/test_layers.py), and nothing beyond the standard library's
basics at import: urllib and email load only in the functions that need
them, which run in a sending thread, never on a recorded command's path.
"""
from __future__ import annotations

EVENTS_PATH = "/v1/events"

# Past this many doublings the wait is the cap anyway; it also keeps 2 ** n small.
_MAX_DOUBLINGS = 30
# delay-seconds longer than this are read as this: every caller caps the wait far below it.
_MAX_DELAY_DIGITS = 12


def backoff(failures: int, base: float, cap: float) -> float:
    """Seconds to wait after ``failures`` failed tries in a row: ``base``, doubled per later failure, up to ``cap``.

    The CLI waits exactly this (its runs are spread out anyway); the receiver's forwarder jitters it.
    """
    return min(cap, base * 2 ** max(0, min(failures - 1, _MAX_DOUBLINGS)))


def honour_retry_after(delay: float, retry_after: float | None, most: float) -> float:
    """The wait before the next try: ``delay``, or the server's Retry-After when that is longer (at most ``most``)."""
    if retry_after is None:
        return delay
    return max(delay, min(retry_after, most))


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header's value: delay-seconds, or an HTTP date counted from ``now``.

    ``now`` is wall-clock seconds (``time.time``). None when there is no header or it says neither; a date in
    the past is 0.
    """
    text = (value or "").strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(text) if len(text) <= _MAX_DELAY_DIGITS else float(10 ** _MAX_DELAY_DIGITS)
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


_no_redirects: type | None = None


def no_redirects() -> type:
    """A urllib handler class that follows no redirect: the 3xx answer comes back as an ``HTTPError``.

    A redirect could lead anywhere (plain http, another host) and would turn
    the POST into a GET: both clients count it as the endpoint's failure.
    """
    global _no_redirects
    if _no_redirects is None:
        import urllib.request

        class NoRedirects(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, req, fp, code, msg, headers, newurl):
                return None

        _no_redirects = NoRedirects
    return _no_redirects
