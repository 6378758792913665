"""The store's command lines: ``python -m zomg.receiver report ...`` and ``python -m zomg.receiver expire ...``.

Bad input (a missing or damaged file, a bad date or number) is one line on
stderr and exit status 1 (input) or 2 (usage), never a traceback. The report
is written whole or not at all: to a temporary file beside ``--output``,
renamed over it at the end.
"""
from __future__ import annotations

import argparse
import datetime
import os
import stat
import sys
import tempfile
import time

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_USAGE = 2
DEFAULT_DAYS = 30
DEFAULT_MIN_INSTALLATIONS = 10
FORMATS = ("text", "json", "html")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the usage block
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text) if len(text) == 10 else _no_date(text)
    except ValueError:
        return _no_date(text)


def _no_date(text: str) -> datetime.date:
    raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}")


def _whole(smallest: int):
    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit()) or len(text) > 6 or int(text) < smallest:
            raise argparse.ArgumentTypeError(f"not a whole number of at least {smallest}: {text!r}")
        return int(text)

    return parse


def _today() -> datetime.date:
    return datetime.datetime.fromtimestamp(time.time(), datetime.timezone.utc).date()


def period(days: int | None, since: datetime.date | None, until: datetime.date | None) -> tuple:
    """(since, until), both inclusive UTC dates, from the options as given."""
    if days is not None and since is not None:
        raise ValueError("--days and --since cannot be given together")
    until = until or _today()
    since = since or until - datetime.timedelta(days=(days or DEFAULT_DAYS) - 1)
    if since > until:
        raise ValueError(f"--since {since} is after --until {until}")
    return since, until


def write_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` whole: a temporary file beside it, renamed over it.

    A path that names something other than a regular file (``/dev/null``,
    ``/dev/stdout``, a FIFO) is written in place: renaming over it would replace
    the device or pipe with a file, which as root destroys ``/dev/null``.
    """
    try:
        special = not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        special = False
    if special:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".zomg-report-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def report_main(argv: list[str]) -> int:
    parser = _Parser(prog="python -m zomg.receiver report", allow_abbrev=False,
                     description="Summarise usage stores and JSON-lines files into a publishable usage report.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="a usage store (ZOMG_RECEIVER_STORE) or a JSON-lines file (ZOMG_RECEIVER_OUTPUT, .gz too)")
    parser.add_argument("--days", type=_whole(1), help=f"the last N days up to --until (default {DEFAULT_DAYS})")
    parser.add_argument("--since", type=_date, help="first day, UTC, YYYY-MM-DD")
    parser.add_argument("--until", type=_date, help="last day, UTC, YYYY-MM-DD (default today)")
    parser.add_argument("--min-installations", type=_whole(1), default=DEFAULT_MIN_INSTALLATIONS, metavar="K",
                        help=f"fold rows of fewer than K installations (default {DEFAULT_MIN_INSTALLATIONS})")
    parser.add_argument("--format", choices=FORMATS, default="text", help="text (default), json or html")
    parser.add_argument("--output", metavar="FILE", help="write the report to FILE (default standard output)")
    args = parser.parse_args(argv)
    try:
        since, until = period(args.days, args.since, args.until)
    except ValueError as exc:
        parser.error(str(exc))
    if args.output is not None and not os.path.isdir(os.path.dirname(os.path.abspath(args.output))):
        return _fail(f"--output: directory {os.path.dirname(os.path.abspath(args.output))} does not exist")

    from zomg.receiver.report import build_report
    from zomg.receiver.report.inputs import InputError

    try:
        report = build_report(args.inputs, since, until, args.min_installations)
    except InputError as exc:
        return _fail(str(exc))
    if args.format == "json":
        from zomg.receiver.report.render import to_json as render
    elif args.format == "html":
        from zomg.receiver.report.html import to_html as render
    else:
        from zomg.receiver.report.render import to_text as render
    text = render(report)
    if args.output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return EXIT_OK
    try:
        write_atomically(args.output, text)
    except OSError as exc:
        return _fail(f"{args.output}: cannot be written ({exc.strerror})")
    return EXIT_OK


def expire_main(argv: list[str]) -> int:
    parser = _Parser(prog="python -m zomg.receiver expire", allow_abbrev=False,
                     description="Delete a usage store's events older than some days.")
    parser.add_argument("store", metavar="STORE", help="the usage store (ZOMG_RECEIVER_STORE)")
    parser.add_argument("--keep-days", type=_whole(1), required=True, metavar="N",
                        help="keep the events of the last N days (24-hour periods back from now)")
    args = parser.parse_args(argv)

    from zomg.receiver.store import StoreError, expire

    try:
        deleted = expire(args.store, args.keep_days)
    except StoreError as exc:
        return _fail(str(exc))
    print(f"zomg-receiver: deleted {deleted} events older than {args.keep_days} days from {args.store}",
          file=sys.stderr)
    return EXIT_OK


def _fail(message: str) -> int:
    print(f"zomg-receiver: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


TOOLS = {"report": report_main, "expire": expire_main}
