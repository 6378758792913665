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
