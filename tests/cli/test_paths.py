import os
import sys

import pytest

from zomg import paths


@pytest.mark.parametrize(
    "func,var", [(paths.config_dir, "XDG_CONFIG_HOME"), (paths.state_dir, "XDG_STATE_HOME"),
                 (paths.data_dir, "XDG_DATA_HOME")]
)
def test_xdg_variables_are_read_at_call_time(func, var, monkeypatch, tmp_path):
    monkeypatch.setenv(var, str(tmp_path / "one"))
    assert func() == str(tmp_path / "one" / "zomg")
    monkeypatch.setenv(var, str(tmp_path / "two"))
    assert func() == str(tmp_path / "two" / "zomg")


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="XDG defaults are the Linux/Unix convention")
@pytest.mark.parametrize(
    "func,var,default",
    [(paths.config_dir, "XDG_CONFIG_HOME", ".config"), (paths.state_dir, "XDG_STATE_HOME", ".local/state"),
     (paths.data_dir, "XDG_DATA_HOME", ".local/share")],
)
@pytest.mark.parametrize("value", [None, "", "relative/dir"])
def test_unset_empty_or_relative_xdg_falls_back_to_home(func, var, default, value, monkeypatch, isolated_home):
    if value is None:
        monkeypatch.delenv(var)
    else:
        monkeypatch.setenv(var, value)
    assert func() == os.path.join(str(isolated_home), default, "zomg")


def test_macos_and_windows_conventions(monkeypatch, isolated_home):
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(var)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert paths.config_dir() == os.path.join(str(isolated_home), "Library", "Application Support", "zomg")
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("APPDATA", "/appdata")
    monkeypatch.setenv("LOCALAPPDATA", "/local")
    assert paths.config_dir() == os.path.join("/appdata", "zomg")
    assert paths.data_dir() == os.path.join("/local", "zomg")


def test_system_config_dirs(monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_DIRS", f"/opt/a{os.pathsep}relative{os.pathsep}/opt/b")
    assert paths.system_config_dirs() == ["/opt/a/zomg", "/opt/b/zomg"]
    monkeypatch.delenv("XDG_CONFIG_DIRS")
    assert paths.system_config_dirs() == ["/etc/xdg/zomg"]


def test_nothing_is_read_from_the_environment_at_import():
    import ast
    import pathlib

    for source in pathlib.Path(paths.__file__).parent.rglob("*.py"):
        tree = ast.parse(source.read_text())
        for node in tree.body:  # module level statements only
            text = ast.unparse(node) if hasattr(ast, "unparse") else ""
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.Expr)):
                assert "os.environ" not in text and "getenv" not in text, f"{source}: {text}"
