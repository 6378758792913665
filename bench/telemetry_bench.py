"""What telemetry costs a cheap command: `zomg box list` with telemetry on against off.

For each endpoint (a healthy loopback receiver, one that accepts connections
and never answers, one that refuses them, and a slow one that answers after
0.8 s, longer than the 0.5 s exit grace) this runs `zomg box list` with
telemetry on (notice already shown, real thresholds: the due rule and the
backoff as shipped) and with ZOMG_TELEMETRY=off, interleaved, and prints the
median of each, their ratio, the paired ratio, the worst single run, the
total CPU time of all on-runs over all off-runs (the children's user +
system time, sends included: what telemetry costs a machine in aggregate),
and how many of the recorded events reached the receiver by the end of the
runs, and after one `zomg telemetry flush`.

    python bench/telemetry_bench.py [--runs 200]

Bytecode is cached in a scratch directory (PYTHONPYCACHEPREFIX), as it is for
an installed package, even when PYTHONDONTWRITEBYTECODE is set. Goals: the
paired ratio <= 1.05 for the healthy and the refusing endpoint, <= 1.10 for
the others; total CPU <= 1.10 for the healthy one; every event delivered
for the healthy and the slow one.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import _bench
import _repo_root  # noqa: F401 (puts the repository root on sys.path, for tests.support)

from tests.support.servers import Blackhole, Capture, refused_url  # the tests' own loopback endpoints


class _Refused:
    """Nothing listens at its address (connection refused)."""

    def __init__(self) -> None:
        self.url = refused_url()

    def close(self) -> None:
        pass


class _Slow(Capture):
    """Answers every request after 0.8 s: longer than the exit grace."""

    def __init__(self) -> None:
        super().__init__(delay=0.8)


def _started(endpoint) -> int:
    # A slow endpoint records a request only once it answers; count the connections it accepted.
    return len(endpoint.requests)


# (label, endpoint, how many send attempts reached it so far; None where that cannot be seen)
ENDPOINTS = (
    ("(a) healthy loopback receiver", Capture, _started),
    ("(b) accepts, never answers", Blackhole, lambda endpoint: len(endpoint.held)),
    ("(c) connection refused", _Refused, None),
    ("(d) slow: answers after 0.8 s", _Slow, None),
)


def _spooled(state_home: str) -> int:
    try:
        with open(os.path.join(state_home, "zomg", "telemetry", "spool.jsonl"), "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def main() -> int:
    parser = _bench.parser(__doc__)
    parser.add_argument("--runs", type=int, default=200, help="runs per mode and endpoint")
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="zomg-telemetry-bench-")
    base = dict(os.environ, HOME=scratch, PYTHONPYCACHEPREFIX=os.path.join(scratch, "pycache"),
                XDG_CONFIG_HOME=os.path.join(scratch, "config"), XDG_DATA_HOME=os.path.join(scratch, "data"),
                XDG_CACHE_HOME=os.path.join(scratch, "cache"), XDG_CONFIG_DIRS=os.path.join(scratch, "etc"),
                NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    for var in ("PYTHONDONTWRITEBYTECODE", "DO_NOT_TRACK", "ZOMG_TELEMETRY", "http_proxy", "https_proxy",
                "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        base.pop(var, None)
    zomg = [*_bench.zomg_command(), "box", "list"]
    results = []
    try:
        for name in ("alpha", "beta", "gamma"):
            subprocess.run([*_bench.zomg_command(), "box", "create", name], env=dict(base, ZOMG_TELEMETRY="off"),
                           check=True, capture_output=True)
        for index, (label, endpoint_class, count_attempts) in enumerate(ENDPOINTS):
            endpoint = endpoint_class()
            state = os.path.join(scratch, f"state-{index}")
            on = dict(base, ZOMG_TELEMETRY_ENDPOINT=endpoint.url, XDG_STATE_HOME=state)
            off = dict(on, ZOMG_TELEMETRY="off")
            # The first run shows the notice; it is not measured. Bytecode is cached as an installed
            # Python has it: zomg's by these runs, the standard library's sending modules by an import.
            subprocess.run(zomg, env=on, check=True, capture_output=True)
            subprocess.run(zomg, env=off, check=True, capture_output=True)
            subprocess.run([sys.executable, "-c", "import urllib.request, zomg.telemetry.sender"], env=off, check=True,
                           cwd=scratch)  # the installed zomg, not a source tree in the current directory
            times = {"on": [], "off": []}
            cpu = {"on": [], "off": []}
            sent = []  # per on-run: whether it started a send (None where the endpoint cannot tell)
            for _ in range(args.runs):
                for mode, env in (("off", off), ("on", on)):
                    attempts = count_attempts(endpoint) if count_attempts else None
                    wall, used = _bench.timed(zomg, env)
                    times[mode].append(wall)
                    cpu[mode].append(used)
                    if mode == "on":
                        sent.append(None if attempts is None else count_attempts(endpoint) > attempts)
            arrived = len(endpoint.unique_ids()) if isinstance(endpoint, Capture) else None
            left = _spooled(state)
            subprocess.run([*_bench.zomg_command(), "telemetry", "flush"], env=on, capture_output=True)
            if isinstance(endpoint, _Slow):
                time.sleep(1.0)  # let the answers to the last cut-short sends arrive
            flushed = len(endpoint.unique_ids()) if isinstance(endpoint, Capture) else None
            results.append((label, times, cpu, sent, count_attempts(endpoint) if count_attempts else None,
                            left, arrived, flushed))
            endpoint.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(_bench.interpreter())
    print(f"runs per mode and endpoint: {args.runs}, interleaved off/on; command: zomg box list (3 boxes)")
    header = (f"{'endpoint':30} {'off ms':>7} {'on ms':>7} {'ratio':>6} {'paired':>7} {'worst on':>9} "
              f"{'cpu med':>8} {'cpu total':>10} {'attempts':>9} {'arrived':>8} {'left':>5} {'+flush':>7}")
    print(header)
    for label, times, cpu, _sent, attempts, left, arrived, flushed in results:
        off_median, on_median = statistics.median(times["off"]), statistics.median(times["on"])
        cpu_ratio = statistics.median(cpu["on"]) / statistics.median(cpu["off"])
        cpu_total = sum(cpu["on"]) / sum(cpu["off"])
        paired = statistics.median(on / off for on, off in zip(times["on"], times["off"]))
        print(f"{label:30} {off_median * 1000:7.1f} {on_median * 1000:7.1f} {on_median / off_median:6.3f} "
              f"{paired:7.3f} {max(times['on']) * 1000:9.1f} {cpu_ratio:8.3f} {cpu_total:10.3f} "
              f"{'n/a' if attempts is None else attempts:>9} {'n/a' if arrived is None else arrived:>8} "
              f"{left:>5} {'n/a' if flushed is None else flushed:>7}")
    print(f"recorded events per endpoint: {args.runs} (one per on-run)")
    print("ratio: median wall time on / off; paired: the median of each on-run over the off-run just before it,")
    print("which cancels this machine's slow and fast spells; worst on: the slowest on-run (ms), bounded by the")
    print("0.5 s grace; cpu med: median child CPU (user+system) on / off; cpu total: the sum of the on-runs' child")
    print("CPU over the off-runs' (sends included); attempts: sends that reached the endpoint; arrived: distinct")
    print("recorded events the receiver accepted by the end of the runs; left: lines still spooled then (below")
    print("the due rule, or waiting for the backoff); +flush: distinct events accepted after `zomg telemetry flush`")
    print("goals: paired <= 1.05 for (a) and (c), <= 1.10 for (b) and (d); cpu total <= 1.10 for (a);")
    print("every event delivered for (a) and (d)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
