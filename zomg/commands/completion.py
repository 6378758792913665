"""`zomg completion SHELL`: print a completion script for bash, zsh or fish."""
from __future__ import annotations

import sys

from zomg.commands import POSITIONAL, Arg, Command


def run(shell: str) -> int:
    from zomg import completion

    sys.stdout.write(completion.script(shell))
    return 0


SPEC = Command(
    "completion",
    help="print a shell completion script",
    description="Print a completion script for SHELL. For example: "
    "zomg completion bash > ~/.local/share/bash-completion/completions/zomg",
    run=run,
    args=(Arg("shell", help="bash, zsh or fish", kind=POSITIONAL, metavar="SHELL", choices=("bash", "zsh", "fish")),),
)
