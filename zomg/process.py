"""Running a child process inside a box, the way a shell would.

zomg waits for the child and returns its exit status. Ctrl-C at a terminal
reaches the child directly (it shares zomg's foreground process group), so
zomg itself only notes it and keeps waiting; a SIGINT or SIGTERM sent to zomg
alone (``kill``) is passed on to the child. Either way zomg exits 130 after an
interrupt, and the child is never left running behind it.
"""
from __future__ import annotations

import os

from zomg.errors import (
    EXIT_INTERRUPTED,
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

    try:
        child = subprocess.Popen(argv, cwd=cwd, env=env)
    except FileNotFoundError:
        raise CommandNotFoundError(f"command not found: {argv[0]}") from None
    except PermissionError:
        raise CommandNotExecutableError(f"permission denied: {argv[0]}") from None
    except OSError as exc:
        raise SubprocessError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None

    interrupted = False

    def on_signal(signum, frame):
        nonlocal interrupted
        if signum == signal.SIGINT:
            interrupted = True
            if _from_terminal():
                return  # the terminal already delivered it to the child
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
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if interrupted:
        return EXIT_INTERRUPTED
    # A child killed by signal N is reported as 128 + N, as shells do.
    return 128 - code if code < 0 else code
