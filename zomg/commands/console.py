"""`zomg console NAME`: an interactive shell inside a box."""
from __future__ import annotations

import os

from zomg.commands import BOX, POSITIONAL, PROGRAM, Arg, Command
from zomg.commands.exec import run_in_box


def run(name: str, shell: str | None) -> int:
    return run_in_box(name, [shell or os.environ.get("SHELL") or "/bin/sh"], {})


SPEC = Command(
    "console",
    help="open an interactive shell inside a box",
    description="Open an interactive shell in the box's workspace with the box's environment "
    "($SHELL, else /bin/sh). zomg exits with the shell's exit code.",
    run=run,
    args=(
        Arg("name", help="the box's name", kind=POSITIONAL, metavar="NAME", complete=BOX),
        Arg("--shell", help="the shell to run (default: $SHELL, then /bin/sh)", metavar="PATH", complete=PROGRAM),
    ),
)
