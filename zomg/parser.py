"""Translating the command declarations (``zomg.commands``) into argparse, and a command line into a call.

``parse`` turns argv into a zero-argument callable that runs the matched
command, raising ``UsageError`` for bad input. While it parses, a ``Matched``
notes what the parser matched by the parser's own names: the commands and the
canonical names of the options it consumed, never a value; ``declared`` gives
the names the matched commands declare, the contract telemetry checks against.
`zomg help [COMMAND...]`, and zomg or a command group given alone, are
answered here with the text --help prints: that text is argparse's.
argparse's private API is used only through ``zomg.argparse_private``; this
module is imported only to parse (``zomg --version`` alone never needs it).
"""
from __future__ import annotations

import argparse
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
            if isinstance(self, _RECORDING["parsers"]):
                if values and values[0] in self.choices:
                    parser.matched.path.append(values[0])
            elif option_string is not None:
                parser.matched.flags.add(_canonical(self.option_strings))
            super().__call__(parser, namespace, values, option_string)

    return Recording


# Every action zomg's parsers build is one of these, named in each add_argument.
_RECORDING = {name: _recording(cls) for name, cls in argparse_private.action_classes().items()}


class _Choices:
    """An argument's ``type``: its value if among ``choices``, else the usage error that names what was meant.

    argparse converts a value with ``type`` before it checks the choices, so its
    own message ("invalid choice") is never reached.
    """

    def __init__(self, prog: str, label: str, choices) -> None:
        self.prog, self.label, self.choices = prog, label, choices

    def __call__(self, value: str) -> str:
        if value not in self.choices:
            raise _usage_error(self.prog, f"invalid {self.label} '{value}'{_suggestion(value, self.choices)}; "
                                          f"choose from {', '.join(self.choices)}")
        return value


class _Formatter(argparse_private.WidthFormatter):
    @staticmethod
    def width_of_terminal() -> int:
        return _terminal_width()


class _Parser(argparse.ArgumentParser):
    """A parser (or subparser) whose actions note into ``matched`` and whose errors are UsageErrors."""

    def __init__(self, *args, matched: Matched, examples: tuple = (), **kwargs) -> None:
        self.examples = examples
        kwargs["allow_abbrev"] = False
        kwargs["formatter_class"] = _Formatter
        # -h is added here, after the recording actions are registered, so it is recorded too.
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self.matched = matched
        self.add_argument("-h", "--help", action=_RECORDING["help"], help=commands.HELP_ARG.help)

    def error(self, message: str):
        raise _usage_error(self.prog, message)

    def format_help(self) -> str:
        return super().format_help() + commands.examples_text(self.examples)


def _fill(parser: _Parser, spec, words: list[str] | None) -> None:
    """Add ``spec``'s arguments and subcommands to ``parser`` (``words``: as in ``_build_parser``)."""
    for arg in spec.args:
        if arg.kind == commands.REST:
            continue
        kwargs = {"help": arg.help, "action": _RECORDING["store"]}
        if arg.kind == commands.FLAG:
            kwargs["action"] = _RECORDING["store_true"]
        elif arg.kind == commands.MULTI:
            kwargs.update(action=_RECORDING["append"], default=[])
        elif arg.kind == commands.POSITIONALS:
            kwargs["nargs"] = "+"
        elif arg.kind == commands.WORDS:
            kwargs["nargs"] = "*"
        if arg.metavar and arg.kind != commands.FLAG:
            kwargs["metavar"] = arg.metavar
        if arg.choices:
            kwargs["choices"] = arg.choices
            kwargs["type"] = _Choices(parser.prog, arg.names[0] if arg.is_option else arg.metavar, arg.choices)
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
                                prog=parser.prog, action=_RECORDING["parsers"])
    wanted = words[0] if words and words[0] in {name for name, _ in entries} else None
    for name, load in entries:
        if not (full or wanted is None or name == wanted):
            continue
        spec = load()
        path = (*parser.prog.split()[1:], name)
        child = sub.add_parser(name, help=spec.help, description=commands.describe(spec),
                               usage=commands.synopsis(path, spec), matched=parser.matched, examples=spec.examples)
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
                     usage=commands.ROOT_SYNOPSIS, matched=matched, examples=commands.ROOT_EXAMPLES)
    parser.add_argument("--version", action=_RECORDING["version"], version=f"zomg {__version__}",
                        help=commands.VERSION_ARG.help)
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


def _check_group_options(argv: list[str], matched: Matched) -> None:
    """Name an unknown option or command given before the command that runs, at the level where it was given.

    Left to argparse, `zomg --bogus` would complain that no command was given and
    `zomg --bogus box list` would blame `box list`; an unknown command is named
    here, with the command that was meant, so argparse's "invalid choice" is never
    reached. After --help or --version argparse answers before it reads the next
    command, so an unknown one is left to it.
    """
    path: list[str] = []
    known = (*_HELP_OPTIONS, "--version")
    children = {name: None for name in commands.TOP_LEVEL}
    answered = False
    for token in argv:
        if token.startswith("-") and token not in ("-", "--"):
            if token.partition("=")[0] not in known:
                raise _unrecognized(path, [token], known)
            answered = answered or token in (*_HELP_OPTIONS, "--version")
            continue
        if token not in children:
            if answered:
                return
            matched.path[:] = path  # the commands matched so far, as argparse would have noted them
            raise _usage_error(" ".join(["zomg", *path]), f"unknown command '{token}'{_suggestion(token, children)}; "
                                                          f"commands: {', '.join(children)}")
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


def _spec_of(words: list[str]):
    """The declaration the command words ``words`` name (None: zomg itself); KeyError if they name none."""
    spec = None
    for word in words:
        if spec is None:
            spec = commands.load(word) if word in commands.TOP_LEVEL else {}[word]
        else:
            spec = {child.name: child for child in spec.subcommands}[word]
    return spec


def _print_help(words: list[str]) -> None:
    """Print the help of the command ``words`` name, as its --help does (UsageError if they name none)."""
    for i in range(1, len(words)):
        try:
            spec = _spec_of(words[:i])
        except KeyError:
            break  # the parser below names the unknown word, with a suggestion
        if not spec.subcommands:
            path = " ".join(["zomg", *words[:i]])
            raise _usage_error(path, f"no command '{words[i]}' below '{path}'")
    _check_group_options(words, Matched())  # an unknown word is named, with the command that was meant
    try:
        with argparse_private.EnglishOnly():
            _build_parser(Matched(), words).parse_known_args([*words, "--help"])
    except SystemExit as exc:  # --help printed
        if exc.code not in (0, None):
            raise


def _names_a_group(argv: list[str]) -> bool:
    """Whether ``argv`` is zomg alone or a command group alone (`zomg box`): its help is the answer."""
    if any(token.startswith("-") for token in argv):
        return False
    try:
        spec = _spec_of(argv)
    except KeyError:
        return False
    return spec is None or bool(spec.subcommands)


def _dash_hint(path: list[str], argv: list[str]):
    """The usage error for a positional value that starts with '-' (`box create -dash`), or None."""
    try:
        spec = _spec_of(path)
    except KeyError:
        return None
    if spec is None or spec.subcommands:
        return None
    wanted = [arg for arg in spec.args if arg.kind in (commands.POSITIONAL, commands.POSITIONALS)]
    known = _options_of(spec) + ("--version",)
    dashed = [t for t in argv if t.startswith("-") and t not in ("-", "--") and t.partition("=")[0] not in known]
    if not wanted or not dashed:
        return None
    usage = commands.synopsis(tuple(path), spec)
    return _usage_error(" ".join(["zomg", *path]), f"'{dashed[0]}' is not an option{_suggestion(dashed[0], known)}, "
                        f"and {wanted[0].metavar} cannot start with '-' (usage: {usage}; "
                        "nothing after '--' is read as an option)")


def parse(argv: list[str], matched: Matched):
    """Return a zero-argument callable that runs the command, or None after --help."""
    if _names_a_group(argv):
        # As git, cargo and docker do: `zomg` or `zomg box` alone shows what can follow.
        matched.path.extend(argv)
        _print_help(argv)
        return None
    _check_group_options(argv, matched)
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
    except Exception as exc:
        hint = _dash_hint(matched.path, argv) if getattr(exc, "exit_code", None) == 2 else None
        if hint is None:
            raise
        raise hint from None
    spec = namespace._spec
    if spec.name == commands.HELP_COMMAND and matched.path == [commands.HELP_COMMAND]:
        return lambda: _print_help(namespace.command)
    if extra:
        hint = " (the command to run goes after '--')" if takes_rest and rest is None else ""
        known = _options_of(spec)
        raise _unrecognized(matched.path, extra, known, hint)
    kwargs = {}
    for arg in spec.args:
        kwargs[arg.dest] = (rest or []) if arg.kind == commands.REST else getattr(namespace, arg.dest)
    return lambda: spec.run(**kwargs)
