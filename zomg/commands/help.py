"""`zomg help [COMMAND...]`: the declaration of the command that shows another command's help.

`zomg help box list` prints exactly what `zomg box list --help` prints. The
help text is argparse's, built from every command's declaration, so the
parser answers this command itself (``zomg.parser``) instead of a function here.
"""
from __future__ import annotations

from zomg.commands import COMMAND, WORDS, Arg, Command

SPEC = Command(
    "help",
    help="show the help of zomg or of a command (the same as --help)",
    description="Show the help of zomg, or of COMMAND (and its subcommand): `zomg help box list` prints "
    "what `zomg box list --help` prints. `zomg` alone, and a command group alone (`zomg box`), print "
    "their help too.",
    args=(Arg("command", help="the command, then its subcommand, whose help to show", kind=WORDS,
              metavar="COMMAND", complete=COMMAND),),
    examples=(("the help of box list", "zomg help box list"),),
)
