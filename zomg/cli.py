"""zomg's entry point: run one invocation, turn failures into exit codes, time it for telemetry.

``zomg.parser`` turns the command line into a call; this module runs it,
reports failures in one line, and is the only place that decides when
telemetry runs. Commands are plain functions declared in ``zomg.commands``;
they never see telemetry and never exit the process.

Telemetry is handed only what the parser itself recorded while parsing: the
names of the commands it matched and the canonical names of the options it
consumed (see ``zomg.parser.Matched``), with the names those commands
declare. Values never pass through it.
"""
from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: startup cost
    from zomg.parser import Matched

# Exit code of a process whose reader went away (128 + SIGPIPE), as git and the shell report it.
_EXIT_BROKEN_PIPE = 141


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


def _start_telemetry(matched: Matched):
    try:
        from zomg import telemetry
        from zomg.commands import NOT_RECORDED

        return telemetry.start(telemetry_command=bool(matched.path) and matched.path[0] in NOT_RECORDED)
    except Exception:  # telemetry must never break a command
        return None


def _finish_telemetry(session, matched: Matched, started: float, result: str, error_class: str | None) -> None:
    if session is None:
        return
    import time

    try:
        from zomg.telemetry.event import invocation

        session.finish(invocation(matched.path, matched.flags, matched.declared(), time.monotonic() - started,
                                  result, error_class))
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

    from zomg import parser

    started = time.monotonic()
    matched = parser.Matched()
    session = None
    try:
        try:
            action = parser.parse(args, matched)
        finally:
            session = _start_telemetry(matched)
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
        _finish_telemetry(session, matched, started, result, error_class)
    except KeyboardInterrupt:  # Ctrl-C while waiting the exit grace for a send: the user wants out
        from zomg.errors import EXIT_INTERRUPTED

        return EXIT_INTERRUPTED
    return code
