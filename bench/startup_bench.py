"""Start-up cost of zomg against the floor every argparse CLI pays, per interpreter.

For each interpreter, runs interleaved, round by round: ``python -c pass``,
``python -c 'import argparse'`` (the floor), ``zomg --version`` and
``zomg box list``. Prints, per case, the median wall time and the median CPU
time (user + system of the child) and, as the goal's figure, the median of
the per-round ratios to the floor run in the same round (paired, so that a
slow moment of the machine weighs on both sides alike).

    python bench/startup_bench.py [--runs 40] [--instructions] [--python PATH ...]

``--instructions`` adds each case's instruction count under
``valgrind --tool=callgrind`` (one run each, PYTHONHASHSEED=0): unlike time,
it repeats exactly on a busy machine, so its ratios show small changes.

``--python`` (repeatable) names interpreters that have zomg installed (a
venv's python, say); the default is the one running this script. zomg runs
through the installed console script beside the interpreter when there is
one (what users run), else ``python -m zomg``. HOME and the XDG directories
point into a scratch directory holding three boxes; telemetry is off here
(its own cost is measured by bench/telemetry_bench.py). Bytecode is cached in
that directory (PYTHONPYCACHEPREFIX) even when PYTHONDONTWRITEBYTECODE is set.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import _bench

GOALS = {"zomg box list": 1.25, "zomg --version": 1.0}
FLOOR = "python -c 'import argparse'"


def measure(python: str, runs: int, instructions: bool = False) -> bool:
    """Print one interpreter's figures; return whether both goals are met."""
    scratch = tempfile.mkdtemp(prefix="zomg-bench-")
    # Bytecode is cached (in the scratch directory), as it is for an installed package, even where
    # PYTHONDONTWRITEBYTECODE is set: otherwise every run would compile zomg and count that as start-up.
    env = dict(os.environ, HOME=scratch, ZOMG_TELEMETRY="off", PYTHONPYCACHEPREFIX=os.path.join(scratch, "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                     ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache")):
        env[var] = os.path.join(scratch, sub)
    zomg = _bench.zomg_command(python)
    cases = {
        "python -c pass": [python, "-c", "pass"],
        FLOOR: [python, "-c", "import argparse"],
        "zomg --version": [*zomg, "--version"],
        "zomg box list": [*zomg, "box", "list"],
    }
    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    try:
        for name in ("alpha", "beta", "gamma"):
            subprocess.run([*zomg, "box", "create", name], env=env, check=True, capture_output=True)
        for cmd in cases.values():  # warm the page cache and bytecode
            subprocess.run(cmd, env=env, check=True, capture_output=True)
        for _ in range(runs):
            for name, cmd in cases.items():
                w, c = _bench.timed(cmd, env)
                wall[name].append(w)
                cpu[name].append(c)
        counts = {name: _bench.instructions(cmd, env) for name, cmd in cases.items()} if instructions else {}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                             text=True, check=True).stdout.strip()
    print(_bench.interpreter(python, version))
    print(f"runs per case: {runs}, interleaved round by round")
    print(f"  {'case':30} {'wall ms':>8} {'CPU ms':>8} {'paired wall ratio':>18} {'CPU ratio':>10}"
          + (f" {'instructions':>14} {'ratio':>6}" if counts else ""))
    met = True
    for name in cases:
        paired = statistics.median(w / f for w, f in zip(wall[name], wall[FLOOR]))
        cpu_ratio = statistics.median(cpu[name]) / statistics.median(cpu[FLOOR])
        goal = GOALS.get(name)
        verdict = "" if goal is None else f"  goal <= {goal:.2f}: {'met' if paired <= goal else 'NOT met'}"
        met = met and (goal is None or paired <= goal)
        counted = f" {counts[name]:14,} {counts[name] / counts[FLOOR]:6.3f}" if counts else ""
        print(f"  {name:30} {statistics.median(wall[name]) * 1000:8.1f} {statistics.median(cpu[name]) * 1000:8.1f}"
              f" {paired:18.3f} {cpu_ratio:10.3f}{counted}{verdict}")
    return met


def main() -> int:
    parser = _bench.parser(__doc__)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--instructions", action="store_true", help="also count instructions under callgrind")
    parser.add_argument("--python", action="append", help="an interpreter with zomg installed (repeatable)")
    args = parser.parse_args()
    results = [measure(python, args.runs, args.instructions) for python in (args.python or [sys.executable])]
    print("goals: zomg box list <= 1.25x the floor, zomg --version <= 1.0x (paired wall ratio):",
          "all met" if all(results) else "NOT all met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
