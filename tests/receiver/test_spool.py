"""The spool on disk: group commits from many threads, its bound, claims that never overlap, a dead owner's claims."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from tests.support.events import cli_event
from tests.support.servers import wait_until
from zomg.receiver.fastpath import encode_event
from zomg.receiver.spool import Spool, SpoolError, SpoolFull


def lines_of(count: int) -> bytes:
    return b"".join(encode_event(cli_event()).encode("ascii") + b"\n" for _ in range(count))


def test_appends_from_many_threads_are_all_kept_and_counted(tmp_path):
    spool = Spool(str(tmp_path))
    kept: list = []
    lock = threading.Lock()

    def append() -> None:
        for _ in range(25):
            batch = lines_of(3)
            spool.append(batch, 3)
            with lock:
                kept.extend(batch.split(b"\n")[:-1])

    threads = [threading.Thread(target=append) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert spool.depth() == (600, sum(len(line) + 1 for line in kept))
    assert spool.counters()["accepted"] == 600
    # Another process's view (a new Spool on the same directory) sees every event.
    claimed = Spool(str(tmp_path)).claim(10_000)
    assert sorted(line for _, line in claimed) == sorted(kept)


def test_a_batch_that_does_not_fit_is_refused_whole_and_nothing_of_it_kept(tmp_path):
    spool = Spool(str(tmp_path), max_events=100)
    spool.append(lines_of(95), 95)
    with pytest.raises(SpoolFull):
        spool.append(lines_of(6), 6)
    assert spool.depth()[0] == 95 and spool.full
    spool.append(lines_of(5), 5)
    assert spool.depth()[0] == 100


def test_two_senders_never_claim_the_same_events_and_settled_ones_are_gone(tmp_path):
    first, second = Spool(str(tmp_path)), Spool(str(tmp_path))
    for _ in range(4):
        first.append(lines_of(5), 5)
    mine = first.claim(10)
    theirs = second.claim(100)
    assert len(mine) == 10 and len(theirs) == 10
    assert not {line for _, line in mine} & {line for _, line in theirs}
    assert second.claim(100) == []
    assert first.settle(mine, "forwarded") == 10
    assert first.depth()[0] == 10 and first.counters()["forwarded"] == 10


def test_settling_part_of_a_batch_keeps_the_rest_for_a_later_claim(tmp_path):
    spool = Spool(str(tmp_path))
    spool.append(lines_of(4), 4)
    events = spool.claim(10)
    assert spool.settle(events[1:3], "forwarded") == 2
    spool.settle(events[3:], "dropped")
    spool.release()
    again = spool.claim(10)
    assert [line for _, line in again] == [events[0][1]]
    counters = spool.counters()
    assert (counters["forwarded"], counters["dropped"], spool.depth()[0]) == (2, 1, 1)


CLAIM_AND_HANG = """
import sys
from zomg.receiver.spool import Spool
spool = Spool(sys.argv[1])
print(len(spool.claim(1000)), flush=True)
sys.stdin.read()
"""


def test_the_claims_of_a_killed_process_go_back_to_the_others(tmp_path):
    spool = Spool(str(tmp_path))
    spool.append(lines_of(7), 7)
    child = subprocess.Popen([sys.executable, "-c", CLAIM_AND_HANG, str(tmp_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    assert child.stdout.readline() == b"7\n"
    assert spool.reclaim() == 0 and spool.claim(100) == []  # alive: its claims are its own
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert spool.reclaim() == 1  # one batch handed back
    assert len(spool.claim(100)) == 7
    assert not os.listdir(tmp_path / "owners") or all(name.startswith(spool.owner) for name in
                                                      os.listdir(tmp_path / "owners"))


def test_only_what_processes_now_gone_accepted_is_left_for_a_new_one(tmp_path):
    live = Spool(str(tmp_path))
    live.append(lines_of(2), 2)
    # The tests package comes last on the child's path: zomg stays the one under test (installed, under tox).
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    gone = subprocess.run([sys.executable, "-c", "import sys; sys.path.append(sys.argv[2]); "
                           "from zomg.receiver.spool import Spool; "
                           "from tests.receiver.test_spool import lines_of; Spool(sys.argv[1]).append(lines_of(3), 3)",
                           str(tmp_path), root], cwd=str(tmp_path), timeout=120)
    assert gone.returncode == 0
    newcomer = Spool(str(tmp_path))
    newcomer.reclaim()
    assert len(newcomer.claim(100, left=True)) == 3  # the exited process's batch, not the live one's
    assert len(newcomer.claim(100)) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_gets_its_own_owner_and_connections(tmp_path):
    spool = Spool(str(tmp_path))
    spool.append(lines_of(2), 2)
    parent_owner = spool.owner
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a gunicorn worker forked after the master used the spool
        try:
            spool.append(lines_of(3), 3)
            ok = spool.owner != parent_owner and len(spool.claim(100)) == 5
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    assert spool.reclaim() == 2  # the child is gone: its claim (both batches) comes back


def test_an_unwritable_spool_refuses_with_a_spool_error(tmp_path):
    spool = Spool(str(tmp_path / "spool"))
    spool.append(lines_of(1), 1)
    os.chmod(tmp_path / "spool" / "spool.sqlite3", 0o400)
    os.chmod(tmp_path / "spool", 0o500)
    try:
        fresh = Spool(str(tmp_path / "spool"))
        if os.geteuid() == 0:
            pytest.skip("root may write anywhere")
        with pytest.raises(SpoolError):
            fresh.append(lines_of(1), 1)
    finally:
        os.chmod(tmp_path / "spool", 0o700)
        os.chmod(tmp_path / "spool" / "spool.sqlite3", 0o600)


def test_the_spool_files_are_the_receivers_alone(tmp_path):
    spool = Spool(str(tmp_path / "spool"))
    spool.append(lines_of(1), 1)
    spool.claim(1)
    assert (tmp_path / "spool").stat().st_mode & 0o077 == 0
    for path in (tmp_path / "spool").rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o077 == 0, path


def _recording_syncs(monkeypatch, block: threading.Event | None = None) -> list:
    """Every fdatasync the spool makes, as the number of events on disk when it began; the first may wait."""
    synced: list = []
    real = getattr(os, "fdatasync", os.fsync)

    def fdatasync(fd: int) -> None:
        synced.append(fd)
        if block is not None and len(synced) == 1:
            block.wait(30)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync, raising=False)
    return synced


def test_an_append_returns_only_once_the_log_is_synced_and_normal_never_syncs(tmp_path, monkeypatch):
    synced = _recording_syncs(monkeypatch)
    Spool(str(tmp_path / "full")).append(lines_of(2), 2)
    assert len(synced) == 1
    Spool(str(tmp_path / "normal"), sync="normal").append(lines_of(2), 2)
    assert len(synced) == 1


def test_a_batch_written_while_the_disk_is_busy_waits_for_a_sync_that_began_after_it(tmp_path, monkeypatch):
    # The first append's sync is held: a second append writes its rows meanwhile (the write
    # lock is free), but may not return on the strength of a sync that began before its write.
    block = threading.Event()
    synced = _recording_syncs(monkeypatch, block)
    spool = Spool(str(tmp_path))
    done: list = []
    first = threading.Thread(target=lambda: (spool.append(lines_of(1), 1), done.append("first")))
    first.start()
    assert wait_until(lambda: synced)
    second = threading.Thread(target=lambda: (spool.append(lines_of(2), 2), done.append("second")))
    second.start()
    reader = Spool(str(tmp_path))
    assert wait_until(lambda: reader.depth()[0] == 3)  # the second batch is written, its sync not begun
    assert done == [] and len(synced) == 1
    block.set()
    first.join()
    second.join()
    assert sorted(done) == ["first", "second"] and len(synced) == 2


def test_a_failed_sync_refuses_the_batches_it_was_to_cover_and_the_next_append_works(tmp_path, monkeypatch):
    calls: list = []

    def failing_once(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing_once, raising=False)
    spool = Spool(str(tmp_path))
    with pytest.raises(SpoolError, match="cannot be written"):
        spool.append(lines_of(1), 1)
    spool.append(lines_of(1), 1)
    assert len(calls) == 2


def test_a_checkpoint_moves_a_grown_log_into_the_database(tmp_path):
    spool = Spool(str(tmp_path), sync="normal")
    database = os.path.join(str(tmp_path), "spool.sqlite3")
    batch = lines_of(50)
    spool.append(batch, 50)
    while os.path.getsize(database + "-wal") < 5 * 1024 * 1024:
        spool.append(batch, 50)
    before = os.path.getsize(database)
    spool.checkpoint()
    assert os.path.getsize(database) > before + 2 * 1024 * 1024  # the log also holds each commit's totals page
    assert spool.depth()[0] == Spool(str(tmp_path)).depth()[0] > 0
