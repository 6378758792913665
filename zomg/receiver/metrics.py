"""The receiver's operating figures: what every worker counts, summed across workers for /metrics and /readyz.

Each process counts in memory (``Metrics.count``, ``observe``) and learns its
gauges from a state callable (the forwarder's ``state()``: events and bytes
not yet taken by PostHog, the oldest one's age, why new batches are refused).
Under gunicorn every scrape reaches one worker, so each worker also writes a
snapshot of its figures to ``<directory>/<pid>.json`` every
``PUBLISH_SECONDS`` and once more when it stops; the worker answering a
scrape writes its own first and sums every snapshot in the directory. The
master creates the directory (``gunicorn_conf.on_starting``) and, when a
worker ends however it ends, folds that worker's counters into
``retired.json`` (``retire``), so totals survive restarts and gauges count
live workers only. Without a directory (the dev server, any single-process
WSGI host) the process's own figures are the totals.

Nothing here is built from a request: every series and label value is a
constant of this module, so no client address, header or event content can
reach a metric.
"""
from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable, Mapping

DIR_VAR = "ZOMG_RECEIVER_METRICS_DIR"
PUBLISH_SECONDS = 1.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RETIRED = "retired.json"
_LOCK = ".lock"

# Why a valid batch is answered 503 (the client keeps it and sends it again).
REFUSAL_REASONS = ("queue_full", "spool_full", "upstream_failing", "stopping", "output_failed")
INVALID_STATUSES = ("400", "404", "405", "411", "413")
UPSTREAM_OUTCOMES = ("accepted", "refused", "token_refused", "unavailable", "unexpected")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)

_P = "zomg_receiver_"
# (name, type, help, label, label values); the order is the order of /metrics.
FAMILIES = (
    (_P + "batches_accepted_total", "counter", "Batches answered 202.", None, ()),
    (_P + "events_accepted_total", "counter", "Events in batches answered 202.", None, ()),
    (_P + "batches_refused_total", "counter",
     "Valid batches answered 503 with Retry-After (the client keeps them and sends them again), by reason.",
     "reason", REFUSAL_REASONS),
    (_P + "requests_invalid_total", "counter", "Requests answered 4xx by the application, by status.",
     "status", INVALID_STATUSES),
    (_P + "events_forwarded_total", "counter", "Events PostHog accepted.", None, ()),
    (_P + "events_dropped_total", "counter",
     "Accepted events dropped: PostHog refused that one event on its own (400/413).", None, ()),
    (_P + "events_resent_total", "counter",
     "Events sent again after a call PostHog may have taken but did not answer: possible duplicates "
     "(PostHog drops repeated uuids).", None, ()),
    (_P + "upstream_calls_total", "counter", "Calls to PostHog's /batch/, by outcome.", "outcome",
     UPSTREAM_OUTCOMES),
    (_P + "upstream_call_seconds", "histogram", "Time a call to PostHog's /batch/ took, answered or not.",
     None, ()),
    (_P + "pending_events", "gauge", "Accepted events not yet taken by PostHog.", None, ()),
    (_P + "pending_bytes", "gauge", "Bytes of accepted events not yet taken by PostHog.", None, ()),
    (_P + "oldest_pending_age_seconds", "gauge",
     "Age of the oldest accepted event not yet taken by PostHog; 0 when none waits.", None, ()),
    (_P + "refusing", "gauge", "1 while new batches are refused for this reason (what /readyz reports).",
     "reason", REFUSAL_REASONS),
    (_P + "workers", "gauge", "Processes whose figures these are.", None, ()),
)
_LATENCY = _P + "upstream_call_seconds"


def _key(name: str, label: str | None = None, value: str = "") -> str:
    return name if label is None else f'{name}{{{label}="{value}"}}'


def _counter_keys() -> tuple:
    keys = []
    for name, kind, _, label, values in FAMILIES:
        if kind == "counter":
            keys += [_key(name)] if label is None else [_key(name, label, v) for v in values]
    keys += [_key(_LATENCY + "_bucket", "le", _le(b)) for b in LATENCY_BUCKETS]
    keys += [_key(_LATENCY + "_bucket", "le", "+Inf"), _LATENCY + "_sum", _LATENCY + "_count"]
    return tuple(keys)


def _le(bound: float) -> str:
    return repr(float(bound))


COUNTER_KEYS = _counter_keys()
_KNOWN = frozenset(COUNTER_KEYS)
_LABEL_OF = {name: label for name, _, _, label, _ in FAMILIES if label}
_SHARED, _ALONE = 1, 2  # flock's LOCK_SH and LOCK_EX, without importing fcntl where it does not exist


def _no_state() -> dict:
    return {}


class Metrics:
    """One process's figures; with ``directory``, published there for the other workers' scrapes."""

    def __init__(self, directory: str | None = None, state: Callable[[], Mapping] = _no_state,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.state = state
        self.clock = clock
        self._counts = dict.fromkeys(COUNTER_KEYS, 0.0)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stop = threading.Event()
        self._changed = threading.Event()

    # Counting (any thread) ----------------------------------------------------

    def count(self, name: str, amount: float = 1, label: str = "") -> None:
        """Add ``amount`` to counter ``name`` (with the family's label set to ``label``, one of its values)."""
        key = name if name in _KNOWN else _P + name
        if label:
            key = _key(key, _LABEL_OF[key], label)
        with self._lock:
            self._counts[key] += amount

    def observe(self, seconds: float) -> None:
        """One upstream call that took ``seconds``."""
        with self._lock:
            for bound in LATENCY_BUCKETS:
                if seconds <= bound:
                    self._counts[_key(_LATENCY + "_bucket", "le", _le(bound))] += 1
            self._counts[_key(_LATENCY + "_bucket", "le", "+Inf")] += 1
            self._counts[_LATENCY + "_sum"] += seconds
            self._counts[_LATENCY + "_count"] += 1

    # Publishing (gunicorn workers) --------------------------------------------

    def start(self) -> None:
        """Publish this process's figures every PUBLISH_SECONDS from now on (after the fork, in the worker)."""
        if self.directory is None or (self._thread is not None and self._pid == os.getpid()):
            return
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._publish_loop, name="zomg-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Publish a last time (after the drain) and stop publishing."""
        self._stop.set()
        self._changed.set()
        self.publish()

    def changed(self) -> None:
        """The state changed (an outage began or ended, a stop began): publish now, not at the next tick."""
        self._changed.set()

    def _publish_loop(self) -> None:
        while not self._stop.is_set():
            self._changed.wait(PUBLISH_SECONDS)
            self._changed.clear()
            self.publish()

    def snapshot(self) -> dict:
        """This process's figures as they are now."""
        with self._lock:
            counts = dict(self._counts)
        return {"pid": os.getpid(), "counters": counts, "state": _clean_state(self.state())}

    def publish(self) -> None:
        if self.directory is None:
            return
        path = os.path.join(self.directory, f"{os.getpid()}.json")
        temporary = f"{path}.{threading.get_ident()}.tmp"
        try:
            with open(temporary, "w", encoding="ascii") as handle:
                json.dump(self.snapshot(), handle)
            os.replace(temporary, path)
        except OSError:
            pass  # the directory went away (the master is stopping): nothing left to scrape

    # Reading (the worker answering a scrape) ------------------------------------

    def _all(self) -> tuple:
        """(counters summed over every process that ever ran, the live processes' states)."""
        own = self.snapshot()
        if self.directory is None:
            return own["counters"], [own["state"]]
        self.publish()
        totals = dict.fromkeys(COUNTER_KEYS, 0.0)
        states = []
        with _locked(self.directory, _SHARED):
            for name in _snapshot_names(self.directory):
                data = _read(os.path.join(self.directory, name))
                if data is None:
                    continue
                _add(totals, data.get("counters"))
                if name != RETIRED and (data.get("pid") == os.getpid() or _alive(data.get("pid"))):
                    states.append(_clean_state(data.get("state")))
        return totals, states

    def refusal(self) -> str | None:
        """Why the receiver refuses new batches now (any live worker's reason), or None: what /readyz says."""
        own = _clean_state(self.state()).get("refusing")
        if own or self.directory is None:
            return own
        for state in self._all()[1]:
            # Another worker that is stopping has closed its listener: it answers no one.
            if state.get("refusing") and state["refusing"] != "stopping":
                return state["refusing"]
        return None

    def render(self) -> bytes:
        """Every figure, summed across workers, in Prometheus' text format (version 0.0.4)."""
        counts, states = self._all()
        now = self.clock()
        oldest = [s["oldest_at"] for s in states if s.get("oldest_at")]
        gauges = {
            _P + "pending_events": sum(s.get("pending_events", 0) for s in states),
            _P + "pending_bytes": sum(s.get("pending_bytes", 0) for s in states),
            _P + "oldest_pending_age_seconds": max(0.0, now - min(oldest)) if oldest else 0.0,
            _P + "workers": len(states),
        }
        refusing = {s.get("refusing") for s in states}
        for reason in REFUSAL_REASONS:
            gauges[_key(_P + "refusing", "reason", reason)] = 1 if reason in refusing else 0
        lines = []
        for name, kind, text, _, _ in FAMILIES:
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")
            source = gauges if kind == "gauge" else counts
            for key, value in source.items():
                if key == name or key.startswith((name + "{", name + "_bucket", name + "_sum", name + "_count")):
                    lines.append(f"{key} {_number(value)}")
        return ("\n".join(lines) + "\n").encode("ascii")


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 2 ** 53:
        return str(int(value))
    return repr(float(value))


def _clean_state(state: object) -> dict:
    """Only the state keys this module knows, with values of the right kind (a snapshot is read from disk)."""
    if not isinstance(state, Mapping):
        return {}
    clean: dict = {}
    for key in ("pending_events", "pending_bytes", "oldest_at"):
        value = state.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            clean[key] = value
    if state.get("refusing") in REFUSAL_REASONS:
        clean["refusing"] = state["refusing"]
    return clean


def _add(totals: dict, counters: object) -> None:
    if not isinstance(counters, Mapping):
        return
    for key, value in counters.items():
        if key in totals and isinstance(value, (int, float)) and math.isfinite(value):
            totals[key] += value


def _snapshot_names(directory: str) -> list:
    try:
        return sorted(n for n in os.listdir(directory) if n.endswith(".json"))
    except OSError:
        return []


def _read(path: str) -> dict | None:
    try:
        with open(path, encoding="ascii") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _locked:
    """flock on the directory's lock file: scrapes share it, folding a retired worker takes it alone."""

    def __init__(self, directory: str, mode: int) -> None:
        self.path = os.path.join(directory, _LOCK)
        self.mode = mode
        self.fd = -1

    def __enter__(self) -> None:
        try:
            import fcntl  # Unix only: a directory of snapshots is gunicorn's, which is Unix only too

            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_SH if self.mode == _SHARED else fcntl.LOCK_EX)
        except (ImportError, OSError):
            pass

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)


def prepare(directory: str) -> str:
    """Make ``directory`` ready for a new server: created (0700) if missing, earlier snapshots removed."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    for name in _snapshot_names(directory):
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass
    return directory


def retire(directory: str, pid: int) -> None:
    """A worker ended: add its last counters to the retired totals and forget its snapshot (its gauges)."""
    path = os.path.join(directory, f"{pid}.json")
    with _locked(directory, _ALONE):
        data = _read(path)
        if data is None:
            return
        retired_path = os.path.join(directory, RETIRED)
        totals = dict.fromkeys(COUNTER_KEYS, 0.0)
        _add(totals, (_read(retired_path) or {}).get("counters"))
        _add(totals, data.get("counters"))
        temporary = retired_path + ".tmp"
        try:
            with open(temporary, "w", encoding="ascii") as handle:
                json.dump({"pid": 0, "counters": totals}, handle)
            os.replace(temporary, retired_path)
            os.unlink(path)
        except OSError:
            pass
