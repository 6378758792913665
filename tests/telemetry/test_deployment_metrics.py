"""Deployment metrics through the real session, spool and sender, against a loopback endpoint."""
from __future__ import annotations

import json
import os

import pytest

from tests.support.cli import notice_seen, spooled, write_system_config
from zomg import setup_config
from zomg.telemetry import schema

pytestmark = pytest.mark.telemetry_on

DAY = 24 * 3600


@pytest.fixture
def opted_in(cli, capture, monkeypatch):
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    notice_seen()
    assert cli("setup", "--no-input", "--deployment-metrics", "on").code == 0
    return setup_config.load().deployment_id


def _of(events, name):
    return [e for e in events if e["event"] == name]


def test_an_opted_in_deployment_sends_its_metrics_under_its_own_id(cli, capture, opted_in):
    cli("box", "list")  # measures and spools the deployment event
    cli("box", "list")  # batch_size 1 in these tests: this run sends
    sent = _of(capture.events(), schema.DEPLOYMENT_METRICS)
    assert len(sent) == 1
    (event,) = sent
    assert event["deployment_id"] == opted_in
    assert set(event) == set(schema.field_names(schema.DEPLOYMENT_METRICS))
    installation_ids = {e["installation_id"] for e in _of(capture.events(), schema.CLI_COMMAND)}
    assert opted_in not in installation_ids, "the two data sets share no id"


def test_at_most_one_event_per_24_hours(cli, capture, opted_in, clock):
    cli("box", "list")
    clock.advance(DAY - 60)
    cli("box", "list")
    cli("box", "list")
    assert len(_of(capture.events() + spooled(), schema.DEPLOYMENT_METRICS)) == 1
    clock.advance(120)
    cli("box", "list")
    cli("box", "list")
    assert len(_of(capture.events() + spooled(), schema.DEPLOYMENT_METRICS)) == 2


def test_never_without_the_opt_in(cli, capture, monkeypatch, clock):
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    notice_seen()
    for _ in range(3):
        cli("box", "list")
        clock.advance(DAY + 1)
    assert capture.events() and not _of(capture.events() + spooled(), schema.DEPLOYMENT_METRICS)


def test_cli_telemetry_off_leaves_deployment_metrics_as_chosen(cli, capture, opted_in, monkeypatch, clock):
    capture.statuses = [503] * 3  # keep everything spooled
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    cli("box", "list")
    r = cli("telemetry", "off")
    assert "deployment metrics are separate and stay on" in r.err
    assert len(_of(spooled(), schema.DEPLOYMENT_METRICS)) == 1, "their unsent events are kept"
    assert _of(spooled(), schema.CLI_COMMAND) == []
    capture.statuses = []
    clock.advance(3600)  # past the backoff of the failed attempts
    cli("box", "list")
    cli("box", "list")
    assert _of(capture.events(), schema.DEPLOYMENT_METRICS), "still delivered"
    assert _of(capture.events(), schema.CLI_COMMAND) == [], "no CLI event after telemetry off"


def test_opting_out_deletes_the_unsent_deployment_events_and_keeps_cli_ones(cli, capture, opted_in, monkeypatch):
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", "http://127.0.0.1:9/never")  # nothing gets sent
    cli("box", "list")
    assert _of(spooled(), schema.DEPLOYMENT_METRICS)
    assert cli("setup", "--no-input", "--deployment-metrics", "off").code == 0
    assert _of(spooled(), schema.DEPLOYMENT_METRICS) == []
    assert _of(spooled(), schema.CLI_COMMAND), "CLI telemetry is not this switch's business"
    assert setup_config.load().deployment_id is None


@pytest.mark.parametrize("env", [{"DO_NOT_TRACK": "1"}, {"ZOMG_TELEMETRY": "off"}])
def test_environment_turns_deployment_metrics_off(cli, capture, opted_in, monkeypatch, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cli("box", "list")
    cli("box", "list")
    assert not _of(capture.events() + spooled(), schema.DEPLOYMENT_METRICS)


def test_a_packager_lock_turns_deployment_metrics_off(cli, capture, opted_in):
    write_system_config({"mode": "off", "locked": True})
    cli("box", "list")
    assert not _of(capture.events() + spooled(), schema.DEPLOYMENT_METRICS)


def test_log_mode_prints_the_deployment_payload_instead_of_sending(cli, capture, opted_in, monkeypatch):
    monkeypatch.setenv("ZOMG_TELEMETRY", "log")
    r = cli("box", "list")
    lines = [line for line in r.err.splitlines() if line.startswith("zomg-telemetry: ")]
    bodies = [json.loads(line[len("zomg-telemetry: "):]) for line in lines]
    deployment = [b for b in bodies if b["events"][0]["event"] == schema.DEPLOYMENT_METRICS]
    assert len(deployment) == 1
    schema.validate_batch(deployment[0])
    assert not _of(capture.events() + spooled(), schema.DEPLOYMENT_METRICS)
    assert r.out == ""


def test_status_shows_both_data_sets(cli, opted_in):
    info = json.loads(cli("telemetry", "status", "--json").out)
    assert info["mode"] == "on"
    assert info["deployment_metrics"]["mode"] == "on"
    assert info["deployment_metrics"]["deployment_id"] == opted_in
    assert "deployment metrics:" in cli("telemetry", "status").out


def test_opted_in_but_env_off_creates_no_files(cli, opted_in, monkeypatch):
    from zomg import paths

    monkeypatch.setenv("ZOMG_TELEMETRY", "off")
    state = paths.state_dir()
    before = set(os.listdir(state)) if os.path.isdir(state) else set()
    cli("box", "list")
    after = set(os.listdir(state)) if os.path.isdir(state) else set()
    assert after == before
