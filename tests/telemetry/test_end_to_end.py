"""The real CLI in real processes with the real thresholds: notice, ten quiet runs, one batch."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.cli import run, spooled
from zomg.telemetry import notice, schema

pytestmark = pytest.mark.telemetry_on


def test_notice_then_ten_recorded_runs_then_one_batch_of_ten(capture, monkeypatch):
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    quiet = run("box", "list", env={"ZOMG_TELEMETRY": "off"})
    first = run("box", "list")
    assert first.stderr == notice.TEXT + quiet.stderr
    for n in range(1, 11):
        r = run("box", "list", "--json") if n % 2 else run("box", "show", "nope")
        assert "zomg-telemetry" not in r.stderr and notice.TEXT not in r.stderr
        assert len(spooled()) == n
    assert capture.requests == []

    r = run("box", "list")  # ten spooled: due at start
    assert (r.returncode, r.stdout, r.stderr) == (quiet.returncode, quiet.stdout, quiet.stderr)
    if not capture.requests:
        # On a slow machine the grace can run out before the POST: the events stay spooled, and the
        # documented flush sends them (instead of waiting out the backoff for a later run).
        assert len(spooled()) >= 10
        subprocess.run([sys.executable, "-c", "import zomg.telemetry as t; t.flush()"], check=True, timeout=60)
    events = schema.validate_batch(json.loads(capture.requests[0]["body"]))
    assert len(events) >= 10
    assert [e["subcommand"] for e in events[:10]] == ["list", "show"] * 5
    assert [e["flags"] for e in events[:2]] == [["--json"], []]
    assert len(capture.unique_ids()) == len(capture.events())


def test_on_mode_hot_path_imports_no_network_module(capture, monkeypatch):
    from tests.support.cli import notice_seen

    notice_seen()
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    code = (
        "import sys; from zomg.cli import main; main(['box', 'list']);"
        "heavy = ('urllib.request', 'http.client', 'ssl', 'email', 'datetime', 'uuid', 'platform', 'threading',"
        " 'subprocess', 'zomg.telemetry.schema', 'zomg.telemetry.sender');"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "[]"
    assert len(spooled()) == 1
