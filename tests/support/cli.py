"""Running zomg and reading or seeding the files telemetry keeps, for the telemetry tests."""
from __future__ import annotations

import json
import os
import subprocess
import sys


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def run(*argv: str, env: dict | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, with the test's environment plus ``env``."""
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "zomg", *argv], capture_output=True, text=True,
                          env=full, cwd=cwd, timeout=60)


def state_dir() -> str:
    from zomg import paths

    return os.path.join(paths.state_dir(), "telemetry")


def spooled() -> list[dict]:
    """The events waiting in the spool."""
    from zomg.telemetry.spool_edit import parse

    try:
        with open(os.path.join(state_dir(), "spool.jsonl"), "rb") as f:
            return [json.loads(parse(line)[3]) for line in f.read().splitlines() if line]
    except FileNotFoundError:
        return []


def user_config() -> dict:
    from zomg.telemetry import settings

    try:
        with open(settings.user_path(), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def write_user_config(data: dict) -> None:
    from zomg.telemetry import settings

    os.makedirs(os.path.dirname(settings.user_path()), exist_ok=True)
    with open(settings.user_path(), "w", encoding="utf-8") as f:
        json.dump(data, f)


def notice_seen(installation_id: str | None = None) -> None:
    """Record that this user has seen the current notice (the usual state after the first run)."""
    from zomg import telemetry
    from zomg.telemetry import files

    write_user_config({"notice_version": telemetry.NOTICE_VERSION,
                       "installation_id": installation_id or files.uuid4()})


def write_system_config(data: object) -> str:
    from zomg import paths

    directory = paths.system_config_dirs()[0]
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "telemetry.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write(data if isinstance(data, str) else json.dumps(data))
    return path


def files_under(root: str) -> set[str]:
    found = set()
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(directory, name), root))
    return found


def unprivileged():
    """How to run zomg as a user the kernel holds to file permissions: (python, uid, gid), or None.

    Root bypasses permission checks, so a test of what an unreadable file does
    must drop to ``nobody``; a test suite run by any other user is already
    held to them (uid None: run as is). None when root cannot drop to a user
    that can run Python and import zomg (the caller skips).
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return sys.executable, None, None
    import pwd

    try:
        user = pwd.getpwnam("nobody")
    except KeyError:
        return None
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            probe = subprocess.run(
                [python, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import zomg.cli; "
                 "assert sys.version_info >= (3, 9)", _package_parent()],
                user=user.pw_uid, group=user.pw_gid, extra_groups=[], cwd="/", capture_output=True,
            )
        except OSError:  # it cannot even run that interpreter (a home it cannot enter)
            continue
        if probe.returncode == 0:
            return python, user.pw_uid, user.pw_gid
    return None


def _package_parent() -> str:
    import zomg

    return os.path.dirname(os.path.dirname(os.path.abspath(zomg.__file__)))


def run_as(who, home: str, *argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run zomg as ``who`` (from ``unprivileged``) with HOME ``home`` and the XDG directories under it."""
    python, uid, gid = who
    full = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    full.update(HOME=home, PYTHONPATH=_package_parent(), **(env or {}))
    extra = {} if uid is None else {"user": uid, "group": gid, "extra_groups": []}
    return subprocess.run([python, "-m", "zomg", *argv], capture_output=True, text=True, env=full, cwd=home,
                          timeout=60, **extra)


def shared_home(who) -> str:
    """A fresh HOME that ``who`` owns, in a directory it can reach (the caller removes it)."""
    import tempfile

    top = tempfile.mkdtemp(prefix="zomg-unprivileged-")
    home = os.path.join(top, "home")
    os.mkdir(home, 0o700)
    if who[1] is not None:
        os.chmod(top, 0o755)
        os.chown(home, who[1], who[2])
    return home
