"""The command table: what each command accepts, declared as data.

Each command module exposes ``SPEC``, a ``Command`` tree whose leaves name a
plain function to run. ``zomg.parser`` turns these declarations into the argparse
parser; completions and the man page are generated from the same declarations,
so none of them can drift from what the parser accepts. A command module is
imported only when its command runs (or when every command must be described).
"""
from __future__ import annotations

# name -> module declaring it. Order is the order users see in --help. Every text a
# user reads about a command lives in its module's SPEC, nowhere else.
TOP_LEVEL = {
    "box": "zomg.commands.box",
    "exec": "zomg.commands.exec",
    "console": "zomg.commands.console",
    "setup": "zomg.commands.setup",
    "telemetry": "zomg.commands.telemetry",
    "completion": "zomg.commands.completion",
    "help": "zomg.commands.help",
}

# Commands telemetry never records (nor shows the notice for): `telemetry` manages
# telemetry itself, and `completion` runs from shell start-up files, on the
# user's behalf rather than by the user's hand (docs/telemetry.md says which and why).
NOT_RECORDED = ("telemetry", "completion")
# Options argparse itself adds: --help on every parser, --version on the top one.
BUILTIN_OPTIONS = ("--help", "--version")

# The line every surface (--help, man page, docs/cli.md) shows for zomg itself.
ROOT_SYNOPSIS = "zomg [--version] [-h|--help] COMMAND ..."
# The examples `zomg --help` (and `zomg` alone) ends with: (what it does, the command line).
ROOT_EXAMPLES = (
    ("create a box and run a command in it", "zomg box create web && zomg exec web -- make test"),
    ("open a shell inside it", "zomg console web"),
    ("the help of one command (the same as zomg box list --help)", "zomg help box list"),
)
# The command that shows the others' help: the parser answers it, with the text --help prints.
HELP_COMMAND = "help"

FLAG = "flag"  # --force: present or not
VALUE = "value"  # --project P
MULTI = "multi"  # --env K=V, repeatable
POSITIONAL = "positional"  # NAME
POSITIONALS = "positionals"  # NAME...: one or more
WORDS = "words"  # [WORD...]: zero or more
REST = "rest"  # everything after `--`, never parsed

# What a shell completes for an argument's value (choices, when declared, come first).
BOX = "box"  # the name of an existing box
DIRECTORY = "directory"
PROGRAM = "program"  # a command on PATH
WORKSPACE_DIRECTORY = "workspace-directory"  # a directory inside the workspace of the box the line names
COMMAND = "command"  # the name of one of zomg's commands


class Arg:
    """One argument: an option (names start with '-') or a positional."""

    __slots__ = ("names", "help", "kind", "metavar", "choices", "dest", "complete")

    def __init__(
        self,
        *names: str,
        help: str,
        kind: str = VALUE,
        metavar: str | None = None,
        choices: tuple[str, ...] | None = None,
        dest: str | None = None,
        complete: str | None = None,
    ) -> None:
        self.names = names
        self.complete = complete
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

    __slots__ = ("name", "help", "args", "run", "subcommands", "description", "examples")

    def __init__(
        self,
        name: str,
        help: str,
        args: tuple[Arg, ...] = (),
        run=None,
        subcommands: tuple[Command, ...] = (),
        description: str | None = None,
        examples: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.examples = examples  # (what it does, the command line), shown by --help and the docs
        self.name = name
        self.help = help
        self.args = args
        self.run = run
        self.subcommands = subcommands
        self.description = description


# The options every command has, and zomg's own.
HELP_ARG = Arg("--help", "-h", help="show this help and exit", kind=FLAG)
VERSION_ARG = Arg("--version", help="print the version and exit", kind=FLAG)


def load(name: str) -> Command:
    """Import one top-level command's module and return its declaration."""
    # __import__ rather than importlib: importing importlib costs more than the command module.
    return __import__(TOP_LEVEL[name], fromlist=("SPEC",)).SPEC


def declared(path: list[str]) -> dict:
    """The names a command line matching ``path`` may record: {"command", "subcommand", "flags"}.

    ``command`` and ``subcommand`` are the declared names at each level; ``flags``
    the canonical names of the options the matched commands (and argparse:
    ``BUILTIN_OPTIONS``) define. Telemetry keeps no other name.
    """
    names: dict = {"command": list(TOP_LEVEL), "subcommand": [], "flags": list(BUILTIN_OPTIONS)}
    if not path or path[0] not in TOP_LEVEL:
        return names
    spec = load(path[0])
    names["subcommand"] = [child.name for child in spec.subcommands]
    names["flags"] += [arg.canonical for arg in spec.args if arg.is_option]
    child = next((c for c in spec.subcommands if len(path) > 1 and c.name == path[1]), None)
    if child is not None:
        names["flags"] += [arg.canonical for arg in child.args if arg.is_option]
    return names


def describe(spec: Command) -> str:
    """The paragraph that opens a command's --help, man page entry and reference section."""
    return spec.description or spec.help[0].upper() + spec.help[1:] + "."


def synopsis(path: tuple[str, ...], spec: Command) -> str:
    """The usage line of ``zomg PATH``, the same in --help, the man page and docs/cli.md."""
    parts = ["zomg", *path]
    if spec.subcommands:
        parts.append("COMMAND")
    for arg in spec.args:
        if arg.kind == REST:
            parts.append(f"-- {arg.metavar}")
        elif arg.kind == POSITIONALS:
            parts.append(f"{arg.metavar}...")
        elif arg.kind == WORDS:
            parts.append(f"[{arg.metavar}...]")
        elif not arg.is_option:
            parts.append(arg.metavar)
        else:
            value = "" if arg.kind == FLAG else f" {arg.metavar}"
            parts.append(f"[{'|'.join(arg.names)}{value}]{'...' if arg.kind == MULTI else ''}")
    return " ".join(parts)


def examples_text(examples: tuple[tuple[str, str], ...]) -> str:
    """The examples block --help ends with (the man page and docs/cli.md lay the same pairs out their way)."""
    if not examples:
        return ""
    return "\nexamples:\n" + "".join(f"  # {what}\n  {line}\n" for what, line in examples)


def load_all() -> list[Command]:
    return [load(name) for name in TOP_LEVEL]
