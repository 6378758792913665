"""`zomg completion SHELL`: print a completion script for bash, zsh or fish."""
from __future__ import annotations

import sys

from zomg.commands import POSITIONAL, Arg, Command


def run(shell: str) -> int:
    from zomg import completion

    sys.stdout.write(completion.script(shell))
    return 0


# Each line works in a fresh home directory: the directory is made first, and bash without the
# bash-completion package (which is what reads its completions directory) sources the file itself.
SPEC = Command(
    "completion",
    help="print a shell completion script",
    description="Print a completion script for SHELL on standard output. The examples install it for "
    "your user; open a new shell afterwards. For zsh, the fpath line must come before the compinit "
    "your ~/.zshrc may already run.",
    run=run,
    args=(Arg("shell", help="bash, zsh or fish", kind=POSITIONAL, metavar="SHELL", choices=("bash", "zsh", "fish")),),
    examples=(
        ("bash with the bash-completion package installed",
         "mkdir -p ~/.local/share/bash-completion/completions && "
         "zomg completion bash > ~/.local/share/bash-completion/completions/zomg"),
        ("bash without it: keep the script in zomg's data directory and source it from ~/.bashrc",
         "mkdir -p ~/.local/share/zomg && zomg completion bash > ~/.local/share/zomg/completion.bash && "
         "echo '. ~/.local/share/zomg/completion.bash' >> ~/.bashrc"),
        ("zsh",
         "mkdir -p ~/.zfunc && zomg completion zsh > ~/.zfunc/_zomg && "
         "echo 'fpath=(~/.zfunc $fpath); autoload -Uz compinit && compinit' >> ~/.zshrc"),
        ("fish",
         "mkdir -p ~/.config/fish/completions && zomg completion fish > ~/.config/fish/completions/zomg.fish"),
    ),
)
