"""Telemetry at the edges: planted files, umasks, unreadable state, slow and trickling links, a full disk,
damaged spools of any size, what is never recorded, `explain`'s example and `zomg telemetry reset`."""
from __future__ import annotations

import json
import os
import shutil
import stat
import threading
import time

import pytest

from tests.support.cli import (
    notice_seen,
    run,
    run_as,
    shared_home,
    spooled,
    state_dir,
    unprivileged,
    user_config,
    write_system_config,
)
from tests.support.events import cli_event
from tests.support.servers import Capture, Trickle, Unanswered
from zomg.telemetry import sender, spool_edit
from zomg.telemetry.files import Layout, Spool, SpoolBounds
from zomg.telemetry.spool_edit import SpoolEditor

pytestmark = pytest.mark.telemetry_on

NOW = 1_800_000_000


def _seed(url: str, count: int = 1, stamp: int = NOW, tries: int = 0) -> list[dict]:
    """``count`` valid events spooled for ``url`` (stamped ``stamp``), under the current notice."""
    from zomg.telemetry.files import Layout, read_user

    installation_id = read_user(Layout()).installation_id
    events = [cli_event(**({"installation_id": installation_id} if installation_id else {})) for _ in range(count)]
    os.makedirs(state_dir(), exist_ok=True)
    with open(os.path.join(state_dir(), "spool.jsonl"), "ab") as f:
        for event in events:
            f.write(b"%d %d %s %s\n" % (stamp, tries, url.encode(), json.dumps(event).encode()))
    return events


def _tries() -> list[int]:
    with open(os.path.join(state_dir(), "spool.jsonl"), "rb") as f:
        return [spool_edit.parse(line)[1] for line in f.read().splitlines() if line]


# --- row 1: a FIFO where a telemetry file belongs ------------------------------------------

@pytest.mark.parametrize("where", ["settings", "spool", "backoff", "system"])
def test_a_fifo_in_place_of_a_telemetry_file_never_blocks_a_command(where, monkeypatch, tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    from zomg import paths

    notice_seen()
    _seed(os.environ["ZOMG_TELEMETRY_ENDPOINT"])
    fifo = {
        "settings": os.path.join(paths.config_dir(), "telemetry.json"),
        "spool": os.path.join(state_dir(), "spool.jsonl"),
        "backoff": os.path.join(state_dir(), "backoff.json"),
    }.get(where)
    if where == "system":
        fifo = write_system_config({"mode": "on"})
        monkeypatch.setenv("XDG_CONFIG_DIRS", os.path.dirname(os.path.dirname(fifo)))
    if os.path.exists(fifo):
        os.unlink(fifo)
    os.mkfifo(fifo)
    # Each would wait for a writer for ever on today's main (run() gives up after 60 s and fails).
    assert run("box", "list").returncode == 0
    status = run("telemetry", "status")
    assert status.returncode == 0
    if where == "spool":  # left alone, and reported
        assert "is a FIFO" in status.stdout and "fault:" in status.stdout
        assert run("telemetry", "flush").returncode == 1
    if where == "backoff":  # damaged state, rebuilt when needed: removed (never opened for writing)
        assert not os.path.lexists(fifo) or stat.S_ISREG(os.lstat(fifo).st_mode)
    off = run("telemetry", "off")
    assert off.returncode == 0, off.stderr
    assert user_config()["mode"] == "off"
    if where == "system":
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # zomg only ever reads the system file: left alone


def test_reset_removes_what_was_planted_in_the_spool_directory():
    notice_seen()
    _seed(os.environ["ZOMG_TELEMETRY_ENDPOINT"])
    fifo = os.path.join(state_dir(), "backoff.json")
    os.mkfifo(fifo)
    r = run("telemetry", "reset")
    assert r.returncode == 0
    assert not os.path.lexists(fifo) and spooled() == []


# --- row 2: symlinks -----------------------------------------------------------------------

def _own(who, *paths: str) -> None:
    for path in paths:
        if who[1] is not None:
            os.chown(path, who[1], who[2], follow_symlinks=False)


@pytest.fixture
def unprivileged_home():
    who = unprivileged()
    if who is None:
        pytest.skip("running as root and cannot drop to an unprivileged user that runs Python")
    home = shared_home(who)
    yield who, home
    shutil.rmtree(os.path.dirname(home), ignore_errors=True)


def _layout(home: str) -> tuple[str, str]:
    return os.path.join(home, ".config", "zomg"), os.path.join(home, ".local", "state", "zomg", "telemetry")


def _prepare(who, home: str, endpoint: str) -> tuple[str, str]:
    """A user who has seen the notice, with an empty spool directory, all theirs."""
    from zomg import telemetry

    config, spool_dir = _layout(home)
    for directory in (config, spool_dir):
        os.makedirs(directory, mode=0o700)
    with open(os.path.join(config, "telemetry.json"), "w", encoding="utf-8") as f:
        json.dump({"notice_version": telemetry.NOTICE_VERSION,
                   "installation_id": "3f1a2b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"}, f)
    for directory, _, names in os.walk(home):
        _own(who, directory, *(os.path.join(directory, n) for n in names))
    return config, spool_dir


def test_a_spool_symlinked_to_a_users_file_is_never_written_through(unprivileged_home, capture):
    who, home = unprivileged_home
    _, spool_dir = _prepare(who, home, capture.url)
    notes = os.path.join(home, "notes.txt")
    with open(notes, "w", encoding="utf-8") as f:
        f.write("my notes\n")
    os.symlink(notes, os.path.join(spool_dir, "spool.jsonl"))
    _own(who, notes, os.path.join(spool_dir, "spool.jsonl"))
    env = {"ZOMG_TELEMETRY_ENDPOINT": capture.url}
    for _ in range(2):
        assert run_as(who, home, "box", "list", env=env).returncode == 0
    with open(notes, encoding="utf-8") as f:
        assert f.read() == "my notes\n"
    status = run_as(who, home, "telemetry", "status", env=env)
    assert "is a symlink" in status.stdout, status.stdout


def test_a_spool_directory_symlinked_elsewhere_is_left_alone(unprivileged_home, capture):
    who, home = unprivileged_home
    config, spool_dir = _prepare(who, home, capture.url)
    elsewhere = os.path.join(home, "work")
    os.mkdir(elsewhere)
    kept = os.path.join(elsewhere, ".notes.tmp")
    spool = os.path.join(elsewhere, "spool.jsonl")
    with open(kept, "w", encoding="utf-8") as f:
        f.write("draft\n")
    with open(spool, "w", encoding="utf-8") as f:
        f.write("mine\n")
    os.utime(kept, (NOW - 10**6, 1_000_000))  # old enough to pass for a stale temporary
    os.rmdir(spool_dir)
    os.symlink(elsewhere, spool_dir)
    _own(who, elsewhere, kept, spool, spool_dir)
    env = {"ZOMG_TELEMETRY_ENDPOINT": capture.url}
    for argv in (("box", "list"), ("telemetry", "flush"), ("telemetry", "off"), ("telemetry", "reset")):
        run_as(who, home, *argv, env=env)
    assert sorted(os.listdir(elsewhere)) == [".notes.tmp", "spool.jsonl"]
    with open(spool, encoding="utf-8") as f:
        assert f.read() == "mine\n"


# --- row 8: unreadable state -------------------------------------------------------------

@pytest.mark.parametrize("name", ["spool.jsonl", "send.lock"])
def test_unreadable_state_is_a_reported_fault_never_0_unsent(unprivileged_home, capture, name):
    who, home = unprivileged_home
    _, spool_dir = _prepare(who, home, capture.url)
    env = {"ZOMG_TELEMETRY_ENDPOINT": capture.url}
    assert run_as(who, home, "box", "list", env=env).returncode == 0
    path = os.path.join(spool_dir, name)
    if not os.path.exists(path):
        open(path, "w").close()
        _own(who, path)
    os.chmod(path, 0)
    status = run_as(who, home, "telemetry", "status", "--json", env=env)
    info = json.loads(status.stdout)
    assert any(name in fault for fault in info["faults"]), info
    if name == "spool.jsonl":
        assert info["unsent_events"] is None
        assert "unsent events:       0" not in run_as(who, home, "telemetry", "status", env=env).stdout
    flush = run_as(who, home, "telemetry", "flush", env=env)
    assert flush.returncode == 1 and name in flush.stdout, flush
    assert "could not be read from the spool" not in flush.stdout or name == "spool.jsonl"


# --- row 9: umask ------------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o000, 0o002, 0o022])
def test_directories_zomg_creates_are_0700_whatever_the_umask(umask, tmp_path):
    import subprocess
    import sys

    home = tmp_path / "fresh"
    home.mkdir(mode=0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=str(home), ZOMG_TELEMETRY="log")
    for argv in (("box", "create", "b"), ("box", "list"), ("telemetry", "on"), ("setup", "--help")):
        subprocess.run([sys.executable, "-m", "zomg", *argv], env=env, capture_output=True, timeout=60,
                       preexec_fn=lambda: os.umask(umask))
    made = [home / ".config", home / ".config" / "zomg", home / ".local", home / ".local" / "state",
            home / ".local" / "share", home / ".local" / "share" / "zomg" / "boxes"]
    assert all(p.is_dir() for p in made if p.name != "state")  # log mode keeps no spool
    for directory in made:
        if directory.exists():
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert stat.S_IMODE(home.stat().st_mode) == 0o755  # one that existed is left as it was


# --- row 3: a send counts only once its request has left; cut short attempts are shown ----------

class Killed(BaseException):
    """What the end of the process does to the sender thread: nothing after it runs."""


def _cut_short_after(write: bool):
    calls = []

    def post(url, body, timeout, now=0.0, written=None, deadline=None):
        calls.append(json.loads(body))
        if write and written is not None:
            written()
        raise Killed

    return post, calls


def test_a_batch_whose_request_never_left_is_not_charged_a_try(monkeypatch):
    spool = Spool(os.environ["ZOMG_TELEMETRY_ENDPOINT"], Layout(), bounds=SpoolBounds(batch_size=1))
    _seed(os.environ["ZOMG_TELEMETRY_ENDPOINT"])
    post, calls = _cut_short_after(write=False)
    monkeypatch.setattr(sender, "post", post)
    with pytest.raises(Killed):
        sender.deliver(spool, os.environ["ZOMG_TELEMETRY_ENDPOINT"], None, force=True)
    assert calls and _tries() == [0]
    assert spool.due(NOW)


def test_a_run_that_exits_before_connecting_leaves_its_events_fresh_and_status_counts_it(capture):
    """A real process against a port that drops connects: it exits after its grace, and charges nothing."""
    notice_seen()
    hole = Unanswered()
    try:
        _seed(hole.url, stamp=int(time.time()) - 7200)  # an hour old: a send is due
        assert run("box", "create", "b", env={"ZOMG_TELEMETRY": "off"}).returncode == 0
        # The send starts after parsing and goes on while the box's command runs: a second of
        # margin for it to reach the connect, which then hangs until the process exits.
        r = run("exec", "b", "--", "sleep", "1", env={"ZOMG_TELEMETRY_ENDPOINT": hole.url})
        assert r.returncode == 0, r.stderr
        assert _tries() == [0, 0]
        info = json.loads(run("telemetry", "status", "--json", env={"ZOMG_TELEMETRY_ENDPOINT": hole.url}).stdout)
        assert info["attempts_cut_short"] == 1
        assert info["last_attempt"]["outcome"] == "cut short"
        assert "cut short" in run("telemetry", "status", env={"ZOMG_TELEMETRY_ENDPOINT": hole.url}).stdout
    finally:
        hole.close()


def test_when_the_spool_must_make_room_copies_already_sent_go_first():
    spool = Spool("http://127.0.0.1:9/v1/events", Layout(), bounds=SpoolBounds(max_events=3))
    lines = [b"%d %d http://127.0.0.1:9/v1/events %s" % (NOW + i, tries, json.dumps(cli_event()).encode())
             for i, tries in enumerate([0, 1, 0, 2, 1])]
    kept = SpoolEditor(spool).bounded(lines, NOW + 10)
    assert [spool_edit.parse(line)[1] for line in kept] == [0, 0, 1]
    assert kept == [lines[0], lines[2], lines[4]]


# --- row 4: no event arrives more than twice ------------------------------------------------

def test_an_event_is_sent_at_most_twice_however_often_runs_are_cut_short(monkeypatch, capture):
    url = capture.url
    spool = Spool(url, Layout(), bounds=SpoolBounds(batch_size=1))
    event = _seed(url)[0]
    real_post = sender.post
    post, calls = _cut_short_after(write=True)
    monkeypatch.setattr(sender, "post", post)
    for _ in range(3):  # three runs whose exit grace ends before the answer
        try:
            sender.deliver(spool, url, None)
        except Killed:
            pass
    assert len(calls) == 1 and _tries() == [1]  # sent once: not due again, its answer never came
    monkeypatch.setattr(sender, "post", real_post)
    sender.deliver(spool, url, None, force=True)  # then a run that waits (zomg telemetry flush)
    copies = sum(e["event_id"] == event["event_id"] for batch in calls for e in batch["events"])
    copies += sum(e["event_id"] == event["event_id"] for e in capture.events())
    assert copies == 2
    assert spooled() == []


def _written_then_exit(real_post):
    """A ``post`` whose run exits (the grace ran out) once the request is on the socket."""

    def post(url, body, timeout, now=0.0, written=None, deadline=None):
        def then_exit() -> None:
            written()
            raise Killed

        return real_post(url, body, timeout, now, then_exit, deadline)

    return post


def test_an_event_whose_sends_the_receiver_dropped_still_arrives_with_flush(monkeypatch):
    """A request on the socket is not one the receiver took: here it reads the first two and drops them
    unanswered. The event was sent twice without an answer; flush, which waits, still delivers it."""
    receiver = Capture(drop=2)
    url = receiver.url
    try:
        spool = Spool(url, Layout(), bounds=SpoolBounds(batch_size=1))
        event = _seed(url)[0]
        real_post = sender.post
        monkeypatch.setattr(sender, "post", _written_then_exit(real_post))
        with pytest.raises(Killed):
            sender.deliver(spool, url, None)  # a run: its request left, then it exited
        with pytest.raises(Killed):
            sender.deliver(spool, url, None, force=True)  # a flush interrupted (Ctrl-C) before the answer
        assert _tries() == [2]
        monkeypatch.setattr(sender, "post", real_post)
        sender.deliver(spool, url, None, force=True)
        assert [e["event_id"] for e in receiver.events()] == [event["event_id"]]
        assert spooled() == []
    finally:
        receiver.close()


def test_a_run_whose_command_has_ended_sends_no_event_a_second_time(capture):
    """After a confirmed batch a run goes on, but once its exit grace has begun only with fresh events:
    a resend then would be cut short too, and the event would have been sent twice without an answer."""
    url = capture.url
    spool = Spool(url, Layout(), bounds=SpoolBounds(batch_size=1))
    sent_before = _seed(url, tries=1)[0]
    fresh = _seed(url)[0]
    finishing = threading.Event()
    finishing.set()
    sender.deliver(spool, url, None, finishing=finishing)
    assert [e["event_id"] for e in capture.events()] == [fresh["event_id"]]
    assert _tries() == [1]  # kept for flush (or a run whose command still runs)
    later = _seed(url)[0]
    sender.deliver(spool, url, None, finishing=threading.Event())  # a command still running resends it
    assert [e["event_id"] for e in capture.events()] == [e["event_id"] for e in (fresh, later, sent_before)]
    assert spooled() == []


# --- row 5: flush's deadline holds against a trickling server -------------------------------------

def test_flush_ends_at_its_deadline_however_the_server_trickles(cli, monkeypatch):
    server = Trickle(every=0.2)  # its whole answer would take about 12 s
    try:
        monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", server.url)
        notice_seen()
        _seed(server.url, count=2)
        cli.sending = sender.SendTiming(timeout=5.0, clock=cli.clock, deadline=1.0)
        r = cli("telemetry", "flush")
        assert r.code == 1 and "timeout" in r.out and "2 events kept for later" in r.out, r
        assert len(spooled()) == 2 and _tries() == [0, 0]
    finally:
        server.close()


def test_each_post_ends_at_its_timeout_however_the_server_trickles(cli, monkeypatch):
    server = Trickle(every=0.2)
    try:
        monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", server.url)
        notice_seen()
        _seed(server.url)
        cli.sending = sender.SendTiming(timeout=1.0, clock=cli.clock)
        r = cli("telemetry", "flush")
        assert r.code == 1 and "timeout" in r.out, r
        assert len(spooled()) == 1
    finally:
        server.close()


# --- row 6: a full disk while flush rewrites the spool -------------------------------------------

def test_flush_under_a_full_disk_says_the_events_were_sent_but_kept(cli, capture, monkeypatch):
    import errno

    from zomg import fsutil

    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    notice_seen()
    _seed(capture.url, count=3)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsutil, "prepare", full)
    r = cli("telemetry", "flush")
    assert len(capture.unique_ids()) == 3
    assert r.code == 1, r
    assert "nothing to send" not in r.out
    assert "sent 3 events" in r.out and "could not be removed" in r.out and "No space left" in r.out


# --- row 7: damaged spools of any size cost a bounded read --------------------------------------------

def test_a_huge_spool_costs_a_bounded_read_and_is_cut_down(zomg, monkeypatch):
    notice_seen()
    url = os.environ["ZOMG_TELEMETRY_ENDPOINT"]
    path = os.path.join(state_dir(), "spool.jsonl")
    _seed(url)
    with open(path, "ab") as f:
        f.truncate(os.path.getsize(path) + 30 * 1024 * 1024)  # one 30 MB line of zeros (sparse)
        f.seek(0, os.SEEK_END)
        f.write(b"\n")
    newest = _seed(url, count=3)
    read = []
    real_read = os.read

    def counting_read(fd, n):
        data = real_read(fd, n)
        read.append(len(data))
        return data

    monkeypatch.setattr(os, "read", counting_read)
    assert zomg("box", "list").code == 0
    monkeypatch.setattr(os, "read", real_read)
    assert sum(read) < 2 * 1024 * 1024
    assert os.path.getsize(path) < 1024 * 1024
    ids = [e["event_id"] for e in spooled()]
    assert [e["event_id"] for e in newest] == ids[-4:-1]  # the newest kept, and this run's after them


# --- row 10: commands a shell runs for the user are never recorded ----------------------------------

def test_completion_is_never_recorded_and_never_shows_the_notice(capture, monkeypatch):
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    for _ in range(2):  # a fresh user: the first run of anything recorded would show the notice
        r = run("completion", "bash")
        assert r.returncode == 0 and "zomg:" not in r.stderr
    assert spooled() == [] and user_config() == {}
    r = run("completion", "zsh", env={"ZOMG_TELEMETRY": "log"})
    assert "zomg-telemetry:" not in r.stderr


# --- row 11: explain's example is the real event -------------------------------------------------------

def test_explain_shows_the_event_the_named_invocation_records(zomg, monkeypatch):
    monkeypatch.setenv("ZOMG_TELEMETRY", "log")
    real = zomg("box", "list", "--json")
    logged = json.loads(real.err.split("zomg-telemetry: ", 1)[1].splitlines()[0])["events"][0]
    out = zomg("telemetry", "explain").out
    assert "`zomg box list --json`" in out
    example = next(json.loads(line) for line in out.splitlines() if line.startswith('{"events"'))["events"][0]
    for varying in ("event_id", "timestamp"):
        logged.pop(varying), example.pop(varying)
    assert example == logged
    assert (example["command"], example["subcommand"], example["flags"]) == ("box", "list", ["--json"])


# --- row 12: events kept for another endpoint ------------------------------------------------------------

def test_flush_names_the_endpoint_events_are_kept_for_with_credentials_masked(cli, capture, monkeypatch):
    notice_seen()
    other = capture.url.replace("http://", "http://alice:s3cret@")
    _seed(other, count=2)
    r = cli("telemetry", "flush")
    assert "nothing to send" not in r.out.splitlines()[0] or "holding 2 events" in r.out
    assert "holding 2 events" in r.out and "s3cret" not in r.out and "127.0.0.1" in r.out, r.out
    assert len(spooled()) == 2


# --- zomg telemetry reset -------------------------------------------------------------------------------------

def test_reset_gives_a_new_id_and_empties_the_spool_in_one_line(zomg, capture, monkeypatch):
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    notice_seen()
    before = user_config()["installation_id"]
    _seed(capture.url, count=3)
    SpoolEditor(Spool(capture.url, Layout())).write_backoff(2, NOW)
    r = zomg("telemetry", "reset")
    assert r.code == 0 and r.out == "" and len(r.err.strip().splitlines()) == 1
    assert "3 events" in r.err
    after = user_config()["installation_id"]
    assert after != before and after in r.err
    assert spooled() == [] and not os.path.exists(os.path.join(state_dir(), "backoff.json"))
    assert capture.requests == []


def test_reset_works_when_the_environment_turns_telemetry_off(capture, monkeypatch):
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    notice_seen()
    before = user_config()["installation_id"]
    _seed(capture.url, count=2)
    r = run("telemetry", "reset", env={"ZOMG_TELEMETRY": "off"})
    assert r.returncode == 0, r.stderr
    assert spooled() == [] and user_config()["installation_id"] != before
    assert capture.requests == []


def test_a_fifo_in_place_of_the_setup_file_is_one_line_not_a_hang():
    """Every recorded run asks whether `zomg setup` opted in to deployment metrics: it reads that file too."""
    from zomg import paths

    notice_seen()
    os.makedirs(os.path.dirname(paths.setup_file()), exist_ok=True)
    os.mkfifo(paths.setup_file())
    r = run("box", "list")
    assert r.returncode == 1 and "not a regular file" in r.stderr and len(r.stderr.splitlines()) == 1, r
    assert run("telemetry", "status").returncode in (0, 1)
