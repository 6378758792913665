"""Changing the user's telemetry settings file (reading it is ``zomg.telemetry.files``'s).

Every change is a read-modify-write under a lock (``telemetry.lock`` beside
the file) so a concurrent ``zomg telemetry off`` is never undone by another
process recording that the notice was shown. Only the notice, the telemetry
commands and a run that finds no installation id write it: this module is
not loaded on a recorded command's own path.
"""
from __future__ import annotations

import os

from zomg.fsutil import FileLock
from zomg.telemetry.directory import Directory
from zomg.telemetry.files import Layout, Settings, is_uuid4, read_user, uuid4


def user_path() -> str:
    return Layout().settings


def update(change) -> Settings:
    """Apply ``change(data: dict) -> bool`` to the user's file under its lock; write if it says so.

    Raises OSError when the file cannot be written (or TimeoutError when the
    lock stays busy). Returns the settings as written (or as found). What
    stands where the file belongs (a FIFO, a link) is replaced, never written
    through: the write is a rename in the checked config directory.
    """
    import json

    from zomg.fsutil import write_atomic

    layout = Layout()
    with Directory(os.path.dirname(layout.settings), follow=True, create=True) as directory:
        with FileLock(layout.settings_lock, follow_dir=True):
            config = read_user(layout)
            data = dict(config.data)
            if change(data):
                name = os.path.basename(config.path)
                directory.make_room(name)
                body = json.dumps(data, indent=2, sort_keys=True) + "\n"
                write_atomic(directory.at(name), body.encode("utf-8"), mode=0o600, dir_fd=directory.fd)
                # write_atomic's mode is filtered by the umask; the id file is private regardless.
                os.chmod(directory.at(name), 0o600, dir_fd=directory.fd)
            return read_user(layout)


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
