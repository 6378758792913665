"""Which mode wins, and why: every environment/config/system combination, through `status --json`."""
from __future__ import annotations

import itertools
import json
import os

import pytest

from tests.support.cli import files_under, write_system_config, write_user_config

pytestmark = pytest.mark.telemetry_on

UNSET = object()
DNT = [UNSET, "", "0", "false", " FALSE ", "1", "yes", "true"]
ZT = [UNSET, "", "off", " Off ", "0", "no", "disabled", "log", "LOG", "on", "1", "Enable", "maybe"]
USER = [UNSET, {}, {"mode": "on"}, {"mode": "off"}, {"mode": "log"}, {"mode": "loud"}, "{not json"]
SYSTEM = [UNSET, {"mode": "on"}, {"mode": "off"}, {"mode": "log"}, {"mode": "off", "locked": True},
          {"mode": "on", "locked": True}, "[]"]


def expected(dnt, zt, user, system) -> tuple[str, str]:
    """The documented precedence, restated independently of zomg's code."""
    if dnt is not UNSET and dnt.strip().lower() not in ("", "0", "false"):
        return "off", "env:DO_NOT_TRACK"
    word = None if zt is UNSET else zt.strip().lower()
    lock = isinstance(system, dict) and system.get("mode") == "off" and system.get("locked") is True
    if word:
        if word in ("off", "0", "false", "no", "disable", "disabled"):
            return "off", "env:ZOMG_TELEMETRY"
        if word not in ("log", "on", "1", "true", "yes", "enable", "enabled"):
            return "off", "env:ZOMG_TELEMETRY"  # not understood: fail safe
        if lock:
            return "off", "system"
        return ("log" if word == "log" else "on"), "env:ZOMG_TELEMETRY"
    if lock:
        return "off", "system"
    if user is not UNSET:
        if not isinstance(user, dict) or user.get("mode") not in (None, "on", "off", "log"):
            return "off", "config"  # unreadable or unknown: fail safe
        if user.get("mode"):
            return user["mode"], "config"
    if system is not UNSET:
        if not isinstance(system, dict):
            return "off", "system"
        if system.get("mode"):
            return system["mode"], "system"
    return "on", "default"


def _write(path: str, content) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(content if isinstance(content, str) else json.dumps(content))


def test_precedence_matrix(zomg, monkeypatch, tmp_path):
    from zomg.telemetry import settings

    user_path = settings.user_path()
    system_path = write_system_config({})
    checked = 0
    for dnt, zt, user, system in itertools.product(DNT, ZT, USER, SYSTEM):
        for var, value in (("DO_NOT_TRACK", dnt), ("ZOMG_TELEMETRY", zt)):
            if value is UNSET:
                monkeypatch.delenv(var, raising=False)
            else:
                monkeypatch.setenv(var, value)
        for path, content in ((user_path, user), (system_path, system)):
            if content is UNSET:
                if os.path.exists(path):
                    os.unlink(path)
            else:
                _write(path, content)
        r = zomg("telemetry", "status", "--json")
        assert r.code == 0, r
        info = json.loads(r.out)
        case = dict(DO_NOT_TRACK=dnt, ZOMG_TELEMETRY=zt, user=user, system=system)
        assert (info["mode"], info["source"]) == expected(dnt, zt, user, system), case
        if info["source"] == "system":
            assert info["decided_by"] == system_path, case
        if info["source"] == "config":
            assert info["decided_by"] == user_path, case
        if zt is not UNSET and zt.strip().lower() == "maybe" and info["source"] == "env:ZOMG_TELEMETRY":
            assert "not understood" in info["reason"], case
        checked += 1
    assert checked == len(DNT) * len(ZT) * len(USER) * len(SYSTEM)


def test_status_json_has_the_documented_keys_and_creates_nothing(zomg, isolated_home, tmp_path):
    before = files_under(str(tmp_path))
    info = json.loads(zomg("telemetry", "status", "--json").out)
    assert {"mode", "source", "endpoint", "installation_id", "notice_shown", "config_path"} <= set(info)
    assert info["source"] in ("env:DO_NOT_TRACK", "env:ZOMG_TELEMETRY", "config", "system", "default")
    assert (info["installation_id"], info["notice_shown"]) == (None, False)
    assert files_under(str(tmp_path)) == before


def test_status_names_the_unknown_value(zomg, monkeypatch):
    monkeypatch.setenv("ZOMG_TELEMETRY", "sometimes")
    r = zomg("telemetry", "status")
    assert "'sometimes' was not understood" in r.out
    assert r.out.splitlines()[0].split() == ["mode:", "off"]


def test_the_first_system_dir_that_has_a_file_decides(zomg, monkeypatch, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    _write(str(second / "zomg" / "telemetry.json"), {"mode": "off", "locked": True})
    monkeypatch.setenv("XDG_CONFIG_DIRS", f"{first}{os.pathsep}{second}")
    info = json.loads(zomg("telemetry", "status", "--json").out)
    assert (info["mode"], info["source"], info["decided_by"]) == ("off", "system", str(second / "zomg" /
                                                                                       "telemetry.json"))
    _write(str(first / "zomg" / "telemetry.json"), {"mode": "log"})
    info = json.loads(zomg("telemetry", "status", "--json").out)
    assert (info["mode"], info["source"]) == ("log", "system")


def test_a_lock_beats_a_stored_on_and_an_env_on(zomg, monkeypatch):
    write_system_config({"mode": "off", "locked": True})
    write_user_config({"mode": "on"})
    monkeypatch.setenv("ZOMG_TELEMETRY", "on")
    info = json.loads(zomg("telemetry", "status", "--json").out)
    assert (info["mode"], info["source"], info["system_locked"]) == ("off", "system", True)


@pytest.mark.parametrize(
    "url,usable",
    [
        ("https://telemetry.example.com/v1/events", True),
        ("https://telemetry.example.com:8443/x?y=1", True),
        ("HTTPS://EXAMPLE.COM", True),
        ("http://127.0.0.1:8080/v1/events", True),
        ("http://localhost/v1/events", True),
        ("http://[::1]:9000/", True),
        ("http://example.com/v1/events", False),
        ("http://127.0.0.1.example.com/", False),
        ("http://10.0.0.1/", False),
        ("ftp://example.com/", False),
        ("telemetry.example.com/v1", False),
        ("https://", False),
        ("https://user:pw@example.com/", False),
        ("https://example.com:99999/", False),
        ("https://exa mple.com/", False),
        ("https://exämple.com/", False),
        ("https://exa\tmple.com/", False),
        ("https://example.com/\x7f", False),
        ("http://127.0.0.1\\@evil.example/", False),
        ("file:///etc/passwd", False),
    ],
)
def test_endpoint_usability(zomg, monkeypatch, url, usable):
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", url)
    info = json.loads(zomg("telemetry", "status", "--json").out)
    from zomg.telemetry import policy

    assert info["endpoint"] == policy.masked(policy.endpoint({"ZOMG_TELEMETRY_ENDPOINT": url}))
    assert info["endpoint_usable"] is usable
    assert (info["endpoint_problem"] is None) is usable
    assert info["active"] is usable


def test_an_unwritable_config_dir_is_reported(zomg, monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker))
    info = json.loads(zomg("telemetry", "status", "--json").out)
    assert (info["mode"], info["active"], info["config_writable"]) == ("on", False, False)
    assert "not writable" in info["inactive_reason"]
