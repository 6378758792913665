"""zomg's CLI telemetry (see docs/telemetry.md): the two calls ``zomg.cli`` makes.

``start`` runs right after parsing: it decides the mode, shows the first-run
notice when due, and starts a send of the spool in a daemon thread when one
is due. ``Session.finish`` runs at the end: it records this invocation's
event (spooled, or printed in log mode) and waits a bounded grace for the
send. Neither raises nor prints anything but the notice and the log line.

This module stays cheap to import: everything else is imported only on the
path that needs it, and an environment that turns telemetry off imports
nothing more than ``policy``.
"""
from __future__ import annotations

import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from zomg.telemetry.files import Layout, Spool, SpoolBounds
    from zomg.telemetry.sender import SendTiming

LOG_PREFIX = "zomg-telemetry: "
# The event types, as zomg.telemetry.schema names them (not imported here: start-up cost).
CLI_COMMAND = "cli.command"
DEPLOYMENT_METRICS = "deployment.metrics"

# The version of what is collected, as the first-run notice (``notice.TEXT``)
# describes it. Raise it whenever that changes (a field added to an event
# type, a new event type): every user then sees the notice again, and that run
# again sends nothing. It lives here rather than in ``notice`` because every
# run compares it with the stored version, and only a run that shows the
# notice needs that module; ``notice`` and ``status_text`` are handed it, so
# no module of this package imports the package itself.
NOTICE_VERSION = 1


def notice_due(stored_version: int) -> bool:
    """Whether the first-run notice must be shown (again) before anything is recorded."""
    return stored_version != NOTICE_VERSION


# Hard ceiling on how long a command may wait for a send at exit, whatever a caller injects.
MAX_GRACE = 0.5


class SessionTiming:
    """The session's own clock (stamps events, runs the due rules) and its grace at exit.

    Tests inject their own clock instead of waiting.
    """

    __slots__ = ("grace", "clock")

    def __init__(self, grace: float = MAX_GRACE, clock=time.time) -> None:
        self.grace = min(grace, MAX_GRACE)  # longest wait at exit for an in-flight send
        self.clock = clock  # wall-clock seconds, like time.time


class Session:
    """One invocation that records a CLI event (mode on or log), deployment metrics, or both.

    ``bounds`` and ``sending`` are handed on to the spool and the sender (None: their defaults,
    so building a session never loads the sender).
    """

    def __init__(self, mode: str | None, installation_id: str | None, url: str,
                 env: Mapping[str, str] | None = None, *, timing: SessionTiming | None = None,
                 bounds: SpoolBounds | None = None, sending: SendTiming | None = None,
                 files: Layout | None = None) -> None:
        self.mode = mode  # None: no CLI event, only deployment metrics
        self.installation_id = installation_id
        self.url = url
        self.kinds: set[str] = set()  # the event types this run may send (each data set's own switch)
        self.timing = timing or SessionTiming()
        self.bounds = bounds
        self.sending = sending
        self.env = env
        self.files = files  # the run's file layout (None: the spool makes its own)
        self.thread = None  # the send this invocation started, if any
        self.metrics_thread = None  # measuring deployment metrics, when due
        self.metrics_log: list[bytes] = []  # in log mode: the payload to print
        self._spool_cache: Spool | None = None

    def _spool(self) -> Spool:
        # One per invocation: its paths are resolved once, not at each use.
        if self._spool_cache is None:
            from zomg.telemetry.files import Spool

            self._spool_cache = Spool(self.url, bounds=self.bounds, files=self.files)
        return self._spool_cache

    def start_send_if_due(self) -> None:
        if not self.kinds:
            return
        spool = self._spool()
        if spool.due(self.timing.clock()):
            from zomg.telemetry import sender

            self.thread = sender.start(spool, self.url, self.installation_id, frozenset(self.kinds), self.sending)

    def start_deployment_metrics(self, mode: str, deployment_id: str) -> None:
        """Measure in a daemon thread: walking the boxes must never delay the command."""
        import threading

        from zomg.telemetry import deployment

        def measure() -> None:
            try:
                payload = deployment.measure_if_due(mode, deployment_id, self._spool(), self.timing.clock())
            except Exception:  # silent, like every other telemetry failure
                return
            if payload is not None:
                self.metrics_log.append(payload)

        self.metrics_thread = threading.Thread(target=measure, name="zomg-deployment-metrics", daemon=True)
        self.metrics_thread.start()

    def finish(self, invocation: dict) -> None:
        if self.mode is not None:
            try:
                self._record(invocation)
            except Exception:  # telemetry never changes what the user sees
                pass
        # One grace for everything still running, however many threads there are.
        deadline = time.monotonic() + self.timing.grace
        for thread in (self.metrics_thread, self.thread):
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        for payload in self.metrics_log:
            self._print_log_line(payload)

    @staticmethod
    def _print_log_line(payload: bytes) -> None:
        try:
            sys.stderr.write(LOG_PREFIX + payload.decode("ascii") + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass

    def _record(self, invocation: dict) -> None:
        from zomg.telemetry import event

        if self.installation_id is None:  # log mode, or an id deleted since: rare, so its module loads only then
            from zomg.telemetry import settings

            self.installation_id = settings.ensure_installation_id()
        installation_id = self.installation_id
        now = self.timing.clock()
        built = event.build(invocation, installation_id, now, self.env)
        if self.mode == "log":
            from zomg.telemetry import schema

            schema.validate_event(built)
            self._print_log_line(schema.encode_batch([built]))
            return
        spool = self._spool()
        if spool.append_event(built, now):
            from zomg.telemetry import spool_edit

            spool_edit.trim(spool, now)


def start(telemetry_command: bool = False, *, env: Mapping[str, str] | None = None,
          timing: SessionTiming | None = None, bounds: SpoolBounds | None = None,
          sending: SendTiming | None = None) -> Session | None:
    """Decide this invocation's telemetry; a Session to ``finish``, or None when nothing is recorded.

    ``timing``, ``bounds`` and ``sending`` replace the defaults (tests inject their own clock and numbers).
    """
    try:
        return _start(telemetry_command, env, {"timing": timing, "bounds": bounds, "sending": sending})
    except Exception:
        return None


def _start(telemetry_command: bool, env: Mapping[str, str] | None, knobs: dict) -> Session | None:
    if telemetry_command:
        return None
    from zomg.telemetry import policy

    decision = policy.decide(env)
    session, notice_shown = _cli_session(decision, env, knobs)
    if notice_shown:
        return None  # the run that shows the notice records and sends nothing at all
    try:
        session = _add_deployment_metrics(session, decision, env, knobs)
    except Exception:  # a damaged setup file must not silence CLI telemetry too
        pass
    if session is not None:
        session.start_send_if_due()
    return session


def _cli_session(decision, env: Mapping[str, str] | None, knobs: dict) -> tuple[Session | None, bool]:
    """The CLI-event part of this run's session, and whether the notice was shown instead."""
    if decision.mode == "off":
        return None, False
    from zomg.telemetry import files

    url = _endpoint_for(decision.mode, env)
    if url is None:
        return None, False  # nowhere to send: record nothing, say nothing
    if not files.writable(decision.files):
        return None, False  # read-only home or sandbox: silently off for this run
    user = decision.user if decision.user is not None else files.read_user(decision.files)
    if decision.mode == "on" and notice_due(user.notice_version):
        from zomg.telemetry import notice

        notice.show(env_decided=decision.source.startswith("env:"), version=NOTICE_VERSION)
        return None, True
    session = Session(decision.mode, user.installation_id, url, env, files=decision.files, **knobs)
    if decision.mode == "on" and user.installation_id is not None:
        session.kinds.add(CLI_COMMAND)
    return session, False


def _add_deployment_metrics(session: Session | None, decision, env: Mapping[str, str] | None,
                            knobs: dict) -> Session | None:
    """Deployment metrics, opted in through `zomg setup`, ride on the same spool and sender."""
    if not _setup_may_opt_in(decision):
        return session  # not opted in (the common case costs one stat)
    from zomg import setup_config
    from zomg.telemetry import deployment

    mode, _ = deployment.decide(env, decision)
    url = None if mode == "off" else _endpoint_for(mode, env)
    if url is None:
        return session
    if session is None:
        session = Session(None, None, url, env, files=decision.files, **knobs)
    if deployment.due(session.timing.clock()):
        session.start_deployment_metrics(mode, setup_config.load().deployment_id)
    if mode == "on" and session.url == url:
        session.kinds.add(DEPLOYMENT_METRICS)
    return session


def _setup_may_opt_in(decision) -> bool:
    """Whether deployment metrics may be on at all: DO_NOT_TRACK stops them, and only `zomg setup` starts them."""
    import os

    from zomg import paths

    return decision.source != "env:DO_NOT_TRACK" and os.path.exists(paths.setup_file())


def _endpoint_for(mode: str, env: Mapping[str, str] | None) -> str | None:
    """The endpoint in effect; None when mode on has no usable one (log mode sends nothing, so any will do)."""
    from zomg.telemetry import policy

    url = policy.endpoint(env)
    return None if mode == "on" and policy.endpoint_problem(url) is not None else url


def flush(env: Mapping[str, str] | None = None, bounds: SpoolBounds | None = None,
          sending: SendTiming | None = None) -> int:
    """Send every spooled event now, whatever the due rule and backoff say; return how many arrived.

    What `zomg telemetry flush` does, for scripts and end-to-end checks
    (``python -c "import zomg.telemetry as t; print(t.flush())"``).
    """
    return sum(entry["sent"] for entry in flush_report(env, bounds, sending))


def flush_report(env: Mapping[str, str] | None = None, bounds: SpoolBounds | None = None,
                 sending: SendTiming | None = None) -> list[dict]:
    """Send every spooled event of each data set whose own switch is on; one entry per data set.

    Each entry: ``data_set``, ``result`` (``sent``, ``nothing``, ``off`` or
    ``failed``), ``sent``, ``dropped`` and ``kept`` event counts, ``endpoint``
    (credentials masked), ``reason`` and ``status`` (the HTTP status of the
    last answer, or None); ``unremoved`` (events the receiver took that a
    fault such as a full disk kept in the spool), ``spent`` (events sent
    twice without an answer, not sent again), ``elsewhere`` ([masked
    endpoint, count] of events recorded for another endpoint, held for it)
    and ``fault`` (True when the failure is this machine's: the spool, the disk).
    Sends nothing when the environment or a lock turns telemetry off. The
    whole call ends within ``sending.deadline`` seconds, however slowly the
    endpoint answers.
    """
    import time as _time

    from zomg.telemetry import deployment, files, policy, sender, spool_edit
    from zomg.telemetry.files import Spool

    sending = sending or sender.SendTiming()
    deadline = _time.monotonic() + sending.deadline
    decision = policy.decide(env)
    url = policy.endpoint(env)
    problem = policy.endpoint_problem(url)
    # Their own rule: a stored `telemetry off` is not theirs to report (reading setup costs nothing here).
    metrics = deployment.decide(env, decision)
    sets = (
        ("cli events", CLI_COMMAND, decision.mode, decision.reason),
        ("deployment metrics", DEPLOYMENT_METRICS) + tuple(metrics),
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
        spool = Spool(url, bounds=bounds)
        faults = spool_edit.faults(spool)
        waiting = _waiting(spool, kind)
        entry["elsewhere"] = [[policy.masked(other), n] for other, n in waiting["elsewhere"].items()]
        if faults:
            entry.update(result="failed", kept=waiting["mine"], reason="; ".join(faults), fault=True)
            continue
        if problem is not None:
            entry.update(result="failed" if waiting["mine"] else "nothing", kept=waiting["mine"],
                         reason=f"the endpoint is not usable: {problem}")
            continue
        installation_id = files.read_user().installation_id if kind == CLI_COMMAND else None
        wait = max(0.0, min(sending.timeout + MAX_WAIT_FOR_ANOTHER_SENDER, deadline - _time.monotonic()))
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
        elif result.answer is None and entry["kept"] > entry["spent"]:
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
    answer, never sent again); ``elsewhere`` maps each other endpoint to how many wait for it."""
    from zomg.telemetry.spool_edit import MAX_SENDS, event_type, parse

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


__all__ = ["LOG_PREFIX", "MAX_GRACE", "NOTICE_VERSION", "Session", "SessionTiming", "flush",
           "flush_report", "notice_due", "start"]
