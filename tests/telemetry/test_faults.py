"""Delivery that nothing silences: answers classified by fault, endpoints, slow links, clocks, torn lines,
slow disks, Ctrl-C during the exit grace, and `zomg telemetry flush`."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest

from tests.support.cli import notice_seen, run, spooled, state_dir, write_user_config
from tests.support.servers import Capture
from zomg.telemetry import sender
from zomg.telemetry.files import Layout, Spool, SpoolBounds
from zomg.telemetry.policy import DEFAULT_ENDPOINT
from zomg.telemetry.spool_edit import SpoolEditor

pytestmark = pytest.mark.telemetry_on


def _backoff() -> dict:
    with open(os.path.join(state_dir(), "backoff.json"), encoding="utf-8") as f:
        return json.load(f)


def _status(cli) -> dict:
    return json.loads(cli("telemetry", "status", "--json").out)


# --- answers, by whose fault they are ---------------------------------------------------

HTTP_DATE_IN_200_S = "Tue, 15 Jan 2027 08:03:20 GMT"  # the fake clock's now (1_800_000_000) + 200 s


@pytest.mark.parametrize(
    "status,headers,outcome,wait",
    [
        (200, {}, "delivered", None),
        (204, {}, "delivered", None),
        (400, {}, "dropped", None),
        (413, {}, "dropped", None),
        (422, {}, "dropped", None),
        (404, {}, "kept", 5),
        (410, {}, "kept", 5),
        (405, {}, "kept", 5),
        (401, {}, "kept", 5),
        (403, {}, "kept", 5),
        (301, {"Location": "http://127.0.0.1:9/elsewhere"}, "kept", 5),
        (307, {"Location": "http://127.0.0.1:9/elsewhere"}, "kept", 5),
        (408, {}, "kept", 5),
        (429, {"Retry-After": "120"}, "kept", 120),
        (503, {"Retry-After": HTTP_DATE_IN_200_S}, "kept", 200),
        (503, {"Retry-After": "86400"}, "kept", 3600),  # capped at the longest backoff
        (500, {}, "kept", 5),
        (599, {}, "kept", 5),
    ],
)
def test_each_answer_delivers_drops_or_keeps_by_whose_fault_it_is(cli, monkeypatch, status, headers, outcome, wait):
    notice_seen()
    server = Capture(statuses=[status], headers=headers)
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", server.url)
    cli.bounds.batch_size = 1000  # nothing due: flush sends the two events as one batch
    try:
        cli("box", "list")
        cli("box", "list")
        recorded = {e["event_id"] for e in spooled()}
        flushed = cli("telemetry", "flush")
        assert [r["status"] for r in server.requests] == [status]
        assert {e["event_id"] for e in json.loads(server.requests[0]["body"])["events"]} == recorded
        assert {e["event_id"] for e in spooled()} == (recorded if outcome == "kept" else set())
        assert flushed.code == (1 if outcome == "kept" else 0)
        info = _status(cli)
        last = info["last_attempt"]
        assert (last["outcome"], last["events"]) == (outcome, 2)
        if outcome == "kept":
            assert _backoff()["retry_at"] - cli.clock() == wait
            assert last["status"] == status and info["next_attempt"] is not None
            cli("box", "list")
            cli.drain()
            assert len(server.requests) == 1  # backing off: no attempt until it expires
        else:
            assert not os.path.exists(os.path.join(state_dir(), "backoff.json"))
        assert (info["hint"] is not None and "/v1/events" in info["hint"]) is (status in (404, 410))
    finally:
        server.close()


def test_status_tells_the_story_of_a_wrong_path_in_words(cli, monkeypatch):
    notice_seen()
    server = Capture(statuses=[404])
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", server.url.replace("/v1/events", "/wrong"))
    try:
        cli("box", "list")
        cli("box", "list")
        cli.drain()
        out = cli("telemetry", "status").out
        assert re.search(r"kept [12] events? \(not found, HTTP 404\)", out)  # the 2nd run's may join
        assert "is the path right? the receiver answers at /v1/events" in out
        assert "backing off after 1 failed attempt" in out
        assert len(spooled()) == 2  # nothing lost to a misconfiguration
    finally:
        server.close()


# --- endpoints --------------------------------------------------------------------------


def test_an_origin_without_a_path_is_sent_to_v1_events(cli, capture, monkeypatch):
    notice_seen()
    origin = capture.url[: -len("/v1/events")]
    for url in (origin, origin + "/"):
        monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", url)
        cli("box", "list")
        cli("box", "list")
        cli.drain()
    assert {r["path"] for r in capture.requests} == {"/v1/events"}
    assert _status(cli)["endpoint"] == origin + "/v1/events"


def test_credentials_in_the_endpoint_are_masked_in_status_and_explain(zomg, monkeypatch):
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", "https://alice:s3cret@telemetry.example.com/v1/events")
    out = zomg("telemetry", "status").out + zomg("telemetry", "status", "--json").out + zomg("telemetry", "explain").out
    assert "s3cret" not in out and "alice" not in out
    assert "https://***@telemetry.example.com/v1/events" in out


def test_events_go_only_to_the_endpoint_in_effect_when_they_were_recorded(cli, capture, monkeypatch):
    notice_seen()
    # Recorded while the default (production) endpoint was in effect, by this zomg and by an older one.
    monkeypatch.delenv("ZOMG_TELEMETRY_ENDPOINT")
    real_post = sender.post
    monkeypatch.setattr(sender, "post", lambda *a, **k: pytest.fail("nothing may reach production in a test"))
    cli.bounds.batch_size = 100
    cli("box", "list")
    old_format = spooled()[0].copy()
    old_format["event_id"] = "0b6f5c53-4a5e-4f0e-9f57-2f2d8f3e1c55"
    with open(os.path.join(state_dir(), "spool.jsonl"), "ab") as f:
        f.write(b"%d %s\n" % (int(cli.clock()), json.dumps(old_format, separators=(",", ":")).encode()))
    production = {e["event_id"] for e in spooled()}
    monkeypatch.setattr(sender, "post", real_post)
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    cli.bounds.batch_size = 1
    cli("box", "list")
    cli("box", "list")
    r = cli("telemetry", "flush")
    assert r.code == 0
    assert capture.unique_ids() and not capture.unique_ids() & production
    info = _status(cli)
    assert (info["unsent_events"], info["unsent_events_other_endpoints"]) == (0, 2)
    assert "2 recorded for another endpoint" in cli("telemetry", "status").out


# --- slow links ---------------------------------------------------------------------------

# Runs zomg as installed, but with a send due every 3 events (the real due rule needs many more runs).
_RUNNER = (
    "import sys\n"
    "from zomg.telemetry import files\n"
    "defaults = list(files.SpoolBounds.__init__.__defaults__); defaults[0] = 3\n"
    "files.SpoolBounds.__init__.__defaults__ = tuple(defaults)\n"
    "from zomg.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _zomg(*argv: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _RUNNER, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_a_receiver_slower_than_the_grace_gets_every_event_and_none_more_than_twice(monkeypatch, tmp_path):
    """Short runs exit before the answer (0.8 s > the 0.5 s grace); one long run confirms; flush ends it."""
    server = Capture(delay=0.8)
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", server.url)
    try:
        notice_seen()
        assert run("box", "create", "web", env={"ZOMG_TELEMETRY": "off"}).returncode == 0
        quiet = run("box", "list", env={"ZOMG_TELEMETRY": "off"})
        recorded = 0

        def short_run():
            nonlocal recorded
            proc = _zomg("box", "list")
            out, err = proc.communicate()
            assert (proc.returncode, out, err) == (0, quiet.stdout, "")
            recorded += 1

        for _ in range(8):  # a send after every 3rd fresh event or so, each cut short by the grace
            short_run()
        assert server.requests and len(spooled()) == recorded  # nothing confirmed...
        assert not os.path.exists(os.path.join(state_dir(), "backoff.json"))  # ...and no backoff for it
        while len(_fresh()) < 3:  # the long run must find a send due
            short_run()
        flag = tmp_path / "done"
        long_run = _zomg("exec", "web", "--", sys.executable, "-c",
                         f"import os, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.02)")
        deadline = time.monotonic() + 60
        while spooled() and time.monotonic() < deadline:  # the long run's send confirms everything
            time.sleep(0.05)
        assert spooled() == [], "the long run confirmed the earlier batches"
        flag.write_text("")
        assert long_run.wait() == 0
        recorded += 1
        for _ in range(4):
            short_run()
        flushed = run("telemetry", "flush")
        assert flushed.returncode == 0, flushed.stdout + flushed.stderr
        ids = [e["event_id"] for e in server.events()]
        assert len(set(ids)) == recorded
        assert max(ids.count(i) for i in ids) <= 2
        assert spooled() == []
    finally:
        server.close()


def _fresh() -> list[bytes]:
    """Spooled lines no send has reached yet."""
    from zomg.telemetry.spool_edit import parse

    try:
        with open(os.path.join(state_dir(), "spool.jsonl"), "rb") as f:
            return [line for line in f.read().split(b"\n") if line and parse(line)[1] == 0]
    except FileNotFoundError:
        return []


def test_a_send_cut_short_by_the_grace_grows_no_backoff_and_the_next_send_takes_fresh_events():
    spool = Spool(DEFAULT_ENDPOINT, Layout(), bounds=SpoolBounds(batch_size=2))
    now = 1_800_000_000.0
    first = [b'{"n":%d}' % i for i in range(2)]
    for body in first:
        spool.append(body, now)
    os.makedirs(spool.dir, exist_ok=True)
    SpoolEditor(spool).set_tries({body: 1 for body in first})  # what claim does before it posts; then the process exits
    assert spool.backoff(now) == (0, 0.0)
    assert not spool.due(now)  # a batch already sent does not make the next run send again
    spool.append(b'{"n":2}', now)
    spool.append(b'{"n":3}', now)
    assert spool.due(now)


# --- clocks, torn lines, slow disks -------------------------------------------------------


def test_a_retry_at_set_by_a_clock_that_was_ahead_does_not_stop_delivery(cli, capture, monkeypatch):
    notice_seen()
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    os.makedirs(state_dir(), exist_ok=True)
    with open(os.path.join(state_dir(), "backoff.json"), "w") as f:
        json.dump({"failures": 1, "retry_at": cli.clock() + 365 * 86400 + 5}, f)  # a year ahead
    cli("box", "list")
    cli("box", "list")
    cli.drain()
    assert len(capture.unique_ids()) >= 1


def test_a_clock_a_year_ahead_drops_no_event_as_too_old(cli, capture, monkeypatch):
    notice_seen()
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    cli.bounds.batch_size = 4
    for _ in range(3):
        cli("box", "list")
    real = {e["event_id"] for e in spooled()}
    cli.clock.advance(365 * 86400)  # one run with the clock a year ahead
    cli("box", "list")
    cli.drain()
    cli.clock.advance(-365 * 86400)
    cli("telemetry", "flush")
    assert real <= capture.unique_ids()
    assert len(capture.unique_ids()) == 4


def test_a_torn_last_line_does_not_swallow_the_next_event(cli, capture, monkeypatch):
    notice_seen()
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    cli.bounds.batch_size = 100
    cli("box", "list")
    path = os.path.join(state_dir(), "spool.jsonl")
    with open(path, "ab") as f:
        f.write(b'1800000000 0 http://x/ {"event":"cli.comm')  # a full disk's short write
    cli("box", "list")
    cli("box", "list")
    assert len(spooled_lines_that_parse()) == 3
    assert cli("telemetry", "flush").code == 0
    assert len(capture.unique_ids()) == 3


def spooled_lines_that_parse() -> list[bytes]:
    from zomg.telemetry.spool_edit import parse

    with open(os.path.join(state_dir(), "spool.jsonl"), "rb") as f:
        lines = [line for line in f.read().split(b"\n") if line]
    good = []
    for line in lines:
        try:
            json.loads(parse(line)[3])
        except (TypeError, ValueError):
            continue
        good.append(line)
    return good


def test_an_append_never_waits_for_a_rewrite_s_fsync(monkeypatch):
    """A slow disk: the rewrite after a send is stuck in fsync; the command's own append goes through."""
    spool = Spool(DEFAULT_ENDPOINT, Layout())
    spool.append(b'{"n":0}', 1_800_000_000)
    in_fsync, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd):
        in_fsync.set()
        release.wait(30)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    rewriter = threading.Thread(target=SpoolEditor(spool).transform, args=(lambda _: [b'1800000000 0 x {"n":1}'],))
    rewriter.start()
    try:
        assert in_fsync.wait(30)
        spool.append(b'{"n":2}', 1_800_000_000)  # the old code held the lock here: TimeoutError after 2 s
    finally:
        release.set()
        rewriter.join(30)
    assert [line.split(b" ", 3)[3] for line in spool.read()] == [b'{"n":1}', b'{"n":2}']
    assert [n for n in os.listdir(spool.dir) if n.endswith(".tmp")] == []


# --- Ctrl-C ------------------------------------------------------------------------------


def test_ctrl_c_during_the_exit_grace_exits_130_without_a_traceback(zomg, monkeypatch, capsys):
    import zomg.telemetry as telemetry

    notice_seen()

    class InterruptedJoin:
        def join(self, timeout=None):
            raise KeyboardInterrupt  # what a Ctrl-C while waiting for the send looks like

    real_start = telemetry.start

    def start(*args, **kwargs):
        session = real_start(*args, **kwargs)
        session.thread = InterruptedJoin()
        return session

    monkeypatch.setattr(telemetry, "start", start)
    try:
        r = zomg("box", "list")
    except KeyboardInterrupt:
        pytest.fail("the interrupt escaped main(): Python prints a traceback")
    assert r.code == 130
    assert "Traceback" not in r.err and "KeyboardInterrupt" not in r.err
    assert len(spooled()) == 1  # the run's event was recorded before the grace


# --- zomg telemetry flush -----------------------------------------------------------------


def test_flush_sends_everything_now_and_says_so(cli, capture, monkeypatch):
    notice_seen()
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    cli.bounds.batch_size = 1000
    for _ in range(3):
        cli("box", "list")
    r = cli("telemetry", "flush")
    assert r.code == 0
    assert r.out.splitlines() == [f"cli events: sent 3 events to {capture.url}",
                                  "deployment metrics: not sent: off (not chosen in zomg setup)"]
    assert len(capture.unique_ids()) == 3 and spooled() == []  # and flush itself recorded nothing
    r = cli("telemetry", "flush")
    assert (r.code, r.out.splitlines()[0]) == (0, "cli events: nothing to send")


def test_flush_exits_1_with_the_reason_when_the_endpoint_fails(cli, monkeypatch):
    notice_seen()
    server = Capture(statuses=[503])
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", server.url)
    cli.bounds.batch_size = 1000
    try:
        cli("box", "list")
        r = cli("telemetry", "flush")
        assert r.code == 1
        assert r.out.splitlines()[0] == f"cli events: not sent: server error, HTTP 503 from {server.url}; " \
                                        "1 event kept for later"
        assert r.err.startswith("zomg: error: telemetry flush:") and "Traceback" not in r.err
        assert len(spooled()) == 1
    finally:
        server.close()


@pytest.mark.parametrize("env", [{"ZOMG_TELEMETRY": "off"}, {"DO_NOT_TRACK": "1"}])
def test_flush_never_sends_when_the_environment_turns_telemetry_off(cli, capture, monkeypatch, env):
    notice_seen()
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    cli.bounds.batch_size = 1000
    cli("box", "list")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    r = cli("telemetry", "flush")
    assert r.code == 0 and all("not sent: off (" in line for line in r.out.splitlines())
    assert capture.requests == [] and len(spooled()) == 1


def test_flush_sends_deployment_metrics_when_opted_in_even_with_cli_telemetry_off(cli, capture, monkeypatch):
    from zomg.telemetry import schema

    notice_seen()
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    cli.bounds.batch_size = 1000
    assert cli("setup", "--no-input", "--deployment-metrics", "on").code == 0
    cli("box", "list")  # records a CLI event and measures the deployment
    cli("telemetry", "off")
    r = cli("telemetry", "flush")
    assert r.code == 0
    assert r.out.splitlines()[0].startswith("cli events: not sent: off (stored in")
    assert r.out.splitlines()[1] == f"deployment metrics: sent 1 event to {capture.url}"
    assert [e["event"] for e in capture.events()] == [schema.DEPLOYMENT_METRICS]


def test_flush_is_declared_like_every_command():
    from zomg.parser import build_full_parser

    parser = build_full_parser()
    text = parser.format_help()
    assert "telemetry" in text
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "cli.md"), encoding="utf-8") as f:
        assert "zomg telemetry flush" in f.read()


# --- damaged configuration ---------------------------------------------------------------


@pytest.mark.parametrize("version", [True, 1.0])
def test_a_notice_version_that_is_not_an_integer_shows_the_notice_again(cli, monkeypatch, version):
    write_user_config({"notice_version": version})
    r = cli("box", "list")
    assert "zomg collects pseudonymous usage telemetry" in r.err
    cli("box", "list")
    assert len(spooled()) == 1  # recording works again


def test_a_temporary_file_left_by_a_process_that_exited_mid_write_is_removed_by_the_next_send():
    spool = Spool(DEFAULT_ENDPOINT, Layout(), bounds=SpoolBounds(batch_size=1))
    spool.append(b'{"n":0}', 1_800_000_000)
    stale = os.path.join(spool.dir, ".spool.jsonl.999999999.0a0b0c0d.tmp")  # no such process
    fresh = os.path.join(spool.dir, ".backoff.json.999999998.0a0b0c0d.tmp")  # another process, writing now
    for path in (stale, fresh):
        with open(path, "wb") as f:
            f.write(b"half")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    lock = SpoolEditor(spool).send_lock()
    assert lock.acquire(0)
    try:
        sender.claim(spool, 1_800_000_000, None)
    finally:
        lock.release()
    assert not os.path.exists(stale) and os.path.exists(fresh)


def test_a_setup_file_too_deep_to_parse_does_not_silence_cli_telemetry(cli, monkeypatch):
    from zomg import paths

    notice_seen()
    os.makedirs(os.path.dirname(paths.setup_file()), exist_ok=True)
    with open(paths.setup_file(), "wb") as f:
        f.write(b"[" * 100_000 + b"]" * 100_000)
    cli.bounds.batch_size = 1000
    cli("telemetry", "status")
    cli("box", "list")
    assert len(spooled()) == 1
