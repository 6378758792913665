"""The receiver's HTTP client for PostHog (``PostHogClient``): a keep-alive connection to ``/batch/``, one try a call.

``PostHogClient.post`` makes one attempt and says what came of it
(``Outcome``); what the body holds is ``posthog_events``' business, when and
how often to try the forwarder's (zomg/receiver/forwarder.py). How an
answer's Retry-After is read and that no redirect is followed are the
protocol's (``zomg.telemetry.protocol``), as for the CLI's own sender.
"""
from __future__ import annotations

import threading
import time

from zomg import __version__
from zomg.receiver.posthog_events import LIB
from zomg.telemetry import protocol

DEFAULT_HOST = "https://us.i.posthog.com"
# Nothing waits on a call but the forwarder's thread: a slow PostHog is waited
# for (a timeout would only send the same events again), a hung one is not.
DEFAULT_TIMEOUT = 10.0  # each network step: connect, send, each read
DEFAULT_DEADLINE = 15.0  # a whole attempt, however the answer trickles
USER_AGENT = f"{LIB}/{__version__}"
MAX_TOKEN_CHARS = 64


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
    return protocol.retry_after(value, time.time())


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

    return urllib.request.build_opener(protocol.no_redirects())


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
