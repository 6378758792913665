"""Running a child process inside a box, the way a shell would.

zomg waits for the child and returns its exit status. Ctrl-C at a terminal
reaches the child directly (it shares zomg's foreground process group), so
zomg itself keeps waiting; a SIGINT or SIGTERM sent to zomg alone (``kill``)
is passed on to the child. zomg never answers for the child: it exits with the
child's own code when the child exits (even after handling an interrupt), and
with 128+N when signal N killed it: 130 for SIGINT, 143 for SIGTERM, as a
shell reports it. The child is never left running behind zomg.
"""
from __future__ import annotations

import os

from zomg.errors import (
    CommandNotExecutableError,
    CommandNotFoundError,
    SubprocessError,
)


def _from_terminal() -> bool:
    """Whether a SIGINT just now most likely came from the terminal's Ctrl-C."""
    try:
        return os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


def _wait(child) -> int:
    """``child.wait()``, woken by every signal zomg handles, so its handler always runs.

    A signal that lands just before a blocking waitpid() sets Python's flag but
    interrupts nothing, and its handler would wait as long as the child: the
    child is never told and zomg seems to hang (seen under load). Here the
    signal's byte in the wakeup pipe, or the child's exit on its pidfd, ends
    each wait; without pidfds (not Linux) the wait is cut every second instead.
    """
    import select
    import signal

    readable, writable = os.pipe()
    os.set_blocking(writable, False)
    previous = signal.set_wakeup_fd(writable)
    try:
        try:
            pidfd = os.pidfd_open(child.pid)
        except (AttributeError, OSError):
            pidfd = None
        try:
            while child.poll() is None:
                watched = [readable] if pidfd is None else [readable, pidfd]
                ready = select.select(watched, [], [], None if pidfd is not None else 1.0)[0]
                if readable in ready:
                    os.read(readable, 512)
        finally:
            if pidfd is not None:
                os.close(pidfd)
    finally:
        signal.set_wakeup_fd(previous)
        os.close(readable)
        os.close(writable)
    return child.returncode


def run(argv: list[str], cwd: str, env: dict[str, str]) -> int:
    """Run ``argv`` (no shell) in ``cwd`` with exactly ``env``; return zomg's exit code."""
    import signal
    import subprocess

    # The handlers go in before the child starts: a signal that came between the
    # start and the handlers would have ended zomg and left the child running.
    # One that comes before the child exists is passed on once it does.
    child = None
    pending: list[int] = []

    def on_signal(signum, frame):
        if signum == signal.SIGINT and _from_terminal():
            return  # the terminal already delivered it to the child
        if child is None:
            pending.append(signum)
            return
        try:
            child.send_signal(signum)
        except OSError:
            pass

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, on_signal)
        except ValueError:  # not the main thread: leave signals alone
            pass
    try:
        try:
            child = subprocess.Popen(argv, cwd=cwd, env=env)
        except FileNotFoundError:
            raise CommandNotFoundError(f"command not found: {argv[0]}") from None
        except PermissionError:
            raise CommandNotExecutableError(f"permission denied: {argv[0]}") from None
        except OSError as exc:
            raise SubprocessError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        for signum in pending:
            on_signal(signum, None)
        code = _wait(child) if previous and os.name == "posix" else child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # A child killed by signal N is reported as 128 + N, as shells do; one that
    # handled the interrupt and exited chose its own code.
    return 128 - code if code < 0 else code
