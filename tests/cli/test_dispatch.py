"""Dispatch, help, version and the one-line error contract."""
import os
import sys

import pytest

from zomg import __version__


def test_version_prints_the_package_version(zomg):
    r = zomg("--version")
    assert (r.code, r.out, r.err) == (0, f"zomg {__version__}\n", "")


def test_version_answers_without_loading_argparse_or_commands():
    import subprocess

    code = (
        "import sys; from zomg.cli import main; main(['--version']);"
        "bad = [m for m in ('argparse', 'json', 'zomg.commands', 'zomg.telemetry') if m in sys.modules];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "[]"


def test_box_list_loads_only_its_own_command_module():
    import subprocess

    code = (
        "import sys; from zomg.cli import main; main(['box', 'list']);"
        "print(sorted(m for m in sys.modules if m.startswith('zomg.commands.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "['zomg.commands.box']"


@pytest.mark.parametrize("argv", [[], ["box"], ["telemetry"]])
def test_zomg_or_a_group_alone_prints_its_help(zomg, argv):
    r = zomg(*argv)
    assert (r.code, r.err) == (0, ""), "as cargo, docker and gh do: the help, not an error"
    assert r.out == zomg(*argv, "--help").out


@pytest.mark.parametrize("argv", [[], ["box"], ["box", "list"], ["exec"], ["telemetry", "flush"]])
def test_help_command_prints_what_help_option_prints(zomg, argv):
    r = zomg("help", *argv)
    assert (r.code, r.err) == (0, "")
    assert r.out == zomg(*argv, "--help").out


@pytest.mark.parametrize("argv,message", [
    (["frob"], "unknown command 'frob'"),
    (["box", "lst"], "unknown command 'lst' (did you mean 'list'?)"),
    (["box", "list", "extra"], "no command 'extra' below 'zomg box list'"),
])
def test_help_of_an_unknown_command_is_a_usage_error(zomg, argv, message):
    r = zomg("help", *argv)
    assert r.code == 2 and message in r.err and r.err.count("\n") == 1 and r.out == ""


def test_a_missing_command_is_a_usage_error_when_options_were_given(zomg):
    r = zomg("box", "--bogus")
    assert r.code == 2 and r.err.startswith("zomg: error: ") and r.err.count("\n") == 1


def test_every_commands_help_ends_with_examples_that_run_zomg(zomg):
    from zomg import completion

    def walk(node):
        yield node
        for child in node.children:
            yield from walk(child)

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "docs", "cli.md"), encoding="utf-8") as f:
        reference = f.read()
    with open(os.path.join(root, "docs", "zomg.1"), encoding="utf-8") as f:
        man = f.read().replace("\\-", "-").replace("\\e", "\\")
    for node in walk(completion.tree()):
        out = zomg(*node.path, "--help").out
        examples = out.split("\nexamples:\n", 1)
        assert len(examples) == 2, f"zomg {node.key} --help shows no example"
        lines = examples[1].splitlines()
        assert lines and all(line.startswith("  ") for line in lines)
        commands = [line.strip() for line in lines if not line.strip().startswith("#")]
        assert any("zomg " in line for line in commands), (node.key, commands)
        for line in commands:
            assert line in reference, f"docs/cli.md lacks the example {line!r}"
            assert line in man, f"docs/zomg.1 lacks the example {line!r}"


def test_a_name_that_starts_with_a_dash_is_explained(zomg):
    r = zomg("box", "create", "-dash")
    assert r.code == 2 and r.err.count("\n") == 1
    assert "'-dash' is not an option, and NAME cannot start with '-'" in r.err
    assert "usage: zomg box create NAME" in r.err and "'--'" in r.err
    assert "required" not in r.err
    assert zomg("box", "list").err.startswith("no boxes yet"), "nothing was created"


@pytest.mark.parametrize(
    "argv",
    [["frob"], ["box", "frob"], ["box", "list", "--bogus"], ["box", "create"], ["completion", "tcsh"]],
)
def test_bad_usage_is_one_line_and_exit_2(zomg, argv):
    r = zomg(*argv)
    assert r.code == 2
    assert r.err.startswith("zomg: error: ")
    assert r.err.count("\n") == 1
    assert "Traceback" not in r.err


def test_prefixes_of_options_are_never_guessed(zomg):
    r = zomg("box", "create", "b", "--proj", "p")
    assert r.code == 2
    assert "unrecognized arguments: --proj" in r.err


@pytest.mark.parametrize("argv", [["--help"], ["box", "--help"], ["box", "create", "-h"], ["exec", "--help"]])
def test_help_at_every_level(zomg, argv):
    r = zomg(*argv)
    assert r.code == 0
    assert r.out.startswith("usage: zomg")
    assert r.err == ""


def test_exec_usage_shows_the_command_after_double_dash(zomg):
    usage = zomg("exec", "--help").out.splitlines()[0]
    assert usage.startswith("usage: zomg exec NAME") and usage.endswith(" -- CMD [ARG...]")


def test_unexpected_exception_is_one_line_internal_error(zomg, monkeypatch):
    from zomg import boxes

    def explode(project=None):
        raise RuntimeError("boom")

    monkeypatch.setattr(boxes, "list_boxes", explode)
    r = zomg("box", "list")
    assert r.code == 1
    assert r.err == "zomg: error: internal error (RuntimeError: boom); set ZOMG_DEBUG=1 to see where\n"


def test_ctrl_c_exits_130_without_traceback(zomg, monkeypatch):
    from zomg import boxes

    def interrupted(project=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(boxes, "list_boxes", interrupted)
    r = zomg("box", "list")
    assert (r.code, r.err) == (130, "")


def test_python_dash_m_works():
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "zomg", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == f"zomg {__version__}\n"


def test_every_parser_refuses_abbreviations():
    from zomg.parser import build_full_parser

    def walk(parser):
        yield parser
        for action in parser._actions:
            if isinstance(getattr(action, "choices", None), dict):
                for sub in action.choices.values():
                    yield from walk(sub)

    parsers = list(walk(build_full_parser()))
    assert len(parsers) > 5
    assert all(p.allow_abbrev is False for p in parsers)


def _pipe_into_head(boxes_count):
    import os
    import subprocess

    from zomg import boxes

    for i in range(boxes_count):
        boxes.create(f"box-{i:05d}-" + "x" * 50)
    zomg = f"'{sys.executable}' -m zomg box list"
    # Unbuffered output is the hard case: without one write per table, head could exit between lines.
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {zomg} | head -1"], capture_output=True, text=True,
                          env=env)
    return proc.returncode, proc.stdout


def test_a_short_listing_into_head_exits_0():
    code, out = _pipe_into_head(3)
    assert (code, out.split()) == (0, ["NAME", "PROJECT", "CREATED"])


def test_a_listing_larger_than_the_pipe_buffer_into_head_exits_141():
    code, out = _pipe_into_head(2000)  # about 170 KiB of table, well past Linux's 64 KiB pipe buffer
    assert (code, out.split()) == (141, ["NAME", "PROJECT", "CREATED"])


def _generated(rel):
    import os

    with open(os.path.join(os.path.dirname(__file__), "..", "..", rel), encoding="utf-8") as f:
        return f.read().replace("\\-", "-")


@pytest.mark.parametrize("rel", ["docs/cli.md", "docs/zomg.1"])
def test_the_docs_say_when_141_happens_and_where_the_default_boxes_dir_is(rel):
    text = _generated(rel)
    assert "for example `zomg box list | head -1`" not in text
    assert "64 KiB" in text and "exits 0 while the listing fits" in text
    assert "replaces the default below" not in text
    default_row = text.index("$XDG_DATA_HOME/zomg/boxes/NAME/box.json")
    assert text.index("replaces the default $XDG_DATA_HOME/zomg/boxes above") > default_row


@pytest.mark.parametrize("argv,message", [
    (["--bogus"], "zomg: error: unrecognized arguments: --bogus (see 'zomg --help')\n"),
    (["-v"], "zomg: error: unrecognized arguments: -v (see 'zomg --help')\n"),
    (["--bogus", "box", "list"], "zomg: error: unrecognized arguments: --bogus (see 'zomg --help')\n"),
    (["box", "--json", "list"], "zomg: error: box: unrecognized arguments: --json (see 'zomg box --help')\n"),
    (["box", "list", "--bogus"],
     "zomg: error: box list: unrecognized arguments: --bogus (see 'zomg box list --help')\n"),
])
def test_an_unknown_option_is_named_at_the_level_where_it_was_given(zomg, argv, message):
    r = zomg(*argv)
    assert (r.code, r.out, r.err) == (2, "", message)


@pytest.mark.parametrize("argv,suggestion", [
    (["box", "lsit"], "unknown command 'lsit' (did you mean 'list'?)"),
    (["exce", "web"], "unknown command 'exce' (did you mean 'exec'?)"),
    (["telemetry", "stauts"], "unknown command 'stauts' (did you mean 'status'?)"),
    (["box", "rm", "x", "--froce"], "unrecognized arguments: --froce (did you mean '--force'?)"),
    (["box", "list", "--projcet", "p"], "unrecognized arguments: --projcet p (did you mean '--project'?)"),
    (["--verison"], "unrecognized arguments: --verison (did you mean '--version'?)"),
    (["box", "--hepl"], "unrecognized arguments: --hepl (did you mean '--help'?)"),
    (["completion", "bsh"], "invalid SHELL 'bsh' (did you mean 'bash'?)"),
    (["setup", "--deployment-metrics", "onn"], "invalid --deployment-metrics 'onn' (did you mean 'on'?)"),
])
def test_a_close_misspelling_gets_a_suggestion(zomg, argv, suggestion):
    r = zomg(*argv)
    assert r.code == 2 and suggestion in r.err and r.err.count("\n") == 1


@pytest.mark.parametrize("argv", [["box", "zzzzzz"], ["box", "rm", "x", "--qqqq"], ["frobnicate"]])
def test_nothing_close_gets_no_suggestion(zomg, argv):
    r = zomg(*argv)
    assert r.code == 2 and "did you mean" not in r.err


def test_suggestions_cost_nothing_unless_something_is_misspelt():
    import subprocess

    code = ("import sys; from zomg.cli import main; main(['box', 'list']); a = 'difflib' in sys.modules;"
            "main(['box', 'lsit']); print(a, 'difflib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.splitlines()[-1] == "False True"
