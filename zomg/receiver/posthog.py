"""PostHog's side of forwarding: the event mapping, the ``/batch/`` body, one POST.

Each event is rebuilt from the schema's field list: the installation id
becomes ``distinct_id``, the event id ``uuid`` (so PostHog drops a retried
duplicate), the timestamp ``timestamp``, and every other field a property.
Nothing of the client's request is sent: no header (PostHog would take the
client's address from a forwarded-for header), no ``sent_at``, no library
details beyond a fixed ``$lib``. ``$ip`` is a fixed placeholder that is no
one's address: PostHog fills an empty ``$ip`` with the address the request
came from, which would be the receiver's (docs/receiver.md).

``PostHogClient.post`` makes one attempt and says what came of it; when and
how often to try is the forwarder's business (zomg/receiver/forwarder.py).
"""
from __future__ import annotations

import json
import operator
import re
import threading
from collections.abc import Iterable

from zomg import __version__
from zomg.receiver.wsgi import encode_json
from zomg.telemetry import schema

DEFAULT_HOST = "https://us.i.posthog.com"
# Nothing waits on a call but the forwarder's thread: a slow PostHog is waited
# for (a timeout would only send the same events again), a hung one is not.
DEFAULT_TIMEOUT = 10.0  # each network step: connect, send, each read
DEFAULT_DEADLINE = 15.0  # a whole attempt, however the answer trickles
LIB = "zomg-receiver"
USER_AGENT = f"{LIB}/{__version__}"
# Truthy, so PostHog's normalisation keeps it instead of the sender's address;
# the unspecified address, so it locates and identifies no one.
NO_ADDRESS = "0.0.0.0"
MAX_TOKEN_CHARS = 64

# Which schema field fills which PostHog event field; the rest become properties.
# distinct_id is each event type's own random id: the installation for CLI
# events, the deployment for deployment metrics (the two never share one).
DISTINCT_ID_FIELDS = ("installation_id", "deployment_id")
UUID_FIELD = "event_id"
TIMESTAMP_FIELD = "timestamp"
NAME_FIELD = "event"
PERSONLESS = {"$process_person_profile": False, "$geoip_disable": True, "$lib": LIB, "$ip": NO_ADDRESS}

_plans: dict = {}


def _plan(event_name: str) -> tuple[str, tuple[str, ...]]:
    """(the distinct_id field, the property fields) of an event type, from the schema."""
    plan = _plans.get(event_name)
    if plan is None:
        names = schema.field_names(event_name)
        [distinct] = [name for name in DISTINCT_ID_FIELDS if name in names]
        mapped = {NAME_FIELD, distinct, UUID_FIELD, TIMESTAMP_FIELD}
        plan = _plans[event_name] = (distinct, tuple(name for name in names if name not in mapped))
    return plan


def to_posthog(event: dict) -> dict:
    """One validated event as a PostHog capture event."""
    distinct, property_names = _plan(event[NAME_FIELD])
    properties = {name: event[name] for name in property_names}
    properties.update(PERSONLESS)
    return {
        "event": event[NAME_FIELD],
        "distinct_id": event[distinct],
        "uuid": event[UUID_FIELD],
        "timestamp": event[TIMESTAMP_FIELD],
        "properties": properties,
    }


def batch_body(api_key: str, events: Iterable) -> bytes:
    """The exact body of the ``/batch/`` request for validated ``events``."""
    payload = {"api_key": api_key, "batch": [to_posthog(event) for event in events]}
    return encode_json(payload)


def body_from_lines(api_key: str, lines: list) -> bytes:
    """The ``/batch/`` body for events given as the schema's JSON lines (validated already).

    Exactly ``batch_body``'s bytes for the decoded lines. Lines of one event type
    in canonical form (encode_event's text, as the spool keeps them) are
    rearranged as text, by one generated pattern per event type, without
    decoding a value: decoding and re-encoding was the forwarder's largest cost
    per event. Any other call is decoded.
    """
    if lines:
        rearranging = _rearranging(lines[0])
        if rearranging is not None:
            pattern, order, template = rearranging
            found = pattern.findall(b"\n".join(lines))
            if len(found) == len(lines):  # every line matched (one match at most per line)
                events = b",".join([template % order(values) for values in found])
                return b'{"api_key":' + encode_json(api_key) + b',"batch":[' + events + b"]}"
    # One parse of all the lines as a JSON array: a fraction of a parse per line.
    return batch_body(api_key, json.loads(b"[" + b",".join(lines) + b"]"))


_rearrangers: dict = {}
# One JSON value of a canonical line: a string, a list, or a number, true, false or null.
_STRING = rb'"[^"\\\n]*(?:\\.[^"\\\n]*)*"'
_VALUE = rb"(" + _STRING + rb"|\[(?:[^\]\"\n]|" + _STRING + rb")*\]|[-+.\w]+)"
_NAME_START = b'{"' + NAME_FIELD.encode("ascii") + b'":"'


def _rearranging(line: bytes) -> tuple | None:
    """(pattern, reorder, template) for the event type ``line`` starts with; None if it starts otherwise.

    The pattern's groups are, in the schema's order, the values of the fields
    PostHog takes apart (distinct_id, uuid, timestamp) and the runs of
    ``"name":value`` members between them, the properties, taken whole;
    ``template % reorder(groups)`` is the PostHog event, to_posthog's JSON. A
    key's text (a comma, the quoted name, a colon) cannot occur inside a value
    of a valid line (a quote in a string is escaped, no value is an object),
    so a line splits exactly at its keys, and a line laid out otherwise (keys
    reordered, spaces around them) does not match. Matching every property's
    value instead cost three times as much per event, and this is the
    forwarder's largest cost per event.
    """
    if not line.startswith(_NAME_START):
        return None
    event_name = line[len(_NAME_START):line.find(b'"', len(_NAME_START))].decode("ascii", "replace")
    made = _rearrangers.get(event_name)
    if made is None:
        if event_name not in schema.EVENT_TYPES:
            return None
        distinct, property_names = _plan(event_name)
        taken = (distinct, UUID_FIELD, TIMESTAMP_FIELD)
        pattern = rb"^" + re.escape(b'{"' + NAME_FIELD.encode("ascii") + b'":' + encode_json(event_name))
        grouped: list = []  # what each group holds: a taken field's name, or the index of a run
        runs = 0
        in_run = False
        for name in schema.field_names(event_name):
            if name == NAME_FIELD:
                continue
            key = re.escape(b'"' + name.encode("ascii") + b'":')
            if name in taken:
                if in_run:
                    pattern += rb")"
                    in_run = False
                pattern += b"," + key + _VALUE
                grouped.append(name)
            elif not in_run:
                # Lazy, up to the next taken key: one scan, no value parsed.
                pattern += b",(" + key + rb".*?"
                grouped.append(runs)
                runs += 1
                in_run = True
        if in_run:  # the last run, greedy: to the line's end at once, then back to its brace
            pattern = pattern[:-len(rb".*?")] + rb".*)"
        pattern = re.compile(pattern + rb"\}$", re.MULTILINE)
        wanted = [*taken, *range(runs)]
        template = (b'{"event":' + encode_json(event_name).replace(b"%", b"%%")
                    + b',"distinct_id":%s,"uuid":%s,"timestamp":%s,"properties":{'
                    + b"%s," * runs
                    + encode_json(PERSONLESS)[1:-1].replace(b"%", b"%%") + b"}}")
        made = _rearrangers[event_name] = (pattern, operator.itemgetter(*[grouped.index(n) for n in wanted]),
                                           template)
    return made


def batch_shape(lines: list) -> str:
    """What a batch holds, without a single value: counts per event type and their field names."""
    counts: dict = {}
    for line in lines:
        event = json.loads(line)
        key = (event[NAME_FIELD], ",".join(event))
        counts[key] = counts.get(key, 0) + 1
    return "; ".join(f"{count} x {name} [{fields}]" for (name, fields), count in sorted(counts.items()))


def check_host(host: str) -> str:
    """``host`` without a trailing slash; ValueError unless it is an http(s) URL."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(host)
        good = parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query and not parts.fragment
        _ = parts.port  # raises ValueError for a port that is not a number (or out of range)
    except ValueError:
        good = False
    if not good:
        raise ValueError(f"POSTHOG_HOST must be an http:// or https:// URL, not {host!r}")
    return host.rstrip("/")


def check_token(token: str) -> str:
    """``token``, or ValueError when PostHog's capture would refuse it (personal key, too long, not ASCII)."""
    if token.startswith("phx_"):
        raise ValueError("POSTHOG_PROJECT_API_KEY is a personal API key (phx_...); use the project token (phc_...)")
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError(f"POSTHOG_PROJECT_API_KEY is {len(token)} characters; a project token has at most 64")
    if not (token.isascii() and token.isprintable()) or " " in token:
        raise ValueError("POSTHOG_PROJECT_API_KEY holds spaces or characters a project token never has")
    return token


# Only these headers go to PostHog (http.client adds Host, Content-Length and
# Accept-Encoding); nothing of the client's request is ever among them.
HEADERS = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
_MAX_RESPONSE = 65536


class Outcome:
    """What one POST came to: ``status`` (None: no HTTP answer), Retry-After seconds, a description."""

    __slots__ = ("status", "retry_after", "problem")

    def __init__(self, status: int | None, retry_after: float | None = None, problem: str = "") -> None:
        self.status = status
        self.retry_after = retry_after
        self.problem = problem or f"HTTP {status}"

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _retry_after(value: str | None) -> float | None:
    text = (value or "").strip()
    return float(text) if text.isascii() and text.isdigit() and len(text) < 7 else None


def _proxy_for(url: str) -> str | None:
    """The proxy the environment names for ``url`` (https_proxy, no_proxy), or None."""
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        return proxy
    return None


def _proxy_opener() -> object:
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        # A redirect would turn the POST into a GET somewhere else: treat it as a failure.
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            return None

    return urllib.request.build_opener(NoRedirect)


class PostHogClient:
    """One keep-alive connection to PostHog ``/batch/``, used by one thread (the forwarder's).

    Through a proxy from the environment it goes by urllib instead, a
    connection per batch. An attempt is bounded per network step (``timeout``)
    and as a whole (``deadline``): a PostHog that trickles its answer has the
    connection closed under it.
    """

    def __init__(self, api_key: str, host: str = DEFAULT_HOST, timeout: float = DEFAULT_TIMEOUT,
                 deadline: float = DEFAULT_DEADLINE) -> None:
        from urllib.parse import urlsplit

        self.api_key = check_token(api_key)
        self.url = check_host(host) + "/batch/"
        self.timeout = timeout
        self.deadline = deadline
        self._proxied = _proxy_for(self.url) is not None
        self._open = _proxy_opener().open if self._proxied else None
        parts = urlsplit(self.url)
        self._target = (parts.scheme, parts.hostname, parts.port, parts.path)
        self._connection: object = None

    def post(self, body: bytes) -> Outcome:
        import http.client

        try:
            if self._proxied:
                return self._post_by_proxy(body)
            return self._post_direct(body, reused=self._connection is not None)
        except (OSError, http.client.HTTPException) as exc:
            # Refused, reset, unresolvable, timed out, cut off (URLError is an OSError).
            self.close()
            return Outcome(None, None, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}")

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _new_connection(self) -> object:
        import http.client

        scheme, host, port, _ = self._target
        if scheme == "https":
            import ssl

            return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=ssl.create_default_context())
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def _post_direct(self, body: bytes, reused: bool) -> Outcome:
        import http.client

        if self._connection is None:
            self._connection = self._new_connection()
        connection = self._connection
        # Per-step timeouts cannot stop an answer that trickles a byte at a time:
        # past the deadline the socket is shut under the blocked read.
        cut = threading.Event()
        watchdog = threading.Timer(self.deadline, self._cut, (connection, cut))
        watchdog.daemon = True
        try:
            watchdog.start()
        except RuntimeError:
            # At interpreter exit (the drain of a plain WSGI host), Python 3.12 refuses new
            # threads: this last send is bounded by the per-step timeouts alone.
            watchdog = None
        try:
            connection.request("POST", self._target[3], body=body, headers=HEADERS)
            response = connection.getresponse()
            unread = len(response.read(_MAX_RESPONSE + 1)) > _MAX_RESPONSE
        except BaseException as exc:
            self.close()
            if cut.is_set():
                raise TimeoutError(f"no whole answer within {self.deadline:g} s") from None
            if reused and isinstance(exc, (ConnectionError, http.client.RemoteDisconnected)):
                # PostHog (or a proxy in front of it) had closed the idle connection:
                # that is no failed try; send once more on a new connection.
                return self._post_direct(body, reused=False)
            raise
        finally:
            if watchdog is not None:
                watchdog.cancel()
        if unread or response.will_close:
            self.close()
        return Outcome(response.status, _retry_after(response.getheader("Retry-After")))

    @staticmethod
    def _cut(connection: object, cut: threading.Event) -> None:
        import socket

        cut.set()
        sock = getattr(connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _post_by_proxy(self, body: bytes) -> Outcome:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.url, data=body, method="POST", headers=HEADERS)
        try:
            with self._open(request, timeout=self.timeout) as response:
                response.read(_MAX_RESPONSE)
                return Outcome(response.status)
        except urllib.error.HTTPError as exc:
            exc.close()
            return Outcome(exc.code, _retry_after(exc.headers.get("Retry-After")))
