"""The receiver's settings: the application built from the environment says once where events go."""
from __future__ import annotations

import io

import pytest

import zomg.receiver
from tests.receiver.test_local_sink import read_lines
from tests.support.events import cli_event
from tests.support.servers import TOKEN, logged_text
from tests.support.wsgi import call_app
from zomg.receiver.settings import SettingsError, app_from_env
from zomg.telemetry import schema


def test_app_from_env_announces_once_where_events_go(tmp_path, monkeypatch):
    announce = io.StringIO()
    out = tmp_path / "events.jsonl"
    app = app_from_env({"ZOMG_RECEIVER_OUTPUT": str(out)}, announce=announce)
    call_app(app, schema.encode_batch([cli_event()]))
    call_app(app, schema.encode_batch([cli_event()]))
    assert logged_text(announce.getvalue()) + "\n" == (
        f"zomg-receiver: POSTHOG_PROJECT_API_KEY is not set: not forwarding; appending accepted events to {out}\n"
    )
    assert len(read_lines(out)) == 2


def test_the_output_option_wins_over_the_environment(tmp_path):
    chosen, other = tmp_path / "chosen.jsonl", tmp_path / "other.jsonl"
    app = app_from_env({"ZOMG_RECEIVER_OUTPUT": str(other)}, output=str(chosen), announce=io.StringIO())
    call_app(app, schema.encode_batch([cli_event()]))
    assert chosen.exists() and not other.exists()


def test_with_a_token_it_announces_forwarding_and_its_spool(fake_posthog, tmp_path):
    announce = io.StringIO()
    spool = tmp_path / "spool"
    app = app_from_env({"POSTHOG_PROJECT_API_KEY": TOKEN, "POSTHOG_HOST": fake_posthog.url,
                        "ZOMG_RECEIVER_SPOOL_DIR": str(spool)}, announce=announce)
    assert logged_text(announce.getvalue()) == (
        f"zomg-receiver: forwarding accepted events to PostHog at {fake_posthog.url}/batch/, through the spool in "
        f"{spool}")
    assert (spool / "owners").is_dir()
    event = cli_event()
    assert call_app(app, schema.encode_batch([event])).status == 202
    assert app.sink.flush(60)
    assert fake_posthog.accepted_uuids() == [event["event_id"]]
    app.sink.close(5)


def test_the_spool_defaults_to_the_state_directory(fake_posthog, tmp_path):
    state = tmp_path / "state"
    environ = {"POSTHOG_PROJECT_API_KEY": TOKEN, "POSTHOG_HOST": fake_posthog.url, "XDG_STATE_HOME": str(state)}
    app = app_from_env(environ, announce=io.StringIO())
    assert app.sink.spool.directory == str(state / "zomg-receiver")
    app.sink.close(5)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("ZOMG_RECEIVER_SPOOL_SYNC", "sometimes", "ZOMG_RECEIVER_SPOOL_SYNC must be one of full, normal, not 'sometimes'"),
    ("ZOMG_RECEIVER_SPOOL_BYTES", "1000", "ZOMG_RECEIVER_SPOOL_BYTES must be a whole number of at least 262144"),
    ("ZOMG_RECEIVER_SPOOL_DIR", "{file}", "spool: ZOMG_RECEIVER_SPOOL_DIR: {file} cannot be used"),
])
def test_a_bad_spool_setting_is_a_settings_error(tmp_path, name, value, message):
    plain = tmp_path / "a-file"
    plain.write_text("")
    environ = {"POSTHOG_PROJECT_API_KEY": TOKEN, name: value.replace("{file}", str(plain))}
    with pytest.raises(SettingsError, match=message.replace("{file}", str(plain)).replace("(", r"\(")):
        app_from_env(environ, announce=io.StringIO())


def test_a_spool_file_that_is_not_a_database_stops_the_receiver_at_start(tmp_path):
    (tmp_path / "spool.sqlite3").write_bytes(b"planted: not a database" * 100)
    environ = {"POSTHOG_PROJECT_API_KEY": TOKEN, "ZOMG_RECEIVER_SPOOL_DIR": str(tmp_path)}
    with pytest.raises(SettingsError, match=r"spool: .*spool.sqlite3 cannot be used \(file is not a database\)"):
        app_from_env(environ, announce=io.StringIO())


def test_a_bad_posthog_host_is_a_settings_error():
    with pytest.raises(SettingsError, match="POSTHOG_HOST must be an http"):
        app_from_env({"POSTHOG_PROJECT_API_KEY": TOKEN, "POSTHOG_HOST": "eu.i.posthog.com"}, announce=io.StringIO())


def test_the_package_app_is_built_from_the_environment_when_first_asked_for(tmp_path, monkeypatch, capsys):
    monkeypatch.delitem(zomg.receiver.__dict__, "app", raising=False)
    out = tmp_path / "events.jsonl"
    monkeypatch.setenv("ZOMG_RECEIVER_OUTPUT", str(out))
    application = zomg.receiver.app
    assert callable(application) and zomg.receiver.app is application
    assert "not forwarding" in capsys.readouterr().err
    assert call_app(application, schema.encode_batch([cli_event()])).status == 202
    assert len(read_lines(out)) == 1
    from zomg.receiver import app as imported

    assert imported is application
