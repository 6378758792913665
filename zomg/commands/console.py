"""`zomg console NAME`: an interactive shell inside a box."""
from __future__ import annotations

import os
import sys

from zomg.commands import BOX, POSITIONAL, PROGRAM, Arg, Command
from zomg.commands.exec import enter, run_child
from zomg.output import note


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def run(name: str, shell: str | None) -> int:
    box, cwd, env = enter(name, {})
    if _stderr_is_terminal():
        # For the person at the terminal only: a script's captured stderr stays the shell's own.
        note(f"zomg: inside box '{box.name}' ({cwd}); exit the shell to leave")
    return run_child(box, [shell or os.environ.get("SHELL") or "/bin/sh"], cwd, env)


SPEC = Command(
    "console",
    help="open an interactive shell inside a box",
    description="Open an interactive shell in the box's workspace with the box's environment "
    "($SHELL, else /bin/sh). When standard error is a terminal, one line on it says which box the "
    "shell is in; the shell's environment has ZOMG_BOX set to the box's name (for a prompt to show). "
    "zomg exits with the shell's exit code.",
    run=run,
    args=(
        Arg("name", help="the box's name", kind=POSITIONAL, metavar="NAME", complete=BOX),
        Arg("--shell", help="the shell to run (default: $SHELL, then /bin/sh)", metavar="PATH", complete=PROGRAM),
    ),
    examples=(("a shell in box web", "zomg console web"),
              ("bash, whatever $SHELL says", "zomg console web --shell /bin/bash"),
              ("show the box in the prompt: this line in ~/.bashrc or ~/.zshrc",
               'PS1="${ZOMG_BOX:+[$ZOMG_BOX] }$PS1"')),
)
