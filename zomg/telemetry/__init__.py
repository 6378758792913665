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

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from zomg.telemetry.spool import Spool, Tuning

LOG_PREFIX = "zomg-telemetry: "


class Session:
    """One invocation that will record an event (mode on or log)."""

    def __init__(self, mode: str, installation_id: str | None, url: str, tuning: Tuning,
                 env: Mapping[str, str] | None = None) -> None:
        self.mode = mode
        self.installation_id = installation_id
        self.url = url
        self.tuning = tuning
        self.env = env
        self.thread = None  # the send this invocation started, if any

    def _spool(self) -> Spool:
        from zomg.telemetry.spool import Spool

        return Spool(tuning=self.tuning)

    def start_send_if_due(self) -> None:
        if self.installation_id is None:
            return
        spool = self._spool()
        if spool.due(self.tuning.clock()):
            from zomg.telemetry import sender

            self.thread = sender.start(spool, self.url, self.installation_id)

    def finish(self, invocation: dict) -> None:
        try:
            self._record(invocation)
        except Exception:  # telemetry never changes what the user sees
            pass
        if self.thread is not None:
            self.thread.join(self.tuning.grace)

    def _record(self, invocation: dict) -> None:
        import json

        from zomg.telemetry import config, event

        installation_id = self.installation_id or config.ensure_installation_id()
        self.installation_id = installation_id
        now = self.tuning.clock()
        built = event.build(invocation, installation_id, now, self.env)
        if self.mode == "log":
            from zomg.telemetry import schema

            schema.validate_event(built)
            line = LOG_PREFIX + schema.encode_batch([built]).decode("ascii") + "\n"
            try:
                sys.stderr.write(line)
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            return
        encoded = json.dumps(built, separators=(",", ":"), ensure_ascii=True).encode("ascii")
        self._spool().append(encoded, now)


def start(telemetry_command: bool = False, *, env: Mapping[str, str] | None = None,
          tuning: Tuning | None = None) -> Session | None:
    """Decide this invocation's telemetry; a Session to ``finish``, or None when nothing is recorded."""
    try:
        return _start(telemetry_command, env, tuning)
    except Exception:
        return None


def _start(telemetry_command: bool, env: Mapping[str, str] | None, tuning: Tuning | None) -> Session | None:
    if telemetry_command:
        return None
    from zomg.telemetry import policy

    decision = policy.decide(env)
    if decision.mode == "off":
        return None
    from zomg.telemetry import config, notice
    from zomg.telemetry.spool import Tuning

    url = policy.endpoint(env)
    if decision.mode == "on" and policy.endpoint_problem(url) is not None:
        return None  # nowhere to send: record nothing, say nothing
    if not config.writable():
        return None  # read-only home or sandbox: silently off for this run
    user = decision.user if decision.user is not None else config.read_user()
    if decision.mode == "on" and notice.due(user.notice_version):
        notice.show(env_decided=decision.source.startswith("env:"))
        return None  # the run that shows the notice records and sends nothing
    session = Session(decision.mode, user.installation_id, url, tuning or Tuning(), env)
    if decision.mode == "on":
        session.start_send_if_due()
    return session


def flush(env: Mapping[str, str] | None = None, tuning: Tuning | None = None) -> int:
    """Send every spooled event now, whatever the due rule and backoff say; return how many arrived.

    For packagers' and receivers' end-to-end checks (``python -c "import
    zomg.telemetry as t; print(t.flush())"``); the CLI itself never calls it.
    Sends nothing unless the effective mode is on and the endpoint usable.
    """
    from zomg.telemetry import config, policy, sender
    from zomg.telemetry.spool import Spool

    url = policy.endpoint(env)
    if policy.decide(env).mode != "on" or policy.endpoint_problem(url) is not None:
        return 0
    return sender.deliver(Spool(tuning=tuning), url, config.read_user().installation_id, force=True)


__all__ = ["LOG_PREFIX", "Session", "flush", "start"]
