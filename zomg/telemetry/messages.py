"""Everything telemetry tells the user in words: what the telemetry commands and `zomg setup` print about it.

`zomg telemetry status`, `explain` and `flush`, and the deployment-metrics
lines of `zomg setup` and `zomg telemetry off`.

One home for that text, so that a message is changed (and read) in one place:
the commands print what these build, ``deployment`` and ``flushing`` only
report facts. Loaded by those commands, never on a recorded command's path.
Read-only: nothing here creates a file, an id or a connection.
"""
from __future__ import annotations

import os

from zomg.telemetry import files, policy, schema
from zomg.telemetry.protocol import EVENTS_PATH
from zomg.telemetry.spool_edit import CUT_SHORT, SpoolEditor

NEVER_COLLECTED = (
    "argument values: box names, projects, paths, KEY=VALUE pairs, shell names",
    "the command and arguments given to `zomg exec` after --, or anything typed in `zomg console`",
    "file paths, the working directory, the home directory",
    "hostnames, user names, e-mail addresses, IP addresses (the receiver does not keep them)",
    "environment variables or their values (only a yes/no for 'runs in CI')",
    "tokens, secrets, error messages, output",
    "unknown commands or options as typed (a typo could be a secret): an unknown command is null",
)

# The invocation `explain` shows the event of: `zomg box list --json`, a quick success.
EXAMPLE_PATH = ("box", "list")
EXAMPLE_FLAGS = ("--json",)


def status(notice_version: int, env=None) -> dict:
    """Everything `zomg telemetry status` shows; ``notice_version`` is the one in effect (``zomg.telemetry``'s)."""
    from zomg.telemetry import deployment

    decision = policy.decide(env)
    # The environment may decide before any file is read: status reads them anyway, to show them.
    layout = decision.layout if decision.layout is not None else files.Layout()
    user = decision.user if decision.user is not None else files.read_user(layout)
    system = decision.system if decision.system is not None else files.read_system()
    url = policy.endpoint(env)
    problem = policy.endpoint_problem(url)
    writable = files.writable(layout)
    inactive = None
    if decision.mode == "on" and problem is not None:
        inactive = "the endpoint is not usable, so nothing is recorded or sent"
    elif decision.mode != "off" and not writable:
        inactive = "the config dir is not writable, so telemetry is off for every run until it is"
    spool = files.Spool(url, layout)
    _, unreadable = spool.read_checked()
    mine, others, spent = SpoolEditor(spool).counts()
    return {
        "mode": decision.mode,
        "source": decision.source,
        "reason": decision.reason,
        "decided_by": decision.path,
        "active": decision.mode != "off" and inactive is None,
        "inactive_reason": inactive,
        "endpoint": policy.masked(url),
        "endpoint_usable": problem is None,
        "endpoint_problem": problem,
        "installation_id": user.installation_id,
        "notice_shown": user.notice_version == notice_version,
        "config_path": user.path,
        "config_writable": writable,
        "stored_mode": user.mode,
        "system_path": system.path,
        "system_locked": system.locks_off,
        "unsent_events": None if unreadable else mine,  # null: not known (see faults)
        "unsent_events_spent": spent,
        "unsent_events_other_endpoints": sum(others.values()),
        "other_endpoints": [[policy.masked(other), n] for other, n in sorted(others.items())],
        "faults": SpoolEditor(spool).faults(),
        **delivery_story(spool, mine),
        "deployment_metrics": deployment.status(env, decision),
    }


HINTS = {
    404: f"is the path right? the receiver answers at {EVENTS_PATH}",
    410: f"is the path right? the receiver answers at {EVENTS_PATH}",
    401: "the endpoint asks for credentials; zomg sends none",
    403: "the endpoint refuses zomg; is it the right receiver?",
}


def delivery_story(spool, waiting: int) -> dict:
    """The last attempt, when the next may happen, and a hint when the last answer points at a misconfiguration."""
    import time

    from zomg.telemetry.event import timestamp
    from zomg.telemetry.files import LATEST_TIME, number, whole

    now = time.time()
    editor = SpoolEditor(spool)
    last = editor.last_attempt() or {}
    cut_short = whole(last.get("cut_short"), 0, 1 << 31) or 0
    flight = last.get("in_flight")
    if isinstance(flight, dict):
        # An attempt noted as in flight: running now if the send lock is held, else its run exited first.
        lock = editor.send_lock()
        try:
            free = lock.acquire(0)
        except OSError:
            free = False
        if free:
            lock.release()
            cut_short += 1
        last = {"at": flight.get("at"), "outcome": CUT_SHORT if free else "in progress",
                "events": flight.get("events"), "status": None, "endpoint": flight.get("endpoint"),
                "reason": "the run exited before the answer" if free else None}
    attempt = None
    if last:
        at, events = number(last.get("at"), 0, LATEST_TIME), whole(last.get("events"), 0, 10**6)
        outcome, status, reason = last.get("outcome"), whole(last.get("status"), 100, 999), last.get("reason")
        if at is not None and events is not None and outcome in ("delivered", "kept", "dropped", CUT_SHORT,
                                                                 "in progress"):
            attempt = {"at": timestamp(at), "outcome": outcome, "events": events, "status": status,
                       "reason": reason if isinstance(reason, str) else None,
                       "endpoint": policy.masked(str(last.get("endpoint", "")))[:200]}
    failures, retry_at = spool.backoff(now)
    next_at = None
    if waiting:
        next_at = timestamp(max(now, retry_at))
    hint = None
    if attempt is not None and attempt["outcome"] == "kept":
        hint = HINTS.get(attempt["status"])
        if hint is None and attempt["status"] is not None and 300 <= attempt["status"] < 400:
            hint = "the endpoint redirects; set ZOMG_TELEMETRY_ENDPOINT to the address it points at"
    return {"last_attempt": attempt, "next_attempt": next_at, "backoff_failures": failures, "hint": hint,
            "attempts_cut_short": cut_short}


def _attempt_line(attempt: dict | None) -> str:
    if attempt is None:
        return "none recorded"
    n = attempt["events"]
    what = f"{attempt['outcome']} {n} event{'s' if n != 1 else ''}"
    if attempt["outcome"] == "cut short":
        what = f"sent {n} event{'s' if n != 1 else ''}, cut short: the run exited before the answer"
    elif attempt["outcome"] == "in progress":
        what = f"sending {n} event{'s' if n != 1 else ''} now"
    elif attempt["outcome"] != "delivered":
        http = f", HTTP {attempt['status']}" if attempt["status"] else ""
        what += f" ({attempt['reason']}{http})"
    return f"{attempt['at']}: {what} [{attempt['endpoint']}]"


def status_lines(info: dict) -> list[tuple[str, str]]:
    mode = info["mode"]
    if info["inactive_reason"]:
        mode += f" (but {info['inactive_reason']})"
    usable = "usable" if info["endpoint_usable"] else f"not usable: {info['endpoint_problem']}"
    return [
        ("mode:", mode),
        ("why:", f"{info['reason']} [{info['source']}]"),
        ("endpoint:", f"{info['endpoint']} ({usable})"),
        ("installation id:", info["installation_id"] or "none yet"),
        ("notice shown:", "yes" if info["notice_shown"] else "no"),
        ("config file:", info["config_path"] + ("" if info["config_writable"] else " (not writable)")),
        ("system file:", (info["system_path"] or "none") + (" (locks telemetry off)" if info["system_locked"] else "")),
        ("unsent events:", ("unknown: the spool cannot be read (see faults)" if info["unsent_events"] is None
                            else str(info["unsent_events"])) + (
            f" ({info['unsent_events_spent']} of them sent twice without an answer: zomg telemetry flush sends them)"
            if info["unsent_events_spent"] else "")),
    ] + [("", f"and {n} recorded for another endpoint, {other}: kept for it, sent only there")
         for other, n in info["other_endpoints"]] + [
        ("last attempt:", _attempt_line(info["last_attempt"])),
        ("cut short:", f"{info['attempts_cut_short']} attempt{'s' if info['attempts_cut_short'] != 1 else ''} "
                       "(the run exited before the answer; the events stay spooled)"),
        ("next attempt:", "none due (nothing waiting)" if info["next_attempt"] is None else
         f"not before {info['next_attempt']}" + (f" (backing off after {info['backoff_failures']} failed "
                                                 f"attempt{'s' if info['backoff_failures'] != 1 else ''})"
                                                 if info["backoff_failures"] else
                                                 ", once a send is due (or now: zomg telemetry flush)")),
        ("deployment metrics:", f"{info['deployment_metrics']['mode']} ({info['deployment_metrics']['reason']})"),
    ] + ([("hint:", info["hint"])] if info["hint"] else []) + [("fault:", fault) for fault in info["faults"]]


def example_batch(installation_id: str | None, declared: dict, env=None) -> bytes:
    """The exact request body this machine would send for `zomg box list --json`.

    ``declared`` is what the parser declares for that command line
    (``zomg.commands.declared``): the example is built as the real run's event
    is, through ``event.invocation`` and ``event.build``.
    """
    import time

    from zomg.telemetry import event

    invocation = event.invocation(list(EXAMPLE_PATH), EXAMPLE_FLAGS, declared, 0.2, "success", None)
    built = event.build(invocation, installation_id or files.uuid4(), time.time(), env)
    schema.validate_event(built)
    return schema.encode_batch([built])


def explain(declared: dict, env=None) -> str:
    """What `zomg telemetry explain` prints; ``declared`` as for ``example_batch``."""
    decision = policy.decide(env)
    user = decision.user if decision.user is not None else files.read_user(files.Layout())
    out = [
        f'What zomg collects: one "{schema.CLI_COMMAND}" event per command run (schema version '
        f"{schema.SCHEMA_VERSION}), with exactly these fields:",
        "",
    ]
    fields = schema.EVENT_TYPES[schema.CLI_COMMAND][0]
    width = max(len(name) for name, _, _ in fields)
    out += [f"  {name.ljust(width)}  {description}" for name, _, description in fields]
    out += ["", "Never collected:", ""]
    out += [f"  - {item}" for item in NEVER_COLLECTED]
    out += [
        "",
        f"Example: the request body for `zomg box list --json` on this machine, exactly as POSTed to "
        f"{policy.masked(policy.endpoint(env))}",
        "(Content-Type: application/json, User-Agent: zomg-telemetry, no cookies; "
        + ("your installation id" if user.installation_id else "a random example installation id")
        + ", a new event_id per event):",
        "",
        example_batch(user.installation_id, declared, env).decode("ascii"),
        "",
        "When: events wait in a small spool and are sent in one batch once there are 50 or the oldest "
        "is an hour old, from a background thread that never delays a command by more than half a "
        "second. After a failure zomg waits (from seconds, doubling, up to an hour) before trying again. "
        "Send now: zomg telemetry flush.",
        "",
        "How the current mode was decided (first match wins):",
        "",
    ]
    out += [f"  {i}. {name}: {finding}" for i, (name, finding) in enumerate(decision.steps, 1)]
    out += [
        f"  => {decision.mode} [{decision.source}]",
        "",
        "Turn it off: zomg telemetry off, or set ZOMG_TELEMETRY=off or DO_NOT_TRACK=1.",
        "See what would be sent instead of sending it: zomg telemetry log (or ZOMG_TELEMETRY=log).",
    ]
    return "\n".join(out) + "\n"


# --- zomg telemetry flush ---------------------------------------------------------


def events(n: int) -> str:
    """``n`` events, in words: "1 event", "2 events"."""
    return f"{n} event{'s' if n != 1 else ''}"


def flush_lines(report: list[dict]) -> list[str]:
    """What `zomg telemetry flush` prints: one line per data set of ``flushing.flush_report``'s report."""
    out = []
    for entry in report:
        name, n = entry["data_set"], entry["sent"]
        if entry["result"] == "sent":
            line = f"sent {events(n)} to {entry['endpoint']}"
            if entry["dropped"]:
                line += f"; {entry['dropped']} refused by the receiver for their content and dropped"
        elif entry["result"] == "nothing":
            line = "nothing to send" + (f" ({entry['reason']})" if entry["reason"] else "")
        elif entry["result"] == "off":
            line = f"not sent: {entry['reason']}"
        elif entry["unremoved"]:
            line = (f"sent {events(n + entry['unremoved'])} to {entry['endpoint']}, but "
                    f"{entry['unremoved']} could not be removed from the spool ({entry['reason']}): "
                    "kept, and may be sent again (the receiver drops the copies)")
        elif entry["fault"]:
            line = f"not sent: {entry['reason']}"  # this machine's: a spool file, the send lock
        else:
            http = f", HTTP {entry['status']}" if entry["status"] else ""
            kept = entry["kept"]
            line = f"not sent: {entry['reason']}{http} from {entry['endpoint']}; {events(kept)} kept for later"
            if n:
                line = f"sent {events(n)}, then " + line
        if entry["spent"]:
            line += f"; {events(entry['spent'])} of them sent twice before without an answer"
        for other, count in entry["elsewhere"]:
            line += (f"; holding {events(count)} recorded for {other}: sent only there "
                     "(run flush with ZOMG_TELEMETRY_ENDPOINT set to it)")
        out.append(f"{name}: {line}")
    return out


def flush_error(report: list[dict]):
    """The error `zomg telemetry flush` ends with (a ``zomg.errors`` class), or None when every data set is fine.

    This machine's fault (the spool, the disk) comes first; then the endpoint's.
    """
    from zomg.errors import ConfigError, NetworkError, OperationTimeoutError

    failed = [e for e in report if e["result"] == "failed"]
    faults = [e["reason"] for e in failed if e["unremoved"] or e["fault"]]
    if faults:
        return ConfigError(f"telemetry flush: {faults[0]}")
    if failed:
        # Both exit 1, as documented: a timeout is told apart only in the message and the error class.
        if all(e["reason"] == "timeout" for e in failed):
            return OperationTimeoutError("telemetry flush: the endpoint did not answer in time; "
                                         "the events not sent are kept for later")
        return NetworkError("telemetry flush: the endpoint failed; the events not sent are kept for later")
    return None


# --- deployment metrics, in zomg setup and zomg telemetry off ----------------------


def deployment_chosen_line(chosen: bool) -> str:
    """What `zomg setup` says after saving: the choice, and whether it takes effect."""
    from zomg.telemetry.deployment import decide

    mode, reason = decide()
    if chosen and mode == "off":
        return f"deployment metrics: on as chosen, but not sent while {reason}"
    if chosen:
        return "deployment metrics: on (at most once a day; turn off with: zomg setup --deployment-metrics off)"
    return "deployment metrics: off"


def deployment_setup_state(chosen: bool, answered: bool) -> str:
    """The deployment-metrics line of `zomg setup --show`: the choice, and the effective mode when it differs.

    ``answered``: whether `zomg setup` has stored its answers (every save stores this one).
    """
    if not chosen:
        return "off (as chosen in zomg setup)" if answered else "off (never chosen in zomg setup)"
    from zomg.telemetry.deployment import decide

    mode, reason = decide()
    return "on" if mode == "on" else f"on as chosen; effective: {mode} ({reason})"


def deployment_after_telemetry_off_line() -> str:
    """What `zomg telemetry off` adds: deployment metrics have their own switch, in `zomg setup`."""
    from zomg import setup_config
    from zomg.errors import ZomgError

    change = "(change with: zomg setup --deployment-metrics on|off)"
    if not os.path.exists(setup_config.path()):
        return ("telemetry: deployment metrics are separate and stay off: they are sent only after opting in "
                "with: zomg setup --deployment-metrics on")
    try:
        chosen = "on" if setup_config.load().deployment_metrics else "off"
    except ZomgError:
        chosen = "as stored"
    return f"telemetry: deployment metrics are separate and stay {chosen}, as chosen in zomg setup {change}"
