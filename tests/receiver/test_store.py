"""The usage store (ZOMG_RECEIVER_STORE): every accepted event kept once, a failed write refused, expiry by age."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from tests.support.events import cli_event, deployment_event
from tests.support.servers import clean_env
from tests.support.wsgi import Deliveries, LineDeliveries, call_app
from zomg.receiver.settings import SettingsError, check_env, deliverer_from_env
from zomg.receiver.store import Store, StoreSink, expire
from zomg.receiver.wsgi import make_app
from zomg.telemetry import schema


def stored(path: str, table: str = "cli_command") -> list[dict]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY timestamp, event_id")]
    finally:
        conn.close()


def test_accepted_events_are_kept_once_whatever_the_body_form(tmp_path):
    path = str(tmp_path / "usage.sqlite3")
    inner = LineDeliveries()
    app = make_app(StoreSink(Store(path), inner))
    events = [cli_event(), cli_event(command="exec", subcommand=None, flags=[], ci=True, result="error",
                                     error_class="subprocess"), deployment_event()]
    canonical = schema.encode_batch(events)
    assert call_app(app, canonical).status == 202
    assert call_app(app, canonical).status == 202  # a resend adds nothing
    pretty = json.dumps({"events": events[:1] + [cli_event(command=None, subcommand=None)]}, indent=2).encode()
    assert call_app(app, pretty).status == 202  # decoded and validated, kept the same way

    rows = stored(path)
    assert len(rows) == 3
    by_id = {row["event_id"]: row for row in rows}
    assert by_id[events[1]["event_id"]] == {
        "event_id": events[1]["event_id"], "installation_id": events[1]["installation_id"],
        "timestamp": events[1]["timestamp"], "cli_version": "0.1.0", "command": "exec", "subcommand": None,
        "flags": "[]", "os": "linux", "arch": "x86_64", "ci": 1, "duration_bucket": "<1s", "result": "error",
        "error_class": "subprocess"}
    assert json.loads(by_id[events[0]["event_id"]]["flags"]) == ["--all", "--json"]
    deployments = stored(path, "deployment_metrics")
    assert [row["deployment_id"] for row in deployments] == [events[2]["deployment_id"]]
    assert len(inner.events) == 8  # the inner sink saw every batch, resends included
    for suffix in ("", "-wal", "-shm"):  # installation ids are the operator's only
        assert os.stat(path + suffix).st_mode & 0o777 == 0o600


def test_a_store_that_cannot_be_written_refuses_the_batch_before_anyone_else_sees_it(tmp_path, monkeypatch):
    path = str(tmp_path / "usage.sqlite3")
    inner = Deliveries()
    app = make_app(StoreSink(Store(path), inner))
    assert call_app(app, schema.encode_batch([cli_event()])).status == 202
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("PRAGMA busy_timeout = 0")
    blocker.execute("BEGIN EXCLUSIVE")  # another process holding the write lock past the busy timeout
    try:
        monkeypatch.setattr("zomg.receiver.store.BUSY_TIMEOUT_MS", 50)
        app = make_app(StoreSink(Store(path), inner))
        response = call_app(app, schema.encode_batch([cli_event()]))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert "store" in response.json()["error"]
    assert len(inner.events) == 1  # the refused batch went nowhere: the client still has it


def test_store_only_without_a_token_and_with_forwarding_both(tmp_path):
    path = str(tmp_path / "usage.sqlite3")
    deliver, where = deliverer_from_env({"ZOMG_RECEIVER_STORE": path})
    assert deliver.inner is None and "keeping accepted events in the store" in where
    deliver, where = deliverer_from_env({"ZOMG_RECEIVER_STORE": path, "ZOMG_RECEIVER_OUTPUT": str(tmp_path / "o")})
    assert deliver.inner is not None and "keeping them in the store" in where


@pytest.mark.parametrize("make_bad", [
    lambda tmp: str(tmp / "missing" / "usage.sqlite3"),
    lambda tmp: str(tmp),
    lambda tmp: (tmp / "junk.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 200) and str(tmp / "junk.db"),
    lambda tmp: sqlite3.connect(str(tmp / "app.db")).execute("CREATE TABLE t (x)").connection.close()
    or str(tmp / "app.db"),  # another program's database is left alone
])
def test_a_bad_store_path_stops_the_receiver_at_start_with_one_line(tmp_path, make_bad):
    bad = make_bad(tmp_path)
    with pytest.raises(SettingsError):
        check_env({"ZOMG_RECEIVER_STORE": bad})
    proc = subprocess.run([sys.executable, "-m", "zomg.receiver", "--port", "0"], capture_output=True, text=True,
                          env=clean_env(ZOMG_RECEIVER_STORE=bad), cwd=str(tmp_path), timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zomg-receiver: error: ") and "Traceback" not in proc.stderr
    if bad.endswith("app.db"):
        tables = sqlite3.connect(bad).execute("SELECT name FROM sqlite_master").fetchall()
        assert tables == [("t",)]


def test_expire_deletes_what_is_older_than_the_days_kept(tmp_path):
    path = str(tmp_path / "usage.sqlite3")
    old, new = cli_event(timestamp="2026-01-01T00:00:00Z"), cli_event(timestamp="2026-03-01T00:00:00Z")
    Store(path).write_events([old, new, deployment_event(timestamp="2026-01-02T00:00:00Z")])
    now = 1772323200.0 + 86400 * 10  # 2026-03-11T00:00:00Z
    assert expire(path, 30, now=now) == 2
    assert [row["event_id"] for row in stored(path)] == [new["event_id"]]
    proc = subprocess.run([sys.executable, "-m", "zomg.receiver", "expire", path, "--keep-days", "1"],
                          capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert stored(path) == []
    missing = subprocess.run([sys.executable, "-m", "zomg.receiver", "expire", str(tmp_path / "nope"),
                              "--keep-days", "1"], capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert missing.returncode == 1 and len(missing.stderr.splitlines()) == 1


def test_several_processes_share_one_store(tmp_path):
    path = str(tmp_path / "usage.sqlite3")
    Store(path).write_events([cli_event()])
    code = ("import sys; sys.path.append(sys.argv[2])\n"
            "from tests.support.events import cli_event; from zomg.receiver.store import Store\n"
            "s = Store(sys.argv[1])\n"
            "for _ in range(50): s.write_events([cli_event() for _ in range(20)])\n")
    # The tests package comes last on the children's path: zomg stays the one under test (installed, under tox).
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    procs = [subprocess.Popen([sys.executable, "-c", code, path, root], cwd=str(tmp_path)) for _ in range(3)]
    assert [p.wait(120) for p in procs] == [0, 0, 0]
    assert len(stored(path)) == 1 + 3 * 50 * 20


def test_kept_in_the_store_and_forwarded_to_posthog(tmp_path, forwarding, fake_posthog):
    path = str(tmp_path / "usage.sqlite3")
    forward = forwarding()
    app = make_app(StoreSink(Store(path), forward.forwarder))
    events = [cli_event() for _ in range(5)]
    assert call_app(app, schema.encode_batch(events)).status == 202
    forward.flush()
    ids = [event["event_id"] for event in events]
    assert sorted(fake_posthog.accepted_uuids()) == sorted(ids)
    assert sorted(row["event_id"] for row in stored(path)) == sorted(ids)
