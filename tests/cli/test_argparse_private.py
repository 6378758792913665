"""Each private argparse hook in zomg.argparse_private still works on this Python.

These use argparse directly, not zomg's parser, so a Python upgrade that renames
or reshapes one of argparse's insides fails here by name, not somewhere in the
behaviour of `zomg`.
"""
from __future__ import annotations

import argparse

import pytest

from zomg import argparse_private


def _recording(classes: dict, seen: list):
    def wrap(base):
        class Recording(base):
            def __call__(self, parser, namespace, values, option_string=None):
                seen.append((base.__name__, option_string, values))
                super().__call__(parser, namespace, values, option_string)

        return Recording

    return {name: wrap(cls) for name, cls in classes.items()}


def test_each_action_class_is_argparse_own_for_its_keyword_by_either_route():
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--store")
    parser.add_argument("--flag", action="store_true")
    parser.add_argument("--many", action="append")
    parser.add_argument("--help", action="help")
    parser.add_argument("--version", action="version", version="1")
    sub = parser.add_subparsers()
    made = {"store": parser._actions[0], "store_true": parser._actions[1], "append": parser._actions[2],
            "help": parser._actions[3], "version": parser._actions[4], "parsers": sub}
    by_name = argparse_private.action_classes()
    from_a_parser = argparse_private.classes_built_by_a_parser()
    assert set(made) == set(by_name) == set(from_a_parser) == set(argparse_private.KEYWORDS)
    for keyword, action in made.items():
        assert type(action) is by_name[keyword] is from_a_parser[keyword], keyword


class _ArgparseWithout:
    """argparse as zomg.argparse_private sees it, less some names or with others replaced."""

    def __init__(self, missing=(), **replaced) -> None:
        self.missing, self.replaced = missing, replaced

    def __getattr__(self, name: str):
        if name in self.missing:
            raise AttributeError(name)
        return self.replaced.get(name, getattr(argparse, name))


def test_action_classes_fall_back_to_a_parser_when_a_private_name_is_gone_or_changed(monkeypatch):
    expected = argparse_private.classes_built_by_a_parser()
    monkeypatch.setattr(argparse_private, "argparse", _ArgparseWithout(missing=("_AppendAction",)))
    assert argparse_private.action_classes() == expected
    monkeypatch.setattr(argparse_private, "argparse", _ArgparseWithout(_StoreAction=object))
    assert argparse_private.action_classes() == expected


def test_registered_classes_are_built_and_called_for_every_keyword_and_in_subparsers(capsys):
    seen: list = []
    classes = _recording(argparse_private.action_classes(), seen)

    class Parser(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, add_help=False, **kwargs)

    parser = Parser(prog="p")
    parser.add_argument("--version", action=classes["version"], version="p 1")
    sub = parser.add_subparsers(dest="cmd", parser_class=Parser, action=classes["parsers"])
    child = sub.add_parser("run")
    child.add_argument("--name", action=classes["store"])
    child.add_argument("--flag", action=classes["store_true"])
    child.add_argument("--many", action=classes["append"])
    child.add_argument("--help", action=classes["help"])
    ns = parser.parse_args(["run", "--name", "n", "--flag", "--many", "a"])
    assert (ns.cmd, ns.name, ns.flag, ns.many) == ("run", "n", True, ["a"])
    assert [(name, opt) for name, opt, _ in seen] == [
        ("_SubParsersAction", None), ("_StoreAction", "--name"), ("_StoreTrueAction", "--flag"),
        ("_AppendAction", "--many")]
    for argv, name in ((["run", "--help"], "_HelpAction"), (["--version"], "_VersionAction")):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        assert seen[-1][:2] == (name, argv[-1])
    assert "p 1" in capsys.readouterr().out


def test_a_type_is_applied_before_the_choices_are_checked():
    # zomg names a wrong choice from the argument's type: argparse must call it first.
    class Refused(Exception):
        pass

    def only_round(value):
        if value != "round":
            raise Refused(value)
        return value

    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--shape", choices=("round", "square"), type=only_round)
    assert parser.parse_args(["--shape", "round"]).shape == "round"
    with pytest.raises(Refused):
        parser.parse_args(["--shape", "oval"])


def test_the_formatter_takes_its_width_from_the_hook():
    class Narrow(argparse_private.WidthFormatter):
        width_of_terminal = staticmethod(lambda: 42)

    parser = argparse.ArgumentParser(prog="p", formatter_class=Narrow, description="word " * 30)
    lines = parser.format_help().splitlines()
    assert max(len(line) for line in lines) <= 40
    assert max(len(line) for line in lines) > 30


def test_the_formatter_defers_colour_until_help_is_written_and_writes_the_same_help(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("PYTHON_COLORS", raising=False)

    def help_of(formatter_class) -> str:
        parser = argparse.ArgumentParser(prog="p", formatter_class=formatter_class, description="d")
        parser.add_argument("--shape", help="the `shape`")
        return parser.format_help()

    class Plain(argparse.HelpFormatter):
        def __init__(self, prog, **kwargs):
            super().__init__(prog, width=78, **kwargs)

    assert help_of(argparse_private.WidthFormatter) == help_of(Plain)
    formatter = argparse_private.WidthFormatter("p")
    if hasattr(argparse.HelpFormatter, "_set_color"):  # 3.14 and later
        formatter._set_color(True)
        assert not any(name in vars(formatter) for name in ("_theme", "_decolor"))
        formatter.format_help()  # reads the colour: argparse's own set-up runs now
        formatter._set_color(False)
        assert formatter._decolor("x") == "x"


def test_english_only_is_a_no_op_where_argparse_has_no_gettext_globals(monkeypatch):
    monkeypatch.delattr(argparse, "_")
    with argparse_private.EnglishOnly():
        assert not hasattr(argparse, "_")
    assert not hasattr(argparse, "_")


def test_english_only_replaces_gettext_in_argparse_and_restores_it(monkeypatch):
    monkeypatch.setattr(argparse, "_", lambda message: "translated")
    monkeypatch.setattr(argparse, "ngettext", lambda singular, plural, n: "translated")
    before = argparse._, argparse.ngettext
    parser = argparse.ArgumentParser(prog="p", add_help=False)
    parser.add_argument("name")
    with argparse_private.EnglishOnly():
        assert argparse._("usage: ") == "usage: "
        assert argparse.ngettext("one", "many", 1) == "one" and argparse.ngettext("one", "many", 2) == "many"
        assert parser.format_usage().startswith("usage: p")
        with pytest.raises(SystemExit):
            parser.parse_args([])
    assert (argparse._, argparse.ngettext) == before
    assert not parser.format_usage().startswith("usage: ")
