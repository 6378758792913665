"""`zomg console NAME`: an interactive shell inside a box."""
from __future__ import annotations

import os

from zomg import boxes, process
from zomg.commands import POSITIONAL, Arg, Command
from zomg.commands.exec import box_environment, resolve_workdir


def run(name: str, shell: str | None) -> int:
    box = boxes.get(name)
    cwd = resolve_workdir(box, None)
    program = shell or os.environ.get("SHELL") or "/bin/sh"
    boxes.mark_used(box)
    return process.run([program], cwd, box_environment(box, {}))


SPEC = Command(
    "console",
    help="open an interactive shell inside a box",
    description="Open an interactive shell in the box's workspace with the box's environment "
    "($SHELL, else /bin/sh). zomg exits with the shell's exit code.",
    run=run,
    args=(
        Arg("name", help="the box's name", kind=POSITIONAL, metavar="NAME"),
        Arg("--shell", help="the shell to run (default: $SHELL, then /bin/sh)", metavar="PATH"),
    ),
)
