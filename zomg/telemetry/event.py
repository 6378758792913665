"""Building a ``cli.command`` event from what the parser recorded.

Every value comes from a definition, never from the user's input: the
command and subcommand must be names the command table declares, each flag
must be an option one of the matched commands declares (in its canonical,
long form), and everything else is a bucket, a coarse name or a random id.
A name that is not declared is dropped, so even a recorder bug cannot leak
what was typed.

Building does not import ``zomg.telemetry.schema``: that module costs more
to import than a command like ``zomg box list`` can afford on every run. The
wire names used here are the schema's (tests check every value this module
can produce against it), and every event is validated by the schema before
it leaves the machine: in the sender, and before a log line is printed.
"""
from __future__ import annotations

import os
import sys
import time

from zomg.telemetry import ci
from zomg.telemetry.config import uuid4

EVENT = "cli.command"
SCHEMA_VERSION = 1
# (upper bound in seconds, label), as schema.DURATION_BUCKETS.
_DURATIONS = ((1, "<1s"), (10, "1s-10s"), (60, "10s-1m"), (600, "1m-10m"), (float("inf"), ">10m"))
RESULTS = ("success", "error", "interrupted")
# Options argparse itself adds: --help on every parser, --version on the top one.
_BUILTIN_FLAGS = ("--help", "--version")

_ARCH = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "x64": "x86_64",
    "em64t": "x86_64",
    "arm64": "arm64",
    "aarch64": "arm64",
    "aarch64_be": "arm64",
    "armv8b": "arm64",
    "armv8l": "arm",  # a 32-bit userland on a 64-bit core
    "i386": "x86",
    "i486": "x86",
    "i586": "x86",
    "i686": "x86",
    "i86pc": "x86",
    "x86": "x86",
}


def os_name(platform: str | None = None) -> str:
    """The OS as the schema names it, from ``sys.platform`` (the ``platform`` module is slow to import)."""
    platform = sys.platform if platform is None else platform
    if platform.startswith("linux"):
        return "linux"
    if platform == "darwin":
        return "darwin"
    if platform in ("win32", "cygwin", "msys"):
        return "windows"
    if platform.startswith("freebsd"):
        return "freebsd"
    return "other"


def normalize_arch(machine: str) -> str:
    machine = machine.strip().lower()
    if machine in _ARCH:
        return _ARCH[machine]
    return "arm" if machine.startswith("arm") else "other"


def arch() -> str:
    try:
        machine = os.uname().machine
    except AttributeError:  # Windows has no uname
        machine = os.environ.get("PROCESSOR_ARCHITEW6432") or os.environ.get("PROCESSOR_ARCHITECTURE", "")
    return normalize_arch(machine)


def duration_bucket(seconds: float) -> str:
    return next(label for limit, label in _DURATIONS if seconds < limit)


def timestamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


def _declared(command: str | None, subcommand: str | None) -> tuple[str | None, str | None, set[str]]:
    """The command path as declared (unknown parts become None) and the options it declares."""
    from zomg import commands

    flags = set(_BUILTIN_FLAGS)
    if command not in commands.TOP_LEVEL:
        return None, None, flags
    spec = commands.load(command)
    flags.update(arg.canonical for arg in spec.args if arg.is_option)
    child = next((c for c in spec.subcommands if c.name == subcommand), None)
    if child is None:
        return command, None, flags
    flags.update(arg.canonical for arg in child.args if arg.is_option)
    return command, subcommand, flags


def build(invocation: dict, installation_id: str, now: float, env=None) -> dict:
    """The event for one finished invocation (see ``zomg.cli._finish_telemetry``)."""
    from zomg import __version__
    from zomg.errors import ERROR_CLASSES

    command, subcommand, defined = _declared(invocation.get("command"), invocation.get("subcommand"))
    result = invocation.get("result")
    if result not in RESULTS:
        result = "error"
    error_class = invocation.get("error_class") if result == "error" else None
    if result == "error" and error_class not in ERROR_CLASSES:
        error_class = "internal"
    return {
        "event": EVENT,
        "schema_version": SCHEMA_VERSION,
        "event_id": uuid4(),
        "installation_id": installation_id,
        "timestamp": timestamp(now),
        "cli_version": __version__,
        "command": command,
        "subcommand": subcommand,
        "flags": sorted({f for f in invocation.get("flags", ()) if f in defined}),
        "os": os_name(),
        "arch": arch(),
        "ci": ci.is_ci(env),
        "duration_bucket": duration_bucket(max(0.0, float(invocation.get("duration_s", 0.0)))),
        "result": result,
        "error_class": error_class,
    }
