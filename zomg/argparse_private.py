"""Every use of argparse's private API in zomg: each a fast path with a public fallback.

argparse documents its classes' names, not their insides. zomg uses a few of
those insides only where they save start-up time: the action classes by name,
argparse's module globals ``_`` and ``ngettext`` (to keep gettext's catalogue
search out of start-up), and the formatter's colour set-up (Python 3.14 imports
``_colorize`` and a dozen modules for it whenever a formatter is built, which
argparse does for every ``add_argument``). Each one is tried, checked and, on
any failure while it is set up or used, replaced by what the public API gives:
the commands print the same and exit the same either way, only slower.
Nothing else in zomg touches an underscored argparse name.
tests/cli/test_argparse_private.py exercises each hook on every Python in the
tox matrix, and tests/cli/test_private_fallbacks.py breaks each one and runs
the commands.
"""
from __future__ import annotations

import argparse

# The ``action=`` keywords zomg uses ("parsers" is add_subparsers').
KEYWORDS = ("store", "store_true", "append", "help", "version", "parsers")


def _classes_by_private_name() -> dict:
    classes = {
        "store": argparse._StoreAction,
        "store_true": argparse._StoreTrueAction,
        "append": argparse._AppendAction,
        "help": argparse._HelpAction,
        "version": argparse._VersionAction,
        "parsers": argparse._SubParsersAction,
    }
    if not all(isinstance(cls, type) and issubclass(cls, argparse.Action) for cls in classes.values()):
        raise TypeError("an argparse action class is not an Action")
    return classes


def classes_built_by_a_parser() -> dict:
    """The class argparse builds for each of ``KEYWORDS``, read off a scratch parser (public API only)."""
    parser = argparse.ArgumentParser(prog="scratch", add_help=False, formatter_class=WidthFormatter)
    classes = {}
    for keyword in KEYWORDS[:-1]:
        extra = {"version": ""} if keyword == "version" else {}
        classes[keyword] = type(parser.add_argument(f"--{keyword}", action=keyword, **extra))
    classes["parsers"] = type(parser.add_subparsers())
    return classes


def action_classes() -> dict:
    """argparse's action class for each of ``KEYWORDS``: by name when it can, from a parser otherwise."""
    try:
        return _classes_by_private_name()
    except Exception:
        return classes_built_by_a_parser()


class WidthFormatter(argparse.HelpFormatter):
    """A HelpFormatter whose width comes from ``width_of_terminal`` and whose colour costs nothing until shown."""

    # argparse's default asks shutil for the width, and importing shutil costs more than
    # the rest of a `zomg box list`. The constructor's signature is argparse's own
    # (3.14 added `color`, passed through).
    width_of_terminal = staticmethod(lambda: 80)

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width=None,
                 **kwargs) -> None:
        super().__init__(prog, indent_increment, max_help_position, width or self.width_of_terminal() - 2, **kwargs)

    # Python 3.14's HelpFormatter sets up colour in _set_color, which imports
    # _colorize (dataclasses, inspect, ast, dis, ...: about 13 ms) and runs whenever a
    # formatter is built, for every add_argument. Here the call is only noted, and
    # argparse's own _set_color runs, with the same arguments, the first time the
    # formatter reads an attribute it did not find: when help is written. Before
    # 3.14 argparse never calls it; 3.15 defers the import itself.
    def _set_color(self, *args, **kwargs) -> None:
        for name in self.__dict__.pop("_zomg_color_attributes", ()):
            self.__dict__.pop(name, None)
        self._zomg_color_call = (args, kwargs)

    def __getattr__(self, name: str):
        call = self.__dict__.pop("_zomg_color_call", None)
        if call is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        before = set(self.__dict__)
        super()._set_color(*call[0], **call[1])
        self._zomg_color_attributes = set(self.__dict__) - before
        return getattr(self, name)


def _same(message: str) -> str:
    return message


def _singular_or_plural(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


class EnglishOnly:
    """While in this context, argparse's own words are not looked up in gettext's catalogues.

    zomg speaks English, so argparse's words stay English too and no line is
    half-translated; gettext's catalogue search (a dozen file-system look-ups
    per phrase) stays out of start-up. argparse calls the module globals
    ``_`` and ``ngettext``, which are restored on exit. An argparse without
    them is left alone: it finds its words its own way.
    """

    def __enter__(self) -> None:
        self.saved = getattr(argparse, "_", None), getattr(argparse, "ngettext", None)
        if callable(self.saved[0]) and callable(self.saved[1]):
            argparse._ = _same
            argparse.ngettext = _singular_or_plural
        else:
            self.saved = None

    def __exit__(self, *exc_info) -> None:
        if self.saved is not None:
            argparse._, argparse.ngettext = self.saved
