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


def test_with_a_token_it_announces_forwarding(fake_posthog):
    announce = io.StringIO()
    app = app_from_env({"POSTHOG_PROJECT_API_KEY": TOKEN, "POSTHOG_HOST": fake_posthog.url}, announce=announce)
    assert logged_text(announce.getvalue()) == (
        f"zomg-receiver: forwarding accepted events to PostHog at {fake_posthog.url}/batch/")
    event = cli_event()
    assert call_app(app, schema.encode_batch([event])).status == 202
    assert app.sink.flush(60)
    assert fake_posthog.accepted_uuids() == [event["event_id"]]
    app.sink.close(5)


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
