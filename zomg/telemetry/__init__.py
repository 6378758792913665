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
# notice needs that module; ``notice`` and ``messages`` are handed it, so
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
                 layout: Layout) -> None:
        self.mode = mode  # None: no CLI event, only deployment metrics
        self.installation_id = installation_id
        self.url = url
        self.kinds: set[str] = set()  # the event types this run may send (each data set's own switch)
        self.timing = timing or SessionTiming()
        self.bounds = bounds
        self.sending = sending
        self.env = env
        self.layout = layout  # the run's files: the one layout policy.decide made
        self.thread = None  # the send this invocation started, if any
        self.finishing = None  # set when the command has ended: the send then resends nothing
        self.metrics_thread = None  # measuring deployment metrics, when due
        self.metrics_log: list[bytes] = []  # in log mode: the payload to print
        self._spool_cache: Spool | None = None

    def _spool(self) -> Spool:
        # One per invocation: its paths are resolved once, not at each use.
        if self._spool_cache is None:
            from zomg.telemetry.files import Spool

            self._spool_cache = Spool(self.url, self.layout, self.bounds)
        return self._spool_cache

    def start_send_if_due(self) -> None:
        if not self.kinds:
            return
        spool = self._spool()
        if spool.due(self.timing.clock()):
            import threading

            from zomg.telemetry import sender

            self.finishing = threading.Event()
            self.thread = sender.start(spool, self.url, self.installation_id, frozenset(self.kinds), self.sending,
                                       self.finishing)

    def start_deployment_metrics(self, mode: str, deployment_id: str) -> None:
        """Measure in a daemon thread: walking the boxes must never delay the command."""
        import threading

        from zomg.telemetry import deployment

        def measure() -> None:
            try:
                now = self.timing.clock()
                built = deployment.measure_if_due(deployment_id, self._spool(), now)
                if built is None:
                    return
                if mode == "log":
                    from zomg.telemetry import schema

                    self.metrics_log.append(schema.encode_batch([built]))
                else:
                    self._queue(built, now)
            except Exception:  # silent, like every other telemetry failure
                return

        self.metrics_thread = threading.Thread(target=measure, name="zomg-deployment-metrics", daemon=True)
        self.metrics_thread.start()

    def finish(self, invocation: dict) -> None:
        if self.finishing is not None:
            self.finishing.set()
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
        self._queue(built, now)

    def _queue(self, built: dict, now: float) -> None:
        """Append one event to the spool, then hold the spool to its bound if the append says it is over it.

        The trim is ``spool_edit``'s (cold code, loaded only then): ``files`` cannot load it itself without the
        two importing each other, so this is the one place that appends an event.
        """
        spool = self._spool()
        if spool.append_event(built, now):
            from zomg.telemetry.spool_edit import SpoolEditor

            SpoolEditor(spool).trim(now)


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
    from zomg.telemetry import files, policy

    url = policy.endpoint_for(decision.mode, env)
    if url is None:
        return None, False  # nowhere to send: record nothing, say nothing
    if not files.writable(decision.layout):
        return None, False  # read-only home or sandbox: silently off for this run
    user = decision.user  # read by policy.decide whenever the mode is not off
    if decision.mode == "on" and notice_due(user.notice_version):
        from zomg.telemetry import notice

        notice.show(env_decided=decision.source.startswith("env:"), version=NOTICE_VERSION)
        return None, True
    session = Session(decision.mode, user.installation_id, url, env, layout=decision.layout, **knobs)
    if decision.mode == "on" and user.installation_id is not None:
        session.kinds.add(CLI_COMMAND)
    return session, False


def _add_deployment_metrics(session: Session | None, decision, env: Mapping[str, str] | None,
                            knobs: dict) -> Session | None:
    """Deployment metrics, opted in through `zomg setup`, ride on the same spool and sender."""
    if not _setup_may_opt_in(decision):
        return session  # not opted in (the common case costs one stat)
    from zomg import setup_config
    from zomg.telemetry import deployment, policy

    mode, _ = deployment.decide(env, decision)
    url = None if mode == "off" else policy.endpoint_for(mode, env)
    if url is None:
        return session
    if session is None:
        session = Session(None, None, url, env, layout=decision.layout, **knobs)
    if deployment.due(session.timing.clock(), session.layout.deployment_state):
        session.start_deployment_metrics(mode, setup_config.load().deployment_id)
    if mode == "on" and session.url == url:
        session.kinds.add(DEPLOYMENT_METRICS)
    return session


def _setup_may_opt_in(decision) -> bool:
    """Whether deployment metrics may be on at all: DO_NOT_TRACK stops them, and only `zomg setup` starts them."""
    import os

    from zomg import paths

    return decision.source != "env:DO_NOT_TRACK" and os.path.exists(paths.setup_file())


def flush(env: Mapping[str, str] | None = None, bounds: SpoolBounds | None = None,
          sending: SendTiming | None = None) -> int:
    """Send every spooled event now; return how many arrived (``zomg.telemetry.flushing.flush``).

    The package's one call for scripts and end-to-end checks
    (``python -c "import zomg.telemetry as t; print(t.flush())"``); `zomg telemetry flush` runs
    ``flushing.flush_report``.
    """
    from zomg.telemetry import flushing

    return flushing.flush(env, bounds, sending)


__all__ = ["LOG_PREFIX", "MAX_GRACE", "NOTICE_VERSION", "Session", "SessionTiming", "flush", "notice_due", "start"]
