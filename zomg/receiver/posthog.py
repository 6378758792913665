"""Forward validated batches to PostHog as personless events.

One ``POST {host}/batch/`` per accepted batch. Each event is rebuilt from the
schema's field list: the installation id becomes ``distinct_id``, the event id
``uuid`` (so PostHog drops a retried duplicate), the timestamp ``timestamp``,
and every other field a property. Nothing of the client's request is sent: no
header (PostHog would take the client's address from a forwarded-for header),
no ``$ip``, no ``sent_at``, no library details beyond a fixed ``$lib``.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable

from zomg import __version__
from zomg.receiver.app import DeliveryError, encode_json
from zomg.telemetry import schema

DEFAULT_HOST = "https://us.i.posthog.com"
DEFAULT_TIMEOUT = 3.0
DEFAULT_ATTEMPTS = 2
LIB = "zomg-receiver"
USER_AGENT = f"{LIB}/{__version__}"

# Which schema field fills which PostHog event field; the rest become properties.
# distinct_id is each event type's own random id: the installation for CLI
# events, the deployment for deployment metrics (the two never share one).
DISTINCT_ID_FIELDS = ("installation_id", "deployment_id")
UUID_FIELD = "event_id"
TIMESTAMP_FIELD = "timestamp"
NAME_FIELD = "event"
PERSONLESS = {"$process_person_profile": False, "$geoip_disable": True, "$lib": LIB}

# Answers worth one more try soon: PostHog is busy or briefly down.
_RETRYABLE_STATUS = frozenset((408, 429, 500, 502, 503, 504))
_BACKOFF_SECONDS = 0.25

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


def batch_body(api_key: str, events: list) -> bytes:
    """The exact body of the ``/batch/`` request for ``events``."""
    payload = {"api_key": api_key, "batch": [to_posthog(event) for event in events]}
    return encode_json(payload)


def check_host(host: str) -> str:
    """``host`` without a trailing slash; ValueError unless it is an http(s) URL."""
    from urllib.parse import urlsplit

    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"POSTHOG_HOST must be an http:// or https:// URL, not {host!r}")
    return host.rstrip("/")


# Only these headers go to PostHog (http.client adds Host, Content-Length and
# Accept-Encoding); nothing of the client's request is ever among them.
HEADERS = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
_MAX_RESPONSE = 65536
_MAX_IDLE = 8  # idle connections kept per process


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


class PostHogForwarder:
    """``deliver`` for make_app: POST a batch to PostHog, or raise DeliveryError.

    Connections to PostHog stay open between batches (a few idle ones per
    process, shared by its threads), so a batch costs one round trip instead of
    a TCP and TLS handshake each time. Through a proxy from the environment it
    goes by urllib instead, a connection per batch.
    """

    def __init__(
        self,
        api_key: str,
        host: str = DEFAULT_HOST,
        timeout: float = DEFAULT_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        log: Callable[[str], None] | None = None,
    ) -> None:
        import threading
        from urllib.parse import urlsplit

        self.api_key = api_key
        self.url = check_host(host) + "/batch/"
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._proxied = _proxy_for(self.url) is not None
        self._open = _proxy_opener().open if self._proxied else None
        parts = urlsplit(self.url)
        self._target = (parts.scheme, parts.hostname, parts.port, parts.path)
        self._idle: list = []
        self._idle_lock = threading.Lock()

    def __call__(self, events: list) -> None:
        body = batch_body(self.api_key, events)
        for attempt in range(1, self.attempts + 1):
            problem, retry = self._post(body)
            if problem is None:
                return
            self.log(f"zomg-receiver: PostHog batch of {len(events)} not accepted (try {attempt}): {problem}")
            if not retry:
                break
            if attempt < self.attempts:
                time.sleep(_BACKOFF_SECONDS * attempt)
        raise DeliveryError("upstream: PostHog did not accept the batch; keep the events and retry later")

    def _post(self, body: bytes) -> tuple[str | None, bool]:
        """(None, _) when PostHog accepted; else (what went wrong, whether a retry may help)."""
        import http.client

        try:
            status = self._post_by_proxy(body) if self._proxied else self._post_direct(body)
        except (OSError, http.client.HTTPException) as exc:
            # Refused, reset, unresolvable, timed out (URLError is an OSError).
            return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}", True
        if 200 <= status < 300:
            return None, False
        return f"HTTP {status}", status in _RETRYABLE_STATUS

    def _connection(self) -> object:
        import http.client

        scheme, host, port, _ = self._target
        if scheme == "https":
            import ssl

            return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=ssl.create_default_context())
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def _take(self) -> object:
        with self._idle_lock:
            return self._idle.pop() if self._idle else None

    def _give(self, connection: object) -> None:
        with self._idle_lock:
            if len(self._idle) < _MAX_IDLE:
                self._idle.append(connection)
                return
        connection.close()

    def _post_direct(self, body: bytes) -> int:
        import http.client

        connection = self._take()
        reused = connection is not None
        if not reused:
            connection = self._connection()
        try:
            connection.request("POST", self._target[3], body=body, headers=HEADERS)
            response = connection.getresponse()
            unread = len(response.read(_MAX_RESPONSE + 1)) > _MAX_RESPONSE
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, http.client.RemoteDisconnected):
            connection.close()
            if not reused:
                raise
            # PostHog (or a proxy in front of it) had closed the idle connection:
            # that is no failed try; send once more on a new connection.
            return self._post_direct(body)
        except BaseException:
            connection.close()
            raise
        if unread or response.will_close:
            connection.close()
        else:
            self._give(connection)
        return response.status

    def _post_by_proxy(self, body: bytes) -> int:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.url, data=body, method="POST", headers=HEADERS)
        try:
            with self._open(request, timeout=self.timeout) as response:
                response.read(_MAX_RESPONSE)
                return response.status
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code
