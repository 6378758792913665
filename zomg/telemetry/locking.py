"""Inter-process file locks for the telemetry config and spool.

POSIX uses ``flock`` on a lock file: the kernel drops the lock when its
holder exits or dies, so a killed zomg never leaves a stale lock, and two
descriptors in one process (the main thread and the sender thread) exclude
each other too. Windows uses ``msvcrt.locking``, also released by the
system. Anywhere else an ``O_EXCL`` marker file stands in; a marker older
than ``_STALE_AFTER`` seconds is taken to be left by a dead process.
"""
from __future__ import annotations

import os
import time

try:
    import fcntl
except ImportError:  # Windows and exotic platforms
    fcntl = None
msvcrt = None
if fcntl is None:
    try:
        import msvcrt
    except ImportError:
        pass

_STALE_AFTER = 60.0


class FileLock:
    """An exclusive lock on ``path``; ``acquire(wait)`` gives up after ``wait`` seconds."""

    def __init__(self, path: str, backend: str | None = None) -> None:
        self.path = path
        self.backend = backend or ("flock" if fcntl else "msvcrt" if msvcrt else "marker")
        self._fd: int | None = None

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
            if self.backend == "flock":
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
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
        pause = 0.001
        while not self._try_once():
            if time.monotonic() + pause > deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self.backend == "marker":
                os.unlink(self.path + ".held")
            elif self.backend == "flock":
                fcntl.flock(fd, fcntl.LOCK_UN)
            else:
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        if not self.acquire(wait=2.0):
            raise TimeoutError(f"lock busy: {self.path}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
