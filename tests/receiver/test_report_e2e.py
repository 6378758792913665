"""End to end: real CLI runs from two installations, the dev server keeping a usage store, the report.

Two HOMEs (two installations) run zomg commands as a user would; their
CLI's own sender delivers to ``python -m zomg.receiver`` started with
``ZOMG_RECEIVER_STORE`` (and ``ZOMG_RECEIVER_OUTPUT``, whose JSON lines
the local sink writes on its own path). The report read from the store must
equal the truth computed plainly from those lines, and what the test knows
it ran, in all three formats.
"""
from __future__ import annotations

import datetime
import json
import subprocess
import sys

import pytest

from tests.support.servers import clean_env
from tests.support.usage_data import truth
from zomg.receiver.report.html import to_html
from zomg.receiver.report.render import to_text

pytestmark = pytest.mark.telemetry_on

# The first run shows the notice and records nothing; the others are recorded.
RUNS = (["box", "list"], ["box", "list"], ["box", "create", "demo"], ["box", "create", "demo"],
        ["box", "list", "--json"])


def run_zomg(home, endpoint: str, *argv: str) -> subprocess.CompletedProcess:
    env = clean_env(ZOMG_TELEMETRY_ENDPOINT=endpoint, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                    XDG_STATE_HOME=str(home / ".local/state"), XDG_DATA_HOME=str(home / ".local/share"),
                    XDG_CACHE_HOME=str(home / ".cache"))
    env.pop("ZOMG_TELEMETRY", None)
    return subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=120,
                          cwd=str(home))


@pytest.mark.parametrize("server", ["dev server", "gunicorn"])
def test_cli_runs_to_a_stored_report_equal_to_the_truth(receiver_process, serve, tmp_path, server):
    store, lines = tmp_path / "usage.sqlite3", tmp_path / "events.jsonl"
    env = {"ZOMG_RECEIVER_STORE": str(store), "ZOMG_RECEIVER_OUTPUT": str(lines)}
    if server == "gunicorn":  # the documented production command, two workers sharing the store
        argv = [sys.executable, "-m", "gunicorn", "-c", "python:zomg.receiver.gunicorn_conf", "--bind",
                "127.0.0.1:0", "--workers", "2", "zomg.receiver:app"]
        server = serve(argv, clean_env(**env), ready=r"Listening at: (http://\S+)")
    else:
        server = receiver_process(**env)
    endpoint = server.url + "/v1/events"
    for name in ("alice", "bob"):
        home = tmp_path / name
        home.mkdir()
        assert run_zomg(home, endpoint, "-m", "zomg", "box", "list").returncode == 0  # the notice
        results = [run_zomg(home, endpoint, "-m", "zomg", *argv) for argv in RUNS]
        assert [r.returncode == 0 for r in results] == [True, True, True, False, True]
        flushed = run_zomg(home, endpoint, "-c", "import zomg.telemetry as t; t.flush()")
        assert flushed.returncode == 0, flushed.stderr

    today = datetime.datetime.now(datetime.timezone.utc).date()
    since, until = (today - datetime.timedelta(days=1)).isoformat(), today.isoformat()
    events = [json.loads(line) for line in lines.read_text().splitlines()]
    assert len(events) == 2 * len(RUNS)
    expected = truth(events, since, until, 2)

    def report(form: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "zomg.receiver", "report", str(store), "--since", since,
                               "--until", until, "--min-installations", "2", "--format", form],
                              capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    got = json.loads(report("json"))
    assert got == expected
    # What the test knows it ran, independently of any event.
    assert (got["events"], got["installations"]) == (10, 2)
    assert got["tables"]["commands"] == [
        {"command": "box", "subcommand": "list", "runs": 6, "installations": 2},
        {"command": "box", "subcommand": "create", "runs": 4, "installations": 2},
    ]
    assert {"command": "box", "subcommand": "create", "result": "error", "error_class": "conflict", "runs": 2,
            "installations": 2} in got["tables"]["results"]
    assert got["tables"]["flags"] == [
        {"command": "box", "subcommand": "list", "flag": "--json", "runs": 2, "installations": 2, "share": 0.3333}]
    assert report("text") == to_text(expected)
    assert report("html") == to_html(expected)
