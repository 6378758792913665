"""Privacy by construction: random command lines from the real parser's grammar, canaries everywhere.

Every value, box name, project, path, KEY=VALUE pair, unknown command or
option, every word after `--`, the environment, the working directory and
HOME carry a canary: a word starting with ``zqx``, which nothing zomg may
send contains. Each command line runs in log mode and in on mode against a
loopback endpoint; no canary may appear in a log line, the spool or a request.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.cli import notice_seen

pytestmark = pytest.mark.telemetry_on

CANARY = re.compile(r"zqx[a-z]*", re.IGNORECASE)
_core = st.text(alphabet="ghjkmnpqrstuvwyz", min_size=3, max_size=8).map(lambda s: "zqx" + s)


@st.composite
def canary_value(draw):
    """A value a user might type, built around a canary."""
    core = draw(_core)
    shape = draw(st.sampled_from(["bare", "path", "kv", "upper", "url", "sentence", "flagish"]))
    return {
        "bare": core,
        "path": f"/home/{core}/projects/{core}.txt",
        "kv": f"{core.upper()}_KEY={core}",
        "upper": core.upper(),
        "url": f"https://{core}.example/{core}?token={core}",
        "sentence": f"{core} and more {core}",
        "flagish": f"--{core}",
    }[shape]


def _grammar(parser: argparse.ArgumentParser):
    options, positionals, children = [], [], {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            children = dict(action.choices)
        elif action.option_strings:
            if not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                options.append((tuple(action.option_strings), action.nargs != 0, action.choices))
        else:
            positionals.append(action.choices)
    return options, positionals, children


@st.composite
def command_lines(draw):
    from zomg.parser import build_full_parser

    parser = build_full_parser()
    argv: list[str] = []
    while True:
        options, positionals, children = _grammar(parser)
        for names, takes_value, choices in draw(st.lists(st.sampled_from(options), max_size=3)) if options else []:
            name = draw(st.sampled_from(names))
            if not takes_value:
                argv.append(name)
                continue
            value = draw(st.sampled_from(list(choices))) if choices and draw(st.booleans()) else draw(canary_value())
            if name.startswith("--") and draw(st.booleans()):
                argv.append(f"{name}={value}")
            else:
                argv += [name, value]
        if children:
            if draw(st.integers(0, 9)) == 0:
                argv.append(draw(canary_value()))  # an unknown command
                break
            name = draw(st.sampled_from(sorted(children)))
            if name == "telemetry":
                name = "box"  # telemetry commands record nothing: covered elsewhere
            argv.append(name)
            parser = children[name]
            continue
        for choices in positionals:
            if choices and draw(st.booleans()):
                argv.append(draw(st.sampled_from(list(choices))))
            else:
                argv.append(draw(_core))  # a name: valid as a box name, so success paths run too
        break
    for _ in range(draw(st.integers(0, 2))):  # unknown tokens anywhere
        argv.insert(draw(st.integers(0, len(argv))), draw(canary_value()))
    if draw(st.booleans()):
        argv += ["--", *draw(st.lists(canary_value(), min_size=1, max_size=3))]
    return argv


@pytest.fixture
def wire(monkeypatch, tmp_path, capture, clock):
    """On mode, notice seen, every run due (batch size 1): each run sends what the previous one recorded."""
    import zomg.telemetry as telemetry
    from zomg.telemetry import SessionTiming
    from zomg.telemetry.files import SpoolBounds
    from zomg.telemetry.sender import SendTiming

    notice_seen()
    injected = {"timing": SessionTiming(clock=clock), "bounds": SpoolBounds(batch_size=1),
                "sending": SendTiming(timeout=5.0, clock=clock)}
    sessions = []
    real_start = telemetry.start

    def start(telemetry_command=False, **kwargs):
        session = real_start(telemetry_command, **injected, **kwargs)
        if session is not None:
            sessions.append(session)
        return session

    monkeypatch.setattr(telemetry, "start", start)
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", capture.url)
    home = tmp_path / "zqxhomedir"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    cwd = tmp_path / "zqxcwd" / "zqxproject"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    for var, value in (("USER", "zqxuser"), ("LOGNAME", "zqxuser"), ("HOSTNAME", "zqxhost.zqxcorp"),
                       ("SHELL", "/bin/zqxshell"), ("API_TOKEN", "zqxtokensecret"), ("GIT_AUTHOR_EMAIL",
                       "zqxme@zqxmail.example"), ("ZOMG_BOX", "zqxbox"), ("PWD", str(cwd))):
        monkeypatch.setenv(var, value)
    return injected, sessions


@settings(max_examples=1000, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(argv=command_lines())
def test_no_canary_reaches_a_log_line_the_spool_or_the_wire(argv, wire, capture, monkeypatch, tmp_path):
    from tests.support.cli import spooled
    from zomg import paths
    from zomg.cli import main
    from zomg.telemetry import schema

    injected, sessions = wire
    # A fresh data dir per command line: no box exists, so exec and console never start a process.
    monkeypatch.setenv("XDG_DATA_HOME", tempfile.mkdtemp(prefix="zqxdata", dir=str(tmp_path)))
    # An earlier command line may have been `zomg setup --boxes-dir <canary path>`: boxes must not
    # follow it outside the temp dir, so every command line starts without setup answers.
    if os.path.exists(paths.setup_file()):
        os.unlink(paths.setup_file())
    outputs = {}
    for mode in ("log", "on"):
        monkeypatch.setenv("ZOMG_TELEMETRY", mode)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(list(argv))
        outputs[mode] = err.getvalue()
        for session in sessions:
            if session.thread is not None:
                session.thread.join(30)
    lines = [line for line in outputs["log"].splitlines() if line.startswith("zomg-telemetry: ")]
    # --version answers before anything; completion runs from shell start-up files: neither is recorded.
    unrecorded = argv == ["--version"] or argv[:1] == ["completion"]
    assert len(lines) == (0 if unrecorded else 1), (argv, outputs["log"])
    for line in lines:
        schema.validate_batch(json.loads(line.split(": ", 1)[1]))
        assert not CANARY.search(line), (argv, line)
    assert "zomg-telemetry: " not in outputs["on"]
    for event in spooled():
        assert not CANARY.search(repr(event)), (argv, event)
    for request in capture.requests:
        assert not CANARY.search(request["body"].decode("ascii")), argv
        assert not CANARY.search(repr(request["headers"])), argv
        assert not CANARY.search(request["path"]), argv


def test_every_recorded_event_arrived_once(wire, capture, monkeypatch):
    """The property test's delivery path, checked for completeness on a small run."""
    from zomg.cli import main
    from zomg.telemetry import flush

    injected, sessions = wire
    monkeypatch.setenv("ZOMG_TELEMETRY", "on")
    for argv in (["box", "list"], ["box", "show", "zqxname"], ["frob"], ["exec", "x", "--", "zqxcmd"]):
        with contextlib.redirect_stderr(io.StringIO()):
            main(argv)
    for session in sessions:
        if session.thread is not None:
            session.thread.join(30)
    flush(bounds=injected["bounds"], sending=injected["sending"])
    assert len(capture.events()) == len(capture.unique_ids()) == 4
    assert not any(CANARY.search(r["body"].decode()) for r in capture.requests)


@pytest.mark.parametrize("argv", [
    ["box", "edit", "zqxbox", "--env", "ZQXKEY=zqxsecret value", "--unset-env", "ZQXOLD", "--project", "zqxproj"],
    ["box", "edit", "zqxbox", "--env=ZQXKEY=zqxsecret", "--no-project"],
    ["box", "rename", "zqxbox", "zqxnewname"],
    ["box", "rm", "zqxbox", "zqxother"],
    ["help", "box", "edit"],
])
def test_box_edit_rename_rm_and_help_record_only_names_the_parser_defines(zomg, monkeypatch, argv):
    """The event and the log-mode payload of these commands hold no env value, project or box name."""
    from tests.support.cli import spooled

    notice_seen()
    monkeypatch.setenv("ZOMG_TELEMETRY", "off")
    assert zomg("box", "create", "zqxbox", "--env", "ZQXOLD=zqxold").code == 0
    monkeypatch.setenv("ZOMG_TELEMETRY", "log")
    logged = [line for line in zomg(*argv).err.splitlines() if line.startswith("zomg-telemetry: ")]
    assert len(logged) == 1
    (event,) = json.loads(logged[0].split(": ", 1)[1])["events"]
    assert not CANARY.search(logged[0]), logged[0]
    assert [event["command"], event["subcommand"]] == (argv[:2] if argv[0] == "box" else ["help", None])
    declared = {"--env", "--unset-env", "--project", "--no-project", "--force"}
    assert set(event["flags"]) <= declared
    monkeypatch.setenv("ZOMG_TELEMETRY", "on")
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", "http://127.0.0.1:9/")  # never reached: nothing is due
    zomg(*argv)
    assert spooled() and not any(CANARY.search(repr(e)) for e in spooled())
