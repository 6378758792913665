"""Each private argparse hook in zomg.argparse_private still works on this Python.

These use argparse directly, not zomg's parser, so a Python upgrade that renames
or reshapes one of argparse's insides fails here by name, not somewhere in the
behaviour of `zomg`.
"""
from __future__ import annotations

import argparse

import pytest

from zomg import argparse_private


class Noted(Exception):
    pass


def _recording(classes: dict, seen: list):
    def wrap(base):
        class Recording(base):
            def __call__(self, parser, namespace, values, option_string=None):
                seen.append((base.__name__, option_string, values))
                super().__call__(parser, namespace, values, option_string)

        return Recording

    return {name: wrap(cls) for name, cls in classes.items()}


def test_each_action_class_is_argparse_own_for_its_keyword():
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--store")
    parser.add_argument("--flag", action="store_true")
    parser.add_argument("--many", action="append")
    parser.add_argument("--help", action="help")
    parser.add_argument("--version", action="version", version="1")
    sub = parser.add_subparsers()
    made = {"store": parser._actions[0], "store_true": parser._actions[1], "append": parser._actions[2],
            "help": parser._actions[3], "version": parser._actions[4], "parsers": sub}
    assert set(made) == set(argparse_private.ACTION_CLASSES)
    for keyword, action in made.items():
        assert type(action) is argparse_private.ACTION_CLASSES[keyword], keyword
    assert argparse_private.is_subcommands(sub)
    assert not any(argparse_private.is_subcommands(a) for a in parser._actions[:5])


def test_registered_actions_are_built_and_called_for_every_keyword_and_in_subparsers(capsys):
    seen: list = []
    classes = _recording(argparse_private.ACTION_CLASSES, seen)

    class Parser(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, add_help=False, **kwargs)
            argparse_private.register_actions(self, classes)

    parser = Parser(prog="p")
    parser.add_argument("--version", action="version", version="p 1")
    sub = parser.add_subparsers(dest="cmd", parser_class=Parser)
    child = sub.add_parser("run")
    child.add_argument("--name")  # no action=: the default keyword
    child.add_argument("--flag", action="store_true")
    child.add_argument("--many", action="append")
    child.add_argument("--help", action="help")
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


def test_a_value_outside_the_choices_goes_to_invalid_choice_and_others_pass():
    calls = []

    class Parser(argparse_private.ChoiceCheckingParser):
        def invalid_choice(self, action, value) -> None:
            calls.append((argparse_private.is_subcommands(action), value))
            raise Noted

    parser = Parser(prog="p")
    parser.add_argument("--shape", choices=("round", "square"))
    sub = parser.add_subparsers(dest="cmd", parser_class=Parser)
    sub.add_parser("go")
    assert parser.parse_args(["--shape", "round", "go"]).shape == "round"
    with pytest.raises(Noted):
        parser.parse_args(["--shape", "oval", "go"])
    with pytest.raises(Noted):
        parser.parse_args(["stop"])
    assert calls == [(False, "oval"), (True, "stop")]


def test_the_formatter_takes_its_width_from_the_hook():
    class Narrow(argparse_private.WidthFormatter):
        width_of_terminal = staticmethod(lambda: 42)

    parser = argparse.ArgumentParser(prog="p", formatter_class=Narrow, description="word " * 30)
    lines = parser.format_help().splitlines()
    assert max(len(line) for line in lines) <= 40
    assert max(len(line) for line in lines) > 30


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
