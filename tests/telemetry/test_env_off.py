"""Off through the environment or a lock: no file, no id, no thread, no socket, no notice, no heavy import."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.cli import files_under, write_system_config

pytestmark = pytest.mark.telemetry_on

# Runs zomg in a fresh interpreter and reports what it touched, as seen by an audit hook.
PROBE = r"""
import json, sys
seen = {"sockets": [], "writes": []}
def hook(event, args):
    if event.startswith("socket."):
        seen["sockets"].append(event)
    elif event == "open" and isinstance(args[1], str) and any(c in args[1] for c in "wax+"):
        seen["writes"].append(str(args[0]))
    elif event == "open" and args[1] is None and isinstance(args[2], int) and args[2] & 0o3101:
        seen["writes"].append(str(args[0]))
    elif event in ("os.mkdir", "os.rename", "os.remove", "os.chmod"):
        seen["writes"].append(str(args[0]))
sys.addaudithook(hook)
from zomg.cli import main
code = main(sys.argv[1:])
import threading
seen["code"] = code
seen["threads"] = threading.active_count()
heavy = ("urllib.request", "http.client", "ssl", "email", "socket", "uuid", "platform", "datetime",
         "zomg.telemetry.files", "zomg.fsutil", "zomg.telemetry.settings", "zomg.telemetry.sender",
         "zomg.telemetry.schema")
seen["heavy"] = [m for m in heavy if m in sys.modules]
sys.stdout.write("\n" + json.dumps(seen))
"""


def probe(*argv: str, env: dict) -> dict:
    import os

    full = dict(os.environ)
    full.pop("ZOMG_TELEMETRY", None)
    full.update(env)
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=full, timeout=60)
    report = json.loads(proc.stdout.splitlines()[-1])
    report["stderr"] = proc.stderr
    return report


@pytest.mark.parametrize(
    "env",
    [
        {"ZOMG_TELEMETRY": "off"},
        {"ZOMG_TELEMETRY": "0"},
        {"ZOMG_TELEMETRY": "Disabled"},
        {"ZOMG_TELEMETRY": "not-a-mode"},
        {"DO_NOT_TRACK": "1"},
        {"DO_NOT_TRACK": "true", "ZOMG_TELEMETRY": "on"},
    ],
)
def test_env_off_touches_nothing(env, tmp_path, capture):
    env = dict(env, ZOMG_TELEMETRY_ENDPOINT=capture.url)
    before = files_under(str(tmp_path))
    for argv in (("box", "list"), ("box", "show", "nope"), ("frob",), ("box", "list", "--json")):
        report = probe(*argv, env=env)
        assert report["sockets"] == [], argv
        assert report["writes"] == [], argv
        assert report["threads"] == 1, argv
        assert report["heavy"] == [], argv
        assert "zomg-telemetry" not in report["stderr"] and "DO_NOT_TRACK" not in report["stderr"]
    assert files_under(str(tmp_path)) == before
    assert capture.requests == []


@pytest.mark.parametrize("env", [{}, {"ZOMG_TELEMETRY": "on"}, {"ZOMG_TELEMETRY": "log"}])
def test_a_system_lock_touches_nothing_either(env, tmp_path, capture):
    write_system_config({"mode": "off", "locked": True})
    before = files_under(str(tmp_path))
    report = probe("box", "list", env=dict(env, ZOMG_TELEMETRY_ENDPOINT=capture.url))
    assert (report["sockets"], report["writes"], report["threads"]) == ([], [], 1)
    assert "zomg-telemetry" not in report["stderr"] and "DO_NOT_TRACK" not in report["stderr"]
    assert files_under(str(tmp_path)) == before


def test_on_mode_without_a_due_send_opens_no_socket_and_imports_no_network_module(capture):
    from tests.support.cli import notice_seen

    notice_seen()
    report = probe("box", "list", env={"ZOMG_TELEMETRY_ENDPOINT": capture.url})
    assert report["code"] == 0
    assert report["sockets"] == [] and report["threads"] == 1
    assert [m for m in report["heavy"] if not m.startswith("zomg.")] == []
    assert "zomg.telemetry.schema" not in report["heavy"]
    assert any(path.endswith("spool.jsonl") for path in report["writes"])
