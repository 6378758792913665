"""Deployment metrics, the feature: whether they are on, when one is due, queueing it, and what users are told.

Separate from CLI telemetry in every way that matters: sent only after an
explicit opt-in in `zomg setup`, identified by its own random
``deployment_id`` (never the CLI installation id, so the two data sets share
no key), at most once per 24 hours, through the same spool and sender. What
is measured is in ``metrics``; the opt-in itself is stored with the other
answers to `zomg setup` (``zomg.setup_config``). Here: the effective mode,
the daily cadence, measuring when due, forgetting after an opt-out, the
preview `zomg setup` shows, and the lines `zomg setup` and `zomg telemetry`
print about it. The commands only call these. This module stays cheap to
import because it runs on every invocation of an opted-in deployment.
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
    from zomg.telemetry.files import LATEST_TIME, number, read_json

    data, _, _ = read_json(state_path)
    recorded = number(data.get("recorded_at"), 0, LATEST_TIME) if isinstance(data, dict) else None
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
    from zomg.telemetry import spool_edit
    from zomg.telemetry.files import make_dirs

    state_path = spool.files.deployment_state
    make_dirs(spool.dir)
    with spool.lock():
        if not due(now, state_path):
            return None
        # Not fsynced (the spool lock is held): a lost cadence costs one early measurement.
        spool_edit.write_state(spool, state_path, {"recorded_at": now})
    from zomg.telemetry import schema
    from zomg.telemetry.deployment import metrics

    built = metrics.build(deployment_id, now)
    if mode == "log":
        return schema.encode_batch([built])
    if spool.append_event(built, now):
        spool_edit.trim(spool, now)
    return None


def forget(spool_dir: str | None = None) -> int:
    """After an opt-out: delete unsent deployment events and the cadence; return how many events went."""
    from zomg.telemetry import policy, schema, spool_edit
    from zomg.telemetry.files import Spool
    from zomg.telemetry.files import forget as remove_state

    spool = Spool(policy.endpoint(), spool_dir)  # which endpoint does not matter: its events all go
    dropped = spool_edit.drop_events(spool, schema.DEPLOYMENT_METRICS)
    remove_state(spool.files.deployment_state)
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


def chosen_line(chosen: bool) -> str:
    """What `zomg setup` says after saving: the choice, and whether it takes effect."""
    mode, reason = decide()
    if chosen and mode == "off":
        return f"deployment metrics: on as chosen, but not sent while {reason}"
    if chosen:
        return "deployment metrics: on (at most once a day; turn off with: zomg setup --deployment-metrics off)"
    return "deployment metrics: off"


def setup_state(chosen: bool, answered: bool) -> str:
    """The deployment-metrics line of `zomg setup --show`: the choice, and the effective mode when it differs.

    ``answered``: whether `zomg setup` has stored its answers (every save stores this one).
    """
    if not chosen:
        return "off (as chosen in zomg setup)" if answered else "off (never chosen in zomg setup)"
    mode, reason = decide()
    return "on" if mode == "on" else f"on as chosen; effective: {mode} ({reason})"


def after_telemetry_off_line() -> str:
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
