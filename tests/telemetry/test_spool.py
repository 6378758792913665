"""The spool: bounded, locked, never corrupted or emptied by concurrent writers."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from zomg.telemetry import schema, sender
from zomg.telemetry.files import Layout, Spool, SpoolBounds, uuid4
from zomg.telemetry.policy import DEFAULT_ENDPOINT
from zomg.telemetry.spool_edit import SpoolEditor

pytestmark = pytest.mark.telemetry_on

NOW = 1_800_000_000.0
ID = "6f1c2a4e-9b3d-4c5e-8f7a-1b2c3d4e5f60"


def event(installation_id: str = ID, **overrides) -> dict:
    from zomg.parser import declared
    from zomg.telemetry import event as build

    built = build.build({"declared": declared(["box", "list"]), "command": "box", "subcommand": "list",
                         "flags": [], "duration_s": 0.1, "result": "success", "error_class": None},
                        installation_id, NOW)
    built.update(overrides)
    return built


def encoded(e: dict) -> bytes:
    return json.dumps(e, separators=(",", ":")).encode()


def ids(batch) -> list[str]:
    if isinstance(batch, tuple):  # claim's (batch, tries before)
        batch = batch[0]
    return [e["event_id"] for _, e in batch]


def answer(outcome: str, status: int | None = None):
    return sender.Answer(outcome, status, "test")


def make(**bounds) -> Spool:
    return Spool(DEFAULT_ENDPOINT, Layout(), bounds=SpoolBounds(**bounds))


def test_append_then_claim_returns_events_in_order_and_marking_them_sent_waits_for_the_request():
    spool = make(batch_size=3)
    events = [event() for _ in range(3)]
    for e in events[:2]:
        spool.append(encoded(e), NOW)
    assert spool.count() == 2 and not spool.due(NOW)
    assert sender.claim(spool, NOW, ID) == ([], 0)
    spool.append(encoded(events[2]), NOW)
    assert spool.due(NOW)
    batch, tries = sender.claim(spool, NOW, ID)
    assert ids(batch) == [e["event_id"] for e in events] and tries == 0
    # A process that exits before its request has left (a blackholed link) charges no try: still due.
    assert spool.due(NOW)
    # Once the request is on the socket the events are marked: a process that exits now leaves them
    # marked (not an endpoint failure, no backoff), and they no longer make a send due by themselves.
    SpoolEditor(spool).set_tries({line: 1 for line, _ in batch})
    assert spool.backoff() == (0, 0.0) and not spool.due(NOW)
    sender.settle(spool, [line for line, _ in batch], answer(sender.SENT, 200), NOW)
    assert spool.count() == 0 and spool.backoff() == (0, 0.0)


def test_an_old_event_makes_a_send_due():
    spool = make(batch_size=10, max_age=3600)
    spool.append(encoded(event()), NOW)
    assert not spool.due(NOW + 3599)
    assert spool.due(NOW + 3600)


def test_backoff_holds_a_due_send_until_it_expires():
    spool = make(batch_size=1)
    spool.append(encoded(event()), NOW)
    batch, _ = sender.claim(spool, NOW, ID)
    sender.settle(spool, [line for line, _ in batch], answer(sender.FAILED, 503), NOW)
    assert not spool.due(NOW + 4.9) and sender.claim(spool, NOW + 4.9, ID) == ([], 0)
    assert spool.due(NOW + 5)
    batch, _ = sender.claim(spool, NOW + 5, ID)
    sender.settle(spool, [line for line, _ in batch], answer(sender.FAILED, 503), NOW + 5)
    assert spool.backoff() == (2, NOW + 5 + 10)


def test_the_bound_drops_the_oldest_first():
    spool = make(max_events=5, batch_size=100)
    events = [event() for _ in range(8)]
    for i, e in enumerate(events):
        spool.append(encoded(e), NOW + i)
    # The bound is enforced at claim, whatever was appended.
    batch = sender.claim(spool, NOW + 10, ID, force=True)
    assert ids(batch) == [e["event_id"] for e in events[-5:]]


def test_the_count_bound_holds_after_every_append():
    spool = make(max_events=20, batch_size=1000)
    over = []
    for i in range(60):
        if spool.append(encoded(event()), NOW + i):  # what every recorded run does
            over.append(i)
            SpoolEditor(spool).trim(NOW + i)
        assert spool.count() == min(i + 1, 20)
    assert over == list(range(20, 60))


def test_events_older_than_the_age_bound_are_dropped():
    """A machine used every day through a long outage: what is over 30 days old goes."""
    spool = make(max_event_age=30 * 86400, max_events=1000)
    events = [event() for _ in range(33)]
    for day, e in enumerate(events):
        spool.append(encoded(e), NOW - (32 - day) * 86400)
    assert ids(sender.claim(spool, NOW, ID, force=True)) == [e["event_id"] for e in events[2:]]
    assert spool.count() == 31


def test_a_clock_that_jumped_never_ages_events_past_the_bound():
    spool = make(max_event_age=30 * 86400)
    real = [event() for _ in range(3)]
    for e in real:
        spool.append(encoded(e), NOW)
    ahead = NOW + 365 * 86400
    spool.append(encoded(event()), ahead)  # a run with the clock a year ahead
    assert len(SpoolEditor(spool).bounded(spool.read(), ahead)) == 4
    assert len(SpoolEditor(spool).bounded(spool.read(), ahead + 86400)) == 4
    assert len(SpoolEditor(spool).bounded(spool.read(), NOW + 60)) == 4  # and once the clock is right again


def test_torn_invalid_and_foreign_lines_never_reach_the_wire():
    spool = make()
    good = event()
    os.makedirs(spool.dir)
    with open(spool.path, "wb") as f:
        f.write(b"%d %s\n" % (NOW, encoded(event(command="Not A Name"))))  # fails the schema
        f.write(b"%d %s\n" % (NOW, encoded(event(installation_id=uuid4()))))  # an id since deleted
        f.write(b"garbage\n")
        f.write(b"%d %s\n" % (NOW, encoded(good)))
        f.write(b"%d %s" % (NOW, encoded(event())[:40]))  # a torn last line
    assert ids(sender.claim(spool, NOW, ID, force=True)) == [good["event_id"]]
    assert spool.count() == 1


def test_settle_removes_exactly_the_sent_events_even_after_the_spool_changed():
    spool = make(max_events=3, batch_size=1)
    first, second = event(), event()
    spool.append(encoded(first), NOW)
    spool.append(encoded(second), NOW)
    batch, _ = sender.claim(spool, NOW, ID)
    later = [event() for _ in range(2)]
    for e in later:  # meanwhile: appends push `first` out of the bound
        spool.append(encoded(e), NOW + 1)
    sender.settle(spool, [line for line, _ in batch], answer(sender.SENT, 200), NOW + 2)
    remaining = ids(sender.claim(spool, NOW + 2, ID, force=True))
    assert first["event_id"] not in remaining and second["event_id"] not in remaining
    assert set(remaining) <= {e["event_id"] for e in later}


def test_clear_deletes_everything_it_owns():
    spool = make()
    spool.append(encoded(event()), NOW)
    assert SpoolEditor(spool).clear() == 1
    assert not os.path.exists(spool.dir)
    assert SpoolEditor(make()).clear() == 0


def test_one_sender_at_a_time():
    spool = make()
    os.makedirs(spool.dir)
    first, second = SpoolEditor(spool).send_lock(), SpoolEditor(spool).send_lock()
    assert first.acquire(0)
    try:
        assert not second.acquire(0)
        result = sender.deliver(spool, "http://127.0.0.1:9/", ID, force=True)
        assert (result.delivered, result.busy, result.answer) == (0, True, None)
    finally:
        first.release()
    assert second.acquire(0)
    second.release()


WRITER = r"""
import json, sys
from zomg.telemetry.files import Layout, Spool
from zomg.telemetry.policy import DEFAULT_ENDPOINT
spool = Spool(DEFAULT_ENDPOINT, Layout())
for i in range(int(sys.argv[1])):
    spool.append(json.dumps({"writer": sys.argv[2], "i": i, "pad": "x" * 300}).encode(), 1800000000)
"""


def test_concurrent_writers_lose_and_corrupt_nothing():
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, "150", str(n)]) for n in range(6)]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    spool = make()
    with open(spool.path, "rb") as f:
        lines = f.read().splitlines()
    records = [json.loads(line.split(b" ", 3)[3]) for line in lines]
    assert len(records) == 900
    for n in range(6):
        assert [r["i"] for r in records if r["writer"] == str(n)] == list(range(150))


@pytest.mark.parametrize("backend", ["lockf", "marker"])
def test_lock_backends_exclude_each_other(tmp_path, backend):
    from zomg.fsutil import FileLock

    if backend == "lockf" and not hasattr(os, "lockf"):
        pytest.skip("POSIX only")
    a, b = FileLock(str(tmp_path / "l"), backend), FileLock(str(tmp_path / "l"), backend)
    assert a.acquire(0)
    assert not b.acquire(0.01)
    a.release()
    assert b.acquire(0)
    b.release()


def test_the_lock_module_imports_and_works_without_lockf_or_msvcrt(tmp_path):
    code = (
        "import os, sys; del os.lockf; sys.modules['msvcrt'] = None\n"
        "from zomg.fsutil import FileLock\n"
        f"a = FileLock({str(tmp_path / 'l')!r}); b = FileLock({str(tmp_path / 'l')!r})\n"
        "assert a.backend == 'marker'\n"
        "assert a.acquire(0) and not b.acquire(0); a.release(); assert b.acquire(0); b.release()\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


def test_a_spooled_event_is_valid_on_the_wire():
    e = event()
    schema.validate_event(e)
    spool = make()
    spool.append(encoded(e), NOW)
    [(line, claimed)], _ = sender.claim(spool, NOW, ID, force=True)
    assert claimed == e and schema.encode_batch([claimed]) == schema.encode_batch([e])


def test_a_lock_held_by_another_process_is_busy_and_freed_when_that_process_dies(tmp_path):
    from zomg.fsutil import FileLock

    path = str(tmp_path / "l")
    code = (f"from zomg.fsutil import FileLock; import sys; lock = FileLock({path!r});"
            "assert lock.acquire(0); print('held', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert not FileLock(path).acquire(0.05)
    finally:
        holder.kill()
        holder.wait()
    lock = FileLock(path)
    assert lock.acquire(0)
    lock.release()
