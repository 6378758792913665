"""The command table: what each command accepts, declared as data.

Each command module exposes ``SPEC``, a ``Command`` tree whose leaves name a
plain function to run. ``zomg.cli`` turns these declarations into the argparse
parser; completions and the man page are generated from the same declarations,
so none of them can drift from what the parser accepts. A command module is
imported only when its command runs (or when every command must be described).
"""
from __future__ import annotations

# name -> (module, one-line help). Order is the order users see in --help.
TOP_LEVEL = {
    "box": ("zomg.commands.box", "create, list, show and remove boxes"),
    "exec": ("zomg.commands.exec", "run a command inside a box"),
    "console": ("zomg.commands.console", "open an interactive shell inside a box"),
    "setup": ("zomg.commands.setup", "configure zomg on this machine (and opt in to deployment metrics)"),
    "telemetry": ("zomg.commands.telemetry", "see or change what zomg's usage telemetry does"),
    "completion": ("zomg.commands.completion", "print a shell completion script"),
}

FLAG = "flag"  # --force: present or not
VALUE = "value"  # --project P
MULTI = "multi"  # --env K=V, repeatable
POSITIONAL = "positional"  # NAME
REST = "rest"  # everything after `--`, never parsed


class Arg:
    """One argument: an option (names start with '-') or a positional."""

    __slots__ = ("names", "help", "kind", "metavar", "choices", "dest")

    def __init__(
        self,
        *names: str,
        help: str,
        kind: str = VALUE,
        metavar: str | None = None,
        choices: tuple[str, ...] | None = None,
        dest: str | None = None,
    ) -> None:
        self.names = names
        self.help = help
        self.kind = kind
        self.metavar = metavar
        self.choices = choices
        long = [n for n in names if n.startswith("--")]
        self.dest = dest or (long[0] if long else names[0]).lstrip("-").replace("-", "_")

    @property
    def is_option(self) -> bool:
        return self.names[0].startswith("-")

    @property
    def canonical(self) -> str:
        """The name telemetry records: the long form when there is one."""
        long = [n for n in self.names if n.startswith("--")]
        return long[0] if long else self.names[0]


class Command:
    """A command: either a leaf with ``run``, or a group of ``subcommands``."""

    __slots__ = ("name", "help", "args", "run", "subcommands", "description")

    def __init__(
        self,
        name: str,
        help: str,
        args: tuple[Arg, ...] = (),
        run=None,
        subcommands: tuple[Command, ...] = (),
        description: str | None = None,
    ) -> None:
        self.name = name
        self.help = help
        self.args = args
        self.run = run
        self.subcommands = subcommands
        self.description = description


def load(name: str) -> Command:
    """Import one top-level command's module and return its declaration."""
    module, _ = TOP_LEVEL[name]
    # __import__ rather than importlib: importing importlib costs more than the command module.
    return __import__(module, fromlist=("SPEC",)).SPEC


def load_all() -> list[Command]:
    return [load(name) for name in TOP_LEVEL]
