"""The first-run notice: on stderr, once per version of what is collected.

The version is ``zomg.telemetry.NOTICE_VERSION``, raised whenever what is
collected changes; the caller hands it to ``show`` (this module imports
nothing from its own package). ``FIELDS_SHOWN`` pins the fields this version describes;
a test fails when the schema moves without it.
"""
from __future__ import annotations

import sys

FIELDS_SHOWN = {
    "cli.command": (
        "event", "schema_version", "event_id", "installation_id", "timestamp", "cli_version", "command",
        "subcommand", "flags", "os", "arch", "ci", "duration_bucket", "result", "error_class",
    ),
}

TEXT = """\
zomg: zomg collects pseudonymous usage telemetry so its maintainers learn which
zomg: commands and systems are used: the command and subcommand, the names of the
zomg: options given (never their values), zomg's version, OS, CPU architecture,
zomg: whether it runs in CI, a rough duration, the result and a random
zomg: installation id. Never arguments, names, paths or output.
zomg: Nothing was sent by this run. Details: zomg telemetry explain
zomg: Turn it off: zomg telemetry off, or set ZOMG_TELEMETRY=off or DO_NOT_TRACK=1
"""


def show(env_decided: bool, version: int) -> bool:
    """Record that notice ``version`` was shown, then show it; False (and silence) if it was not recorded.

    A notice that cannot be stored would be shown on every run, so telemetry
    stays off, silently, until the config dir can be written. Unless the
    environment chose the mode, a stored mode other than on found under the
    lock means a concurrent `zomg telemetry off` or `log` won: no notice.
    """
    from zomg.telemetry import files, settings

    marked = []

    def mark(data: dict) -> bool:
        if files.whole(data.get("notice_version"), 0, 1 << 31) == version:
            return False  # another zomg showed it a moment ago
        if not env_decided and data.get("mode") not in (None, "on"):
            return False
        data["notice_version"] = version
        settings.add_installation_id(data)
        marked.append(True)
        return True

    try:
        settings.update(mark)
    except (OSError, TimeoutError):
        return False
    if not marked:
        return False
    try:
        sys.stderr.write(TEXT)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    return True
