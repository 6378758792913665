"""The isolation fixture itself: a test that writes outside its temp dirs must fail."""
import os

import pytest

from tests import conftest


def test_home_and_xdg_point_into_tmp(tmp_path):
    for var in ("HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_DIRS"):
        assert os.environ[var].startswith(str(tmp_path))


def test_a_write_outside_is_recorded(tmp_path):
    conftest._audit("open", ("/etc/zomg-should-not-exist", "w", 0))
    recorded = list(conftest._guard["violations"])
    conftest._guard["violations"].clear()
    assert recorded == [("open", "/etc/zomg-should-not-exist")]


def test_a_write_inside_is_allowed(tmp_path):
    (tmp_path / "x").write_text("ok")
    assert conftest._guard["violations"] == []


def test_mkdir_outside_is_recorded():
    conftest._audit("os.mkdir", ("/etc/zomg-nope", 0o777, None))
    recorded = list(conftest._guard["violations"])
    conftest._guard["violations"].clear()
    assert recorded == [("os.mkdir", "/etc/zomg-nope")]
