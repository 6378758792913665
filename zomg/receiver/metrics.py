"""The receiver's operating figures: what /metrics shows and /readyz decides, for all workers together.

Two sources. The sink's own figures, read when scraped: a forwarder's spool
(``sink.spool``: ``counters()``, totals over every process and restart of
events accepted, refused, forwarded, dropped, possibly duplicated, and of
calls to PostHog; ``depth()``; ``oldest_age()``) and why it refuses batches
now (``sink.refusal``). And the application's counts of the answers it gave
(batches accepted and refused, invalid requests), which each process keeps
in memory (``Metrics.count``).

Under gunicorn every scrape reaches one worker, so each worker writes a
snapshot of its answer counts and its refusal to ``<directory>/<pid>.json``
every ``PUBLISH_SECONDS``, within ``REFUSAL_CHECK_SECONDS`` of a change of
its refusal, and once more when it stops; the worker answering a
scrape writes its own first and sums every snapshot in the directory. The
master creates the directory (``gunicorn_conf.on_starting``) and, when a
worker ends however it ends, folds its counts into ``retired.json``
(``retire``), so totals survive worker restarts and only live workers'
refusals count. Without a directory (the dev server, any single-process WSGI
host) the process's own figures are the totals.

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
from collections.abc import Mapping

DIR_VAR = "ZOMG_RECEIVER_METRICS_DIR"
PUBLISH_SECONDS = 1.0
REFUSAL_CHECK_SECONDS = 0.2
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RETIRED = "retired.json"
_LOCK = ".lock"

# Why a valid batch is answered 503 (the client keeps it and sends it again): no room on
# disk, PostHog failing too long, the process stopping, the events could not be written.
REFUSAL_REASONS = ("full", "outage", "stopping", "error")
INVALID_STATUSES = ("400", "404", "405", "411", "413")

_P = "zomg_receiver_"
# (name, type, help, label, label values); the order is the order of /metrics.
FAMILIES = (
    (_P + "batches_accepted_total", "counter", "Batches answered 202, since the server started.", None, ()),
    (_P + "batches_refused_total", "counter",
     "Valid batches answered 503 with Retry-After (the client keeps them and sends them again), by reason, "
     "since the server started.", "reason", REFUSAL_REASONS),
    (_P + "requests_invalid_total", "counter", "Requests answered 4xx by the application, by status.",
     "status", INVALID_STATUSES),
    (_P + "events_accepted_total", "counter", "Events answered 202 (kept in the spool).", None, ()),
    (_P + "events_refused_total", "counter", "Events of batches answered 503, by reason.", "reason",
     REFUSAL_REASONS),
    (_P + "events_forwarded_total", "counter", "Events PostHog took.", None, ()),
    (_P + "events_dropped_total", "counter",
     "Accepted events dropped: PostHog refused the event alone, repeatedly, while taking others.", None, ()),
    (_P + "events_duplicated_total", "counter",
     "Events PostHog took after an earlier call with them got no answer: it may hold them twice "
     "(it drops repeated uuids).", None, ()),
    (_P + "upstream_calls_total", "counter", "Calls to PostHog's /batch/.", None, ()),
    (_P + "upstream_failures_total", "counter",
     "Calls to PostHog's /batch/ it did not take (no answer, or any answer but 2xx).", None, ()),
    (_P + "upstream_call_seconds", "histogram", "Time a call to PostHog's /batch/ took, answered or not.",
     None, ()),
    (_P + "pending_events", "gauge", "Accepted events not yet taken by PostHog (in the spool).", None, ()),
    (_P + "pending_bytes", "gauge", "Bytes of accepted events not yet taken by PostHog.", None, ()),
    (_P + "oldest_pending_age_seconds", "gauge",
     "Age of the oldest accepted event not yet taken by PostHog; 0 when none waits.", None, ()),
    (_P + "refusing", "gauge", "1 while new batches are refused for this reason (what /readyz reports).",
     "reason", REFUSAL_REASONS),
    (_P + "workers", "gauge", "Processes whose answers are counted here.", None, ()),
)
# What the application counts itself (the events ones stand in when the sink keeps no counters).
APP_FAMILIES = ("batches_accepted_total", "batches_refused_total", "requests_invalid_total",
                "events_accepted_total", "events_refused_total")
# The spool's counter names (spool.py, forwarder.py) each family reads, when the sink has a spool.
_FROM_SPOOL = {
    "events_accepted_total": "accepted",
    "events_forwarded_total": "forwarded",
    "events_dropped_total": "dropped",
    "events_duplicated_total": "duplicated",
    "upstream_calls_total": "upstream_calls",
    "upstream_failures_total": "upstream_failures",
}
_LATENCY = _P + "upstream_call_seconds"
_BUCKET_PREFIX = "upstream_seconds_le_"


def _key(name: str, label: str | None = None, value: str = "") -> str:
    return name if label is None else f'{name}{{{label}="{value}"}}'


def _keys(name: str, label: str | None, values: tuple) -> list:
    return [_key(name)] if label is None else [_key(name, label, v) for v in values]


COUNTER_KEYS = tuple(key for name, kind, _, label, values in FAMILIES
                     if name[len(_P):] in APP_FAMILIES for key in _keys(name, label, values))
_LABEL_OF = {name: label for name, _, _, label, _ in FAMILIES if label}
_SHARED, _ALONE = 1, 2  # flock's LOCK_SH and LOCK_EX, without importing fcntl where it does not exist


class Metrics:
    """One process's answer counts and view of its sink; with ``directory``, published for the other workers."""

    def __init__(self, directory: str | None = None, sink: object = None) -> None:
        self.directory = directory
        self.sink = sink
        self._counts = dict.fromkeys(COUNTER_KEYS, 0.0)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stop = threading.Event()

    # Counting (any thread) ----------------------------------------------------

    def count(self, name: str, amount: float = 1, label: str = "") -> None:
        """Add ``amount`` to family ``name`` (one of APP_FAMILIES), its label set to ``label`` if it has one."""
        key = _P + name
        if label:
            key = _key(key, _LABEL_OF[key], label)
        with self._lock:
            self._counts[key] += amount

    # The sink's side ----------------------------------------------------------

    def own_refusal(self) -> str | None:
        """Why this process's sink refuses batches now, or None (a sink that cannot say refuses nothing)."""
        try:
            reason = getattr(self.sink, "refusal", None)
            reason = reason() if callable(reason) else reason
        except Exception:
            return "error"
        return reason if reason in REFUSAL_REASONS else None

    def _spool_figures(self) -> tuple:
        """(counters, (events, bytes), oldest age) of the sink's spool; None for each the sink cannot give."""
        spool = getattr(self.sink, "spool", None)
        if spool is None:
            return None, None, None
        try:
            return dict(spool.counters()), tuple(spool.depth()), spool.oldest_age()
        except Exception:  # an unreadable spool: its figures are missing, the rest is still shown
            return None, None, None

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
        self.publish()

    def _publish_loop(self) -> None:
        # A change of refusal goes out within REFUSAL_CHECK_SECONDS (the other workers' /readyz
        # depends on it); the counts once a second.
        published, due = None, 0.0
        while not self._stop.wait(REFUSAL_CHECK_SECONDS):
            now = time.monotonic()
            refusal = self.own_refusal()
            if refusal != published or now >= due:
                self.publish()
                published, due = refusal, now + PUBLISH_SECONDS

    def snapshot(self) -> dict:
        """This process's answer counts and refusal as they are now."""
        with self._lock:
            counts = dict(self._counts)
        return {"pid": os.getpid(), "counters": counts, "refusing": self.own_refusal()}

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
        """(answer counts summed over every process that ran, the live processes' refusals)."""
        own = self.snapshot()
        if self.directory is None:
            return own["counters"], [own["refusing"]]
        self.publish()
        totals = dict.fromkeys(COUNTER_KEYS, 0.0)
        refusals = []
        with _locked(self.directory, _SHARED):
            for name in _snapshot_names(self.directory):
                data = _read(os.path.join(self.directory, name))
                if data is None:
                    continue
                _add(totals, data.get("counters"))
                if name != RETIRED and (data.get("pid") == os.getpid() or _alive(data.get("pid"))):
                    reason = data.get("refusing")
                    refusals.append(reason if reason in REFUSAL_REASONS else None)
        return totals, refusals

    def refusal(self) -> str | None:
        """Why the receiver refuses new batches now (any live worker's reason), or None: what /readyz says."""
        own = self.own_refusal()
        if own or self.directory is None:
            return own
        for reason in self._all()[1]:
            # Another worker that is stopping has closed its listener: it answers no one.
            if reason and reason != "stopping":
                return reason
        return None

    def render(self) -> bytes:
        """Every figure in Prometheus' text format (version 0.0.4)."""
        counts, refusals = self._all()
        spooled, depth, oldest = self._spool_figures()
        values = dict(counts)
        if spooled is not None:
            for family, name in _FROM_SPOOL.items():
                values[_P + family] = spooled.get(name, 0)
            for reason in REFUSAL_REASONS:
                values[_key(_P + "events_refused_total", "reason", reason)] = spooled.get(f"refused_{reason}", 0)
            bounds = sorted((float(name[len(_BUCKET_PREFIX):]), name) for name in spooled
                            if name.startswith(_BUCKET_PREFIX))
            for bound, name in bounds:
                values[_key(_LATENCY + "_bucket", "le", repr(bound))] = spooled[name]
        calls = values.get(_P + "upstream_calls_total", 0)
        values[_key(_LATENCY + "_bucket", "le", "+Inf")] = calls
        values[_LATENCY + "_sum"] = (spooled or {}).get("upstream_seconds_sum", 0)
        values[_LATENCY + "_count"] = calls
        events, size = depth or (0, 0)
        values[_P + "pending_events"] = events
        values[_P + "pending_bytes"] = size
        values[_P + "oldest_pending_age_seconds"] = oldest or 0.0
        for reason in REFUSAL_REASONS:
            values[_key(_P + "refusing", "reason", reason)] = 1 if reason in refusals else 0
        values[_P + "workers"] = len(refusals)
        lines = []
        for name, kind, text, label, label_values in FAMILIES:
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")
            if kind == "histogram":
                keys = [k for k in values if k.startswith(name + "_bucket")] + [name + "_sum", name + "_count"]
            else:
                keys = _keys(name, label, label_values)
            lines += [f"{key} {_number(values.get(key, 0))}" for key in keys]
        return ("\n".join(lines) + "\n").encode("ascii")


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 2 ** 53:
        return str(int(value))
    return repr(float(value))


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


# Workers ended and not yet folded in, and whether this process is folding one now.
# gunicorn's master reaps workers inside its SIGCHLD handler, so a second worker
# can end while the first is being folded; a second flock from the same process
# would wait on the first forever (flock belongs to the open file, not the
# process), so the fold already under way takes it over instead.
_retiring: list = []
_folding = False


def retire(directory: str, pid: int) -> None:
    """A worker ended: add its last counters to the retired totals and forget its snapshot (its gauges)."""
    global _folding
    _retiring.append(pid)
    while _retiring and not _folding:
        _folding = True
        try:
            while _retiring:
                _fold(directory, _retiring.pop())
        finally:
            _folding = False


def _fold(directory: str, pid: int) -> None:
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
