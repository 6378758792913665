"""The event: exact keys and types for every command, canonical flags, never a value."""
from __future__ import annotations

import json

import pytest

from tests.support.cli import notice_seen, spooled
from zomg.telemetry import schema

pytestmark = pytest.mark.telemetry_on

PREFIX = "zomg-telemetry: "
TYPES = {
    "event": str, "schema_version": int, "event_id": str, "installation_id": str, "timestamp": str,
    "cli_version": str, "command": (str, type(None)), "subcommand": (str, type(None)), "flags": list,
    "os": str, "arch": str, "ci": bool, "duration_bucket": str, "result": str, "error_class": (str, type(None)),
}


def logged(result) -> dict:
    """The one event of a log-mode run, after checking the line is exactly the wire body."""
    lines = [line for line in result.err.splitlines() if line.startswith(PREFIX)]
    assert len(lines) == 1, result
    body = lines[0][len(PREFIX):]
    events = schema.validate_batch(json.loads(body))
    assert body.encode("ascii") == schema.encode_batch(events)
    [event] = events
    assert set(event) == set(schema.field_names(schema.CLI_COMMAND))
    for key, expected in TYPES.items():
        assert isinstance(event[key], expected), key
    assert type(event["ci"]) is bool and type(event["schema_version"]) is int
    return event


@pytest.fixture
def log_mode(monkeypatch):
    monkeypatch.setenv("ZOMG_TELEMETRY", "log")


CASES = [
    # argv, command, subcommand, flags, result, error_class
    (["box", "create", "alpha", "--project", "p1", "--env", "A=1", "--env", "B=2"], "box", "create",
     ["--env", "--project"], "success", None),
    (["box", "list"], "box", "list", [], "success", None),
    (["box", "list", "--json", "--project=p1"], "box", "list", ["--json", "--project"], "success", None),
    (["box", "show", "alpha", "--json"], "box", "show", ["--json"], "success", None),
    (["box", "show", "missing"], "box", "show", [], "error", "not_found"),
    (["box", "rm", "-f", "alpha"], "box", "rm", ["--force"], "success", None),
    (["box", "rm", "--force", "-f", "gone"], "box", "rm", ["--force"], "error", "not_found"),
    (["exec", "nobox", "--env", "K=V", "--workdir", "sub", "--", "echo", "--force", "hi"], "exec", None,
     ["--env", "--workdir"], "error", "not_found"),
    (["console", "nobox", "--shell", "/bin/zsh"], "console", None, ["--shell"], "error", "not_found"),
    (["box", "list", "--bogus"], "box", "list", [], "error", "usage"),
    (["box", "frob"], "box", None, [], "error", "usage"),
    (["box"], "box", None, [], "success", None),
    (["frobnicate", "--force"], None, None, [], "error", "usage"),
    ([], None, None, [], "success", None),
    (["help", "box", "list"], "help", None, [], "success", None),
    (["box", "edit", "alpha", "--env", "A=1", "--unset-env", "B", "--no-project"], "box", "edit",
     ["--env", "--no-project", "--unset-env"], "error", "not_found"),
    (["box", "rename", "alpha", "beta"], "box", "rename", [], "error", "not_found"),
    (["box", "rm", "a1", "a2"], "box", "rm", [], "error", "config"),
    (["--help"], None, None, ["--help"], "success", None),
    (["box", "rm", "-h"], "box", "rm", ["--help"], "success", None),
    (["exec", "--", "box", "list", "--json"], "exec", None, [], "error", "usage"),
]


@pytest.mark.parametrize("argv,command,subcommand,flags,result,error_class", CASES)
def test_log_mode_prints_the_exact_event(zomg, log_mode, argv, command, subcommand, flags, result, error_class):
    if argv[:3] in (["box", "show", "alpha"], ["box", "rm", "-f"]):
        zomg("box", "create", "alpha")
    r = zomg(*argv)
    event = logged(r)
    assert (event["command"], event["subcommand"], event["flags"]) == (command, subcommand, flags)
    assert (event["result"], event["error_class"]) == (result, error_class)
    assert (event["event"], event["schema_version"], event["duration_bucket"]) == ("cli.command", 1, "<1s")
    from zomg import __version__

    assert event["cli_version"] == __version__
    assert "alpha" not in json.dumps(event) and "p1" not in json.dumps(event)


def test_log_mode_leaves_stdout_alone_and_shows_no_notice(zomg, log_mode):
    from zomg.telemetry import notice

    r = zomg("box", "list", "--json")
    assert r.out == "[]\n"
    assert notice.TEXT not in r.err
    assert spooled() == []


def test_each_event_has_a_new_id_and_the_same_installation_id(zomg, log_mode):
    first, second = logged(zomg("box", "list")), logged(zomg("box", "list"))
    assert first["event_id"] != second["event_id"]
    assert first["installation_id"] == second["installation_id"]


def test_exec_records_the_command_never_what_it_runs(zomg, log_mode, tmp_path):
    zomg("box", "create", "work")
    r = zomg("exec", "work", "--env", "SECRET=hunter2", "--", "sh", "-c", "exit 3")
    assert r.code == 3
    event = logged(r)
    assert (event["command"], event["flags"], event["result"], event["error_class"]) == (
        "exec", ["--env"], "error", "subprocess")
    text = json.dumps(event)
    for secret in ("work", "SECRET", "hunter2", "sh", "exit"):
        assert secret not in text.replace("subprocess", "")


def test_console_records_the_command_never_the_shell(zomg, log_mode):
    zomg("box", "create", "work")
    r = zomg("console", "work", "--shell", "/nonexistent/secret-shell")
    event = logged(r)
    assert (event["command"], event["flags"]) == ("console", ["--shell"])
    assert "secret" not in json.dumps(event)


def test_an_interrupt_is_recorded_as_interrupted(zomg, log_mode, monkeypatch):
    from zomg import boxes

    def interrupted(project=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(boxes, "list_boxes", interrupted)
    event = logged(zomg("box", "list"))
    assert (event["result"], event["error_class"]) == ("interrupted", None)


def test_spooled_and_logged_events_have_the_same_shape(zomg, monkeypatch):
    notice_seen()
    zomg("box", "rm", "-f", "nothing")
    [spooled_event] = spooled()
    monkeypatch.setenv("ZOMG_TELEMETRY", "log")
    logged_event = logged(zomg("box", "rm", "-f", "nothing"))
    schema.validate_event(spooled_event)
    for key in ("event_id", "timestamp"):
        spooled_event.pop(key), logged_event.pop(key)
    assert spooled_event == logged_event


def test_ci_is_reported_as_a_bare_boolean(zomg, log_mode, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert logged(zomg("box", "list"))["ci"] is True
    monkeypatch.setenv("CI", "false")
    assert logged(zomg("box", "list"))["ci"] is False
