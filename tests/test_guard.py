"""The isolation fixture itself: a test that writes outside its temp dirs must fail."""
import os


def test_home_and_xdg_point_into_tmp(tmp_path):
    for var in ("HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_DIRS"):
        assert os.environ[var].startswith(str(tmp_path))


def _record(write_guard, event, args):
    guard, audit = write_guard
    audit(event, args)
    recorded = list(guard["violations"])
    guard["violations"].clear()
    return recorded


def test_a_write_outside_is_recorded(write_guard):
    assert _record(write_guard, "open", ("/etc/zomg-nope", "w", 0)) == [("open", "/etc/zomg-nope")]


def test_mkdir_outside_is_recorded(write_guard):
    assert _record(write_guard, "os.mkdir", ("/etc/zomg-nope", 0o777, None)) == [("os.mkdir", "/etc/zomg-nope")]


def test_reads_and_writes_inside_are_allowed(write_guard, tmp_path):
    assert _record(write_guard, "open", ("/etc/passwd", "r", 0)) == []
    assert _record(write_guard, "open", (str(tmp_path / "x"), "w", 0)) == []
