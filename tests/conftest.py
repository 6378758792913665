"""Every test runs with HOME and all XDG directories inside its own temp dir.

An audit hook watches every file-system write made by the test process; a
test that writes outside the temp dirs (or pytest's and hypothesis's own
caches) fails, so no test can touch the real home, /etc or the checkout.
"""
from __future__ import annotations

import os
import sys
import tempfile

import pytest
from hypothesis import settings

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# event -> (how many leading path arguments, positions of dir_fd arguments)
_PATH_EVENTS = {
    "os.mkdir": (1, (2,)),
    "os.remove": (1, (1,)),
    "os.rmdir": (1, (1,)),
    "os.rename": (2, (2, 3)),
    "os.symlink": (2, (2,)),
    "os.link": (2, (2, 3)),
    "os.chmod": (1, (2,)),
    "os.utime": (1, (3,)),
    "os.truncate": (1, ()),
    "shutil.rmtree": (1, (1,)),
}
_guard = {"active": False, "allowed": (), "violations": [], "outside_dirs": []}
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)

# Hypothesis would keep an example database and a character-map cache in the
# working directory: tests write only to temp dirs.
settings.register_profile("zomg", database=None)
settings.load_profile("zomg")
_HYPOTHESIS_DIR = tempfile.mkdtemp(prefix="zomg-tests-hypothesis-")
os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = _HYPOTHESIS_DIR

# Environment a user may have that would change zomg's behaviour under test.
_CLEARED = (
    "DO_NOT_TRACK",
    "ZOMG_TELEMETRY",
    "ZOMG_TELEMETRY_ENDPOINT",
    "ZOMG_DEBUG",
    "POSTHOG_PROJECT_API_KEY",
    "POSTHOG_HOST",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "all_proxy",
)


def _allowed(path: str) -> bool:
    path = os.path.realpath(os.path.abspath(path))
    if path == os.devnull:
        return True
    return any(path == root or path.startswith(root + os.sep) for root in _guard["allowed"])


def _audit(event: str, args: tuple) -> None:
    if not _guard["active"]:
        return
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS
        )
        if mode is None and isinstance(flags, int) and flags & _DIRECTORY and isinstance(path, (str, bytes)):
            # zomg opens files relative to a directory it opened (dir_fd): the open event of
            # such a file names it only; it is allowed when every directory opened was.
            if not _allowed(os.fsdecode(path)):
                _guard["outside_dirs"].append(os.fsdecode(path))
            return
        if writing and isinstance(path, (str, bytes)) and os.sep not in os.fsdecode(path):
            if _guard["outside_dirs"]:
                _guard["violations"].append((event, f"{path} in one of {_guard['outside_dirs'][:3]}"))
            return
        targets = [path] if writing else []
    else:
        count, fd_positions = _PATH_EVENTS.get(event, (0, ()))
        targets = list(args[:count])
        if any(i < len(args) and isinstance(args[i], int) and args[i] >= 0 for i in fd_positions):
            targets = []  # relative to an open directory (shutil.rmtree): its own event was checked
    for target in targets:
        if isinstance(target, bytes):
            target = os.fsdecode(target)
        # Python's own bytecode cache is written wherever a module is imported from.
        if isinstance(target, str) and "__pycache__" not in target and not _allowed(target):
            _guard["violations"].append((event, target))


sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch, request):
    """Point HOME and every XDG directory into tmp_path; fail on writes elsewhere."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CACHE_HOME", ".cache"),
    ):
        monkeypatch.setenv(var, str(home / sub))
    system = tmp_path / "etc-xdg"
    system.mkdir()
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(system))
    for var in _CLEARED:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    # Most tests are about something else: telemetry tests switch it back on themselves.
    if "telemetry_on" not in request.keywords:
        monkeypatch.setenv("ZOMG_TELEMETRY", "off")
    rootdir = str(request.config.rootpath)
    _guard["allowed"] = tuple(
        os.path.realpath(p)
        for p in (
            tempfile.gettempdir(),
            str(tmp_path),
            os.path.join(rootdir, ".pytest_cache"),
        )
    )
    _guard["violations"] = []
    _guard["active"] = True
    yield home
    _guard["active"] = False
    violations = _guard["violations"]
    _guard["violations"] = []
    if violations:
        pytest.fail(f"test wrote outside its temp dirs: {violations[:5]}")


def pytest_unconfigure(config):
    import shutil

    shutil.rmtree(_HYPOTHESIS_DIR, ignore_errors=True)


def pytest_configure(config):
    config.addinivalue_line("markers", "telemetry_on: do not set ZOMG_TELEMETRY=off for this test")


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    def __repr__(self) -> str:
        return f"Result(code={self.code!r}, out={self.out!r}, err={self.err!r})"


@pytest.fixture
def zomg(capsys):
    """Run ``zomg.cli.main`` in-process: ``zomg("box", "list")`` -> Result."""
    from zomg.cli import main

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def write_guard():
    """The write guard's state and hook, for the tests that check the guard itself."""
    return _guard, _audit
