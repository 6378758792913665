"""Small file-system primitives every writer in zomg shares."""
from __future__ import annotations

import os


def write_atomic(path: str, data: bytes, mode: int = 0o644, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never half.

    The temporary file lives beside the target (same file system, so the rename
    is atomic) and is fsynced before the rename so a crash cannot leave an empty
    file in place of the old one (``sync=False`` skips that, for state that is
    cheaper to lose than to wait for).
    """
    replace(prepare(path, data, mode, sync), path)


def prepare(path: str, data: bytes, mode: int = 0o644, sync: bool = True) -> str:
    """Write ``data`` to a new temporary file beside ``path``; return its name (see ``replace``)."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        discard(tmp)
        raise
    return tmp


def replace(tmp: str, path: str) -> None:
    """Move a file made by ``prepare`` into place (removing it if that fails)."""
    try:
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def discard(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
