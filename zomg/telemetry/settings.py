"""The user's telemetry settings file, and the system-wide default a packager ships.

User file: ``<config dir>/telemetry.json``, mode 0600, holding the stored
mode (if the user chose one), the installation id and the version of the
notice already shown. Every change is a read-modify-write under a lock
(``telemetry.lock`` beside it) so a concurrent ``zomg telemetry off`` is
never undone by another process recording that the notice was shown.

System file: ``telemetry.json`` in the first ``$XDG_CONFIG_DIRS`` entry
(default ``/etc/xdg``) under ``zomg/`` that has one: ``{"mode": "off",
"locked": true}``. zomg only ever reads it.
"""
from __future__ import annotations

import os

from zomg.telemetry.files import Layout, whole

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


class UserConfig:
    """What the user's file says. ``problem`` is set when it exists but cannot be used."""

    __slots__ = ("path", "exists", "mode", "installation_id", "notice_version", "problem", "data")

    def __init__(self, path: str) -> None:
        self.path = path
        self.exists = False
        self.mode: str | None = None
        self.installation_id: str | None = None
        self.notice_version = 0
        self.problem: str | None = None
        self.data: dict = {}


class SystemConfig:
    """The first system-wide file found, or ``path`` None when there is none."""

    __slots__ = ("path", "mode", "locked", "problem")

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.mode: str | None = None
        self.locked = False
        self.problem: str | None = None

    @property
    def locks_off(self) -> bool:
        return self.path is not None and self.mode == "off" and self.locked


def user_path() -> str:
    return Layout().settings


def _load(path: str) -> tuple[object, str | None, bool]:
    """(parsed JSON, problem, exists); never raises, whatever the file holds."""
    from zomg.telemetry.files import read_json

    return read_json(path)


def _mode_of(data: dict) -> tuple[str | None, str | None]:
    mode = data.get("mode")
    if mode is None or mode in MODES:
        return mode, None
    shown = repr(mode[:20]) if isinstance(mode, str) else f"of type {type(mode).__name__}"
    return None, f"has an unknown mode {shown} (expected on, off or log)"


def read_user(files: Layout | None = None) -> UserConfig:
    config = UserConfig((files or Layout()).settings)
    data, config.problem, config.exists = _load(config.path)
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


def read_system() -> SystemConfig:
    for path in Layout.system_settings():
        data, problem, exists = _load(path)
        if not exists:
            continue
        found = SystemConfig(path)
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
    return SystemConfig()


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


def update(change) -> UserConfig:
    """Apply ``change(data: dict) -> bool`` to the user's file under its lock; write if it says so.

    Raises OSError when the file cannot be written (or TimeoutError when the
    lock stays busy). Returns the config as written (or as found).
    """
    from zomg.fsutil import write_atomic
    from zomg.telemetry.files import FileLock

    files = Layout()
    os.makedirs(os.path.dirname(files.settings_lock), mode=0o700, exist_ok=True)
    with FileLock(files.settings_lock):
        config = read_user()
        data = dict(config.data)
        if change(data):
            if os.path.isdir(config.path):  # damaged state: a directory where the file belongs
                from zomg.telemetry.files import clear_path

                clear_path(config.path)
            import json

            body = json.dumps(data, indent=2, sort_keys=True) + "\n"
            write_atomic(config.path, body.encode("utf-8"), mode=0o600)
            # write_atomic's mode is filtered by the umask; the id file is private regardless.
            os.chmod(config.path, 0o600)
        return read_user()


def ensure_installation_id() -> str:
    """The stored installation id, made and stored now if there is none."""

    def add_id(data: dict) -> bool:
        if is_uuid4(data.get("installation_id")):
            return False
        data["installation_id"] = uuid4()
        return True

    config = update(add_id)
    if config.installation_id is None:
        raise OSError("the installation id could not be stored")
    return config.installation_id
