"""Sending every spooled event now: what `zomg telemetry flush` runs (``flush_report``) and ``flush`` for scripts.

Unlike a run's own send, a flush ignores the due rule and the backoff,
sends events however often they were sent before, waits for every answer
(within ``SendTiming.deadline``), and reports per data set (CLI events,
deployment metrics) what happened, for ``zomg.telemetry.messages`` to word.
Loaded only by a flush.
"""
from __future__ import annotations

import time

from zomg.telemetry import deployment, files, policy, schema, sender
from zomg.telemetry.files import Spool, SpoolBounds
from zomg.telemetry.spool_edit import MAX_SENDS, SpoolEditor, event_type, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from zomg.telemetry.sender import SendTiming


def flush(env: Mapping[str, str] | None = None, bounds: SpoolBounds | None = None,
          sending: SendTiming | None = None) -> int:
    """Send every spooled event now, whatever the due rule and backoff say; return how many arrived."""
    return sum(entry["sent"] for entry in flush_report(env, bounds, sending))


def flush_report(env: Mapping[str, str] | None = None, bounds: SpoolBounds | None = None,
                 sending: SendTiming | None = None) -> list[dict]:
    """Send every spooled event of each data set whose own switch is on; one entry per data set.

    Each entry: ``data_set``, ``result`` (``sent``, ``nothing``, ``off`` or
    ``failed``), ``sent``, ``dropped`` and ``kept`` event counts, ``endpoint``
    (credentials masked), ``reason`` and ``status`` (the HTTP status of the
    last answer, or None); ``unremoved`` (events the receiver took that a
    fault such as a full disk kept in the spool), ``spent`` (of the events
    kept, those sent twice before without an answer), ``elsewhere`` ([masked
    endpoint, count] of events recorded for another endpoint, held for it)
    and ``fault`` (True when the failure is this machine's: the spool, the disk).
    Sends nothing when the environment or a lock turns telemetry off. The
    whole call ends within ``sending.deadline`` seconds, however slowly the
    endpoint answers.
    """
    sending = sending or sender.SendTiming()
    deadline = time.monotonic() + sending.deadline
    decision = policy.decide(env)
    url = policy.endpoint(env)
    problem = policy.endpoint_problem(url)
    # Their own rule: a stored `telemetry off` is not theirs to report (reading setup costs nothing here).
    metrics = deployment.decide(env, decision)
    sets = (
        ("cli events", schema.CLI_COMMAND, decision.mode, decision.reason),
        ("deployment metrics", schema.DEPLOYMENT_METRICS) + tuple(metrics),
    )
    report = []
    for name, kind, mode, reason in sets:
        entry = {"data_set": name, "result": "off", "sent": 0, "dropped": 0, "kept": 0,
                 "endpoint": policy.masked(url), "reason": None, "status": None, "unremoved": 0,
                 "spent": 0, "elsewhere": [], "fault": False}
        report.append(entry)
        if mode != "on":
            entry["reason"] = f"off ({reason})" if mode == "off" else "log mode prints events instead of sending them"
            continue
        spool = Spool(url, decision.layout, bounds)  # a data set is on only where the decision read files
        faults = SpoolEditor(spool).faults()
        waiting = _waiting(spool, kind)
        entry["elsewhere"] = [[policy.masked(other), n] for other, n in waiting["elsewhere"].items()]
        if faults:
            entry.update(result="failed", kept=waiting["mine"], reason="; ".join(faults), fault=True)
            continue
        if problem is not None:
            entry.update(result="failed" if waiting["mine"] else "nothing", kept=waiting["mine"],
                         reason=f"the endpoint is not usable: {problem}")
            continue
        installation_id = files.read_user(decision.layout).installation_id if kind == schema.CLI_COMMAND else None
        wait = max(0.0, min(sending.timeout + MAX_WAIT_FOR_ANOTHER_SENDER, deadline - time.monotonic()))
        result = sender.deliver(spool, url, installation_id, force=True, kinds=frozenset((kind,)),
                                wait=wait, timing=sending, deadline=deadline)
        after = _waiting(spool, kind)
        entry.update(sent=result.delivered, dropped=result.dropped, kept=after["mine"],
                     unremoved=result.unremoved, spent=after["spent"])
        if result.busy:
            entry.update(result="failed", reason="another zomg is sending; try again")
        elif result.unremoved:
            entry.update(result="failed", reason=result.fault, fault=True)
        elif result.answer is not None and result.answer.outcome == sender.FAILED:
            entry.update(result="failed", reason=result.answer.reason, status=result.answer.status)
        elif result.fault is not None:
            entry.update(result="failed", reason=result.fault, fault=True)
        elif result.answer is None and entry["kept"]:
            entry.update(result="failed", reason="the events could not be read from the spool")
        else:
            entry["result"] = "sent" if result.delivered or result.dropped else "nothing"
            if result.answer is not None:
                entry["status"] = result.answer.status
    return report


# How long `zomg telemetry flush` waits, beyond a send's own timeout, for another process's send.
MAX_WAIT_FOR_ANOTHER_SENDER = 1.0


def _waiting(spool, kind: str) -> dict:
    """Events of type ``kind``: ``mine`` wait for the spool's endpoint (``spent`` of them sent twice without an
    answer: only flush sends them again); ``elsewhere`` maps each other endpoint to how many wait for it."""
    found = {"mine": 0, "spent": 0, "elsewhere": {}}
    for line in spool.read():
        parsed = parse(line)
        if parsed is None or event_type(line) != kind:
            continue
        if parsed[2] == spool.url:
            found["mine"] += 1
            found["spent"] += parsed[1] >= MAX_SENDS
        else:
            other = parsed[2].decode("ascii", "replace")
            found["elsewhere"][other] = found["elsewhere"].get(other, 0) + 1
    return found
