"""Telemetry's own files as every recorded command uses them: where each lives, the settings, the spool.

One module holds all that a recorded command does with telemetry's files
(read the settings, ask whether a send is due, append its event): every
module loaded costs a command about as much again as the code in it, and
this path is paid on every run (see docs/architecture.md). Changing the
settings is ``zomg.telemetry.settings``'s; everything done to the spool
beyond the due check and an append is ``zomg.telemetry.spool_edit``'s.

``Layout`` is the one place that names the files (resolved from ``zomg.paths``):
the user's settings file and its lock, the system-wide settings files, and
the spool directory with its queue, state files and locks. Everything else
asks a ``Layout`` for a path.

The user's settings file, ``<config dir>/telemetry.json`` (mode 0600), holds
the stored mode (if the user chose one), the installation id and the version
of the notice already shown. The system-wide file is ``telemetry.json`` in
the first ``$XDG_CONFIG_DIRS`` entry (default ``/etc/xdg``) under ``zomg/``
that has one: ``{"mode": "off", "locked": true}``. zomg only ever reads it.

Every file telemetry reads (the user's settings, the system file, the spool's
state files) may have been damaged by a full disk, an editor or a test: wrong
types, NaN, Infinity, numbers with thousands of digits, nesting deep enough
to exhaust the parser's recursion, a directory where a file belongs. None of
that may raise past these helpers (``zomg.fsutil.read_json`` reads a file
without raising, ``number`` and ``whole`` check a value read): a value that
cannot be used reads as absent, and the caller falls back to its documented
default.

The spool, ``<state dir>/telemetry/spool.jsonl``, is the on-disk queue of
events waiting to be sent. It holds one event a line as ``<enqueued epoch
seconds> <tries> <endpoint> <event JSON>``: the prefix lets the due rule read
ages without parsing events; ``tries`` (one digit) counts sends that were
never answered (the process exited first), so a batch already sent once goes
after fresh ones; the endpoint is the one in effect when the event was
recorded, the only one it is ever sent to. Lines written before that
(``<epoch> <JSON>``) belong to the default endpoint. Every change happens
under ``spool.lock``, held only briefly: an append is one short ``O_APPEND``
write that starts on a fresh line; a rewrite (after a send, or to enforce
the bound) writes and fsyncs its new file *before* taking the lock, then
carries over whatever was appended meanwhile and renames, so no append ever
waits for the disk. ``backoff.json`` says when to try again after a failure,
``last.json`` what the last attempt gave. Sending (``zomg.telemetry.sender``)
is serialised by ``send.lock``. The spool knows nothing about event types:
it carries encoded events.

Opening, reading, removing and locking a file are ``zomg.fsutil``'s
(``open_file``, ``read_json``, ``forget``, ``FileLock``): what here is
telemetry's is which files, and what they say.
"""
from __future__ import annotations

import os

from zomg import json_light, paths
from zomg.fsutil import FileLock, Planted, append_line, forget, read_bytes, read_json

SETTINGS = "telemetry.json"  # in the config dir, and in each system config dir


class Layout:
    """Where every telemetry file lives; paths resolved once, when the layout is made."""

    __slots__ = ("settings", "settings_lock", "spool_dir", "spool", "backoff", "last", "spool_lock", "send_lock",
                 "deployment_state")

    def __init__(self, spool_dir: str | None = None) -> None:
        # Joined by hand: os.path.join is a Python function, and every recorded run builds a layout.
        sep = os.sep
        config = paths.config_dir() + sep
        self.settings = config + SETTINGS  # the user's choice, installation id, notice shown
        self.settings_lock = config + "telemetry.lock"
        self.spool_dir = spool_dir = spool_dir or paths.state_dir() + sep + "telemetry"
        spool_dir += sep
        self.spool = spool_dir + "spool.jsonl"  # events waiting to be sent
        self.backoff = spool_dir + "backoff.json"  # when to try again after a failure
        self.last = spool_dir + "last.json"  # what the last attempt gave
        self.spool_lock = spool_dir + "spool.lock"
        self.send_lock = spool_dir + "send.lock"
        self.deployment_state = spool_dir + "deployment.json"  # when metrics were last measured

    @staticmethod
    def system_settings() -> list[str]:
        """The system-wide settings files a packager may ship, most important first."""
        return [os.path.join(directory, SETTINGS) for directory in paths.system_config_dirs()]


# --- what a value read means -------------------------------------------------------


def number(value: object, low: float, high: float) -> float | None:
    """``value`` as a float when it is a JSON number in [low, high]; None for NaN, infinities, bools, the rest."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if low <= value <= high else None  # NaN fails both comparisons


def whole(value: object, low: int, high: int) -> int | None:
    """``value`` when it is a JSON integer (not a bool, not 1.0) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if low <= value <= high else None


# --- what the settings files say ---------------------------------------------------

MODES = ("on", "off", "log")
_HEX = frozenset("0123456789abcdef")


def uuid4() -> str:
    """A random (version 4) UUID string, without importing ``uuid`` (it loads ``platform``)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def is_uuid4(value: object) -> bool:
    """Whether ``value`` is what ``uuid4`` makes (checked by hand: no regex compile at start-up)."""
    return (
        isinstance(value, str)
        and len(value) == 36
        and value[8] == value[13] == value[18] == value[23] == "-"
        and value[14] == "4"
        and value[19] in "89ab"
        and _HEX.issuperset(value[:8] + value[9:13] + value[14:18] + value[19:23] + value[24:])
    )


class Settings:
    """What one settings file says: the user's, or the system-wide one.

    ``path`` is None when no system-wide file exists; ``problem`` is set when
    the file exists but cannot be used. The installation id and the notice
    version come from the user's file only, ``locked`` from the system file only.
    """

    __slots__ = ("path", "exists", "mode", "installation_id", "notice_version", "locked", "locks_off", "problem",
                 "data")

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.exists = False
        self.mode: str | None = None
        self.installation_id: str | None = None
        self.notice_version = 0
        self.locked = False
        self.locks_off = False  # a system file that says mode off and locked: nothing else counts
        self.problem: str | None = None
        self.data: dict = {}


def _mode_of(data: dict) -> tuple[str | None, str | None]:
    mode = data.get("mode")
    if mode is None or mode in MODES:
        return mode, None
    shown = repr(mode[:20]) if isinstance(mode, str) else f"of type {type(mode).__name__}"
    return None, f"has an unknown mode {shown} (expected on, off or log)"


def read_user(layout: Layout) -> Settings:
    """The user's settings file of ``layout``, read defensively."""
    config = Settings(layout.settings)
    data, config.problem, config.exists = read_json(config.path, follow_dir=True)
    if config.problem or not config.exists:
        return config
    if not isinstance(data, dict):
        config.problem = "is not a JSON object"
        return config
    config.data = data
    config.mode, config.problem = _mode_of(data)
    if is_uuid4(data.get("installation_id")):
        config.installation_id = data["installation_id"]
    # true and 1.0 equal 1 in Python but are not a version zomg wrote: the notice is due.
    config.notice_version = whole(data.get("notice_version"), 0, 1 << 31) or 0
    return config


def read_system() -> Settings:
    """The first system-wide settings file found (``path`` None when there is none)."""
    for path in Layout.system_settings():
        data, problem, exists = read_json(path, system=True)
        if not exists:
            continue
        found = Settings(path)
        found.exists = True
        if problem is None and not isinstance(data, dict):
            problem = "is not a JSON object"
        if problem is None:
            found.mode, problem = _mode_of(data)
            locked = data.get("locked", False)
            if not isinstance(locked, bool):
                problem = "has a 'locked' that is not true or false"
            found.locked = locked is True
            found.locks_off = found.mode == "off" and found.locked
        found.problem = problem
        return found
    return Settings(None)


def read_settings(layout: Layout) -> tuple[Settings, Settings | None]:
    """(the system-wide settings, the user's of ``layout``); the user's file is not read (None) when the
    system file locks telemetry off, since nothing in it could count."""
    system = read_system()
    return system, None if system.locks_off else read_user(layout)


def writable(layout: Layout) -> bool:
    """Whether ``layout``'s config dir (or, before it exists, its nearest existing parent) takes writes."""
    directory = os.path.dirname(layout.settings)
    while True:
        if os.path.exists(directory):
            return os.path.isdir(directory) and os.access(directory, os.W_OK)
        parent = os.path.dirname(directory)
        if parent == directory:
            return False
        directory = parent


# --- the spool ------------------------------------------------------------------

_LOCK_WAIT = 2.0
# The most of the spool a run reads: 1,000 events take about 450 KB. A bigger
# file (a damaged or planted one) is cut to its newest lines, in bounded memory.
MAX_SPOOL_BYTES = 768 * 1024
# Below this many bytes a line-count bound cannot be reached (no event is
# shorter than this), so appends skip reading the file.
_MIN_LINE = 128


class SpoolBounds:
    """When a send is due, how much the spool keeps, and how long to back off after a failure.

    Read on every command's own path (the due rule), so it lives here, not in the sender.
    One object so that tests inject their own numbers instead of waiting.
    """

    __slots__ = ("batch_size", "max_age", "backoff_base", "backoff_cap", "max_events", "max_event_age")

    def __init__(
        self,
        batch_size: int = 50,
        max_age: float = 3600.0,
        backoff_base: float = 5.0,
        backoff_cap: float = 3600.0,
        max_events: int = 1000,
        max_event_age: float = 30 * 86400.0,
    ) -> None:
        self.batch_size = batch_size  # a send is due at this many spooled events...
        self.max_age = max_age  # ...or when the oldest is this old (seconds)
        self.backoff_base = backoff_base  # first wait after a failed send, doubled per failure
        self.backoff_cap = backoff_cap
        self.max_events = max_events  # the spool keeps at most this many events...
        self.max_event_age = max_event_age  # ...none older than this (seconds)

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failed sends (the formula is the protocol's)."""
        from zomg.telemetry.protocol import backoff  # only the sender asks, in its thread

        return backoff(failures, self.backoff_base, self.backoff_cap)


def lines_of(data: bytes) -> list[bytes]:
    """The non-empty lines of the spool file's contents."""
    return [line for line in data.split(b"\n") if line]


LATEST_TIME = 1e11  # seconds since the epoch (year 5138): any later time or retry_at in a state file is damage


class Spool:
    """The spool of the events recorded for one endpoint: whether a send is due, and appending one event.

    Everything else done to it (reading lines for a send, rewrites, marks,
    bounds, state files, dropping, clearing) is ``zomg.telemetry.spool_edit``'s,
    as functions of a spool: that code runs in the sender thread and the
    telemetry commands, and loading it on every command's path costs more
    than the append itself.
    """

    def __init__(self, url: str, layout: Layout, bounds: SpoolBounds | None = None) -> None:
        self.layout = layout
        self.dir = layout.spool_dir
        self.bounds = bounds or SpoolBounds()
        self.url = url.encode("ascii", "replace")  # the endpoint this spool's appends are meant for
        self.path = layout.spool
        self.backoff_path = layout.backoff
        self.last_path = layout.last

    def lock(self) -> FileLock:
        return FileLock(self.layout.spool_lock)

    # Reading takes no lock: a torn last line only makes a count one short.

    def raw(self) -> bytes:
        """At most ``MAX_SPOOL_BYTES`` of the spool (b"" when it cannot be read: ``read_checked`` says why).

        A bigger file is damage (or not zomg's): ``spool_edit.trim`` cuts it down to
        its newest lines without reading the rest.
        """
        try:
            return read_bytes(self.path, MAX_SPOOL_BYTES)
        except OSError:  # missing, planted, or damaged into a directory (the next append repairs it)
            return b""

    def read_checked(self) -> tuple[bytes, str | None]:
        """(what ``raw`` gives, why the spool cannot be read, or None): a fault is reported, never "0 unsent"."""
        try:
            return read_bytes(self.path, MAX_SPOOL_BYTES), None
        except FileNotFoundError:
            return b"", None
        except OSError as exc:
            return b"", f"{self.path} {exc.strerror or exc}" if not isinstance(exc, Planted) else f"{self.path} {exc}"

    def read(self) -> list[bytes]:
        """The spool's non-empty lines, damaged ones included."""
        return lines_of(self.raw())

    def count(self) -> int:
        return len(self.read())

    def backoff(self, now: float | None = None) -> tuple[int, float]:
        """(consecutive failures, earliest time of the next attempt); a damaged file is reset.

        With ``now``, a ``retry_at`` later than now + the longest backoff (set by a
        clock that was ahead) counts as expired.
        """
        data, problem, exists = read_json(self.backoff_path)
        if not exists:
            return 0, 0.0
        failures = retry_at = None
        if isinstance(data, dict):
            failures = whole(data.get("failures"), 0, 1000)
            retry_at = number(data.get("retry_at"), 0, LATEST_TIME)
        if failures is None or retry_at is None:
            forget(self.backoff_path)
            return 0, 0.0
        if now is not None and retry_at > now + self.bounds.backoff_cap:
            retry_at = now
        return failures, retry_at

    def due(self, now: float) -> bool:
        """Whether a send should start: enough events, or an old one, and no backoff running."""
        if now < self.backoff(now)[1]:
            return False
        # Every run asks this: one scan of the file in C for this endpoint's fresh lines
        # (``<stamp> 0 <endpoint> ``) rather than splitting each line; the sender checks properly.
        data = self.raw()
        marker = b" 0 " + self.url + b" "
        if data.count(marker) >= self.bounds.batch_size:
            return True
        first = data.find(marker)
        if first < 0:
            return False
        stamp = data[data.rfind(b"\n", 0, first) + 1:first]  # the oldest fresh line's
        return stamp.isdigit() and len(stamp) <= 12 and now - int(stamp) >= self.bounds.max_age

    def append(self, encoded_event: bytes, now: float) -> bool:
        """Queue one encoded event (compact JSON, no newline). Raises OSError if it cannot.

        Returns True when the spool now holds more events than its bound: the
        caller then trims it (``spool_edit.trim``), which this module cannot
        load without the two importing each other.
        """
        record = b"%d 0 %s %s\n" % (max(0, int(now)), self.url, encoded_event)
        size = append_line(self.path, record, self.layout.spool_lock, _LOCK_WAIT)
        # A spool that waits for an endpoint that is down stays near its bound for a long
        # time: counting its lines in C costs every run far less than parsing them.
        limit = self.bounds.max_events
        return size > MAX_SPOOL_BYTES or size >= limit * _MIN_LINE and self.raw().count(b"\n") > limit

    def append_event(self, event: dict, now: float) -> bool:
        """Queue one event, encoded as compact ASCII JSON; as ``append``."""
        return self.append(json_light.dumps_compact(event).encode("ascii"), now)


