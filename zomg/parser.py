"""Translating the command declarations (``zomg.commands``) into argparse, and a command line into a call.

``parse`` turns argv into a zero-argument callable that runs the matched
command, raising ``UsageError`` for bad input. While it parses, a ``Matched``
notes what the parser matched by the parser's own names: the commands and the
canonical names of the options it consumed, never a value; ``declared`` gives
the names the matched commands declare, the contract telemetry checks against.
argparse's private API is used only through ``zomg.argparse_private``; this
module is imported only to parse (``zomg --version`` alone never needs it).
"""
from __future__ import annotations

import os
import sys

from zomg import argparse_private, commands

_HELP_OPTIONS = ("-h", "--help")


class Matched:
    """What the parser matched, by the parser's own names, filled in as it parses."""

    def __init__(self) -> None:
        self.path: list[str] = []
        self.flags: set[str] = set()

    def declared(self) -> dict:
        """The names telemetry may keep for what was matched (see ``declared``)."""
        return declared(self.path)


def declared(path: list[str]) -> dict:
    """The names a command line matching ``path`` may record (see ``zomg.commands.declared``)."""
    return commands.declared(path)


def _canonical(option_strings: list[str]) -> str:
    long = [s for s in option_strings if s.startswith("--")]
    return long[0] if long else option_strings[0]


def _recording(base):
    """``base``, an argparse action class, noting what it matched in its parser's ``Matched``."""

    class Recording(base):
        def __call__(self, parser, namespace, values, option_string=None):
            if argparse_private.is_subcommands(self):
                if values and values[0] in self.choices:
                    parser.matched.path.append(values[0])
            elif option_string is not None:
                parser.matched.flags.add(_canonical(self.option_strings))
            super().__call__(parser, namespace, values, option_string)

    return Recording


_RECORDING = {name: _recording(cls) for name, cls in argparse_private.ACTION_CLASSES.items()}


class _Formatter(argparse_private.WidthFormatter):
    @staticmethod
    def width_of_terminal() -> int:
        return _terminal_width()


class _Parser(argparse_private.ChoiceCheckingParser):
    """A parser (or subparser) whose actions note into ``matched`` and whose errors are UsageErrors."""

    def __init__(self, *args, matched: Matched, **kwargs) -> None:
        kwargs["allow_abbrev"] = False
        kwargs["formatter_class"] = _Formatter
        # -h is added here, after the recording actions are registered, so it is recorded too.
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self.matched = matched
        argparse_private.register_actions(self, _RECORDING)
        self.add_argument("-h", "--help", action="help", help=commands.HELP_ARG.help)

    def error(self, message: str):
        raise _usage_error(self.prog, message)

    def invalid_choice(self, action, value) -> None:
        # Says which word was wrong and what was meant; a command is not "a choice".
        choices = action.choices
        if argparse_private.is_subcommands(action):
            what = f"unknown command '{value}'{_suggestion(value, choices)}; commands: "
        else:
            label = action.option_strings[0] if action.option_strings else action.metavar
            what = f"invalid {label} '{value}'{_suggestion(value, choices)}; choose from "
        raise _usage_error(self.prog, what + ", ".join(choices))


def _fill(parser: _Parser, spec, words: list[str] | None) -> None:
    """Add ``spec``'s arguments and subcommands to ``parser`` (``words``: as in ``_build_parser``)."""
    for arg in spec.args:
        if arg.kind == commands.REST:
            continue
        kwargs = {"help": arg.help}
        if arg.kind == commands.FLAG:
            kwargs["action"] = "store_true"
        elif arg.kind == commands.MULTI:
            kwargs.update(action="append", default=[])
        if arg.metavar and arg.kind != commands.FLAG:
            kwargs["metavar"] = arg.metavar
        if arg.choices:
            kwargs["choices"] = arg.choices
        if arg.is_option:
            kwargs["dest"] = arg.dest
        parser.add_argument(*arg.names, **kwargs)
    if spec.subcommands:
        _add_commands(parser, [(c.name, (lambda c=c: c)) for c in spec.subcommands], words)
    else:
        parser.set_defaults(_spec=spec)


def _add_commands(parser: _Parser, entries, words: list[str] | None) -> None:
    # Only the command about to run gets a parser; the others are added (unfilled)
    # only when none was named, for the help text and the "unknown command" error.
    full = words is None
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True, parser_class=_Parser,
                                prog=parser.prog)
    wanted = words[0] if words and words[0] in {name for name, _ in entries} else None
    for name, load in entries:
        if not (full or wanted is None or name == wanted):
            continue
        spec = load()
        path = (*parser.prog.split()[1:], name)
        child = sub.add_parser(name, help=spec.help, description=commands.describe(spec),
                               usage=commands.synopsis(path, spec), matched=parser.matched)
        if full or name == wanted:
            _fill(child, spec, None if full else words[1:] if name == wanted else [])


def _build_parser(matched: Matched, words: list[str] | None) -> _Parser:
    """The parser tree for a command line whose command words are ``words``.

    Only the commands named by ``words`` are filled in; ``None`` fills in every
    command (for documentation and tests).
    """
    from functools import partial

    from zomg import __version__

    parser = _Parser(prog="zomg", description="Named workspaces (boxes) for running commands and shells.",
                     usage=commands.ROOT_SYNOPSIS, matched=matched)
    parser.add_argument("--version", action="version", version=f"zomg {__version__}", help=commands.VERSION_ARG.help)
    entries = [(name, partial(commands.load, name)) for name in commands.TOP_LEVEL]
    _add_commands(parser, entries, words)
    return parser


def build_full_parser():
    """The whole parser, every command filled in (for documentation and tests)."""
    return _build_parser(Matched(), None)


def _suggestion(word: str, choices) -> str:
    """`` (did you mean 'list'?)`` when one of ``choices`` is close to ``word``, else ''."""
    import difflib  # only on this error path: it costs start-up time every run otherwise

    close = difflib.get_close_matches(word.partition("=")[0], list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _usage_error(prog: str, message: str):
    from zomg.errors import UsageError

    where = prog.partition(" ")[2]
    return UsageError(f"{where + ': ' if where else ''}{message} (see '{prog} --help')")


def _unrecognized(path: list[str], extra: list[str], known, hint: str = ""):
    """The usage error for ``extra`` given to ``zomg PATH``, which accepts only ``known`` options."""
    options = [token for token in extra if token.startswith("-")]
    suggestion = _suggestion(options[0], known) if options else ""
    return _usage_error(" ".join(["zomg", *path]), f"unrecognized arguments: {' '.join(extra)}{suggestion}{hint}")


def _options_of(spec) -> tuple[str, ...]:
    return (*_HELP_OPTIONS, *(name for arg in spec.args if arg.is_option for name in arg.names))


def _check_group_options(argv: list[str]) -> None:
    """Name an unknown option given before the command that runs, at the level where it was given.

    Left to argparse, `zomg --bogus` would complain that no command was given and
    `zomg --bogus box list` would blame `box list`.
    """
    path: list[str] = []
    known = (*_HELP_OPTIONS, "--version")
    children = {name: None for name in commands.TOP_LEVEL}
    for token in argv:
        if token == "--":
            return
        if token.startswith("-") and token != "-":
            if token.partition("=")[0] not in known:
                raise _unrecognized(path, [token], known)
            continue
        if token not in children:
            return  # argparse names the unknown command
        spec = children[token] or commands.load(token)
        if not spec.subcommands:
            return  # the command that runs: its parser names its own unknown options
        path.append(token)
        known = _options_of(spec)
        children = {child.name: child for child in spec.subcommands}


def _terminal_width() -> int:
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 80


def _command_words(argv: list[str]) -> list[str]:
    # Command groups take no option with a value, so their words are the non-option tokens.
    words = []
    for token in argv:
        if token == "--":
            break
        if not token.startswith("-"):
            words.append(token)
    return words


def parse(argv: list[str], matched: Matched):
    """Return a zero-argument callable that runs the command, or None after --help."""
    _check_group_options(argv)
    words = _command_words(argv)
    only = words[0] if words and words[0] in commands.TOP_LEVEL else None
    rest: list[str] | None = None
    takes_rest = only is not None and any(a.kind == commands.REST for a in commands.load(only).args)
    if takes_rest:
        # Whatever follows `--` belongs to the box's command: the parser never sees it.
        if "--" in argv:
            cut = argv.index("--")
            argv, rest = argv[:cut], argv[cut + 1 :]
    try:
        with argparse_private.EnglishOnly():
            namespace, extra = _build_parser(matched, words).parse_known_args(argv)
    except SystemExit as exc:  # --help and --version print, then exit 0
        if exc.code in (0, None):
            return None
        raise
    spec = namespace._spec
    if extra:
        hint = " (the command to run goes after '--')" if takes_rest and rest is None else ""
        known = _options_of(spec)
        raise _unrecognized(matched.path, extra, known, hint)
    kwargs = {}
    for arg in spec.args:
        kwargs[arg.dest] = (rest or []) if arg.kind == commands.REST else getattr(namespace, arg.dest)
    return lambda: spec.run(**kwargs)
