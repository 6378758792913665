"""The first-run notice: stderr only, once, nothing sent by its run; versioned; silent when unwritable."""
from __future__ import annotations

import os

import pytest

from tests.support.cli import files_under, run, spooled, user_config, write_user_config
from zomg import telemetry

pytestmark = pytest.mark.telemetry_on


def _notice():
    from zomg.telemetry import notice

    return notice


def test_first_run_shows_the_notice_on_stderr_only_and_records_nothing(capture):
    env = {"ZOMG_TELEMETRY_ENDPOINT": capture.url}
    quiet = run("box", "list", env={"ZOMG_TELEMETRY": "off"})
    first = run("box", "list", env=env)
    assert (first.returncode, first.stdout) == (quiet.returncode, quiet.stdout)
    assert first.stderr == _notice().TEXT + quiet.stderr
    for words in ("zomg telemetry off", "ZOMG_TELEMETRY=off", "DO_NOT_TRACK=1", "Nothing was sent by this run"):
        assert words in first.stderr
    assert spooled() == [] and capture.requests == []

    second = run("box", "list", env=env)
    assert (second.returncode, second.stdout, second.stderr) == (quiet.returncode, quiet.stdout, quiet.stderr)
    [event] = spooled()
    assert (event["command"], event["subcommand"]) == ("box", "list")
    assert event["installation_id"] == user_config()["installation_id"]
    third = run("box", "list", env=env)
    assert third.stderr == quiet.stderr  # once, not every time


def test_the_notice_run_sends_nothing_even_when_a_send_is_due_and_the_next_run_sends(cli, capture, monkeypatch):
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    cli("box", "list")  # the notice: nothing recorded
    assert spooled() == []
    cli("box", "list")  # recorded; nothing was due at its start
    cli.drain()
    [first] = spooled()
    assert capture.requests == []
    cli("box", "list")  # due at its start (batch size 1 here): sends
    cli.drain()
    assert first["event_id"] in capture.unique_ids()
    recorded = len(capture.events()) + len(spooled())
    assert recorded == 2

    # What is collected changed: the notice is shown again, and that run sends nothing, though a send is due.
    cli.bounds.batch_size = 100
    cli("box", "show", "nope")  # spooled, not sent
    cli.drain()
    assert spooled()
    cli.bounds.batch_size = 1
    monkeypatch.setattr(telemetry, "NOTICE_VERSION", telemetry.NOTICE_VERSION + 1)
    sent, waiting = len(capture.requests), len(spooled())
    r = cli("box", "list")
    cli.drain()
    assert r.err.startswith(_notice().TEXT)
    assert (len(capture.requests), len(spooled())) == (sent, waiting)
    assert user_config()["notice_version"] == telemetry.NOTICE_VERSION

    r = cli("box", "list")
    cli.drain()
    assert _notice().TEXT not in r.err
    assert len(capture.requests) > sent
    assert len(capture.events()) == len(capture.unique_ids()) == recorded + 1 + 1 - len(spooled())


def test_an_older_stored_notice_version_shows_the_notice_again(capture):
    write_user_config({"notice_version": telemetry.NOTICE_VERSION - 1})
    r = run("box", "list", env={"ZOMG_TELEMETRY_ENDPOINT": capture.url})
    assert _notice().TEXT in r.stderr
    assert spooled() == []


@pytest.mark.parametrize("mode_env", [{"ZOMG_TELEMETRY": "log"}, {"ZOMG_TELEMETRY": "off"}, {"DO_NOT_TRACK": "1"}])
def test_no_notice_unless_mode_is_on(mode_env):
    r = run("box", "list", env=mode_env)
    assert _notice().TEXT not in r.stderr


def test_telemetry_commands_never_show_the_notice_or_record():
    for argv in (("telemetry", "status"), ("telemetry", "explain"), ("telemetry", "status", "--json")):
        r = run(*argv)
        assert r.returncode == 0 and _notice().TEXT not in r.stderr
    assert spooled() == [] and "notice_version" not in user_config()


def test_a_config_dir_that_is_not_writable_means_off_silently(tmp_path, isolated_home):
    blocker = tmp_path / "config-is-a-file"
    blocker.write_text("")
    env = {"XDG_CONFIG_HOME": str(blocker)}
    quiet = run("box", "list", env={"ZOMG_TELEMETRY": "off"})
    before = files_under(str(tmp_path))
    for _ in range(2):
        r = run("box", "list", env=env)
        assert (r.returncode, r.stdout, r.stderr) == (quiet.returncode, quiet.stdout, quiet.stderr)
    assert files_under(str(tmp_path)) == before


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes to read-only dirs")
def test_a_read_only_config_dir_means_off_silently(tmp_path):
    from zomg import paths

    os.makedirs(paths.config_dir())
    os.chmod(paths.config_dir(), 0o500)
    try:
        quiet = run("box", "list", env={"ZOMG_TELEMETRY": "off"})
        r = run("box", "list")
        assert (r.returncode, r.stdout, r.stderr) == (quiet.returncode, quiet.stdout, quiet.stderr)
        assert spooled() == []
    finally:
        os.chmod(paths.config_dir(), 0o700)


def test_the_notice_describes_every_field_the_schema_sends():
    """Adding a field to an event the CLI sends must come with a new notice version."""
    from zomg.telemetry import event, schema

    assert event.EVENT in _notice().FIELDS_SHOWN
    for name, fields in _notice().FIELDS_SHOWN.items():
        assert fields == schema.field_names(name), f"update the notice and raise NOTICE_VERSION for {name}"
