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
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # A child killed by signal N is reported as 128 + N, as shells do; one that
    # handled the interrupt and exited chose its own code.
    return 128 - code if code < 0 else code
