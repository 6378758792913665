"""A checked directory of telemetry's held open: its files opened, replaced, renamed and removed through its descriptor.

Opening a single file the safe way is ``zomg.fsutil``'s (it is on every
recorded command's path); this module serves what replaces or removes files
(the settings writer, the spool editor), so that a recorded command does not
pay for loading it.
"""
from __future__ import annotations

import os

from zomg.fsutil import (
    DIR_FDS,
    READ,
    Planted,
    is_directory,
    make_private_dirs,
    open_dir,
    open_in,
    read_fd,
    remove_in,
)


class Directory:
    """A checked directory held open: files in it are opened, renamed and removed through its descriptor.

    ``path`` is used instead where descriptors of directories are not supported.
    """

    __slots__ = ("path", "fd")

    def __init__(self, path: str, follow: bool = False, create: bool = False) -> None:
        self.path = path
        self.fd: int | None = None
        if create:
            make_private_dirs(path)
        if DIR_FDS:
            self.fd = open_dir(path, follow)
        elif os.path.islink(path) and not follow or not os.path.isdir(path):
            raise Planted("is not a directory zomg made")

    def at(self, name: str) -> str:
        """What to hand an ``os`` call with ``dir_fd=self.fd``."""
        return name if self.fd is not None else os.path.join(self.path, name)

    def open(self, name: str, flags: int = READ, mode: int = 0o600) -> int:
        return open_in(self.fd, self.at(name), flags, mode)

    def read(self, name: str, limit: int | None = None) -> bytes:
        fd = self.open(name)
        try:
            return read_fd(fd, limit)
        finally:
            os.close(fd)

    def lstat(self, name: str) -> os.stat_result:
        return os.stat(self.at(name), dir_fd=self.fd, follow_symlinks=False)

    def remove(self, name: str) -> None:
        """Remove ``name`` (a symlink itself, never its target); see ``fsutil.remove_in``."""
        remove_in(self.fd, self.at(name))

    def make_room(self, name: str) -> None:
        """Before a file is renamed to ``name``: clear a directory that stands there (damaged state)."""
        try:
            if is_directory(self.lstat(name)):
                self.remove(name)
        except FileNotFoundError:
            pass

    def rename(self, old: str, new: str) -> None:
        os.replace(self.at(old), self.at(new), src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def names(self) -> list[str]:
        return os.listdir(self.fd if self.fd is not None else self.path)

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> Directory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
