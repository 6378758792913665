"""Small file-system primitives every writer in zomg shares: atomic writes and private directories."""
from __future__ import annotations

import os


def write_atomic(path: str, data: bytes, mode: int = 0o644, sync: bool = True, dir_fd: int | None = None) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never half.

    The temporary file lives beside the target (same file system, so the rename
    is atomic) and is fsynced before the rename so a crash cannot leave an empty
    file in place of the old one (``sync=False`` skips that, for state that is
    cheaper to lose than to wait for). With ``dir_fd``, ``path`` is a name in
    that (already checked) directory, and every step goes through it.
    """
    replace(prepare(path, data, mode, sync, dir_fd), path, dir_fd)


def prepare(path: str, data: bytes, mode: int = 0o644, sync: bool = True, dir_fd: int | None = None) -> str:
    """Write ``data`` to a new temporary file beside ``path``; return its name (see ``replace``)."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    if dir_fd is not None:
        tmp = os.path.basename(tmp)
    # O_EXCL never follows a link; O_NOFOLLOW says so again where it exists.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, mode, dir_fd=dir_fd) if dir_fd is not None else os.open(tmp, flags, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        discard(tmp, dir_fd)
        raise
    return tmp


def replace(tmp: str, path: str, dir_fd: int | None = None) -> None:
    """Move a file made by ``prepare`` into place (removing it if that fails)."""
    try:
        os.replace(tmp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        discard(tmp, dir_fd)
        raise


def discard(path: str, dir_fd: int | None = None) -> None:
    try:
        os.unlink(path, dir_fd=dir_fd)
    except OSError:
        pass


def make_private_dirs(path: str) -> None:
    """Create ``path`` and every missing parent as 0700, whatever the umask; existing ones are left as they are.

    ``os.makedirs(mode=0o700)`` gives that mode to the last directory only: the
    parents it makes (``~/.local/state``, ``~/.config``) get 0777 minus the
    umask, which under umask 000 lets anyone swap what zomg keeps there.
    """
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue  # made meanwhile by another process, or not a directory (the caller's open says so)
        os.chmod(directory, 0o700)  # the umask may have taken bits from 0700 too
