"""File-system primitives zomg shares: atomic writes, private directories, safe opens and reads, the file lock.

Besides the atomic writes and 0700 directories every writer uses, this holds
what telemetry needs of a file on every recorded command: opening only a
regular file of the user's through a checked directory (``open_file``,
``Planted``), defensive reads (``read_bytes``, ``read_json``), removing what
stands where a file belongs (``forget``), the inter-process ``FileLock`` and
the locked one-line append (``append_line``).
It is on the recorded path, so its imports stay those a command loads anyway
(``os``, ``sys``, ``time``, ``zomg.json_light``): nothing here may pull in a
heavy module at import (see docs/architecture.md).
"""
from __future__ import annotations

import os
import sys
import time

from zomg import json_light


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


# --- opening a file safely -------------------------------------------------------
# These open only regular files the user owns: a FIFO would block a command for
# ever, a device or socket is not a file, and a symlink (planted by a tool or
# another user, or by the user pointing a directory somewhere) must never be
# written, read or deleted through. Each file is opened relative to a
# descriptor of its directory that was checked (a real directory, the user's),
# with O_NOFOLLOW and O_NONBLOCK, then checked again with fstat; renames and
# deletes use the same directory descriptor (``zomg.telemetry.directory`` holds
# one open where files are replaced), so nothing can be swapped between the
# check and the use. ``follow_dir`` lets the directory itself be a symlink (to
# a directory of the user's): which directories may be is the caller's call
# (telemetry's config directory may, its spool directory may not). Where
# ``dir_fd`` is not supported (Windows) the path is used as given, with the
# same checks on what was opened.

READ = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # opening to read; Windows would otherwise translate line ends
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_SAFE = _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_DIR_OPEN = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
DIR_FDS = os.open in os.supports_dir_fd  # POSIX
_KIND = 0o170000  # stat.S_IFMT, by hand: a name looked up costs less than a function call
_REGULAR = 0o100000
_DIRECTORY = 0o040000


class Planted(OSError):
    """Something other than a regular file (or directory) of the user's stands where zomg keeps one."""


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
    """Open the file at ``path`` the safe way (see above); raises OSError, Planted for a planted object."""
    if not DIR_FDS:
        return open_in(None, path, flags, mode)
    directory, name = _split(path)
    dir_fd = open_dir(directory, follow_dir)
    try:
        return open_in(dir_fd, name, flags, mode)
    finally:
        os.close(dir_fd)


# --- reading --------------------------------------------------------------------
# What zomg reads back (settings, state files, a spool) may have been damaged by
# a full disk, an editor or a test: read_json never raises, and says what is wrong.

_MAX_BYTES = 1 << 20  # far above any JSON file zomg writes; a bigger file is not zomg's


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


# --- removing -------------------------------------------------------------------


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
    """Remove the file at ``path`` (or what stands in its place, never through a link) if it can be: for state
    that is rebuilt when needed."""
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


# --- the lock -------------------------------------------------------------------
# Inter-process file locks (telemetry's settings file and spool take them).
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
# ``STALE_AFTER`` seconds is taken to be left by a dead process.

msvcrt = None
if not hasattr(os, "lockf"):
    try:
        import msvcrt
    except ImportError:
        pass

STALE_AFTER = 60.0
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
            if time.time() - os.stat(self.path + ".held").st_mtime > STALE_AFTER:
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



# --- appending ------------------------------------------------------------------


def append_line(path: str, line: bytes, lock_path: str, wait: float = 2.0) -> int:
    """Append ``line`` (ending in a newline) to the file at ``path`` in one ``O_APPEND`` write, under the
    ``FileLock`` at ``lock_path``; return the file's size after it. Raises OSError (TimeoutError when the
    lock stays busy for ``wait`` seconds).

    The lock's directory is made (0700) when it is missing, and a directory standing where the file
    belongs (damaged state) is cleared first. A last line left torn by a writer that died mid-write is
    ended, so that it does not swallow this one.
    """
    lock = FileLock(lock_path)
    try:
        got = lock.acquire(wait)
    except FileNotFoundError:
        make_private_dirs(os.path.dirname(lock_path))
        got = lock.acquire(wait)
    if not got:
        raise TimeoutError(f"lock busy: {lock_path}")
    try:
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT
        try:
            fd = open_file(path, flags)
        except IsADirectoryError:
            forget(path)
            fd = open_file(path, flags)
        try:
            size = os.fstat(fd).st_size
            if size:
                os.lseek(fd, size - 1, os.SEEK_SET)
                if os.read(fd, 1) != b"\n":
                    line = b"\n" + line
            os.write(fd, line)
        finally:
            os.close(fd)
    finally:
        lock.release()
    return size + len(line)
