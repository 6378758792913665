"""Changing the user's telemetry settings file (reading it is ``zomg.telemetry.files``'s).

Every change is a read-modify-write under a lock (``telemetry.lock`` beside
the file) so a concurrent ``zomg telemetry off`` is never undone by another
process recording that the notice was shown. Only the notice, the telemetry
commands and a run that finds no installation id write it: this module is
not loaded on a recorded command's own path.
"""
from __future__ import annotations

import os

from zomg.telemetry.files import FileLock, Layout, Settings, is_uuid4, make_room, read_user, uuid4


def user_path() -> str:
    return Layout().settings


def update(change) -> Settings:
    """Apply ``change(data: dict) -> bool`` to the user's file under its lock; write if it says so.

    Raises OSError when the file cannot be written (or TimeoutError when the
    lock stays busy). Returns the settings as written (or as found).
    """
    import json

    from zomg.fsutil import write_atomic

    files = Layout()
    os.makedirs(os.path.dirname(files.settings_lock), mode=0o700, exist_ok=True)
    with FileLock(files.settings_lock):
        config = read_user(files)
        data = dict(config.data)
        if change(data):
            make_room(config.path)
            body = json.dumps(data, indent=2, sort_keys=True) + "\n"
            write_atomic(config.path, body.encode("utf-8"), mode=0o600)
            # write_atomic's mode is filtered by the umask; the id file is private regardless.
            os.chmod(config.path, 0o600)
        return read_user(files)


def add_installation_id(data: dict) -> bool:
    """Give the settings ``data`` an installation id unless it holds one; whether it changed."""
    if is_uuid4(data.get("installation_id")):
        return False
    data["installation_id"] = uuid4()
    return True


def ensure_installation_id() -> str:
    """The stored installation id, made and stored now if there is none."""
    config = update(add_installation_id)
    if config.installation_id is None:
        raise OSError("the installation id could not be stored")
    return config.installation_id
