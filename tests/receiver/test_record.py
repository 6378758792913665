"""Without a PostHog token: accepted events are appended locally, one JSON line each."""
from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys

import pytest

import zomg.receiver
from tests.receiver.support import TOKEN, call_app, new_event
from zomg.errors import ConfigError
from zomg.receiver import make_app
from zomg.receiver.config import app_from_env
from zomg.receiver.record import LineRecorder
from zomg.telemetry import schema


def read_lines(path) -> list:
    with open(path, "rb") as f:
        return [json.loads(line) for line in f.read().splitlines()]


def test_accepted_events_are_appended_to_the_output_file(tmp_path):
    out = tmp_path / "events.jsonl"
    app = make_app(LineRecorder(str(out)))
    first, second, third = new_event(), new_event(result="error", error_class="config"), new_event(flags=[])
    assert call_app(app, schema.encode_batch([first, second])).status == 202
    assert call_app(app, schema.encode_batch([third])).status == 202
    assert read_lines(out) == [first, second, third]
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600


def test_lines_hold_the_schema_fields_in_the_schema_order(tmp_path):
    out = tmp_path / "events.jsonl"
    shuffled = dict(reversed(list(new_event().items())))
    call_app(make_app(LineRecorder(str(out))), json.dumps({"events": [shuffled]}).encode())
    line = out.read_text().splitlines()[0]
    assert list(json.loads(line)) == list(schema.field_names(schema.CLI_COMMAND))


def test_a_rejected_batch_records_nothing(tmp_path):
    out = tmp_path / "events.jsonl"
    app = make_app(LineRecorder(str(out)))
    assert call_app(app, schema.encode_batch([new_event(), new_event(arch="sparc")])).status == 400
    assert not out.exists()


def test_without_a_file_the_lines_go_to_stdout(capfd):
    event = new_event()
    assert call_app(make_app(LineRecorder()), schema.encode_batch([event])).status == 202
    assert [json.loads(line) for line in capfd.readouterr().out.splitlines()] == [event]


def test_an_output_that_cannot_be_written_is_503_so_the_client_retries(tmp_path):
    app = make_app(LineRecorder(str(tmp_path / "missing-dir" / "events.jsonl")))
    response = call_app(app, schema.encode_batch([new_event()]))
    assert response.status == 503
    assert response.json()["error"].startswith("output: cannot record events")


def test_appends_from_several_processes_never_mix_within_a_line(tmp_path):
    out = tmp_path / "events.jsonl"
    event = json.dumps(new_event(flags=["--" + "x" * 32]))
    writer = (
        "import json, sys, uuid\n"
        "from zomg.receiver.record import LineRecorder\n"
        "record = LineRecorder(sys.argv[1])\n"
        "event = json.loads(sys.argv[2])\n"
        "for _ in range(100):\n"
        "    record([dict(event, event_id=str(uuid.uuid4())) for _ in range(10)])\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(out), event], cwd=str(tmp_path)) for _ in range(3)]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    lines = read_lines(out)
    assert len(lines) == 3 * 100 * 10
    assert len({line["event_id"] for line in lines}) == len(lines)


def test_app_from_env_announces_once_where_events_go(tmp_path, monkeypatch):
    announce = io.StringIO()
    out = tmp_path / "events.jsonl"
    app = app_from_env({"ZOMG_RECEIVER_OUTPUT": str(out)}, announce=announce)
    call_app(app, schema.encode_batch([new_event()]))
    call_app(app, schema.encode_batch([new_event()]))
    assert announce.getvalue() == (
        f"zomg-receiver: POSTHOG_PROJECT_API_KEY is not set: not forwarding; appending accepted events to {out}\n"
    )
    assert len(read_lines(out)) == 2


def test_the_output_option_wins_over_the_environment(tmp_path):
    chosen, other = tmp_path / "chosen.jsonl", tmp_path / "other.jsonl"
    app = app_from_env({"ZOMG_RECEIVER_OUTPUT": str(other)}, output=str(chosen), announce=io.StringIO())
    call_app(app, schema.encode_batch([new_event()]))
    assert chosen.exists() and not other.exists()


def test_with_a_token_it_announces_forwarding(fake_posthog):
    announce = io.StringIO()
    app = app_from_env({"POSTHOG_PROJECT_API_KEY": TOKEN, "POSTHOG_HOST": fake_posthog.url}, announce=announce)
    assert announce.getvalue() == f"zomg-receiver: forwarding accepted events to PostHog at {fake_posthog.url}/batch/\n"
    event = new_event()
    assert call_app(app, schema.encode_batch([event])).status == 202
    assert app.sink.flush(60)
    assert fake_posthog.accepted_uuids() == [event["event_id"]]
    app.sink.close(5)


def test_a_bad_posthog_host_is_a_config_error():
    with pytest.raises(ConfigError, match="POSTHOG_HOST must be an http"):
        app_from_env({"POSTHOG_PROJECT_API_KEY": TOKEN, "POSTHOG_HOST": "eu.i.posthog.com"}, announce=io.StringIO())


def test_the_package_app_is_built_from_the_environment_when_first_asked_for(tmp_path, monkeypatch, capsys):
    monkeypatch.delitem(zomg.receiver.__dict__, "app", raising=False)
    out = tmp_path / "events.jsonl"
    monkeypatch.setenv("ZOMG_RECEIVER_OUTPUT", str(out))
    application = zomg.receiver.app
    assert callable(application) and zomg.receiver.app is application
    assert "not forwarding" in capsys.readouterr().err
    assert call_app(application, schema.encode_batch([new_event()])).status == 202
    assert len(read_lines(out)) == 1
    from zomg.receiver import app as imported

    assert imported is application


def test_a_rotated_or_deleted_output_file_is_replaced_by_a_new_one(tmp_path):
    out = tmp_path / "events.jsonl"
    app = make_app(LineRecorder(str(out)))
    first, second, third = new_event(), new_event(), new_event()
    call_app(app, schema.encode_batch([first]))
    os.rename(out, tmp_path / "events.jsonl.1")  # what a log rotator does
    call_app(app, schema.encode_batch([second]))
    assert read_lines(tmp_path / "events.jsonl.1") == [first]
    assert read_lines(out) == [second]
    os.unlink(out)
    call_app(app, schema.encode_batch([third]))
    assert read_lines(out) == [third]
