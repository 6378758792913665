"""Start-up cost of zomg against the floor every argparse CLI pays.

Runs, interleaved and several times each with the same interpreter:
``python -c pass``, ``python -c 'import argparse'`` (the floor), ``zomg --version``
and ``zomg box list``, and prints each median and its ratio to the floor.

    python bench/startup_bench.py [--runs 40]

zomg runs through its installed console script when there is one beside the
interpreter (what users run), else ``python -m zomg``. HOME and the XDG
directories point into a scratch directory holding three boxes; telemetry is
off here (its own cost is measured by bench/telemetry_bench.py).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def _zomg_command() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "zomg")
    if os.path.exists(script):
        return [sys.executable, script]
    return [sys.executable, "-m", "zomg"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="zomg-bench-")
    env = dict(os.environ, HOME=scratch, ZOMG_TELEMETRY="off")
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                     ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache")):
        env[var] = os.path.join(scratch, sub)
    zomg = _zomg_command()
    try:
        for name in ("alpha", "beta", "gamma"):
            subprocess.run([*zomg, "box", "create", name], env=env, check=True, capture_output=True)
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import argparse'": [sys.executable, "-c", "import argparse"],
            "zomg --version": [*zomg, "--version"],
            "zomg box list": [*zomg, "box", "list"],
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for cmd in cases.values():  # warm the page cache and bytecode
            subprocess.run(cmd, env=env, check=True, capture_output=True)
        for _ in range(args.runs):
            for name, cmd in cases.items():
                start = time.perf_counter()
                subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - start)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    floor = statistics.median(times["python -c 'import argparse'"])
    via = " ".join(os.path.basename(c) for c in zomg)
    print(f"interpreter: {sys.executable} ({sys.version.split()[0]}); zomg via: {via}")
    print(f"runs per case: {args.runs}, interleaved")
    print(f"{'case':32} {'median ms':>10} {'ratio to argparse floor':>24}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:32} {median * 1000:10.1f} {median / floor:24.2f}")
    print("goals: zomg box list <= 1.25x the floor, zomg --version <= 1.0x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
