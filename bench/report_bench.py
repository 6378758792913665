"""The usage store and report at scale: ingest events/s, then each report format's wall time and peak memory.

Generates realistic events (tests/support/usage_data.py: skewed command
use, CI share, errors, versions, deployments) into a file first, in about
time order as a receiver gets them, then writes them into a fresh store the
way the receiver does: ``Store.write_lines`` with one client batch (100
events, the schema's largest) per call, each its own transaction. Only those
calls are timed (wall and CPU). Then it runs ``python -m zomg.receiver
report`` once per format over the whole period, each in a child process,
and reads its wall time, CPU time and peak RSS (``os.wait4``).

    python bench/report_bench.py [--events 5000000] [--installations 20000] [--keep DIR]

Goals (a 2-core machine): ingest >= 100,000 events/s; each report <= 20 s and
<= 300 MB peak memory. The machine's load average is printed beside the
figures: on a shared machine, wall times grow with it; CPU times less so.
"""
from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time

import _bench
import _repo_root  # noqa: F401 (puts the repository root on sys.path, for tests.support)

BATCH = 100  # events per receiver request at most (schema.MAX_BATCH)
DAYS = 30
GOAL_INGEST = 100_000
GOAL_REPORT_SECONDS = 20.0
GOAL_REPORT_MB = 300


def generate(count: int, installations: int, path: str) -> int:
    """Write ``count`` cli events and the deployments' metrics, as the receiver's lines, to ``path``."""
    from tests.support.usage_data import UsageModel
    from zomg.receiver.fastpath import encode_event

    model = UsageModel(seed=20, installations=installations, deployments=max(1, installations // 20), days=DAYS)
    deployments = list(model.deployment_events(per_deployment=DAYS))
    deployments.sort(key=lambda event: event["timestamp"])
    step = max(1, count // max(1, len(deployments)))
    written = 0
    with open(path, "wb") as out:
        for index, event in enumerate(model.cli_events(count)):
            out.write(encode_event(event).encode("ascii") + b"\n")
            written += 1
            if index % step == 0 and deployments:
                out.write(encode_event(deployments.pop(0)).encode("ascii") + b"\n")
                written += 1
    return written


def ingest(store_path: str, lines_path: str) -> tuple[int, float, float]:
    """Write the lines into a new store, one receiver batch per call; (events, wall s, CPU s) of the calls."""
    from zomg.receiver.store import Store

    store = Store(store_path)
    events, wall, cpu = 0, 0.0, 0.0
    with open(lines_path, "rb") as source:
        while True:
            lines = b"".join(itertools.islice(source, BATCH))
            if not lines:
                break
            started, started_cpu = time.perf_counter(), time.process_time()
            store.write_lines(lines)
            wall += time.perf_counter() - started
            cpu += time.process_time() - started_cpu
            events += lines.count(b"\n")
    store.close()
    return events, wall, cpu


def report(store_path: str, form: str, output: str) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one report in a child process."""
    argv = [sys.executable, "-m", "zomg.receiver", "report", store_path, "--since", "2026-03-01",
            "--until", "2026-03-31", "--format", form, "--output", output]
    started = time.perf_counter()
    child = subprocess.Popen(argv)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"report --format {form} failed ({child.returncode})")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> int:
    parser = _bench.parser(__doc__)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--installations", type=int, default=20_000)
    parser.add_argument("--keep", metavar="DIR", help="keep the store and the reports in DIR")
    args = parser.parse_args()
    workdir = args.keep or tempfile.mkdtemp(prefix="zomg-report-bench-")
    os.makedirs(workdir, exist_ok=True)
    store_path = os.path.join(workdir, "usage.sqlite3")
    lines_path = os.path.join(workdir, "events.jsonl")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(store_path + suffix):
            os.remove(store_path + suffix)
    try:
        print(f"generating {args.events:,} events of {args.installations:,} installations ...", flush=True)
        generate(args.events, args.installations, lines_path)
        print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)", flush=True)
        events, wall, cpu = ingest(store_path, lines_path)
        os.remove(lines_path)
        rate = events / wall
        verdict = "met" if rate >= GOAL_INGEST else "MISSED"
        print(f"ingest: {events:,} events in {wall:.1f} s wall, {cpu:.1f} s CPU: {rate:,.0f} events/s, "
              f"{events / cpu:,.0f} per CPU second (goal >= {GOAL_INGEST:,}/s: {verdict}); "
              f"store {os.path.getsize(store_path) / 2**20:.0f} MB; load {os.getloadavg()[0]:.2f}", flush=True)
        for form in ("text", "json", "html"):
            wall, cpu, peak = report(store_path, form, os.path.join(workdir, f"report.{form}"))
            met = wall <= GOAL_REPORT_SECONDS and peak <= GOAL_REPORT_MB
            print(f"report --format {form}: {wall:.1f} s wall, {cpu:.1f} s CPU, peak {peak:.0f} MB "
                  f"(goal <= {GOAL_REPORT_SECONDS:.0f} s, <= {GOAL_REPORT_MB} MB: {'met' if met else 'MISSED'}); "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
