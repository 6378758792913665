"""Each private CPython interface zomg uses, broken on purpose: every command prints and exits the same.

zomg takes a few fast paths through CPython's private insides (``_json``'s C
scanner and encoder, argparse's action classes by name, its gettext globals,
the help formatter's colour set-up; docs/architecture.md lists them). A new
Python may change any of them, as 3.15 changed what ``_json.make_scanner``
reads. Each test here runs the real CLI in a fresh process whose interpreter
was changed first (the interface missing, raising, asking for something new,
taking another signature or answering wrongly), and compares what a user sees
with an untouched interpreter running the same commands from the same state.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.support.servers import refused_url

pytestmark = pytest.mark.telemetry_on

# A stand-in for an interpreter whose private module changed; the real one is `real`.
# json itself is imported first: it keeps the real C parts, as it would on such a Python.
_FAKE_JSON = """
import sys, types, json
import _json as real
fake = types.ModuleType("_json")
fake.encode_basestring_ascii = real.encode_basestring_ascii
fake.scanstring = real.scanstring
{body}
sys.modules["_json"] = fake
"""

_ARGPARSE_WITHOUT = """
import sys, types, argparse as real
class Without(types.ModuleType):
    def __getattr__(self, name):
        if name in {missing!r}:
            raise AttributeError(name)
        return getattr(real, name)
sys.modules["argparse"] = Without("argparse")
"""

BREAKERS = {
    "no _json at all": "import sys; sys.modules['_json'] = None",
    "_json's makers raise": _FAKE_JSON.format(body="""
def make_scanner(ctx):
    raise RuntimeError("changed")
def make_encoder(*args):
    raise RuntimeError("changed")
fake.make_scanner, fake.make_encoder = make_scanner, make_encoder
"""),
    # What 3.15 did: the scanner reads a decoder setting zomg's stand-in for a decoder lacks.
    "_json's scanner reads a new setting": _FAKE_JSON.format(body="""
def make_scanner(ctx):
    ctx.number_hook
    return real.make_scanner(ctx)
fake.make_scanner, fake.make_encoder = make_scanner, real.make_encoder
"""),
    "_json's makers take other arguments": _FAKE_JSON.format(body="""
def make_scanner(ctx, flags):
    return real.make_scanner(ctx)
def make_encoder(*args, extra):
    return real.make_encoder(*args)
fake.make_scanner, fake.make_encoder = make_scanner, make_encoder
"""),
    "_json answers wrongly": _FAKE_JSON.format(body="""
def make_scanner(ctx):
    scan = real.make_scanner(ctx)
    def wrong(text, at):
        value, end = scan(text, at)
        return ([value] if isinstance(value, dict) else value), end
    return wrong
def make_encoder(*args):
    encode = real.make_encoder(*args)
    return lambda value, level: ["[", *encode(value, level), "]"]
fake.make_scanner, fake.make_encoder = make_scanner, make_encoder
"""),
    "_json's scanner fails on use": _FAKE_JSON.format(body="""
calls = []
def make_scanner(ctx):
    scan = real.make_scanner(ctx)
    def later(text, at):
        calls.append(1)
        if len(calls) > 1:  # the probe passes; real documents do not
            raise SystemError("changed")
        return scan(text, at)
    return later
fake.make_scanner, fake.make_encoder = make_scanner, real.make_encoder
"""),
    "argparse's action classes renamed": _ARGPARSE_WITHOUT.format(
        missing=("_StoreAction", "_StoreTrueAction", "_AppendAction", "_HelpAction", "_VersionAction",
                 "_SubParsersAction")),
    "argparse's gettext globals gone": _ARGPARSE_WITHOUT.format(missing=("_", "ngettext")),
    "argparse's colour set-up takes other arguments": """
import argparse
original = getattr(argparse.HelpFormatter, "_set_color", None)
if original is not None:
    def _set_color(self, color, *, file=None, mode="auto"):
        return original(self, color, **({"file": file} if file is not None else {}))
    argparse.HelpFormatter._set_color = _set_color
""",
    "the colour deferral taken out": """
from zomg.argparse_private import WidthFormatter
del WidthFormatter._set_color, WidthFormatter.__getattr__
""",
}

# Commands that read and write every kind of JSON zomg keeps (box metadata, telemetry's
# settings and spool, log mode's payload) and that show help, colour and usage errors,
# each with the environment it adds.
_LOG = {"ZOMG_TELEMETRY": "log"}
SESSION = (
    (("box", "create", "web", "--env", "GREETING=hi", "--project", "site"), {}),  # the notice
    (("box", "list"), {}),  # recorded: settings read, spool appended
    (("box", "show", "web", "--json"), {}),
    (("exec", "web", "--", "sh", "-c", "echo $GREETING"), {}),
    (("telemetry", "status"), {}),
    (("telemetry", "status", "--json"), {}),
    (("box", "list", "--json"), _LOG),
    (("telemetry", "explain"), {}),
    (("--help",), {}),
    (("box", "--help"), {"FORCE_COLOR": "1"}),
    (("box", "lst"), {}),
    (("completion", "tcsh"), _LOG),
    (("box", "list", "--bogus"), {}),
)

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _run_session(home: str, prelude: str) -> list:
    program = prelude + "\nimport sys\nfrom zomg.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    env = {name: value for name, value in os.environ.items() if name not in ("ZOMG_TELEMETRY", "DO_NOT_TRACK")}
    endpoint = refused_url()
    env.update(HOME=home, ZOMG_TELEMETRY_ENDPOINT=endpoint)
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_DIRS"):
        env[name] = os.path.join(home, name.lower())
    seen = []
    for argv, extra in SESSION:
        done = subprocess.run([sys.executable, "-c", program, *argv], capture_output=True, text=True,
                              env=dict(env, **extra), cwd=home, timeout=60)
        texts = [_TIME.sub("TIME", _UUID.sub("UUID", text.replace(home, "HOME").replace(endpoint, "ENDPOINT")))
                 for text in (done.stdout, done.stderr)]
        seen.append((argv, done.returncode, *texts))
    return seen


@pytest.fixture(scope="module")
def untouched(tmp_path_factory) -> list:
    return _run_session(str(tmp_path_factory.mktemp("untouched")), "")


@pytest.mark.parametrize("breaker", sorted(BREAKERS))
def test_the_commands_print_and_exit_the_same_with_the_private_interface_broken(breaker, tmp_path, untouched):
    got = _run_session(str(tmp_path), BREAKERS[breaker])
    for want, have in zip(untouched, got):
        assert have == want, f"{breaker}: zomg {' '.join(want[0])}"
    assert len(got) == len(untouched) == len(SESSION)


def test_the_session_shows_what_the_fallbacks_must_reproduce(untouched):
    # The comparison above means something only if the session really reads and writes
    # zomg's JSON, records telemetry and shows help: check what the untouched run printed.
    seen = {run[0]: run[1:] for run in untouched}
    assert "zomg collects pseudonymous usage telemetry" in seen[SESSION[0][0]][2]
    assert seen[("box", "show", "web", "--json")][0] == 0 and '"site"' in seen[("box", "show", "web", "--json")][1]
    assert seen[("exec", "web", "--", "sh", "-c", "echo $GREETING")][1] == "hi\n"
    assert re.search(r"unsent events: +[1-9]", seen[("telemetry", "status")][1])
    assert '"command":"box","subcommand":"list","flags":["--json"]' in seen[("box", "list", "--json")][2]
    assert seen[("box", "lst")][0] == 2 and "did you mean 'list'" in seen[("box", "lst")][2]
    assert seen[("completion", "tcsh")][0] == 2 and "invalid SHELL 'tcsh'" in seen[("completion", "tcsh")][2]
    if sys.version_info >= (3, 14):  # argparse colours help where FORCE_COLOR asks
        assert "\x1b[" in seen[("box", "--help")][1]


def test_a_command_that_shows_no_help_loads_no_colour_support(tmp_path):
    # Python 3.14 sets up help colours (importing _colorize and a dozen modules) whenever
    # argparse builds a formatter; zomg defers that until help is written.
    probe = ("import sys\nfrom zomg.cli import main\ncode = main(sys.argv[1:])\n"
             "print(code, '_colorize' in sys.modules, 'dataclasses' in sys.modules)")
    env = dict(os.environ, HOME=str(tmp_path), ZOMG_TELEMETRY="off", FORCE_COLOR="1")
    for argv in (["box", "list"], ["box", "create", "web"], ["box", "show", "web"]):
        done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, env=env,
                              cwd=str(tmp_path), timeout=60)
        assert done.stdout.splitlines()[-1] == "0 False False", (argv, done.stdout, done.stderr)
