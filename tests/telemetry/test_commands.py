"""`zomg telemetry status|on|off|log|explain`."""
from __future__ import annotations

import json
import os
import stat

import pytest

from tests.support.cli import notice_seen, spooled, state_dir, user_config, write_system_config
from zomg.telemetry import schema

pytestmark = pytest.mark.telemetry_on


def status(zomg) -> dict:
    r = zomg("telemetry", "status", "--json")
    assert r.code == 0 and r.err == ""
    return json.loads(r.out)


def test_status_in_words(zomg):
    r = zomg("telemetry", "status")
    rows = dict(line.split(":", 1) for line in r.out.splitlines())
    assert rows["mode"].strip() == "on"
    assert "[default]" in rows["why"]
    assert "https://" not in r.err and r.code == 0
    assert rows["installation id"].strip() == "none yet"
    assert rows["notice shown"].strip() == "no"


def test_off_stores_off_and_deletes_the_id_and_unsent_events(zomg):
    notice_seen()
    for _ in range(3):
        zomg("box", "list")
    assert len(spooled()) == 3
    before = status(zomg)
    assert before["installation_id"] and before["unsent_events"] == 3
    r = zomg("telemetry", "off")
    assert r.code == 0 and r.out == ""
    assert "deleted the installation id and 3 unsent events" in r.err
    after = status(zomg)
    assert (after["mode"], after["source"], after["installation_id"], after["unsent_events"]) == (
        "off", "config", None, 0)
    assert "installation_id" not in user_config()
    assert not os.path.exists(state_dir())
    zomg("box", "list")
    assert spooled() == []


def test_on_after_off_makes_a_new_id_and_never_sends_the_old_one(zomg):
    notice_seen()
    zomg("box", "list")
    old = status(zomg)["installation_id"]
    zomg("telemetry", "off")
    r = zomg("telemetry", "on")
    assert "stored on" in r.err
    zomg("box", "list")
    [event] = spooled()
    assert event["installation_id"] != old
    assert status(zomg)["installation_id"] == event["installation_id"]


def test_log_stores_log_and_prints_instead_of_sending(zomg):
    notice_seen()
    assert "stored log" in zomg("telemetry", "log").err
    r = zomg("box", "list")
    assert r.err.count("zomg-telemetry: ") == 1
    assert spooled() == []
    assert status(zomg)["mode"] == "log"


def test_the_config_file_is_private(zomg):
    zomg("telemetry", "on")
    notice_seen()
    zomg("telemetry", "log")
    path = status(zomg)["config_path"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize(
    "setting,env,effective",
    [
        ("on", {"DO_NOT_TRACK": "1"}, "off"),
        ("on", {"ZOMG_TELEMETRY": "off"}, "off"),
        ("log", {"ZOMG_TELEMETRY": "on"}, "on"),
        ("off", {"ZOMG_TELEMETRY": "log"}, "log"),
    ],
)
def test_a_setting_overridden_by_the_environment_is_stored_and_says_so(zomg, monkeypatch, setting, env, effective):
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    r = zomg("telemetry", setting)
    assert r.code == 0
    assert f"stored {setting}" in r.err
    assert "no effect for now" in r.err and f"telemetry is {effective}" in r.err
    assert user_config()["mode"] == setting


def test_a_system_lock_makes_on_ineffective_and_says_so(zomg):
    path = write_system_config({"mode": "off", "locked": True})
    r = zomg("telemetry", "on")
    assert "no effect for now" in r.err and path in r.err
    assert status(zomg)["mode"] == "off"


def test_storing_in_an_unwritable_place_is_one_clear_error(zomg, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker))
    r = zomg("telemetry", "off")
    assert r.code == 1 and r.err.startswith("zomg: error: cannot store the telemetry setting")
    assert r.err.count("\n") == 1


def test_explain_lists_every_field_an_exact_example_and_the_chain(zomg, monkeypatch):
    monkeypatch.setenv("ZOMG_TELEMETRY", "log")
    r = zomg("telemetry", "explain")
    assert r.code == 0
    for name in schema.field_names(schema.CLI_COMMAND):
        assert f"  {name} " in r.out
    for value in schema.OS_VALUES + schema.ARCH_VALUES + schema.DURATION_BUCKETS + schema.RESULTS:
        assert value in r.out
    [example] = [line for line in r.out.splitlines() if line.startswith('{"events":')]
    events = schema.validate_batch(json.loads(example))
    assert example.encode() == schema.encode_batch(events)
    assert "Never collected" in r.out and "first match wins" in r.out
    assert "=> log [env:ZOMG_TELEMETRY]" in r.out
    assert spooled() == [] and user_config() == {}


def test_telemetry_commands_never_record(zomg):
    notice_seen()
    for argv in (("telemetry", "status"), ("telemetry", "explain"), ("telemetry", "on"), ("telemetry", "log"),
                 ("telemetry", "bogus"), ("telemetry",)):
        zomg(*argv)
    assert spooled() == []
    assert "zomg-telemetry: " not in zomg("telemetry", "status").err


def test_telemetry_alone_prints_its_help_and_records_nothing(zomg):
    notice_seen()
    r = zomg("telemetry")
    assert (r.code, r.err) == (0, "") and r.out.startswith("usage: zomg telemetry COMMAND")
    assert spooled() == []


def test_off_on_a_machine_that_never_ran_setup_does_not_claim_a_setup_choice(zomg):
    r = zomg("telemetry", "off")
    assert r.code == 0
    assert "as chosen in zomg setup" not in r.err
    assert "deployment metrics are separate and stay off: they are sent only after opting in" in r.err
    zomg("setup", "--no-input")
    assert "stay off, as chosen in zomg setup" in zomg("telemetry", "off").err


@pytest.mark.parametrize("ran_setup", [False, True])
def test_flush_after_off_does_not_blame_the_telemetry_file_for_deployment_metrics(zomg, ran_setup):
    if ran_setup:
        zomg("setup", "--no-input")
    zomg("telemetry", "off")
    r = zomg("telemetry", "flush")
    lines = dict(line.split(": ", 1) for line in r.out.splitlines())
    assert "telemetry.json" in lines["cli events"]
    assert lines["deployment metrics"] == "not sent: off (not chosen in zomg setup)"
