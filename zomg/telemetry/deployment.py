"""Deployment metrics: whether they are on, when one is due, and queueing it.

Separate from CLI telemetry in every way that matters: sent only after an
explicit opt-in in `zomg setup`, identified by its own random
``deployment_id`` (never the CLI installation id, so the two data sets share
no key), at most once per 24 hours, through the same spool and sender. What
is measured is in ``metrics``; this module stays cheap to import because it
runs on every invocation of an opted-in deployment.
"""
from __future__ import annotations

import os

INTERVAL = 24 * 3600  # at most one event per this many seconds


def now() -> float:
    import time

    return time.time()


def decide(env=None, decision=None) -> tuple[str, str]:
    """The effective deployment-metrics mode (on, off or log) and why.

    ``decision`` is telemetry's own (``policy.decide``), made once per run: the
    environment and a packager's lock turn deployment metrics off exactly as
    they do CLI telemetry, and ZOMG_TELEMETRY=log prints instead of sending;
    otherwise only the opt-in stored by `zomg setup` turns them on. A stored
    `zomg telemetry off` concerns CLI telemetry only.
    """
    from zomg import setup_config
    from zomg.errors import ZomgError
    from zomg.telemetry import policy

    decision = decision if decision is not None else policy.decide(env)
    from_env = decision.source.startswith("env:")
    locked = decision.system is not None and decision.system.locks_off
    if decision.mode == "off" and (from_env or locked):
        return "off", decision.reason
    try:
        answers = setup_config.load()
    except ZomgError as exc:
        return "off", exc.message
    if not answers.deployment_metrics or not answers.deployment_id:
        return "off", "not chosen in zomg setup"
    return ("log" if from_env and decision.mode == "log" else "on"), "chosen in zomg setup"


def last_recorded(state_path: str) -> float:
    """When the last event was recorded; 0 when unknown or damaged (then one is due)."""
    from zomg.telemetry.files import number, read_json

    data, _, _ = read_json(state_path)
    recorded = number(data.get("recorded_at"), 0, 1e11) if isinstance(data, dict) else None
    return recorded or 0.0


def due(now: float, state_path: str | None = None) -> bool:
    """At most one event per INTERVAL; a clock set back more than that counts as due too."""
    if state_path is None:
        from zomg.telemetry.files import Layout

        state_path = Layout().deployment_state
    last = last_recorded(state_path)
    return not (0 <= now - last < INTERVAL)


def measure_if_due(mode: str, deployment_id: str, spool, now: float) -> bytes | None:
    """Measure and queue one event (mode on) or return the log line's payload (mode log).

    The cadence is written before anything else so that two processes starting
    together do not both measure; if measuring fails, the next day tries again.
    """
    import json

    from zomg.fsutil import write_atomic

    state_path = spool.files.deployment_state
    os.makedirs(spool.dir, mode=0o700, exist_ok=True)
    with spool.lock():
        if not due(now, state_path):
            return None
        if os.path.isdir(state_path):
            from zomg.telemetry.files import clear_path

            clear_path(state_path)
        # Not fsynced (the spool lock is held): a lost cadence costs one early measurement.
        write_atomic(state_path, json.dumps({"recorded_at": now}).encode(), mode=0o600, sync=False)
    from zomg.telemetry import metrics, schema

    built = metrics.build(deployment_id, now)
    if mode == "log":
        return schema.encode_batch([built])
    spool.append_event(built, now)
    return None


def forget(spool_dir: str | None = None) -> int:
    """After an opt-out: delete unsent deployment events and the cadence; return how many events went."""
    from zomg.telemetry import schema
    from zomg.telemetry.spool import Spool

    spool = Spool(spool_dir)
    dropped = spool.drop_events(schema.DEPLOYMENT_METRICS) if os.path.isdir(spool.dir) else 0
    try:
        os.unlink(spool.files.deployment_state)
    except OSError:
        pass
    return dropped
