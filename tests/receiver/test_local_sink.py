"""Without a PostHog token: accepted events are appended locally, one JSON line each."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

from tests.support.events import cli_event
from tests.support.wsgi import call_app
from zomg.receiver import make_app
from zomg.receiver.local_sink import LocalSink
from zomg.telemetry import schema


def read_lines(path) -> list:
    with open(path, "rb") as f:
        return [json.loads(line) for line in f.read().splitlines()]


def test_accepted_events_are_appended_to_the_output_file(tmp_path):
    out = tmp_path / "events.jsonl"
    app = make_app(LocalSink(str(out)))
    first, second, third = cli_event(), cli_event(result="error", error_class="config"), cli_event(flags=[])
    assert call_app(app, schema.encode_batch([first, second])).status == 202
    assert call_app(app, schema.encode_batch([third])).status == 202
    assert read_lines(out) == [first, second, third]
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600


def test_lines_hold_the_schema_fields_in_the_schema_order(tmp_path):
    out = tmp_path / "events.jsonl"
    shuffled = dict(reversed(list(cli_event().items())))
    call_app(make_app(LocalSink(str(out))), json.dumps({"events": [shuffled]}).encode())
    line = out.read_text().splitlines()[0]
    assert list(json.loads(line)) == list(schema.field_names(schema.CLI_COMMAND))


def test_a_rejected_batch_records_nothing(tmp_path):
    out = tmp_path / "events.jsonl"
    app = make_app(LocalSink(str(out)))
    assert call_app(app, schema.encode_batch([cli_event(), cli_event(arch="sparc")])).status == 400
    assert not out.exists()


def test_without_a_file_the_lines_go_to_stdout(capfd):
    event = cli_event()
    assert call_app(make_app(LocalSink()), schema.encode_batch([event])).status == 202
    assert [json.loads(line) for line in capfd.readouterr().out.splitlines()] == [event]


def test_an_output_that_cannot_be_written_is_503_so_the_client_retries(tmp_path):
    app = make_app(LocalSink(str(tmp_path / "missing-dir" / "events.jsonl")))
    response = call_app(app, schema.encode_batch([cli_event()]))
    assert response.status == 503
    assert response.json()["error"].startswith("output: cannot record events")


def test_appends_from_several_processes_never_mix_within_a_line(tmp_path):
    out = tmp_path / "events.jsonl"
    event = json.dumps(cli_event(flags=["--" + "x" * 32]))
    writer = (
        "import json, sys, uuid\n"
        "from zomg.receiver.local_sink import LocalSink\n"
        "record = LocalSink(sys.argv[1])\n"
        "event = json.loads(sys.argv[2])\n"
        "for _ in range(100):\n"
        "    record([dict(event, event_id=str(uuid.uuid4())) for _ in range(10)])\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(out), event], cwd=str(tmp_path)) for _ in range(3)]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    lines = read_lines(out)
    assert len(lines) == 3 * 100 * 10
    assert len({line["event_id"] for line in lines}) == len(lines)


def test_a_rotated_or_deleted_output_file_is_replaced_by_a_new_one(tmp_path):
    out = tmp_path / "events.jsonl"
    app = make_app(LocalSink(str(out)))
    first, second, third = cli_event(), cli_event(), cli_event()
    call_app(app, schema.encode_batch([first]))
    os.rename(out, tmp_path / "events.jsonl.1")  # what a log rotator does
    call_app(app, schema.encode_batch([second]))
    assert read_lines(tmp_path / "events.jsonl.1") == [first]
    assert read_lines(out) == [second]
    os.unlink(out)
    call_app(app, schema.encode_batch([third]))
    assert read_lines(out) == [third]


def test_a_batch_in_any_form_is_written_byte_for_byte_the_same_by_every_sink_in_front_of_the_file(tmp_path):
    # One interface (zomg.receiver.sink): a sink writes the lines; decoded events reach it as the same lines.
    from zomg.receiver.store import Store, StoreSink

    events = [cli_event(), cli_event(command="exec", subcommand=None, flags=[], result="error",
                                     error_class="subprocess")]
    canonical = schema.encode_batch(events)
    pretty = json.dumps({"events": [dict(reversed(list(e.items()))) for e in events]}, indent=1).encode()
    written = {}
    for name in ("local", "store in front"):
        for form, body in (("canonical", canonical), ("decoded", pretty)):
            out = tmp_path / f"{name}-{form}.jsonl"
            sink = LocalSink(str(out))
            if name == "store in front":
                sink = StoreSink(Store(str(tmp_path / f"{form}.sqlite3")), sink)
            assert call_app(make_app(sink), body).status == 202
            written[name, form] = out.read_bytes()
    assert len(set(written.values())) == 1, written
    assert [json.loads(line) for line in written["local", "canonical"].splitlines()] == events
