"""Which mode telemetry is in, which setting decided it, and where events may go.

The chain, first match wins:

1. ``DO_NOT_TRACK`` set to anything but empty, ``0`` or ``false``: off.
2. ``ZOMG_TELEMETRY``: an off word, or a value not understood, is off; ``on``
   or ``log`` is that mode unless the system file locks telemetry off.
3. A system file that locks telemetry off: off.
4. The user's config file.
5. The system file's default.
6. On.

Files are read only when the environment has not already decided, so an
environment that turns telemetry off costs no file access at all.

The endpoint is parsed by hand rather than with ``urllib.parse`` so the
common path imports nothing from urllib. The rules are strict on purpose: an
address that is not clearly usable is not used.
"""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from zomg.telemetry.files import Layout, Settings

OFF_WORDS = ("off", "0", "false", "no", "disable", "disabled")
ON_WORDS = ("on", "1", "true", "yes", "enable", "enabled")
LOG_WORDS = ("log",)
SOURCES = ("env:DO_NOT_TRACK", "env:ZOMG_TELEMETRY", "config", "system", "default")
# Its path is protocol.EVENTS_PATH (a test checks), spelled out so that a default run loads no other module.
DEFAULT_ENDPOINT = "https://telemetry.zomg.ai/v1/events"
ENDPOINT_ENV = "ZOMG_TELEMETRY_ENDPOINT"


class Decision:
    """The effective mode, the source that decided it, and the steps taken to get there."""

    __slots__ = ("mode", "source", "reason", "path", "steps", "user", "system", "layout")

    def __init__(self) -> None:
        self.mode = "on"
        self.source = "default"
        self.reason = ""
        self.path: str | None = None  # the file that decided, for sources config and system
        self.steps: list[tuple[str, str]] = []  # (setting, what it says), in the order consulted
        self.user: Settings | None = None
        self.system: Settings | None = None
        self.layout: Layout | None = None  # where the files read live, once any was read (one per run)

    def _decide(self, mode: str, source: str, reason: str, path: str | None = None) -> Decision:
        self.mode, self.source, self.reason, self.path = mode, source, reason, path
        return self


def do_not_track(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false")


def parse_mode_word(value: str) -> str | None:
    """on, off or log for a ZOMG_TELEMETRY value; None when it is not understood."""
    word = value.strip().lower()
    if word in OFF_WORDS:
        return "off"
    if word in ON_WORDS:
        return "on"
    if word in LOG_WORDS:
        return "log"
    return None


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


def decide(env: Mapping[str, str] | None = None) -> Decision:
    env = os.environ if env is None else env
    d = Decision()

    dnt = env.get("DO_NOT_TRACK")
    if do_not_track(dnt):
        d.steps.append(("DO_NOT_TRACK", f"set to {_shown(dnt)}: off"))
        return d._decide("off", "env:DO_NOT_TRACK", "DO_NOT_TRACK is set")
    d.steps.append(("DO_NOT_TRACK", "not set" if not dnt else f"{_shown(dnt)}, which does not ask to opt out"))

    raw = env.get("ZOMG_TELEMETRY", "")
    wanted = parse_mode_word(raw) if raw.strip() else None
    if raw.strip() and wanted in (None, "off"):
        if wanted is None:
            d.steps.append(("ZOMG_TELEMETRY", f"{_shown(raw)} was not understood: off, to be safe"))
            return d._decide("off", "env:ZOMG_TELEMETRY",
                             f"ZOMG_TELEMETRY={_shown(raw)} was not understood, so telemetry is off "
                             "(use on, off or log)")
        d.steps.append(("ZOMG_TELEMETRY", f"{_shown(raw)}: off"))
        return d._decide("off", "env:ZOMG_TELEMETRY", f"ZOMG_TELEMETRY={_shown(raw)}")

    from zomg.telemetry.files import Layout, read_settings

    d.layout = Layout()  # one layout for the whole run: its paths are resolved once
    d.system, d.user = system, user = read_settings(d.layout)
    if system.locks_off:
        if wanted:
            d.steps.append(("ZOMG_TELEMETRY", f"{_shown(raw)}: {wanted}, but the system file locks telemetry off"))
        d.steps.append(("system lock", f"{system.path} locks telemetry off"))
        return d._decide("off", "system", f"{system.path} locks telemetry off", system.path)
    if wanted:
        d.steps.append(("ZOMG_TELEMETRY", f"{_shown(raw)}: {wanted}"))
        return d._decide(wanted, "env:ZOMG_TELEMETRY", f"ZOMG_TELEMETRY={_shown(raw)}")
    d.steps.append(("ZOMG_TELEMETRY", "not set"))
    d.steps.append(("system lock", "none"))

    if user.problem:
        d.steps.append(("config", f"{user.path} {user.problem}: off, to be safe"))
        return d._decide("off", "config", f"{user.path} {user.problem}, so telemetry is off", user.path)
    if user.mode:
        d.steps.append(("config", f"{user.path}: {user.mode}"))
        return d._decide(user.mode, "config", f"stored in {user.path}", user.path)
    d.steps.append(("config", f"{user.path}: no mode stored" if user.exists else f"{user.path}: none"))

    if system.problem:
        d.steps.append(("system default", f"{system.path} {system.problem}: off, to be safe"))
        return d._decide("off", "system", f"{system.path} {system.problem}, so telemetry is off", system.path)
    if system.mode:
        d.steps.append(("system default", f"{system.path}: {system.mode}"))
        return d._decide(system.mode, "system", f"the default set in {system.path}", system.path)
    d.steps.append(("system default", f"{system.path}: no mode" if system.path else "none"))

    d.steps.append(("default", "on"))
    return d._decide("on", "default", "nothing else chose a mode")


def _split_authority(rest: str) -> tuple[str, str]:
    """(authority, path with query and fragment) of what follows ``scheme://``."""
    cut = len(rest)
    for mark in "/?#":
        found = rest.find(mark, 0, cut)
        if found >= 0:
            cut = found
    return rest[:cut], rest[cut:]


def endpoint(env: Mapping[str, str] | None = None) -> str:
    """The endpoint in effect: ``ZOMG_TELEMETRY_ENDPOINT`` if set and not empty, else the default.

    A URL whose path is empty or ``/`` names the receiver's origin, and the
    receiver answers at ``protocol.EVENTS_PATH`` (as OpenTelemetry exporters treat a base
    endpoint); any other path is used as given.
    """
    env = os.environ if env is None else env
    url = env.get(ENDPOINT_ENV, "").strip() or DEFAULT_ENDPOINT
    scheme, sep, rest = url.partition("://")
    authority, tail = _split_authority(rest)
    if not sep or scheme.lower() not in ("http", "https") or not authority:
        return url  # not an address zomg sends to: shown as given, with why it is not used
    if tail.startswith("/") and not tail.startswith("/?") and not tail.startswith("/#") and tail != "/":
        return url
    tail = tail[1:] if tail.startswith("/") else tail
    from zomg.telemetry.protocol import EVENTS_PATH  # the receiver's own path: only for an origin

    return f"{scheme}://{authority}{EVENTS_PATH}{tail}"


def endpoint_for(mode: str, env: Mapping[str, str] | None = None) -> str | None:
    """Where a run in ``mode`` records events for: the endpoint in effect; None when mode on has no usable one
    (log mode sends nothing, so any will do)."""
    url = endpoint(env)
    return None if mode == "on" and endpoint_problem(url) is not None else url


def masked(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``, for showing it."""
    scheme, sep, rest = url.partition("://")
    authority, tail = _split_authority(rest)
    if not sep or "@" not in authority:
        return url
    return f"{scheme}://***@{authority.rpartition('@')[2]}{tail}"


def _is_loopback(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host in ("localhost", "::1", "0:0:0:0:0:0:0:1"):
        return True
    parts = host.split(".")
    return (
        len(parts) == 4
        and parts[0] == "127"
        and all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts)
    )


def endpoint_problem(url: str) -> str | None:
    """None when zomg may send to ``url``; otherwise why not, in a few words."""
    if not url:
        return "empty"
    if not (url.isascii() and url.isprintable()) or " " in url or "\\" in url:  # each char in 0x21-0x7E
        return "contains spaces, backslashes or non-ASCII characters"
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("https", "http"):
        return "not an absolute https:// URL"
    authority, _ = _split_authority(rest)
    if "@" in authority:
        return "user names and passwords in the URL are not supported"
    if authority.startswith("["):
        host, bracket, port = authority[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            return "malformed IPv6 address"
        port = port[1:]
    else:
        host, _, port = authority.partition(":")
    if not host:
        return "no host"
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        return "invalid port"
    if scheme == "http" and not _is_loopback(host):
        return "http:// is only used to this machine (localhost, 127.0.0.1, [::1]); use https://"
    return None
