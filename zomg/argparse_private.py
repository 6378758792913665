"""Every use of argparse's private API in zomg, each one wrapped and explained here.

argparse documents its classes' names, not their insides. zomg needs a few of
those insides: to record which option and command names the parser matched
(telemetry is built only from them), to say which word was wrong and what was
meant, to keep argparse's messages in English without gettext's start-up cost,
and to size help text without importing shutil. Nothing else in zomg touches an
underscored argparse name; tests/cli/test_argparse_private.py exercises each
hook on every Python in the tox matrix, so an upgrade that changes one fails there.
"""
from __future__ import annotations

import argparse

# The action classes behind each ``action=`` keyword zomg uses ("parsers" is add_subparsers').
ACTION_CLASSES = {
    "store": argparse._StoreAction,
    "store_true": argparse._StoreTrueAction,
    "append": argparse._AppendAction,
    "help": argparse._HelpAction,
    "version": argparse._VersionAction,
    "parsers": argparse._SubParsersAction,
}


def is_subcommands(action: argparse.Action) -> bool:
    """Whether ``action`` is the one ``add_subparsers`` made (its choices are the command names)."""
    return isinstance(action, argparse._SubParsersAction)


def register_actions(parser: argparse.ArgumentParser, classes: dict) -> None:
    """Make ``parser`` build ``classes[keyword]`` for each ``action=keyword`` (and by default, "store")."""
    # register() is undocumented: the only way to change the class behind a keyword for
    # every parser, subparsers included, without naming a class in each add_argument.
    for name, cls in classes.items():
        parser.register("action", name, cls)
    parser.register("action", None, classes["store"])


class ChoiceCheckingParser(argparse.ArgumentParser):
    """An ArgumentParser that hands a value outside an action's choices to ``invalid_choice``."""

    def invalid_choice(self, action: argparse.Action, value: str) -> None:
        """Raise the error for ``value``, which is not among ``action.choices``."""
        raise NotImplementedError

    # _check_value is private: argparse's own "invalid choice" message names no close
    # match (before Python 3.14) and calls a command a choice.
    def _check_value(self, action, value) -> None:
        if action.choices is not None and value not in action.choices:
            self.invalid_choice(action, value)
        super()._check_value(action, value)


class WidthFormatter(argparse.HelpFormatter):
    """A HelpFormatter whose width comes from ``width_of_terminal`` instead of shutil."""

    # argparse's default asks shutil for the width, and importing shutil costs more than
    # the rest of a `zomg box list`. The constructor's signature is argparse's own.
    width_of_terminal = staticmethod(lambda: 80)

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width=None) -> None:
        super().__init__(prog, indent_increment, max_help_position, width or self.width_of_terminal() - 2)


def _same(message: str) -> str:
    return message


def _singular_or_plural(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


class EnglishOnly:
    """While in this context, argparse's own words are not looked up in gettext's catalogues.

    zomg speaks English, so argparse's words stay English too and no line is
    half-translated; gettext's catalogue search (a dozen file-system look-ups
    per phrase) stays out of start-up. argparse calls the module globals
    ``_`` and ``ngettext``, which are restored on exit.
    """

    def __enter__(self) -> None:
        self.saved = argparse._, argparse.ngettext
        argparse._ = _same
        argparse.ngettext = _singular_or_plural

    def __exit__(self, *exc_info) -> None:
        argparse._, argparse.ngettext = self.saved
