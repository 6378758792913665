"""Whether events survive slow and unreachable receivers: loss and copies, counted by event_id at the receiver.

Two scenarios, each a run of `zomg box list` invocations one after another
(telemetry on, notice already shown, the shipped due rule, bounds and 0.5 s
exit grace), then one `zomg telemetry flush`:

(A) the receiver is unreachable for the first 100 runs (its accept queue is
    full, so connects hang as behind a firewall that drops packets), then
    answers every request after 0.6 s (longer than the grace) for 1,000 runs;
(B) the receiver answers every request after 0.4 s, for 1,000 runs;
(C) the receiver answers every request after 0.6 s (as a link with 300 ms
    each way would), for 1,000 runs made 10 at a time (``--runs-c 0`` skips
    it). For the packet loss of that link, run the bench inside a network
    namespace that drops a tenth of its loopback packets: docs/telemetry.md
    ("Slow links") gives the commands.

Printed per scenario: events recorded, distinct events the receiver accepted
by the end of the runs and after the flush, events lost (recorded, never
accepted; of them, how many their run never recorded: an event_id found
neither in the spool after any run nor at the receiver), the most copies of
one event that arrived and how many events arrived once, twice or more, the attempts `zomg telemetry status` counts as
cut short by the exit grace, and the lines left spooled. Goals: 0 lost and
at most 2 copies of any event.

    python bench/telemetry_delivery_bench.py [--runs-a-down 100] [--runs-a-up 1000] [--runs-b 1000] [--runs-c 1000]

Run it from an installed zomg (see bench/telemetry_bench.py); it takes about
a few minutes with the defaults, most of it the 0.5 s grace of runs whose send is under way.
"""
from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import _bench
import _repo_root  # noqa: F401 (puts the repository root on sys.path, for tests.support)

from tests.support.servers import Capture, Unanswered  # the tests' own loopback endpoints


def _environment(scratch: str, name: str) -> dict:
    base = dict(os.environ, HOME=os.path.join(scratch, name), NO_PROXY="127.0.0.1,localhost",
                no_proxy="127.0.0.1,localhost")
    for var in list(base):
        if var.startswith("XDG_") or var in ("DO_NOT_TRACK", "ZOMG_TELEMETRY", "http_proxy", "https_proxy",
                                            "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
            base.pop(var)
    os.makedirs(base["HOME"])
    return base


def _spool_ids(env: dict) -> set[bytes]:
    """The event_ids in the spool now (read without the lock: a torn last line only hides one until later)."""
    try:
        with open(os.path.join(env["HOME"], ".local", "state", "zomg", "telemetry", "spool.jsonl"), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return set()
    key = b'"event_id":"'
    return {line[line.find(key) + len(key):line.find(key) + len(key) + 36] for line in data.split(b"\n")
            if key in line}


def _runs(env: dict, count: int, at_once: int = 1, seen: set | None = None) -> None:
    """``count`` runs; ``seen`` gathers every event_id found in the spool after each run (were they recorded?)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> None:
        subprocess.run([*_bench.zomg_command(), "box", "list"], env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        if seen is not None:
            seen.update(_spool_ids(env))

    with ThreadPoolExecutor(at_once) as pool:
        list(pool.map(one, range(count)))


def _first_run(env: dict) -> None:
    # The run that shows the notice records nothing: it is not one of the counted runs.
    subprocess.run([*_bench.zomg_command(), "box", "list"], env=env, check=True, capture_output=True)


def _status(env: dict) -> dict:
    out = subprocess.run([*_bench.zomg_command(), "telemetry", "status", "--json"], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def _spooled(env: dict) -> int:
    try:
        with open(os.path.join(env["HOME"], ".local", "state", "zomg", "telemetry", "spool.jsonl"), "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def _copies(receiver: Capture) -> collections.Counter:
    return collections.Counter(e["event_id"] for e in receiver.events())


def _report(label: str, recorded: int, by_end: int, receiver: Capture, cut_short: int, left: int,
            seen: set) -> None:
    copies = _copies(receiver)
    # A lost event either never reached the spool (the run did not record it) or left it unreceived.
    unrecorded = recorded - len(seen | {i.encode() for i in copies})
    histogram = collections.Counter(copies.values())
    shown = ", ".join(f"{n}x: {histogram[n]}" for n in sorted(histogram))
    print(f"{label}")
    print(f"  recorded {recorded}; accepted by the end of the runs {by_end}; after flush {len(copies)}; "
          f"lost {recorded - len(copies)} (of them never recorded by their run: {unrecorded})")
    print(f"  most copies of one event: {max(copies.values()) if copies else 0} ({shown}); "
          f"attempts cut short: {cut_short}; lines left spooled: {left}")


def main() -> int:
    parser = _bench.parser(__doc__)
    parser.add_argument("--runs-a-down", type=int, default=100)
    parser.add_argument("--runs-a-up", type=int, default=1000)
    parser.add_argument("--runs-b", type=int, default=1000)
    parser.add_argument("--runs-c", type=int, default=1000)
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="zomg-delivery-bench-")
    started = time.monotonic()
    try:
        # (A) unreachable, then slow
        down = Unanswered()
        port = down.sock.getsockname()[1]
        env = _environment(scratch, "a")
        env["ZOMG_TELEMETRY_ENDPOINT"] = down.url
        _first_run(env)
        seen: set = set()
        _runs(env, args.runs_a_down, seen=seen)
        down.close()
        receiver = Capture(delay=0.6, port=port)
        _runs(env, args.runs_a_up, seen=seen)
        by_end = len(receiver.unique_ids())
        cut_short = _status(env)["attempts_cut_short"]
        subprocess.run([*_bench.zomg_command(), "telemetry", "flush"], env=env, capture_output=True)
        time.sleep(1.0)  # answers to the last cut-short sends
        _report(f"(A) unreachable for {args.runs_a_down} runs, then answering after 0.6 s for {args.runs_a_up}",
                args.runs_a_down + args.runs_a_up, by_end, receiver, cut_short, _spooled(env), seen)
        receiver.close()

        for label, key, delay, count, at_once in (
                (f"(B) answering after 0.4 s for {args.runs_b} runs", "b", 0.4, args.runs_b, 1),
                (f"(C) answering after 0.6 s for {args.runs_c} runs, 10 at a time", "c", 0.6, args.runs_c, 10)):
            if not count:
                continue
            receiver = Capture(delay=delay)
            env = _environment(scratch, key)
            env["ZOMG_TELEMETRY_ENDPOINT"] = receiver.url
            _first_run(env)
            seen = set()
            _runs(env, count, at_once, seen)
            by_end = len(receiver.unique_ids())
            cut_short = _status(env)["attempts_cut_short"]
            subprocess.run([*_bench.zomg_command(), "telemetry", "flush"], env=env, capture_output=True)
            time.sleep(1.0)
            _report(label, count, by_end, receiver, cut_short, _spooled(env), seen)
            receiver.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"interpreter: {sys.executable} ({sys.version.split()[0]}); {time.monotonic() - started:.0f} s in all")
    print("goals: lost 0 and at most 2 copies of any event, in every scenario")
    return 0


if __name__ == "__main__":
    sys.exit(main())
