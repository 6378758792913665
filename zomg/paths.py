"""The one place where zomg's directories and file locations are resolved.

Linux and other Unix: the XDG Base Directory spec. macOS and Windows use their
platform conventions unless the XDG variable is set. Everything is read from
the environment at call time, never at import time, so tests and long-lived
callers always see the current values.
"""
from __future__ import annotations

import os
import sys

APP = "zomg"


def _home() -> str:
    return os.path.expanduser("~")


def _xdg(var: str) -> str | None:
    # The spec: a relative path is invalid and must be ignored.
    value = os.environ.get(var, "")
    return value if os.path.isabs(value) else None


def _platform_base(kind: str) -> str:
    home = _home()
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Application Support")
    if sys.platform == "win32":
        roaming = os.environ.get("APPDATA") or os.path.join(home, "AppData", "Roaming")
        local = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return roaming if kind == "config" else local
    defaults = {
        "config": (".config",),
        "state": (".local", "state"),
        "data": (".local", "share"),
    }
    return os.path.join(home, *defaults[kind])


def _resolve(var: str, kind: str) -> str:
    return os.path.join(_xdg(var) or _platform_base(kind), APP)


def config_dir() -> str:
    """Settings the user chose: telemetry choice, setup answers."""
    return _resolve("XDG_CONFIG_HOME", "config")


def state_dir() -> str:
    """Things zomg keeps between runs that are not settings: the telemetry spool."""
    return _resolve("XDG_STATE_HOME", "state")


def data_dir() -> str:
    """The user's boxes (unless `zomg setup` chose another place)."""
    return _resolve("XDG_DATA_HOME", "data")


def system_config_dirs() -> list[str]:
    """Where packagers and admins put system-wide defaults, most important first."""
    raw = os.environ.get("XDG_CONFIG_DIRS", "")
    dirs = [d for d in raw.split(os.pathsep) if os.path.isabs(d)]
    if not dirs:
        dirs = ["/etc/xdg"]
    return [os.path.join(d, APP) for d in dirs]


def setup_file() -> str:
    """The answers given to `zomg setup` (read and written by zomg.setup_config)."""
    return os.path.join(config_dir(), "setup.json")


def default_boxes_dir() -> str:
    """Where boxes live unless `zomg setup` chose another place (see zomg.boxes.root)."""
    return os.path.join(data_dir(), "boxes")
