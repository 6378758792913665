"""`zomg telemetry`: see and change what zomg's usage telemetry does.

These commands never record or send an event themselves.
"""
from __future__ import annotations

import sys

from zomg.commands import FLAG, Arg, Command
from zomg.output import note, print_json, print_table


def status(json: bool) -> int:
    from zomg.telemetry import NOTICE_VERSION, status_text

    info = status_text.status(NOTICE_VERSION)
    if json:
        print_json(info)
    else:
        lines = status_text.status_lines(info)
        print_table(lines[0], lines[1:])
    return 0


def explain() -> int:
    from zomg.commands import declared
    from zomg.telemetry import status_text

    sys.stdout.write(status_text.explain(declared(list(status_text.EXAMPLE_PATH))))
    return 0


def flush() -> int:
    from zomg.errors import ConfigError, NetworkError, OperationTimeoutError
    from zomg.telemetry import flush_report

    failed = []  # the reason of each data set whose send failed
    faults = []  # the same, when the fault is this machine's (the spool, the disk)
    for entry in flush_report():
        name, n = entry["data_set"], entry["sent"]
        events = _events(n)
        if entry["result"] == "sent":
            line = f"sent {events} to {entry['endpoint']}"
            if entry["dropped"]:
                line += f"; {entry['dropped']} refused by the receiver for their content and dropped"
        elif entry["result"] == "nothing":
            line = "nothing to send" + (f" ({entry['reason']})" if entry["reason"] else "")
        elif entry["result"] == "off":
            line = f"not sent: {entry['reason']}"
        elif entry["unremoved"]:
            faults.append(entry["reason"])
            line = (f"sent {_events(n + entry['unremoved'])} to {entry['endpoint']}, but "
                    f"{entry['unremoved']} could not be removed from the spool ({entry['reason']}): "
                    "kept, and may be sent again (the receiver drops the copies)")
        elif entry["fault"]:
            faults.append(entry["reason"])  # this machine's: a spool file, the send lock
            line = f"not sent: {entry['reason']}"
        else:
            failed.append(entry["reason"])
            http = f", HTTP {entry['status']}" if entry["status"] else ""
            kept = entry["kept"]
            line = f"not sent: {entry['reason']}{http} from {entry['endpoint']}; {_events(kept)} kept for later"
            if n:
                line = f"sent {events}, then " + line
        if entry["spent"]:
            line += (f"; {_events(entry['spent'])} sent twice without an answer "
                     "not sent again (the receiver very likely has them)")
        for other, count in entry["elsewhere"]:
            line += (f"; holding {_events(count)} recorded for {other}: sent only there "
                     "(run flush with ZOMG_TELEMETRY_ENDPOINT set to it)")
        sys.stdout.write(f"{name}: {line}\n")
    if faults:
        sys.stdout.flush()
        raise ConfigError(f"telemetry flush: {faults[0]}")
    if failed:
        sys.stdout.flush()
        # Both exit 1, as documented: a timeout is told apart only in the message and the error class.
        if all(reason == "timeout" for reason in failed):
            raise OperationTimeoutError("telemetry flush: the endpoint did not answer in time; "
                                        "the events not sent are kept for later")
        raise NetworkError("telemetry flush: the endpoint failed; the events not sent are kept for later")
    return 0


def _events(n: int) -> str:
    return f"{n} event{'s' if n != 1 else ''}"


def _store(mode: str) -> None:
    from zomg.telemetry import policy
    from zomg.telemetry.files import Spool

    def change(data: dict) -> bool:
        data["mode"] = mode
        if mode == "off":
            data.pop("installation_id", None)
        return True

    dropped = 0
    if mode == "off":
        from zomg.telemetry import schema, spool_edit

        # Deployment metrics share the spool but not this switch: only CLI events go.
        dropped = _delete_unsent(lambda: spool_edit.drop_events(Spool(policy.endpoint()), schema.CLI_COMMAND))
    written = _update_settings(change, "the telemetry setting")
    message = f"telemetry: stored {mode} in {written.path}"
    if mode == "off":
        message += f"; deleted the installation id and {dropped} unsent event{'s' if dropped != 1 else ''}"
    elif mode == "log":
        message += "; from now on each command prints the event it would send to stderr instead of sending it"
    note(message)
    if mode == "off":
        from zomg.telemetry import deployment

        note(deployment.after_telemetry_off_line())
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
    from zomg.telemetry import policy, spool_edit
    from zomg.telemetry.files import Spool, uuid4

    dropped = _delete_unsent(lambda: spool_edit.clear(Spool(policy.endpoint())))

    def change(data: dict) -> bool:
        if data.get("mode") == "off" and "installation_id" not in data:
            return False  # off keeps no id: none is made here either
        data["installation_id"] = uuid4()
        return True

    written = _update_settings(change, "a new installation id")
    made = f"new installation id {written.installation_id}" if written.installation_id else "no installation id"
    note(f"telemetry: reset: {made}; deleted {_events(dropped)} not yet sent and the delivery state")
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
