"""Telemetry's own files: where each one lives, reading them, what the settings say, and the lock.

This is everything a recorded command needs of telemetry's files before it
appends its event, in one module: each module loaded costs a command about
as much as the code in it (see docs/architecture.md). Changing the settings
is ``zomg.telemetry.settings``'s; changing the spool beyond an append is
``zomg.telemetry.spool_edit``'s.

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

``FileLock`` is the inter-process lock both the settings file and the spool take.
"""
from __future__ import annotations

import os
import sys
import time

from zomg import json_light, paths

_MAX_BYTES = 1 << 20  # far above anything zomg writes; a bigger file is not zomg's
_READ = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # Windows would otherwise translate line ends

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



def read_bytes(path: str, limit: int | None = None) -> bytes:
    """The file's bytes (at most ``limit``). Raises OSError: IsADirectoryError for a directory.

    os.open and os.read rather than open(): no io objects for a file read once.
    """
    fd = os.open(path, _READ)
    try:
        chunks, size = [], 0
        while limit is None or size < limit:
            chunk = os.read(fd, 1 << 16 if limit is None else min(1 << 16, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_json(path: str) -> tuple[object, str | None, bool]:
    """(parsed JSON, problem, exists). Never raises."""
    try:
        raw = read_bytes(path, _MAX_BYTES + 1)
    except (FileNotFoundError, NotADirectoryError):
        return None, None, False
    except IsADirectoryError:
        return None, "is a directory, not a file", True
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror or exc}", True
    if len(raw) > _MAX_BYTES:
        return None, "is too large", True
    try:
        return json_light.loads(raw.decode("utf-8")), None, True
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        return None, "is not valid JSON", True


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


def clear_path(path: str) -> None:
    """Make room for a file at ``path``: remove a file, or a directory that stands there.

    A directory that holds something is renamed aside (``<name>.damaged-<random>``)
    rather than deleted: what is in it is not zomg's to destroy.
    """
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            try:
                os.rmdir(path)
            except OSError:
                os.replace(path, f"{path}.damaged-{os.urandom(3).hex()}")
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


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
    data, config.problem, config.exists = read_json(config.path)
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
        data, problem, exists = read_json(path)
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

    def __init__(self, path: str, backend: str | None = None) -> None:
        self.path = path
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
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
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
