"""The usage report: equal to the plainly computed truth, K-folded, deduplicated across inputs, period-bounded,
publishable (no id anywhere), and one clear line for bad input."""
from __future__ import annotations

import gzip
import json
import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading

import pytest

from tests.support.events import cli_event, deployment_event
from tests.support.usage_data import UsageModel, truth
from zomg.receiver.fastpath import encode_event
from zomg.receiver.store import Store

SINCE, UNTIL = "2026-03-01", "2026-03-31"


def report(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    # From a temp dir: under tox, the installed package runs, not the source tree.
    proc = subprocess.run([sys.executable, "-m", "zomg.receiver", "report", *args], capture_output=True, text=True,
                          timeout=120, cwd=tempfile.gettempdir())
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def report_json(*args: str) -> dict:
    return json.loads(report(*args, "--format", "json").stdout)


def write_lines(path: str, events: list) -> str:
    data = "".join(encode_event(event) + "\n" for event in events).encode("ascii")
    if path.endswith(".gz"):
        data = gzip.compress(data)
    with open(path, "wb") as f:
        f.write(data)
    return path


def make_store(path: str, events: list) -> str:
    store = Store(path)
    store.write_events(events)
    store.close()
    return path


@pytest.fixture(scope="module")
def generated():
    return UsageModel(seed=7, installations=60, deployments=12, days=31).events(3000)


def rows_below(result: dict, k: int) -> list:
    return [(name, row) for name, rows in result["tables"].items() for row in rows
            if row["installations"] < k and not row.get("folded")]


@pytest.mark.parametrize("k", [1, 5, 25])
def test_the_report_of_a_store_equals_the_truth(tmp_path, generated, k):
    store = make_store(str(tmp_path / "usage.sqlite3"), generated)
    got = report_json(store, "--since", SINCE, "--until", UNTIL, "--min-installations", str(k))
    assert got == truth(generated, SINCE, UNTIL, k)
    assert rows_below(got, k) == []
    if k == 25:
        assert any(row.get("folded") for rows in got["tables"].values() for row in rows)


def test_no_row_below_k_survives_on_crafted_data(tmp_path):
    # Three installations share "box list"; one alone runs "exec", two run "console": with K=2 only the
    # "exec" row folds, and its single installation is still counted once in the folded row.
    ids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(3)]
    events = [cli_event(installation_id=i, timestamp="2026-03-05T10:00:00Z") for i in ids]
    events += [cli_event(installation_id=ids[0], command="exec", subcommand=None, flags=[],
                         timestamp="2026-03-05T11:00:00Z") for _ in range(5)]
    events += [cli_event(installation_id=i, command="console", subcommand=None, flags=[],
                         timestamp="2026-03-06T11:00:00Z") for i in ids[1:]]
    path = write_lines(str(tmp_path / "events.jsonl"), events)
    got = report_json(path, "--since", SINCE, "--until", UNTIL, "--min-installations", "2")
    assert got["tables"]["commands"] == [
        {"command": "box", "subcommand": "list", "runs": 3, "installations": 3},
        {"command": "console", "subcommand": None, "runs": 2, "installations": 2},
        {"command": None, "subcommand": None, "runs": 5, "installations": 1, "folded": True},
    ]
    assert rows_below(got, 2) == []
    # Two rows below K fold into one row, whose installations are counted once across them.
    got = report_json(path, "--since", SINCE, "--until", UNTIL, "--min-installations", "3")
    assert got["tables"]["commands"] == [
        {"command": "box", "subcommand": "list", "runs": 3, "installations": 3},
        {"command": None, "subcommand": None, "runs": 7, "installations": 3, "folded": True},
    ]
    assert rows_below(got, 3) == []
    # Above everyone, every table is one folded row (or empty), and the totals remain.
    got = report_json(path, "--since", SINCE, "--until", UNTIL, "--min-installations", "4")
    assert rows_below(got, 4) == []
    assert all(len(rows) <= 1 and all(row["folded"] for row in rows) for rows in got["tables"].values())
    assert (got["events"], got["installations"]) == (10, 3)


def test_events_in_several_inputs_are_counted_once(tmp_path, generated):
    half = len(generated) // 2
    store = make_store(str(tmp_path / "a.sqlite3"), generated[: half + 200])
    other = make_store(str(tmp_path / "b.sqlite3"), generated[half - 100: half + 300])
    lines = write_lines(str(tmp_path / "c.jsonl.gz"), generated[half:])
    plain = write_lines(str(tmp_path / "d.jsonl"), generated[:50])
    got = report_json(store, other, lines, plain, "--since", SINCE, "--until", UNTIL, "--min-installations", "3")
    assert got == truth(generated, SINCE, UNTIL, 3)
    assert got["events"] + got["deployment_events"] == len(generated)


def test_the_period_is_whole_utc_days_inclusive(tmp_path):
    stamps = ["2026-03-09T23:59:59Z", "2026-03-10T00:00:00Z", "2026-03-12T23:59:59Z", "2026-03-13T00:00:00Z"]
    events = [cli_event(timestamp=t) for t in stamps] + [deployment_event(timestamp=t) for t in stamps]
    path = make_store(str(tmp_path / "usage.sqlite3"), events)
    got = report_json(path, "--since", "2026-03-10", "--until", "2026-03-12", "--min-installations", "1")
    assert (got["events"], got["deployment_events"]) == (2, 2)
    assert got["period"] == {"since": "2026-03-10", "until": "2026-03-12"}
    assert got == truth(events, "2026-03-10", "2026-03-12", 1)
    got = report_json(path, "--days", "4", "--until", "2026-03-12", "--min-installations", "1")
    assert got["period"] == {"since": "2026-03-09", "until": "2026-03-12"} and got["events"] == 3


def test_no_installation_or_event_id_in_any_format(tmp_path, generated):
    store = make_store(str(tmp_path / "usage.sqlite3"), generated)
    ids = {e["event_id"] for e in generated} | {e.get("installation_id") or e["deployment_id"] for e in generated}
    for form in ("text", "json", "html"):
        out = report(store, "--since", SINCE, "--until", UNTIL, "--min-installations", "1", "--format", form).stdout
        assert "2026-03-01" in out and "2026-03-31" in out  # the period
        assert ("Rows of fewer than 1 installations" in out) != (form == "json")  # K, in words or as a field
        found = [i for i in ids if i in out or i.replace("-", "") in out]
        assert found == []


def test_text_tables_are_aligned_and_html_is_self_contained(tmp_path, generated):
    store = make_store(str(tmp_path / "usage.sqlite3"), generated)
    text = report(store, "--since", SINCE, "--until", UNTIL, "--min-installations", "5").stdout
    block = text.split("\nOperating systems\n")[1].split("\n\n")[0].splitlines()
    assert len({len(line) for line in block}) == 1  # right-aligned counts end in one column
    assert text.splitlines()[0] == "zomg usage report, 2026-03-01 to 2026-03-31 (UTC, inclusive)"
    out = tmp_path / "report.html"
    report(store, "--since", SINCE, "--until", UNTIL, "--format", "html", "--output", str(out))
    html = out.read_text()
    assert html.count("<svg") == sum(1 for rows in truth(generated, SINCE, UNTIL, 10)["tables"].values() if rows)
    for forbidden in ("<script", "http:", "https:", "src=", "href=", "@import", "url("):
        assert forbidden not in html.lower()
    # Without its styles the page is headings and real tables, with their column headers.
    from html.parser import HTMLParser

    class Outline(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags, self.headers, self.inside = [], [], None

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            self.inside = tag

        def handle_data(self, data):
            if self.inside == "th":
                self.headers.append(data)

    outline = Outline()
    outline.feed(html)
    assert outline.tags.count("h2") == 13 and outline.tags.count("table") == outline.tags.count("svg")
    assert outline.headers[:4] == ["command", "subcommand", "runs", "installations"]
    assert [p for p in os.listdir(tmp_path) if p.startswith(".zomg-report-")] == []


@pytest.mark.parametrize("args, status, says", [
    (["MISSING"], 1, "no such file"),
    (["CORRUPT"], 1, "not a"),
    (["NOTSTORE"], 1, "not a zomg usage store"),
    (["BADLINE"], 1, ":2: not a zomg event"),
    (["BADGZ"], 1, "cannot be read"),
    (["STORE", "--since", "2026-02-30"], 2, "not a date"),
    (["STORE", "--since", "2026-03-10", "--until", "2026-03-01"], 2, "is after"),
    (["STORE", "--days", "0"], 2, "whole number"),
    (["STORE", "--days", "3", "--since", "2026-03-01"], 2, "cannot be given together"),
    (["STORE", "--output", "NODIR"], 1, "does not exist"),
])
def test_bad_input_is_one_line_and_an_exit_status(tmp_path, args, status, says):
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(b"SQLite format 3\x00" + b"\x00" * 84 + os.urandom(4000))
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(str(other)).execute("CREATE TABLE t (x)").connection.close()
    badline = tmp_path / "bad.jsonl"
    badline.write_text(encode_event(cli_event()) + "\n" + '{"event": "cli.command", "path": "/home/me"}\n')
    badgz = tmp_path / "bad.jsonl.gz"
    badgz.write_bytes(gzip.compress((encode_event(cli_event()) + "\n").encode() * 3)[:-12])  # cut short
    store = make_store(str(tmp_path / "usage.sqlite3"), [cli_event()])
    names = {"MISSING": str(tmp_path / "missing"), "CORRUPT": str(corrupt), "NOTSTORE": str(other),
             "BADLINE": str(badline), "BADGZ": str(badgz), "STORE": store,
             "NODIR": str(tmp_path / "no" / "r.txt")}
    proc = report(*[names.get(a, a) for a in args], check=False)
    assert proc.returncode == status
    assert len(proc.stderr.splitlines()) == 1 and says in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_a_store_damaged_inside_is_one_line(tmp_path, generated):
    path = make_store(str(tmp_path / "usage.sqlite3"), generated)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = os.path.getsize(path)
    with open(path, "r+b") as f:  # the header and the first pages intact, the events' pages garbage
        f.seek(size // 2)
        f.write(b"\xa5" * (size // 2))
    proc = report(path, "--since", SINCE, "--until", UNTIL, check=False)
    assert proc.returncode == 1, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_generated_events_are_valid_and_realistic(generated):
    from zomg.telemetry import schema

    for start in range(0, len(generated), schema.MAX_BATCH):
        schema.validate_batch({"events": generated[start:start + schema.MAX_BATCH]})
    expected = truth(generated, SINCE, UNTIL, 1)
    commands = expected["tables"]["commands"]
    assert commands[0]["runs"] > 5 * commands[-1]["runs"]  # skewed command use
    assert {row["value"] for row in expected["tables"]["ci"]} == {True, False}
    assert len(expected["tables"]["cli_versions"]) >= 3
    assert any(row["result"] == "error" for row in expected["tables"]["results"])
    assert expected["deployments"] == 12 and expected["installations"] == 60


def test_weeks_below_k_fold_and_weeks_are_cut_by_the_period(tmp_path):
    ids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(3)]
    events = [cli_event(installation_id=i, timestamp="2026-03-03T10:00:00Z") for i in ids]  # week of 03-02
    events += [cli_event(installation_id=ids[0], timestamp=t) for t in ("2026-03-10T10:00:00Z",  # week of 03-09
                                                                        "2026-03-17T10:00:00Z")]  # 03-16
    events.append(cli_event(installation_id=ids[1], timestamp="2026-03-16T00:00:00Z"))
    path = make_store(str(tmp_path / "usage.sqlite3"), events)
    got = report_json(path, "--since", "2026-03-03", "--until", "2026-03-16", "--min-installations", "2")
    assert got["tables"]["weekly_active"] == [
        {"week": "2026-03-02", "runs": 3, "installations": 3},
        {"week": None, "runs": 2, "installations": 2, "folded": True},  # 03-09 (one) and 03-16 (another)
    ]
    assert got == truth(events, "2026-03-03", "2026-03-16", 2)


def test_an_output_that_is_a_pipe_or_device_is_written_in_place_never_replaced(tmp_path, generated):
    # `--output /dev/null` or a FIFO: renaming a file over it would, as root, replace
    # the device itself (it did, once, on this project's own machine).
    store = make_store(str(tmp_path / "usage.sqlite3"), generated)
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    got: list = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    report(store, "--since", SINCE, "--until", UNTIL, "--format", "json", "--output", str(fifo))
    reader.join(60)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert json.loads(got[0])["version"] == 1
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".zomg-report-")]
