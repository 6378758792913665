"""The recorded path's walk through zomg's modules, and what recording costs a command in instructions.

The walk: one recorded `zomg box list` in a fresh HOME (notice already
seen, an endpoint on this machine that nothing is sent to, since one event
is not due) runs with a profile hook set for the two calls ``zomg.cli``
makes to telemetry (``telemetry.start`` and ``Session.finish``). Every call
and return that moves execution from one of zomg's modules to another is a
step; the script prints, for each of the two calls and for both together,
the stops (runs of execution in one module), the rooms (distinct modules),
the returns (stops in a module already left once) and how often each module
was entered, then the walk itself. Code outside zomg (the standard library)
is passed through: a call into it and back is no step.

    python bench/telemetry_walk_bench.py [--instructions]

``--instructions`` adds the recorded path's cost: `zomg box list` with
telemetry on (as above) and off (ZOMG_TELEMETRY=off), each counted once
under ``valgrind --tool=callgrind`` (PYTHONHASHSEED=0, bytecode cached
first), and their ratio. docs/architecture.md says what the counts mean.
The goal's figure is bench/telemetry_bench.py's paired wall ratio
(<= 1.05); the instruction ratio is its repeatable stand-in.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import _bench

# Runs in the child: sets the hook around telemetry's two calls, runs zomg, prints the walks as JSON.
_DRIVER = r"""
import json, sys
import zomg.telemetry as telemetry
from zomg.cli import main

walks = {"start": [], "finish": []}

def _module(frame):
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name == "zomg" or name.startswith("zomg."):
            return name
        frame = frame.f_back
    return None

def _hook_into(walk):
    def hook(frame, event, arg):
        if event == "call":
            here = frame.f_globals.get("__name__", "")
            if not (here == "zomg" or here.startswith("zomg.")):
                return  # the standard library: passed through
            mod = here
        elif event == "return":
            here = frame.f_globals.get("__name__", "")
            if not (here == "zomg" or here.startswith("zomg.")):
                return
            mod = _module(frame.f_back)
            if mod is None:
                return
        else:
            return
        if not walk or walk[-1] != mod:
            walk.append(mod)
    return hook

def traced(name, fn):
    def wrapper(*args, **kwargs):
        walk = walks[name]
        walk.append("zomg.cli")
        sys.setprofile(_hook_into(walk))
        try:
            return fn(*args, **kwargs)
        finally:
            sys.setprofile(None)
    return wrapper

real_start = telemetry.start

def start(*args, **kwargs):
    session = traced("start", real_start)(*args, **kwargs)
    if session is not None:
        session.finish = traced("finish", session.finish)
    return session

telemetry.start = start
code = main(sys.argv[1:])
sys.stdout.write("\n" + json.dumps(walks) + "\n")
sys.exit(code)
"""


def _fresh_home() -> tuple[str, dict]:
    scratch = tempfile.mkdtemp(prefix="zomg-walk-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOMG_", "XDG_")) and k != "DO_NOT_TRACK"}
    env["HOME"] = scratch
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                     ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache")):
        env[var] = os.path.join(scratch, sub)
    env["XDG_CONFIG_DIRS"] = os.path.join(scratch, "etc-xdg")  # no packager's file
    env["ZOMG_TELEMETRY_ENDPOINT"] = "http://127.0.0.1:9/v1/events"  # one event is never due: nothing is sent
    env["PYTHONPYCACHEPREFIX"] = os.path.join(scratch, "pycache")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    config = os.path.join(scratch, "config", "zomg")
    os.makedirs(config)
    notice = subprocess.run([sys.executable, "-c", "import zomg.telemetry as t; print(t.NOTICE_VERSION)"],
                            env=env, check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(config, "telemetry.json"), "w", encoding="utf-8") as f:
        json.dump({"notice_version": int(notice), "installation_id": "6f1d2c3e-1b2a-4c5d-8e9f-0a1b2c3d4e5f"}, f)
    return scratch, env


def _short(module: str) -> str:
    return module[len("zomg."):] if module.startswith("zomg.") else module


def _summary(walk: list[str]) -> str:
    entered: dict[str, int] = {}
    returns = 0
    left: set[str] = set()
    previous = None
    for module in walk:
        if module in left:
            returns += 1
        entered[module] = entered.get(module, 0) + 1
        if previous is not None:
            left.add(previous)
        previous = module
    most = ", ".join(f"{_short(m)} {n}" for m, n in sorted(entered.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{len(walk)} stops in {len(entered)} rooms, {returns} returns (entered: {most})"


def walk() -> None:
    scratch, env = _fresh_home()
    try:
        for _ in range(2):  # the first run writes the spool directory and caches bytecode; the second is measured
            done = subprocess.run([sys.executable, "-c", _DRIVER, "box", "list"], env=env, capture_output=True,
                                  text=True)
        if done.returncode != 0:
            raise SystemExit(f"zomg box list failed: {done.stderr.strip()}")
        walks = json.loads(done.stdout.splitlines()[-1])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("the recorded path's walk, one `zomg box list` (cli counts as a stop where each call begins):")
    for name in ("start", "finish"):
        print(f"  {name:8} {_summary(walks[name])}")
    both = walks["start"] + walks["finish"]
    print(f"  {'both':8} {_summary(both)}")
    for name in ("start", "finish"):
        print(f"  walk of {name}: " + " > ".join(_short(m) for m in walks[name]))


def instructions() -> None:
    scratch, env = _fresh_home()
    cmd = [*_bench.zomg_command(), "box", "list"]
    off = dict(env, ZOMG_TELEMETRY="off")
    try:
        for _ in range(2):  # bytecode cached, spool directory made
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            subprocess.run(cmd, env=off, check=True, capture_output=True)
        spool = os.path.join(scratch, "state", "zomg", "telemetry", "spool.jsonl")
        counted_on = _bench.instructions(cmd, env)
        counted_off = _bench.instructions(cmd, off)
        with open(spool, "rb") as f:
            events = sum(1 for line in f if line.strip())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("instructions of `zomg box list` (callgrind, one run each):")
    print(f"  telemetry on  {counted_on:14,}  ({events} events spooled in all)")
    print(f"  telemetry off {counted_off:14,}")
    print(f"  recording costs {counted_on - counted_off:,} more: ratio {counted_on / counted_off:.3f}")


def main() -> int:
    parser = _bench.parser(__doc__)
    parser.add_argument("--instructions", action="store_true", help="also count instructions under callgrind")
    args = parser.parse_args()
    walk()
    if args.instructions:
        instructions()
    return 0


if __name__ == "__main__":
    sys.exit(main())
