"""Telemetry's own files as every recorded command uses them: where each lives, the settings, the spool, the lock.

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
that may raise past these helpers: a value that cannot be used reads as
absent, and the caller falls back to its documented default.

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

``FileLock`` is the inter-process lock both the settings file and the spool take.
"""
from __future__ import annotations

import os
import sys
import time

from zomg import json_light, paths

_MAX_BYTES = 1 << 20  # far above anything zomg writes; a bigger file is not zomg's
READ = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # opening to read; Windows would otherwise translate line ends

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



# --- opening a file safely -------------------------------------------------------
# Telemetry opens only regular files it owns: a FIFO would block a command for
# ever, a device or socket is not a file, and a symlink (planted by a tool or
# another user, or by the user pointing the spool somewhere) must never be
# written, read or deleted through. Each file is opened relative to a
# descriptor of its directory that was checked (a real directory, the user's),
# with O_NOFOLLOW and O_NONBLOCK, then checked again with fstat; renames and
# deletes use the same directory descriptor (``zomg.telemetry.directory``, loaded
# only where a file is replaced or removed), so nothing can be swapped between
# the check and the use. The config directory itself may be a symlink (dotfiles
# managers link ~/.config/zomg) but must be the user's; the spool directory,
# which zomg creates, may not. Where ``dir_fd`` is not supported (Windows)
# the path is used as given, with the same checks on what was opened.

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_SAFE = _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_DIR_OPEN = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
DIR_FDS = os.open in os.supports_dir_fd  # POSIX
_KIND = 0o170000  # stat.S_IFMT, by hand: a name looked up costs less than a function call
_REGULAR = 0o100000
_DIRECTORY = 0o040000


class Planted(OSError):
    """Something other than a regular file (or directory) of the user's stands where telemetry keeps one."""


def _owner() -> int | None:
    return os.geteuid() if hasattr(os, "geteuid") else None


def what_is(st: os.stat_result) -> str:
    """A user's word for what a file-system object is."""
    kind = st.st_mode & _KIND
    return {_REGULAR: "a file", _DIRECTORY: "a directory", 0o120000: "a symlink", 0o010000: "a FIFO",
            0o140000: "a socket", 0o020000: "a device", 0o060000: "a device"}.get(kind, "not a file")


def is_directory(st: os.stat_result) -> bool:
    return st.st_mode & _KIND == _DIRECTORY


def _check(fd: int, want: int, owned: bool = True) -> int:
    st = os.fstat(fd)
    if st.st_mode & _KIND != want:
        os.close(fd)
        raise Planted(f"is {what_is(st)}, not {'a directory' if want == _DIRECTORY else 'a file'}")
    uid = _owner()
    if owned and uid is not None and st.st_uid != uid:
        os.close(fd)
        raise Planted("belongs to another user")
    return fd


def _planted_or(exc: OSError, path: str, dir_fd: int | None = None) -> OSError:
    """What a failed open of ``path`` means: a symlink (or a non-directory on the way) is planted."""
    try:
        st = os.stat(path, dir_fd=dir_fd, follow_symlinks=False) if dir_fd is not None else os.lstat(path)
    except OSError:
        return exc
    if st.st_mode & _KIND not in (_REGULAR, _DIRECTORY):
        return Planted(f"is {what_is(st)}, not a file zomg made")
    return exc


def open_dir(path: str, follow: bool = False) -> int:
    """A descriptor of the user's directory at ``path`` (``follow``: it may be a symlink to one).

    Raises Planted when something else stands there, FileNotFoundError when nothing does.
    """
    try:
        fd = os.open(path, _DIR_OPEN | (0 if follow else _NOFOLLOW))
    except OSError as exc:
        raise _planted_or(exc, path) from None
    return _check(fd, _DIRECTORY)


def open_in(dir_fd: int | None, name: str, flags: int = READ, mode: int = 0o600, owned: bool = True) -> int:
    """Open ``name`` in the checked directory ``dir_fd`` (None: ``name`` is a path): a regular file of the
    user's (``owned``), or Planted."""
    try:
        if dir_fd is None:
            fd = os.open(name, flags | _SAFE, mode)
        else:
            fd = os.open(name, flags | _SAFE, mode, dir_fd=dir_fd)
    except OSError as exc:
        raise _planted_or(exc, name, dir_fd) from None
    return _check(fd, _REGULAR, owned)


def _split(path: str) -> tuple[str, str]:
    cut = path.rfind(os.sep)
    return path[:cut] or os.sep, path[cut + 1:]


def open_file(path: str, flags: int = READ, mode: int = 0o600, follow_dir: bool = False) -> int:
    """Open telemetry's file at ``path`` the safe way (see above); raises OSError, Planted for a planted object."""
    if not DIR_FDS:
        return open_in(None, path, flags, mode)
    directory, name = _split(path)
    dir_fd = open_dir(directory, follow_dir)
    try:
        return open_in(dir_fd, name, flags, mode)
    finally:
        os.close(dir_fd)


def make_dirs(path: str) -> None:
    """``zomg.fsutil.make_private_dirs``, loaded only when a directory is missing (rare on this path)."""
    from zomg.fsutil import make_private_dirs

    make_private_dirs(path)


def read_bytes(path: str, limit: int | None = None, follow_dir: bool = False) -> bytes:
    """The file's bytes (at most ``limit``), opened the safe way. Raises OSError (Planted for a planted object).

    os.open and os.read rather than open(): no io objects for a file read once.
    """
    fd = open_file(path, READ, 0, follow_dir)
    try:
        return read_fd(fd, limit)
    finally:
        os.close(fd)


def read_fd(fd: int, limit: int | None = None) -> bytes:
    """What is left to read of ``fd`` (at most ``limit`` bytes)."""
    chunks, size = [], 0
    while limit is None or size < limit:
        chunk = os.read(fd, 1 << 16 if limit is None else min(1 << 16, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_json(path: str, follow_dir: bool = False, system: bool = False) -> tuple[object, str | None, bool]:
    """(parsed JSON, problem, exists). Never raises.

    ``system``: a file zomg only reads, that an administrator owns (and may link): it need only be a regular file.
    """
    try:
        if system:
            fd = open_in(None, path, READ, 0, owned=False) if not _NOFOLLOW else _open_system(path)
            try:
                raw = read_fd(fd, _MAX_BYTES + 1)
            finally:
                os.close(fd)
        else:
            raw = read_bytes(path, _MAX_BYTES + 1, follow_dir)
    except (FileNotFoundError, NotADirectoryError):
        return None, None, False
    except Planted as exc:
        return None, str(exc), True
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror or exc}", True
    if len(raw) > _MAX_BYTES:
        return None, "is too large", True
    try:
        return json_light.loads(raw.decode("utf-8")), None, True
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        return None, "is not valid JSON", True


def _open_system(path: str) -> int:
    # An administrator may link the system file: followed, but it must be a regular file (never a FIFO).
    fd = os.open(path, READ | (_SAFE & ~_NOFOLLOW))
    return _check(fd, _REGULAR, owned=False)


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


def remove_in(dir_fd: int | None, name: str) -> None:
    """Remove ``name`` in the checked directory ``dir_fd`` (None: ``name`` is a path): a symlink itself, never
    its target. A directory that holds something is renamed aside (``<name>.damaged-<random>``): what is in it
    is not zomg's to destroy."""
    try:
        if is_directory(os.stat(name, dir_fd=dir_fd, follow_symlinks=False)):
            try:
                os.rmdir(name, dir_fd=dir_fd)
            except OSError:
                aside = f"{name}.damaged-{os.urandom(3).hex()}"
                os.replace(name, aside, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def forget(path: str, follow_dir: bool = False) -> None:
    """Remove a state file (or what stands in its place, never through a link) if it can be; it is rebuilt
    when needed."""
    directory, name = _split(path)
    try:
        dir_fd = open_dir(directory, follow_dir) if DIR_FDS else None
    except OSError:
        return
    try:
        remove_in(dir_fd, name if dir_fd is not None else path)
    except OSError:
        pass
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


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

    __slots__ = ("path", "exists", "mode", "installation_id", "notice_version", "locked", "problem", "data")

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.exists = False
        self.mode: str | None = None
        self.installation_id: str | None = None
        self.notice_version = 0
        self.locked = False
        self.problem: str | None = None
        self.data: dict = {}

    @property
    def locks_off(self) -> bool:
        return self.path is not None and self.mode == "off" and self.locked


def _mode_of(data: dict) -> tuple[str | None, str | None]:
    mode = data.get("mode")
    if mode is None or mode in MODES:
        return mode, None
    shown = repr(mode[:20]) if isinstance(mode, str) else f"of type {type(mode).__name__}"
    return None, f"has an unknown mode {shown} (expected on, off or log)"


def read_user(files: Layout | None = None) -> Settings:
    """The user's settings file, read defensively."""
    config = Settings((files or Layout()).settings)
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
        found.problem = problem
        return found
    return Settings(None)


def writable(files: Layout | None = None) -> bool:
    """Whether the config dir (or, before it exists, its nearest existing parent) takes writes."""
    directory = os.path.dirname((files or Layout()).settings)
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

    def __init__(self, url: str, directory: str | None = None, bounds: SpoolBounds | None = None,
                 files: Layout | None = None) -> None:
        self.files = files if files is not None else Layout(directory)
        self.dir = self.files.spool_dir
        self.bounds = bounds or SpoolBounds()
        self.url = url.encode("ascii", "replace")  # the endpoint this spool's appends are meant for
        self.path = self.files.spool
        self.backoff_path = self.files.backoff
        self.last_path = self.files.last

    def lock(self) -> FileLock:
        return FileLock(self.files.spool_lock)

    # Reading takes no lock: a torn last line only makes a count one short.

    def _raw(self) -> bytes:
        """At most ``MAX_SPOOL_BYTES`` of the spool (b"" when it cannot be read: ``read_checked`` says why).

        A bigger file is damage (or not zomg's): ``spool_edit.trim`` cuts it down to
        its newest lines without reading the rest.
        """
        try:
            return read_bytes(self.path, MAX_SPOOL_BYTES)
        except OSError:  # missing, planted, or damaged into a directory (the next append repairs it)
            return b""

    def read_checked(self) -> tuple[bytes, str | None]:
        """(what ``_raw`` gives, why the spool cannot be read, or None): a fault is reported, never "0 unsent"."""
        try:
            return read_bytes(self.path, MAX_SPOOL_BYTES), None
        except FileNotFoundError:
            return b"", None
        except OSError as exc:
            return b"", f"{self.path} {exc.strerror or exc}" if not isinstance(exc, Planted) else f"{self.path} {exc}"

    def read(self) -> list[bytes]:
        """The spool's non-empty lines, damaged ones included."""
        return lines_of(self._raw())

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
        data = self._raw()
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
        lock = self.lock()
        try:
            got = lock.acquire(_LOCK_WAIT)
        except FileNotFoundError:
            make_dirs(self.dir)
            got = lock.acquire(_LOCK_WAIT)
        if not got:
            raise TimeoutError("telemetry spool lock busy")
        try:
            try:
                fd = open_file(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
            except IsADirectoryError:  # damaged state: make room and start over
                forget(self.path)
                fd = open_file(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
            try:
                size = os.fstat(fd).st_size
                if size:
                    os.lseek(fd, size - 1, os.SEEK_SET)
                    if os.read(fd, 1) != b"\n":  # a torn last line must not swallow this event
                        record = b"\n" + record
                os.write(fd, record)
            finally:
                os.close(fd)
        finally:
            lock.release()
        # A spool that waits for an endpoint that is down stays near its bound for a long
        # time: counting its lines in C costs every run far less than parsing them.
        limit = self.bounds.max_events
        size += len(record)
        return size > MAX_SPOOL_BYTES or size >= limit * _MIN_LINE and self._raw().count(b"\n") > limit

    def append_event(self, event: dict, now: float) -> bool:
        """Queue one event, encoded as compact ASCII JSON; as ``append``."""
        return self.append(json_light.dumps_compact(event).encode("ascii"), now)


# --- the lock -------------------------------------------------------------------
# Inter-process file locks for the telemetry settings and spool.
#
# POSIX uses ``os.lockf`` on a lock file: the kernel drops the lock when its
# holder exits or dies, so a killed zomg never leaves a stale lock, and it
# needs no import (``fcntl`` alone costs more to load than the rest of a
# spool append). Such locks belong to the process, not to a descriptor, so
# threads of one process are kept apart by an in-process mutex taken *before*
# the file is opened; that also keeps a second descriptor of the same file
# from being closed (which would drop the process's lock) while it is held.
# The mutex exists once ``threading`` is loaded, which happens before any
# second thread of zomg's can. Windows uses ``msvcrt.locking``; anywhere else
# an ``O_EXCL`` marker file stands in, and a marker older than
# ``_STALE_AFTER`` seconds is taken to be left by a dead process.

msvcrt = None
if not hasattr(os, "lockf"):
    try:
        import msvcrt
    except ImportError:
        pass

_STALE_AFTER = 60.0
_mutexes: dict = {}


def _mutex(path: str):
    threading = sys.modules.get("threading")
    if threading is None:
        return None  # no thread of ours can exist yet
    mutex = _mutexes.get(path)
    if mutex is None:
        mutex = _mutexes.setdefault(path, threading.Lock())
    return mutex


class FileLock:
    """An exclusive lock on ``path``; ``acquire(wait)`` gives up after ``wait`` seconds."""

    def __init__(self, path: str, backend: str | None = None, follow_dir: bool = False) -> None:
        self.path = path
        self.follow_dir = follow_dir  # the settings lock lives in the config dir, which may be a link
        self.backend = backend or ("lockf" if hasattr(os, "lockf") else "msvcrt" if msvcrt else "marker")
        self._fd: int | None = None
        self._mutex = None

    def _try_once(self) -> bool:
        if self.backend == "marker":
            try:
                fd = os.open(self.path + ".held", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                self._break_if_stale()
                return False
            self._fd = fd
            return True
        fd = open_file(self.path, os.O_RDWR | os.O_CREAT, 0o600, self.follow_dir)
        try:
            if self.backend == "lockf":
                os.lockf(fd, os.F_TLOCK, 0)
            else:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _break_if_stale(self) -> None:
        try:
            if time.time() - os.stat(self.path + ".held").st_mtime > _STALE_AFTER:
                os.unlink(self.path + ".held")
        except OSError:
            pass

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lock; poll for up to ``wait`` seconds. OSError if the file cannot be made."""
        deadline = time.monotonic() + wait
        mutex = _mutex(self.path)
        if mutex is not None and not (mutex.acquire(timeout=wait) if wait > 0 else mutex.acquire(False)):
            return False
        pause = 0.001
        try:
            while not self._try_once():
                if time.monotonic() + pause > deadline:
                    break
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
        except BaseException:
            if mutex is not None:
                mutex.release()
            raise
        if self._fd is None:
            if mutex is not None:
                mutex.release()
            return False
        self._mutex = mutex
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        mutex, self._mutex = self._mutex, None
        if fd is None:
            return
        try:
            if self.backend == "marker":
                os.unlink(self.path + ".held")
            elif self.backend == "lockf":
                os.lockf(fd, os.F_ULOCK, 0)
            else:
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
        finally:
            os.close(fd)
            if mutex is not None:
                mutex.release()

    def __enter__(self) -> FileLock:
        if not self.acquire(wait=2.0):
            raise TimeoutError(f"lock busy: {self.path}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
