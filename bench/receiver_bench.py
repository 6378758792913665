"""Receiver benchmark: the shipped gunicorn configuration under load, slow clients, a hung PostHog; validation speed.

Part 1, HTTP, all under ``gunicorn -c python:zomg.receiver.gunicorn_conf``
(threaded workers), wrk posting the same 10-event batch over and over:

(a) a no-op WSGI app that reads the body and answers 202 (reference only),
(b) the receiver with forwarding off (events appended to a scratch file),
(c) the receiver forwarding to a PostHog stand-in on 127.0.0.1 that answers
    each call after 50 ms (a hosted PostHog's round trip).

The three servers stay up and take turns in short runs, round after round;
ratios are taken round by round (paired). Figures: requests per second, p99,
workers' CPU per request, non-2xx answers and socket errors, and for (c)
upstream calls per 1,000 accepted events. Goals: (c) >= 0.5 x (b)'s
throughput, p99 <= 300 ms, zero errors. (b)/(a) is printed for reference.

Part 2, slow clients: 40 clients announce a body with Content-Length and
send it a byte at a time for 8 s while /healthz is probed every 50 ms on
fresh connections. Goal: every probe answers, the worst <= 500 ms.

Part 3, PostHog hung: the receiver forwards to a stand-in that never
answers; wrk measures the receiver's answers (202 while the queue has room,
then 503 with Retry-After). Goal: p99 <= 300 ms.

Part 3b, durable against in-memory: the receiver of this tree (every batch
committed to the spool on disk before its 202) and the in-memory receiver it
replaced (the tree before zomg/receiver/spool.py was added, exported with
``git archive`` into a scratch directory; ``--baseline REV`` picks another),
both forwarding to a stand-in 50 ms away, taking turns round by round at 16
and 64 connections. Goals: durable >= 0.8 x in-memory throughput (paired
rounds), p99 <= 100 ms at 16 connections, zero errors.

Part 4, validation: the time per event to validate a 10-event batch with
the receiver's validator (zomg.receiver.fastpath, generated from zomg's
schema module), with the ``jsonschema`` library and with
``fastjsonschema``, both given the JSON Schema this script writes out from
zomg.telemetry.schema.json_schema() (never a hand-written copy). Goals: >= 30x
faster than jsonschema, faster than fastjsonschema. It also checks that the
three agree on a corpus of valid and broken events.

Needs, for the benchmark only (none is a runtime or test dependency):

    apt-get install -y wrk                           # Debian's HTTP load generator
    pip install -e '.[test]' jsonschema fastjsonschema rfc3339-validator
    # gunicorn comes with the test extra; rfc3339-validator lets jsonschema check
    # "format": "date-time", so it checks what the other two check

Run from the repository root:

    python bench/receiver_bench.py [--seconds 2] [--rounds 10] [--connections 16] [--workers N]
                                   [--schema-out PATH] [--skip-http] [--skip-validation]
                                   [--skip-durable] [--durable-rounds 6] [--baseline REV]

All traffic goes to 127.0.0.1; every wrk run is bounded by --seconds and every
server is stopped before the script exits.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import timeit
import uuid

import _bench
import _repo_root  # noqa: F401 (puts the repository root on sys.path, for tests.support)

from tests.support.events import cli_event
from tests.support.servers import FakePostHog, SlowClients, processes
from zomg.receiver import fastpath
from zomg.telemetry import schema
from zomg.telemetry.schema import ERROR_CLASSES

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BATCH_SIZE = 10


def noop_app(environ: dict, start_response) -> list:
    """What the receiver is compared with: read the body, answer 202, nothing else."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(length)
    body = b'{"accepted":10}'
    start_response("202 Accepted", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def sample_events(count: int, seed: int = 7) -> list:
    """Realistic, varied cli.command events."""
    rng = random.Random(seed)
    commands = [("box", "list"), ("box", "create"), ("exec", None), ("console", None), ("box", "delete"), (None, None)]
    events = []
    for _ in range(count):
        command, subcommand = rng.choice(commands)
        result = rng.choice(["success", "success", "success", "error", "interrupted"])
        flags = sorted(rng.sample(["--all", "--force", "--json", "--quiet", "-v"], rng.randint(0, 3)))
        events.append(cli_event(
            event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            installation_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            timestamp=f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
                      f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z",
            command=command,
            subcommand=subcommand,
            flags=flags,
            os=rng.choice(schema.OS_VALUES),
            arch=rng.choice(schema.ARCH_VALUES),
            ci=rng.random() < 0.3,
            duration_bucket=rng.choice(schema.DURATION_BUCKETS),
            result=result,
            error_class=rng.choice(ERROR_CLASSES) if result == "error" else None,
        ))
    return events


# --- part 1: HTTP -------------------------------------------------------------

def _wrk_script(directory: str, body: bytes) -> str:
    path = os.path.join(directory, "post.lua")
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write('wrk.headers["Content-Type"] = "application/json"\n')
        f.write(f"wrk.body = [==[{body.decode('ascii')}]==]\n")
    return path


def _seconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run_wrk(url: str, script: str, seconds: int, connections: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", script, url],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = _seconds(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p99": p99, "requests": requests, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else ""}


class Gunicorn:
    """gunicorn with the shipped configuration (the receiver's production command) of the tree at ``root``."""

    def __init__(self, app: str, workers: int, env: dict, root: str = ROOT) -> None:
        argv = [sys.executable, "-m", "gunicorn", "-c", "python:zomg.receiver.gunicorn_conf",
                "--workers", str(workers), "--bind", "127.0.0.1:0", "--pythonpath", f"{root},{HERE}",
                "--log-level", "warning", app]
        if root != ROOT:
            env = dict(env, PYTHONPATH=root)  # the configuration module too comes from that tree
        # Run from the tree: `python -m` puts the working directory first on sys.path.
        self.proc = subprocess.Popen(argv, env=env, cwd=root, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True)
        # --log-level warning hides the "Listening at" line: ask the kernel instead.
        self.base = self._wait_for_port()
        self.url = self.base + "/v1/events"

    def _wait_for_port(self) -> str:
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited: {self.proc.stderr.read()}")
            port = _listening_port(self.proc.pid)
            if port:
                return f"http://127.0.0.1:{port}"
            time.sleep(0.05)
        raise SystemExit("gunicorn did not start listening within 30 s")

    def workers_cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the worker processes (Linux /proc)."""
        return sum(cpu for parent, _, cpu in processes().values() if parent == self.proc.pid)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _listening_port(pid: int) -> int | None:
    """The TCP port a process listens on, from /proc (Linux)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        with open(f"/proc/{pid}/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    return int(fields[1].split(":")[1], 16)
    except OSError:
        return None
    return None


def _app_cpu_per_request(app, body: bytes) -> float:
    """CPU seconds one request costs the WSGI application itself, called in-process."""
    import io
    import time

    def one() -> None:
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/events", "CONTENT_LENGTH": str(len(body)),
                   "wsgi.input": io.BytesIO(body)}
        app(environ, lambda status, headers: None)

    timer = timeit.Timer(one, timer=time.process_time)
    number = 2000
    return min(timer.repeat(repeat=5, number=number)) / number


def bench_in_process(scratch: str, body: bytes) -> None:
    from zomg.receiver import make_app
    from zomg.receiver.local_sink import LocalSink

    output = os.path.join(scratch, "in-process.jsonl")
    receiver = make_app(LocalSink(output))
    pretty = json.dumps(json.loads(body), indent=1).encode()
    print("In-process, the application's own CPU per request (no server, no network):")
    for name, app, data in (("no-op app", noop_app, body),
                            ("receiver, forwarding off, body as the CLI sends it", receiver, body),
                            ("receiver, forwarding off, same events pretty-printed", receiver, pretty)):
        print(f"  {name:53s} {_app_cpu_per_request(app, data) * 1e6:6.1f} us")
    os.unlink(output)


def _base_env() -> dict:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith(("POSTHOG_", "ZOMG_"))}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    env.pop("GUNICORN_CMD_ARGS", None)
    env.pop("WEB_CONCURRENCY", None)
    return env


def _stand_in(delay: float = 0.0, hang: bool = False) -> FakePostHog:
    fake = FakePostHog(record=False)
    fake.keep_alive = True  # as PostHog does; the forwarder keeps one connection per worker
    fake.delay = delay
    fake.hang = hang
    return fake


def bench_http(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (or run with --skip-http)")
    scratch = tempfile.mkdtemp(prefix="zomg-receiver-bench-")
    body = schema.encode_batch(sample_events(BATCH_SIZE))
    script = _wrk_script(scratch, body)
    base_env = _base_env()
    output = os.path.join(scratch, "events.jsonl")
    bench_in_process(scratch, body)
    posthog = _stand_in(delay=0.05)
    configs = {
        "no-op app": ("receiver_bench:noop_app", base_env),
        "receiver, forwarding off": ("zomg.receiver:app", dict(base_env, ZOMG_RECEIVER_OUTPUT=output)),
        "receiver, forwarding on (PostHog 50 ms)": (
            "zomg.receiver:app", dict(base_env, POSTHOG_PROJECT_API_KEY="phc_bench", POSTHOG_HOST=posthog.url,
                                      ZOMG_RECEIVER_SPOOL_DIR=os.path.join(scratch, "spool"))),
    }
    results: dict = {name: [] for name in configs}
    print(f"HTTP: gunicorn -c python:zomg.receiver.gunicorn_conf --workers {args.workers} (threads), "
          f"wrk -t1 -c{args.connections} -d{args.seconds}s, {BATCH_SIZE}-event batches of {len(body)} bytes, "
          f"{args.rounds} interleaved rounds; medians shown")
    servers: dict = {}
    on = "receiver, forwarding on (PostHog 50 ms)"
    try:
        for name, (app, env) in configs.items():
            servers[name] = Gunicorn(app, args.workers, env)
            run_wrk(servers[name].url, script, 1, args.connections)  # warm-up
        calls_before = posthog.count
        for _ in range(args.rounds):
            for name, server in servers.items():
                cpu_before = server.workers_cpu_seconds()
                result = run_wrk(server.url, script, args.seconds, args.connections)
                result["cpu"] = (server.workers_cpu_seconds() - cpu_before) / max(1, result["requests"])
                results[name].append(result)
                if os.path.exists(output):
                    os.unlink(output)  # the receiver notices and opens a new file, as after log rotation
        # Sustained: forwarding on alone for longer, so a forwarder that falls behind shows as 503s.
        sustained = run_wrk(servers[on].url, script, args.seconds * 5, args.connections)
        results[on].append(dict(sustained, cpu=results[on][-1]["cpu"]))
        print(f"  sustained {args.seconds * 5} s, forwarding on alone: {sustained['rps']:.0f} req/s, p99 "
              f"{sustained['p99'] * 1000:.1f} ms, non-2xx {sustained['non2xx']}, "
              f"socket errors {sustained['socket_errors'] or 'none'}")
        # Let the forwarders send what they queued, then count PostHog's calls per accepted event.
        import time

        time.sleep(2)
        calls = posthog.count - calls_before
        accepted = sum((r["requests"] - r["non2xx"]) * BATCH_SIZE for r in results[on])
        report_http(results, on, calls, accepted)
        bench_slow_clients(servers[on].base)
    finally:
        for server in servers.values():
            server.stop()
        posthog.close()
    bench_hung_posthog(args, script, dict(base_env, ZOMG_RECEIVER_SPOOL_DIR=os.path.join(scratch, "hung-spool")))
    shutil.rmtree(scratch, ignore_errors=True)


def report_http(results: dict, on: str, calls: int, accepted: int) -> None:
    def paired(runs: list, base: list, key: str) -> list:
        # Each round measured both servers within seconds of each other: the ratio
        # of a round is steadier than a ratio of medians on a shared machine.
        return sorted(run[key] / ref[key] for run, ref in zip(runs, base))

    for name, runs in results.items():
        rps = statistics.median(r["rps"] for r in runs)
        p99s = sorted(r["p99"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        line = (f"  {name:40s} {rps:7.0f} req/s  p99 median {p99s[len(p99s) // 2] * 1000:6.1f} ms "
                f"(worst round {p99s[-1] * 1000:6.1f} ms)  worker CPU {cpu * 1e6:5.0f} us/req")
        bad = sum(r["non2xx"] for r in runs)
        errors = [r["socket_errors"] for r in runs if r["socket_errors"]]
        line += f"\n  {'':40s} non-2xx: {bad}; socket errors: {errors or 'none'}"
        print(line)
    off, noop = results["receiver, forwarding off"], results["no-op app"]
    ratios = paired(results[on], off, "rps")
    ratio = statistics.median(ratios)
    p99 = statistics.median(r["p99"] for r in results[on])
    errors = sum(r["non2xx"] for r in results[on]) + sum(bool(r["socket_errors"]) for r in results[on])
    print(f"  forwarding on / off throughput: {ratio:.2f} (rounds {ratios[0]:.2f}..{ratios[-1]:.2f}); "
          f"goal >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'}")
    print(f"  forwarding on p99 {p99 * 1000:.1f} ms: goal <= 300 ms {'met' if p99 <= 0.3 else 'NOT met'}; "
          f"errors {errors}: goal 0 {'met' if errors == 0 else 'NOT met'}")
    print(f"  upstream calls per 1,000 accepted events: {calls * 1000 / max(1, accepted):.1f} "
          f"({calls} calls for {accepted} events)")
    reference = paired(off, noop, "rps")
    print(f"  reference only (old goal 0.8, retired): forwarding off / no-op app {statistics.median(reference):.2f} "
          f"(rounds {reference[0]:.2f}..{reference[-1]:.2f})")


def bench_slow_clients(base: str, clients: int = 40, seconds: float = 8.0, after: float = 4.0) -> None:
    """Slow clients trickle bodies while /healthz is probed; every probe's time is kept.

    Probing goes on ``after`` seconds more, the clients still trickling: the
    server cuts them off at its request deadline (10 s), and the closes must
    not stall the probes either.
    """
    import socket
    import time
    from urllib.parse import urlsplit

    host, port = urlsplit(base).hostname, urlsplit(base).port
    slow = SlowClients((host, port), clients, length=100000, every=0.2)
    probes, failures = [], 0
    end = time.monotonic() + seconds + after
    while time.monotonic() < end:
        started = time.perf_counter()
        try:
            with socket.create_connection((host, port), timeout=10) as probe:
                probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answer = probe.recv(100)
            ok = answer.startswith(b"HTTP/1.1 200")
        except OSError:
            ok = False
        probes.append(time.perf_counter() - started)
        failures += not ok
        time.sleep(0.05)
    slow.close()
    worst = max(probes)
    print(f"Slow clients: {clients} trickling bodies for {seconds:.0f} s (+{after:.0f} s past the server's cut-off); "
          f"{len(probes)} /healthz probes, "
          f"{len(probes) - failures} answered 200, median {statistics.median(probes) * 1000:.1f} ms, "
          f"worst {worst * 1000:.1f} ms; goal every probe, worst <= 500 ms: "
          f"{'met' if not failures and worst <= 0.5 else 'NOT met'}")


def bench_hung_posthog(args: argparse.Namespace, script: str, base_env: dict) -> None:
    posthog = _stand_in(hang=True)
    env = dict(base_env, POSTHOG_PROJECT_API_KEY="phc_bench", POSTHOG_HOST=posthog.url)
    server = Gunicorn("zomg.receiver:app", args.workers, env)
    try:
        result = run_wrk(server.url, script, max(5, args.seconds * 2), args.connections)
    finally:
        server.stop()
        posthog.close()
    print(f"PostHog hung: {result['requests']} answers in {max(5, args.seconds * 2)} s "
          f"({result['requests'] - result['non2xx']} x 202, {result['non2xx']} x 503), p99 "
          f"{result['p99'] * 1000:.1f} ms; goal <= 300 ms: {'met' if result['p99'] <= 0.3 else 'NOT met'}; "
          f"socket errors: {result['socket_errors'] or 'none'}")


# --- part 1b: durable against in-memory ---------------------------------------

def baseline_tree(scratch: str, revision: str | None) -> tuple:
    """(directory, revision) of the in-memory receiver exported with git: the tree before the spool was added."""
    def git(*words: str) -> bytes:
        return subprocess.run(["git", "-C", ROOT, *words], capture_output=True, check=True).stdout

    if revision is None:
        added = git("log", "--diff-filter=A", "--format=%H", "--", "zomg/receiver/spool.py").split()
        revision = added[-1].decode() + "^"
    revision = git("rev-parse", "--short", revision).decode().strip()
    directory = os.path.join(scratch, "in-memory")
    os.makedirs(directory)
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(git("archive", "--format=tar", revision, "zomg"))) as tar:
        tar.extractall(directory)
    return directory, revision


def bench_durable(args: argparse.Namespace) -> None:
    """Durable (this tree, spool on disk) against the in-memory build, both forwarding to PostHog 50 ms away."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (or run with --skip-durable)")
    scratch = tempfile.mkdtemp(prefix="zomg-receiver-bench-")
    try:
        _bench_durable(args, scratch, _wrk_script(scratch, schema.encode_batch(sample_events(BATCH_SIZE))), _base_env())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _bench_durable(args: argparse.Namespace, scratch: str, script: str, base_env: dict) -> None:
    try:
        baseline, revision = baseline_tree(scratch, args.baseline)
    except (OSError, subprocess.CalledProcessError, IndexError) as exc:
        print(f"Durable vs in-memory: skipped, no in-memory build to compare with ({exc})")
        return
    posthog = _stand_in(delay=0.05)
    env = dict(base_env, POSTHOG_PROJECT_API_KEY="phc_bench", POSTHOG_HOST=posthog.url)
    spool = os.path.join(scratch, "durable-spool")
    servers: dict = {}
    connections = (16, 64)
    results: dict = {}
    print(f"Durable vs in-memory (git {revision}): forwarding to PostHog 50 ms away, {args.workers} workers, "
          f"{args.durable_rounds} interleaved rounds of {args.seconds} s per connection count; medians shown")
    try:
        servers["in-memory"] = Gunicorn("zomg.receiver:app", args.workers, env, root=baseline)
        servers["durable"] = Gunicorn("zomg.receiver:app", args.workers, dict(env, ZOMG_RECEIVER_SPOOL_DIR=spool))
        for server in servers.values():
            run_wrk(server.url, script, 1, 16)  # warm-up
        for count in connections:
            for _ in range(args.durable_rounds):
                for name, server in servers.items():
                    cpu_before = server.workers_cpu_seconds()
                    result = run_wrk(server.url, script, args.seconds, count)
                    result["cpu"] = (server.workers_cpu_seconds() - cpu_before) / max(1, result["requests"])
                    results.setdefault((name, count), []).append(result)
    finally:
        for server in servers.values():
            server.stop()
        posthog.close()
    for count in connections:
        for name in servers:
            runs = results[(name, count)]
            p99s = sorted(r["p99"] for r in runs)
            errors = sum(r["non2xx"] for r in runs) + sum(bool(r["socket_errors"]) for r in runs)
            print(f"  {count:2d} connections, {name:9s} {statistics.median(r['rps'] for r in runs):7.0f} req/s  "
                  f"p99 median {statistics.median(p99s) * 1000:6.1f} ms (worst round {p99s[-1] * 1000:6.1f} ms)  "
                  f"worker CPU {statistics.median(r['cpu'] for r in runs) * 1e6:5.0f} us/req  errors {errors}")
        durable, memory = results[("durable", count)], results[("in-memory", count)]
        ratios = sorted(d["rps"] / m["rps"] for d, m in zip(durable, memory))
        ratio = statistics.median(ratios)
        p99 = statistics.median(r["p99"] for r in durable)
        errors = sum(r["non2xx"] for r in durable) + sum(bool(r["socket_errors"]) for r in durable)
        goals = [f"durable / in-memory throughput {ratio:.2f} (rounds {ratios[0]:.2f}..{ratios[-1]:.2f}), "
                 f"goal >= 0.8: {'met' if ratio >= 0.8 else 'NOT met'}",
                 f"errors {errors}, goal 0: {'met' if errors == 0 else 'NOT met'}"]
        if count == 16:
            goals.append(f"p99 {p99 * 1000:.1f} ms, goal <= 100 ms: {'met' if p99 <= 0.1 else 'NOT met'}")
        print(f"  {count:2d} connections: " + "; ".join(goals))


# --- part 2: validation -------------------------------------------------------

def _broken_events(events: list) -> list:
    """Each sample event broken one field at a time, in ways each validator can see."""
    wrong = {"event": "cli.other", "schema_version": 2, "event_id": "not-a-uuid", "installation_id": 7,
             "timestamp": "2026-02-30T00:00:00Z", "cli_version": "", "command": "Box", "subcommand": 3,
             "flags": ["--all", "--all"], "os": "plan9", "arch": None, "ci": "yes", "duration_bucket": "1h",
             "result": "ok", "error_class": "usage"}
    broken = []
    for event in events:
        for key, value in wrong.items():
            broken.append((key, dict(event, **{key: value})))
        broken.append(("unknown field", dict(event, extra=1)))
        broken.append(("missing field", {k: v for k, v in event.items() if k != "os"}))
    return broken


def _time_per_event(validate, body: dict, target_seconds: float = 0.4) -> float:
    timer = timeit.Timer(lambda: validate(body))
    number, elapsed = timer.autorange()
    number = max(1, int(number * target_seconds / max(elapsed, 1e-9)))
    best = min(timer.repeat(repeat=5, number=number)) / number
    return best / len(body["events"])


def bench_validation(args: argparse.Namespace) -> None:
    try:
        import fastjsonschema
        import jsonschema
    except ImportError:
        raise SystemExit("needs jsonschema and fastjsonschema: pip install jsonschema fastjsonschema "
                         "(or run with --skip-validation)") from None
    from importlib.metadata import version

    path = args.schema_out or os.path.join(tempfile.mkdtemp(prefix="zomg-schema-"), "telemetry-batch.schema.json")
    with open(path, "w") as f:
        json.dump(schema.json_schema(), f, indent=2)
    with open(path) as f:
        published = json.load(f)
    print(f"Validation: JSON Schema generated from zomg.telemetry.schema written to {path}")

    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    js = jsonschema.Draft7Validator(published, format_checker=checker)
    fjs = fastjsonschema.compile(published)
    ours = fastpath.validate_batch

    events = sample_events(BATCH_SIZE)
    body = {"events": events}
    for validate in (ours, js.validate, fjs):
        validate(body)

    # Do they agree? One verdict per event, valid or broken.
    def verdict(validate, event):
        try:
            validate({"events": [event]})
            return True
        except (schema.SchemaError, jsonschema.ValidationError, fastjsonschema.JsonSchemaException):
            return False

    corpus = [("valid", event) for event in events] + _broken_events(events)
    for name, validate in (("jsonschema", js.validate), ("fastjsonschema", fjs)):
        differ = sorted({what for what, e in corpus if verdict(validate, e) != verdict(ours, e)})
        note = f" (differs on: {', '.join(differ)})" if differ else ""
        agree = sum(verdict(validate, e) == verdict(ours, e) for _, e in corpus)
        print(f"  agreement with {name}: {agree}/{len(corpus)} verdicts{note}")
    calendar = "yes" if checker.conforms("2026-02-30T00:00:00Z", "date-time") is False else \
        "no (install rfc3339-validator for it)"
    print(f"  jsonschema {version('jsonschema')} checks calendar dates via format: {calendar}; "
          f"fastjsonschema {version('fastjsonschema')}")

    t_ours = _time_per_event(ours, body)
    t_js = _time_per_event(js.validate, body)
    t_fjs = _time_per_event(fjs, body)
    print(f"  per event, in a {BATCH_SIZE}-event batch (best of 5):")
    print(f"    zomg schema module   {t_ours * 1e6:8.2f} us")
    print(f"    jsonschema           {t_js * 1e6:8.2f} us   zomg is {t_js / t_ours:6.1f}x faster "
          f"(goal >= 30x: {'met' if t_js / t_ours >= 30 else 'NOT met'})")
    print(f"    fastjsonschema       {t_fjs * 1e6:8.2f} us   zomg is {t_fjs / t_ours:6.1f}x faster "
          f"(goal > 1x: {'met' if t_fjs > t_ours else 'NOT met'})")


def main() -> int:
    parser = _bench.parser(__doc__)
    parser.add_argument("--seconds", type=int, default=2, help="length of each measured wrk run")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds of the three servers")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--schema-out", metavar="PATH", help="where to write the generated JSON Schema")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-validation", action="store_true")
    parser.add_argument("--skip-durable", action="store_true", help="without part 3b, durable vs in-memory")
    parser.add_argument("--durable-rounds", type=int, default=6, help="interleaved rounds per connection count")
    parser.add_argument("--baseline", metavar="REV",
                        help="git revision of the in-memory build (default: the one before the spool was added)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if not args.skip_validation:
        bench_validation(args)
    if not args.skip_http:
        bench_http(args)
    if not args.skip_durable:
        bench_durable(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
