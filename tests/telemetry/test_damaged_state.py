"""Damaged telemetry state repairs itself: whatever is written into a telemetry file, a command runs as it
would with telemetry off, `zomg telemetry off` works, and after a reset delivery works again."""
from __future__ import annotations

import json
import os
import shutil

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.cli import notice_seen

pytestmark = pytest.mark.telemetry_on

DIRECTORY = object()  # a directory where the file belongs

_KEYS = st.sampled_from(["mode", "installation_id", "notice_version", "failures", "retry_at", "recorded_at",
                         "locked", "event", "events", "at", "outcome", "status"])
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["on", "off", "log", "cli.command", "delivered"]),
)
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.one_of(_KEYS, st.text(max_size=4)), inner, max_size=4)),
    max_leaves=8)
_RAW = st.sampled_from([
    b'{"failures": ' + b"9" * 5000 + b', "retry_at": 1}',  # a 5,000-digit number
    b'{"failures": Infinity, "retry_at": NaN}',
    b'{"failures": 1, "retry_at": 1e308}',
    b"[" * 100_000 + b"]" * 100_000,  # nesting deeper than the parser's stack
    b'{"mode": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"notice_version": true}',
    b'{"notice_version": 1.0, "mode": "on"}',
    b"9" * 5000 + b' 0 http://127.0.0.1:9/v1/events {"event":"cli.command"}\n',
    b'1800000000 0 http://127.0.0.1:9/v1/events {"event":"cli.comm',  # torn, no newline
    b"\xff\xfe\x00garbage",
    b"",
])
CONTENT = st.one_of(
    st.binary(max_size=200),
    _JSON.map(lambda value: json.dumps(value).encode()),
    st.lists(_JSON.map(lambda value: b"1800000000 0 http://127.0.0.1:9/v1/events " + json.dumps(value).encode()),
             max_size=3).map(b"\n".join),
    _RAW,
    st.just(DIRECTORY),
)


def _path(which: str) -> str:
    from zomg import paths
    from zomg.telemetry import settings as telemetry_settings
    from zomg.telemetry.files import Layout

    state = Layout().spool_dir
    return {
        "config": telemetry_settings.user_path(),
        "system": os.path.join(paths.system_config_dirs()[0], "telemetry.json"),
        "spool": os.path.join(state, "spool.jsonl"),
        "backoff": os.path.join(state, "backoff.json"),
        "last": os.path.join(state, "last.json"),
        "deployment": os.path.join(state, "deployment.json"),
    }[which]


def _write(path: str, content) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)
    if content is DIRECTORY:
        os.makedirs(os.path.join(path, "inside"))
    else:
        with open(path, "wb") as f:
            f.write(content)


def _fresh_state(home, system_dir) -> None:
    for root in (home, system_dir):
        for name in os.listdir(root):
            target = os.path.join(root, name)
            shutil.rmtree(target) if os.path.isdir(target) else os.unlink(target)


@pytest.mark.parametrize("which", ["config", "system", "spool", "backoff", "last", "deployment"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=CONTENT)
@example(content=DIRECTORY)
@example(content=b"[" * 100_000 + b"]" * 100_000)
@example(content=b'{"mode": ' + b"[" * 5000 + b"]" * 5000 + b"}")
@example(content=b'{"failures": Infinity, "retry_at": NaN, "recorded_at": NaN, "notice_version": true}')
@example(content=b"9" * 5000 + b' 0 http://127.0.0.1:9/v1/events {"event":"cli.command"}\n')
def test_any_damage_to_a_telemetry_file_is_survived_and_repaired(cli, capture, monkeypatch, isolated_home,
                                                                 tmp_path, which, content):
    from zomg import setup_config
    from zomg.telemetry import files as telemetry_files

    _fresh_state(str(isolated_home), str(tmp_path / "etc-xdg"))
    capture.requests.clear()
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    notice_seen()
    if which == "deployment":  # read only once opted in
        setup_config.save(setup_config.Answers(deployment_metrics=True, deployment_id=telemetry_files.uuid4()))
    _write(_path(which), content)

    monkeypatch.setenv("ZOMG_TELEMETRY", "off")
    quiet = cli("box", "list")
    monkeypatch.delenv("ZOMG_TELEMETRY")
    for _ in range(2):
        r = cli("box", "list")
        assert (r.code, r.out) == (quiet.code, quiet.out)
        assert "Traceback" not in r.err and "internal error" not in r.err
    for argv in (("telemetry", "status"), ("telemetry", "status", "--json"), ("telemetry", "explain")):
        r = cli(*argv)
        assert r.code == 0 and "Traceback" not in r.err, (argv, r)
    assert cli("telemetry", "off").code == 0
    user = telemetry_files.read_user(telemetry_files.Layout())
    assert user.mode == "off" and user.problem is None

    # Reset: on again, with a healthy receiver.
    assert cli("telemetry", "on").code == 0
    if which == "system" and telemetry_files.read_system().locks_off:
        return  # a packager's lock is not zomg's to undo
    for _ in range(3):  # the notice (shown again when the damage hid it), then a recorded run, then a send
        cli("box", "list")
    cli.drain()
    assert any(e["event"] == "cli.command" for e in capture.events()), which
