"""zomg's entry point: parse, dispatch, turn failures into exit codes, time the run.

This is the only module that knows argparse, exit codes and when telemetry
runs. Commands are plain functions declared in ``zomg.commands``; they never
see telemetry and never exit the process.

Telemetry is handed only what the parser itself recorded while parsing: the
names of the commands it matched and the canonical names of the options it
consumed (see ``_Recorder``). Values never pass through it.
"""
from __future__ import annotations

import os
import sys

# Exit code of a process whose reader went away (128 + SIGPIPE), as git and the shell report it.
_EXIT_BROKEN_PIPE = 141


class _Recorder:
    """What the parser matched, by the parser's own names, filled in as it parses."""

    def __init__(self) -> None:
        self.path: list[str] = []
        self.flags: set[str] = set()


def _canonical(option_strings: list[str]) -> str:
    long = [s for s in option_strings if s.startswith("--")]
    return long[0] if long else option_strings[0]


def _build_parser(recorder: _Recorder, words: list[str] | None):
    """The parser tree for a command line whose command words are ``words``.

    Only the commands named by ``words`` are filled in; ``None`` fills in every
    command (for documentation and tests).
    """
    import argparse
    from functools import partial

    full = words is None

    from zomg import __version__, commands
    from zomg.errors import UsageError

    def recording(base):
        class Recording(base):
            def __call__(self, parser, namespace, values, option_string=None):
                if isinstance(self, argparse._SubParsersAction):
                    if values and values[0] in self.choices:
                        recorder.path.append(values[0])
                elif option_string is not None:
                    recorder.flags.add(_canonical(self.option_strings))
                super().__call__(parser, namespace, values, option_string)

        return Recording

    registry = {
        name: recording(getattr(argparse, cls))
        for name, cls in (
            ("store", "_StoreAction"),
            ("store_true", "_StoreTrueAction"),
            ("append", "_AppendAction"),
            ("help", "_HelpAction"),
            ("version", "_VersionAction"),
            ("parsers", "_SubParsersAction"),
        )
    }

    class Formatter(argparse.HelpFormatter):
        # argparse's default asks shutil for the width, and importing shutil costs
        # more than the rest of a `zomg box list`; the width is read the same way here.
        def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width=None) -> None:
            super().__init__(prog, indent_increment, max_help_position, width or _terminal_width() - 2)

    class Parser(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs) -> None:
            kwargs["allow_abbrev"] = False
            kwargs["formatter_class"] = Formatter
            # -h is added here, after the recording actions are registered, so it is recorded too.
            kwargs["add_help"] = False
            super().__init__(*args, **kwargs)
            for name, cls in registry.items():
                self.register("action", name, cls)
            self.register("action", None, registry["store"])
            self.add_argument("-h", "--help", action="help", help="show this help message and exit")

        def error(self, message: str):
            where = self.prog.partition(" ")[2]
            raise UsageError(f"{where + ': ' if where else ''}{message} (see '{self.prog} --help')")

    def fill(parser, spec, words: list[str]) -> None:
        rest = None
        for arg in spec.args:
            if arg.kind == commands.REST:
                rest = arg
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
            entries = [(c.name, c.help, c.description, (lambda c=c: c)) for c in spec.subcommands]
            add_commands(parser, entries, words)
        else:
            parser.set_defaults(_spec=spec)
        if rest is not None:
            parser.usage = parser.format_usage()[len("usage: "):].rstrip() + f" -- {rest.metavar}"

    def add_commands(parser, entries, words: list[str]) -> None:
        # Only the command about to run gets a parser; the others are added (unfilled)
        # only when none was named, for the help text and the "invalid choice" error.
        sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True, parser_class=Parser)
        wanted = words[0] if words and words[0] in {entry[0] for entry in entries} else None
        for name, help_text, description, load in entries:
            if full or wanted is None or name == wanted:
                child = sub.add_parser(name, help=help_text, description=description or help_text)
            if full or name == wanted:
                fill(child, load(), words[1:] if name == wanted else [])

    parser = Parser(prog="zomg", description="Named workspaces (boxes) for running commands and shells.")
    parser.add_argument("--version", action="version", version=f"zomg {__version__}")
    entries = [(name, help_text, None, partial(commands.load, name))
               for name, (_, help_text) in commands.TOP_LEVEL.items()]
    add_commands(parser, entries, words or [])
    return parser


def _terminal_width() -> int:
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 80


def build_full_parser():
    """The whole parser, every command filled in (for documentation and tests)."""
    return _build_parser(_Recorder(), None)


def _command_words(argv: list[str]) -> list[str]:
    # Command groups take no option with a value, so their words are the non-option tokens.
    words = []
    for token in argv:
        if token == "--":
            break
        if not token.startswith("-"):
            words.append(token)
    return words


def _same(message: str) -> str:
    return message


def _singular_or_plural(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


def _parse(argv: list[str], recorder: _Recorder):
    """Return a zero-argument callable that runs the command, or None after --help."""
    from zomg import commands

    words = _command_words(argv)
    only = words[0] if words and words[0] in commands.TOP_LEVEL else None
    rest: list[str] | None = None
    takes_rest = only is not None and any(a.kind == commands.REST for a in commands.load(only).args)
    if takes_rest:
        # Whatever follows `--` belongs to the box's command: the parser never sees it.
        if "--" in argv:
            cut = argv.index("--")
            argv, rest = argv[:cut], argv[cut + 1 :]
    import argparse

    # zomg speaks English; argparse's own words stay English too, so no line is
    # half-translated, and gettext's catalogue search (a dozen file-system
    # look-ups per phrase) stays out of start-up. Restored right after parsing.
    saved = argparse._, argparse.ngettext
    argparse._ = _same
    argparse.ngettext = _singular_or_plural
    try:
        namespace, extra = _build_parser(recorder, words).parse_known_args(argv)
    except SystemExit as exc:  # --help and --version print, then exit 0
        if exc.code in (0, None):
            return None
        raise
    finally:
        argparse._, argparse.ngettext = saved
    if extra:
        from zomg.errors import UsageError

        where = " ".join(["zomg", *recorder.path])
        hint = " (the command to run goes after '--')" if takes_rest and rest is None else ""
        raise UsageError(f"{where[5:] + ': ' if recorder.path else ''}unrecognized arguments: "
                         f"{' '.join(extra)}{hint} (see '{where} --help')")
    spec = namespace._spec
    kwargs = {}
    for arg in spec.args:
        kwargs[arg.dest] = (rest or []) if arg.kind == commands.REST else getattr(namespace, arg.dest)
    return lambda: spec.run(**kwargs)


def _outcome(exc: BaseException) -> tuple[int, str, str | None]:
    """Report ``exc`` on stderr as one line; return (exit code, result, error class)."""
    from zomg.errors import EXIT_ERROR, EXIT_INTERRUPTED, ZomgError

    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted", None
    if isinstance(exc, BrokenPipeError):
        # The reader went away (`zomg box list | head`): nothing left to say to it.
        _silence_stdout()
        return _EXIT_BROKEN_PIPE, "interrupted", None
    if isinstance(exc, ZomgError):
        _say(f"zomg: error: {exc.message}")
        return exc.exit_code, "error", exc.error_class
    if os.environ.get("ZOMG_DEBUG"):
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__)
    _say(f"zomg: error: internal error ({type(exc).__name__}: {exc}); set ZOMG_DEBUG=1 to see where")
    return EXIT_ERROR, "error", "internal"


def _result_of(code: int) -> tuple[str, str | None]:
    from zomg.errors import EXIT_INTERRUPTED

    # Only exec and console return non-zero codes: their child's.
    if code == 0:
        return "success", None
    if code == EXIT_INTERRUPTED:
        return "interrupted", None
    return "error", "subprocess"


def _say(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    # Python flushes stdout at exit; point it at devnull so that flush cannot fail again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _start_telemetry(recorder: _Recorder):
    try:
        from zomg import telemetry

        return telemetry.start(telemetry_command=recorder.path[:1] == ["telemetry"])
    except Exception:  # telemetry must never break a command
        return None


def _finish_telemetry(session, recorder: _Recorder, started: float, result: str, error_class: str | None) -> None:
    if session is None:
        return
    import time

    try:
        session.finish(
            {
                "command": recorder.path[0] if recorder.path else None,
                "subcommand": recorder.path[1] if len(recorder.path) > 1 else None,
                "flags": sorted(recorder.flags),
                "duration_s": time.monotonic() - started,
                "result": result,
                "error_class": error_class,
            }
        )
    except Exception:
        pass


def main(argv: list[str] | None = None) -> int:
    """Run zomg with ``argv`` (default: the process's arguments); return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        # Answered before anything is imported or parsed: scripts and packagers call it often.
        from zomg import __version__

        sys.stdout.write(f"zomg {__version__}\n")
        return 0

    import time

    started = time.monotonic()
    recorder = _Recorder()
    session = None
    try:
        try:
            action = _parse(args, recorder)
        finally:
            session = _start_telemetry(recorder)
        code = action() if action is not None else 0
        code = 0 if code is None else code
        result, error_class = _result_of(code)
    except (Exception, KeyboardInterrupt) as exc:
        code, result, error_class = _outcome(exc)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    except (OSError, ValueError):
        pass
    try:
        _finish_telemetry(session, recorder, started, result, error_class)
    except KeyboardInterrupt:  # Ctrl-C while waiting the exit grace for a send: the user wants out
        from zomg.errors import EXIT_INTERRUPTED

        return EXIT_INTERRUPTED
    return code
