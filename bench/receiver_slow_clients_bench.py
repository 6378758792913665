"""Slow and idle clients against the receiver: gunicorn alone vs the production deployment (nginx in front).

Both deployments run at once, each with the shipped configuration and
forwarding off (events appended to a scratch file):

(a) ``gunicorn -c python:zomg.receiver.gunicorn_conf`` alone (before
    scripts/receiver-stack, the documented production command),
(b) ``scripts/receiver-stack``: nginx in front of the same gunicorn.

Each gets its own load, held for the whole run: ``--idle`` connections
(default 1,000) that send nothing, and ``--slow`` slowloris connections
(default 300) that announce a 5,000-byte body and send it a byte every
0.5 s; a connection the server closes is opened again at once. Then, round
after round, each deployment in turn is asked for ``GET /healthz`` and a
valid ``POST /v1/events`` on fresh connections (30 s client timeout), so the
two are measured side by side under the same machine load. Figures per
deployment: median, p99 and worst answer time, answers over 500 ms, and
failures (no answer within 30 s, or not 200/202), and the CPU seconds its
processes used during the rounds. Goal for (b): every answer, the worst
under 500 ms.

Needs nginx (Debian: ``apt-get install nginx-light``) and gunicorn (the test
extra). Run from the repository root, as root or with a descriptor limit of
at least 8192 (``ulimit -n``):

    python bench/receiver_slow_clients_bench.py [--rounds 20] [--idle 1000] [--slow 300]
"""
from __future__ import annotations

import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import _bench
import _repo_root  # noqa: F401  (puts the repository root on sys.path)

from tests.support.events import cli_event
from tests.support.servers import processes, slow_request_head, trickle_a_byte
from zomg.telemetry import schema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 30.0
GOAL_SECONDS = 0.5


class Held:
    """``idle`` silent connections and ``slow`` trickling ones to ``address``, reopened whenever closed."""

    def __init__(self, address: tuple, idle: int, slow: int) -> None:
        self.address = address
        self.idle = [self._open(False) for _ in range(idle)]
        self.slow = [self._open(True) for _ in range(slow)]
        self.reopened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, daemon=True)
        self._thread.start()

    def _open(self, slow: bool) -> socket.socket | None:
        try:
            sock = socket.create_connection(self.address, timeout=5)
            if slow:
                sock.sendall(slow_request_head(5000))
            sock.setblocking(False)
            return sock
        except OSError:
            return None

    def _closed(self, sock: socket.socket | None) -> bool:
        if sock is None:
            return True
        try:
            return sock.recv(65536) == b""  # an answer (a 400) counts as open until the close
        except BlockingIOError:
            return False  # nothing to read: still open
        except OSError:
            return True

    def _keep(self) -> None:
        while not self._stop.wait(0.5):
            for group, slow in ((self.idle, False), (self.slow, True)):
                for index, sock in enumerate(group):
                    if self._closed(sock):
                        if sock is not None:
                            sock.close()
                        group[index] = self._open(slow)  # a new slow one has sent its first byte
                        self.reopened += 1
            trickle_a_byte(self.slow)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.idle + self.slow:
            if sock is not None:
                sock.close()


def start(argv: list, ready: str, env: dict) -> tuple:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    for raw in proc.stderr:
        found = re.search(ready, raw.decode("utf-8", "replace"))
        if found:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, found.group(1)
    raise SystemExit(f"could not start {argv}")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and every process under it."""
    table = processes()
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += table.get(current, (0, "", 0.0))[2]
        todo += [child for child, (parent, _, _) in table.items() if parent == current]
    return total


def timed(request: urllib.request.Request, opener: object) -> tuple:
    started = time.perf_counter()
    try:
        with opener.open(request, timeout=TIMEOUT) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError:
        status = None
    return time.perf_counter() - started, status


def report(name: str, times: list, failures: int, cpu: float) -> None:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")
    over = sum(1 for t in times if t > GOAL_SECONDS)
    print(f"{name:<34} answers {len(times):>4}  median {statistics.median(ordered) * 1000 if ordered else 0:8.1f} ms"
          f"  p99 {p99 * 1000:8.1f} ms  worst {max(ordered, default=0) * 1000:8.1f} ms"
          f"  >500 ms {over:>3}  failed {failures:>3}  CPU {cpu:6.2f} s")


def main() -> int:
    parser = _bench.parser(__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--slow", type=int, default=300)
    parser.add_argument("--stack-only", action="store_true",
                        help="measure (b) alone: (a) answers nothing within the timeout, so its rounds are slow")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = (2 if args.stack_only else 4) * (args.idle + args.slow) + 512
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"needs {needed} file descriptors; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))

    scratch = tempfile.mkdtemp(prefix="zomg-slow-bench-")
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("POSTHOG")}
    env["ZOMG_RECEIVER_OUTPUT"] = os.path.join(scratch, "events.jsonl")
    deployments = []
    if not args.stack_only:
        alone, alone_url = start([sys.executable, "-m", "gunicorn", "-c", "python:zomg.receiver.gunicorn_conf",
                                  "--bind", "127.0.0.1:0", "zomg.receiver:app"], r"Listening at: (http://\S+)", env)
        deployments.append(("(a) gunicorn alone", alone, alone_url))
    stack, stack_url = start([sys.executable, os.path.join(ROOT, "scripts", "receiver-stack"), "--port", "0"],
                             r"listening on (http://\S+)", env)
    deployments.append(("(b) nginx + gunicorn (receiver-stack)", stack, stack_url))
    holds = []
    try:
        for _, _, url in deployments:
            host, port = url[len("http://"):].rsplit(":", 1)
            holds.append(Held((host, int(port)), args.idle, args.slow))
        print(f"held per deployment: {args.idle} idle + {args.slow} slowloris connections; "
              f"{args.rounds} rounds of GET /healthz + POST /v1/events each, {TIMEOUT:g} s client timeout")
        time.sleep(1.0)  # let both take in their load
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        times = {name: [] for name, _, _ in deployments}
        failures = dict.fromkeys(times, 0)
        cpu_before = {name: tree_cpu(proc.pid) for name, proc, _ in deployments}
        for _ in range(args.rounds):
            for name, _, url in deployments:
                body = schema.encode_batch([cli_event()])
                for request, expected in ((urllib.request.Request(url + "/healthz"), 200),
                                          (urllib.request.Request(url + "/v1/events", data=body, method="POST"), 202)):
                    seconds, status = timed(request, opener)
                    if status == expected:
                        times[name].append(seconds)
                    else:
                        failures[name] += 1
        for name, proc, _ in deployments:
            report(name, times[name], failures[name], tree_cpu(proc.pid) - cpu_before[name])
        print(f"connections the servers closed and the bench opened again: "
              f"{', '.join(f'{name[:3]} {hold.reopened}' for (name, _, _), hold in zip(deployments, holds))}")
        worst = max(times[deployments[-1][0]], default=float("inf"))
        ok = failures[deployments[-1][0]] == 0 and worst <= GOAL_SECONDS
        print(f"goal (b): every answer, the worst <= {GOAL_SECONDS * 1000:.0f} ms: {'met' if ok else 'NOT met'}")
        return 0 if ok else 1
    finally:
        for hold in holds:
            hold.close()
        for _, proc, _ in deployments:
            proc.terminate()
        for _, proc, _ in deployments:
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
