"""`zomg telemetry`: see and change what zomg's usage telemetry does.

These commands never record or send an event themselves.
"""
from __future__ import annotations

import sys

from zomg.commands import FLAG, Arg, Command
from zomg.output import note, print_json, print_table


def status(json: bool) -> int:
    from zomg.telemetry import NOTICE_VERSION, messages

    info = messages.status(NOTICE_VERSION)
    if json:
        print_json(info)
    else:
        lines = messages.status_lines(info)
        print_table(lines[0], lines[1:])
    return 0


def explain() -> int:
    from zomg.commands import declared
    from zomg.telemetry import messages

    sys.stdout.write(messages.explain(declared(list(messages.EXAMPLE_PATH))))
    return 0


def flush() -> int:
    from zomg.telemetry import flushing, messages

    report = flushing.flush_report()
    for line in messages.flush_lines(report):
        sys.stdout.write(line + "\n")
    error = messages.flush_error(report)
    if error is not None:
        sys.stdout.flush()
        raise error
    return 0


def _store(mode: str) -> None:
    from zomg.telemetry import policy
    from zomg.telemetry.files import Layout, Spool

    def change(data: dict) -> bool:
        data["mode"] = mode
        if mode == "off":
            data.pop("installation_id", None)
        return True

    dropped = 0
    if mode == "off":
        from zomg.telemetry import schema
        from zomg.telemetry.spool_edit import SpoolEditor

        # Deployment metrics share the spool but not this switch: only CLI events go.
        spool = Spool(policy.endpoint(), Layout())
        dropped = _delete_unsent(lambda: SpoolEditor(spool).drop_events(schema.CLI_COMMAND))
    written = _update_settings(change, "the telemetry setting")
    message = f"telemetry: stored {mode} in {written.path}"
    if mode == "off":
        message += f"; deleted the installation id and {dropped} unsent event{'s' if dropped != 1 else ''}"
    elif mode == "log":
        message += "; from now on each command prints the event it would send to stderr instead of sending it"
    note(message)
    if mode == "off":
        from zomg.telemetry import messages

        note(messages.deployment_after_telemetry_off_line())
    decision = policy.decide()
    if decision.mode != mode:
        note(f"telemetry: note: this setting has no effect for now: {decision.reason}, "
             f"so telemetry is {decision.mode} [{decision.source}]")


def _delete_unsent(drop) -> int:
    """``drop()``: how many unsent events it deleted; a failure is one line."""
    from zomg.errors import ConflictError

    try:
        return drop()
    except (OSError, TimeoutError) as exc:
        raise ConflictError(f"cannot delete the unsent telemetry events: {exc}") from None


def _update_settings(change, what: str):
    """``settings.update(change)``, its failures turned into one line about storing ``what``."""
    from zomg.errors import ConflictError, from_os_error
    from zomg.telemetry import settings

    try:
        return settings.update(change)
    except TimeoutError:
        raise ConflictError("the telemetry settings are being changed by another zomg; try again") from None
    except OSError as exc:
        raise from_os_error(exc, f"cannot store {what} in {settings.user_path()}") from None


def reset() -> int:
    """A new installation id, the spool emptied and the delivery state cleared; nothing is sent."""
    from zomg.telemetry import policy
    from zomg.telemetry.files import Layout, Spool, uuid4
    from zomg.telemetry.messages import events
    from zomg.telemetry.spool_edit import SpoolEditor

    dropped = _delete_unsent(lambda: SpoolEditor(Spool(policy.endpoint(), Layout())).clear())

    def change(data: dict) -> bool:
        if data.get("mode") == "off" and "installation_id" not in data:
            return False  # off keeps no id: none is made here either
        data["installation_id"] = uuid4()
        return True

    written = _update_settings(change, "a new installation id")
    made = f"new installation id {written.installation_id}" if written.installation_id else "no installation id"
    note(f"telemetry: reset: {made}; deleted {events(dropped)} not yet sent and the delivery state")
    return 0


def on() -> int:
    _store("on")
    return 0


def off() -> int:
    _store("off")
    return 0


def log() -> int:
    _store("log")
    return 0


SPEC = Command(
    "telemetry",
    help="see or change what zomg's usage telemetry does",
    description="zomg sends pseudonymous usage telemetry (the command run, never its arguments). "
    "See `zomg telemetry explain` for every field. These commands never record anything themselves.",
    examples=(("why telemetry is on or off", "zomg telemetry status"), ("turn it off", "zomg telemetry off")),
    subcommands=(
        Command(
            "status",
            help="show the mode, why, the endpoint and the installation id",
            run=status,
            args=(Arg("--json", help="print one JSON object", kind=FLAG),),
            examples=(("the mode and why", "zomg telemetry status"),
                      ("the same for a script", "zomg telemetry status --json")),
        ),
        Command("on", help="turn telemetry on", run=on, examples=(("turn it back on", "zomg telemetry on"),)),
        Command("off", help="turn telemetry off and delete the installation id and unsent events", run=off,
                examples=(("turn it off for good", "zomg telemetry off"),
                          ("off for one command only", "ZOMG_TELEMETRY=off zomg box list"))),
        Command("log", help="print each event to stderr instead of sending it", run=log,
                examples=(("see what each command would send", "zomg telemetry log && zomg box list"),)),
        Command("reset", help="start afresh: a new installation id, and the unsent events and delivery state deleted",
                run=reset,
                description="Give this installation a new random id and delete every unsent event and the "
                "delivery state (backoff, last attempt). Sends nothing; works whatever the mode, also when "
                "the environment turns telemetry off.",
                examples=(("a new installation id, nothing waiting", "zomg telemetry reset"),)),
        Command("explain", help="what is collected, an example payload, and how the mode is decided", run=explain,
                examples=(("every field, with an example", "zomg telemetry explain"),)),
        Command("flush", help="send every unsent event now, for each data set that is on", run=flush,
                description="Send every unsent event now, ignoring when a send would be due and any backoff: CLI "
                "events when telemetry is on, deployment metrics when opted in with zomg setup. Prints one "
                "line per data set; exits 1 when the endpoint failed. Never sends when the environment turns "
                "telemetry off.",
                examples=(("send what is waiting now", "zomg telemetry flush"),)),
    ),
)
