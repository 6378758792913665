"""Deployment metrics, the feature: whether they are on, when one is due, measuring one, forgetting them.

Separate from CLI telemetry in every way that matters: sent only after an
explicit opt-in in `zomg setup`, identified by its own random
``deployment_id`` (never the CLI installation id, so the two data sets share
no key), at most once per 24 hours, through the same spool and sender. What
is measured is in ``metrics``; the opt-in itself is stored with the other
answers to `zomg setup` (``zomg.setup_config``). Here: the effective mode,
the daily cadence, measuring when due, forgetting after an opt-out and the
preview `zomg setup` shows; what `zomg setup` and `zomg telemetry` say about
them is ``zomg.telemetry.messages``'s. This module stays cheap to
import because it runs on every invocation of an opted-in deployment.
"""
from __future__ import annotations

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
    from zomg.fsutil import read_json
    from zomg.telemetry.files import LATEST_TIME, number

    data, _, _ = read_json(state_path)
    recorded = number(data.get("recorded_at"), 0, LATEST_TIME) if isinstance(data, dict) else None
    return recorded or 0.0


def due(now: float, state_path: str) -> bool:
    """At most one event per INTERVAL (``state_path``: the layout's ``deployment_state``); a clock set back more
    than that counts as due too."""
    last = last_recorded(state_path)
    return not (0 <= now - last < INTERVAL)


def measure_if_due(deployment_id: str, spool, now: float) -> dict | None:
    """The event of one measurement when one is due (the session queues or prints it), else None.

    The cadence is written before anything else so that two processes starting
    together do not both measure; if measuring fails, the next day tries again.
    """
    from zomg.fsutil import make_private_dirs
    from zomg.telemetry.spool_edit import SpoolEditor

    state_path = spool.layout.deployment_state
    make_private_dirs(spool.dir)
    with spool.lock():
        if not due(now, state_path):
            return None
        # Not fsynced (the spool lock is held): a lost cadence costs one early measurement.
        SpoolEditor(spool).write_state(state_path, {"recorded_at": now})
    from zomg.telemetry.deployment import metrics

    return metrics.build(deployment_id, now)


def forget(layout) -> int:
    """After an opt-out: delete unsent deployment events and the cadence of ``layout`` (a ``files.Layout``);
    return how many events went."""
    from zomg.fsutil import forget as remove_state
    from zomg.telemetry import policy, schema
    from zomg.telemetry.files import Spool
    from zomg.telemetry.spool_edit import SpoolEditor

    spool = Spool(policy.endpoint(), layout)  # which endpoint does not matter: its events all go
    dropped = SpoolEditor(spool).drop_events(schema.DEPLOYMENT_METRICS)
    remove_state(layout.deployment_state)
    return dropped


def new_id() -> str:
    """A fresh random deployment id (only ever stored with an opt-in)."""
    from zomg.telemetry.files import uuid4

    return uuid4()


def preview(deployment_id: str) -> str:
    """The exact request body a deployment-metrics send would POST right now."""
    from zomg.telemetry import schema
    from zomg.telemetry.deployment import metrics

    return schema.encode_batch([metrics.build(deployment_id, now())]).decode("ascii")


def status(env=None, decision=None) -> dict:
    """Deployment metrics in `zomg telemetry status`: the effective mode and what `zomg setup` stored."""
    from zomg import setup_config
    from zomg.errors import ZomgError

    mode, reason = decide(env, decision)
    try:
        answers = setup_config.load()
    except ZomgError:
        answers = setup_config.Answers()
    return {
        "mode": mode,
        "reason": reason,
        "chosen_in_setup": answers.deployment_metrics,
        "deployment_id": answers.deployment_id,
        "setup_path": setup_config.path(),
    }
