"""Generate zomg's man page, command reference and shell completions from its command definitions.

    python scripts/gen_docs.py          # rewrite the generated files
    python scripts/gen_docs.py --check  # exit 1 and name the stale files

The parser is built from the same definitions (``zomg.commands``), so these
files describe exactly what the parser accepts; a test runs ``--check``.
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

EXIT_CODES = (
    ("0", "success"),
    ("1", "an error, reported as one line `zomg: error: ...` on standard error: the command line was fine but "
          "something on this machine stopped the command (a box that does not exist or is damaged, a file "
          "zomg cannot read or write)"),
    ("2", "a usage error: an unknown command or option, a missing or invalid argument, or a value zomg cannot "
          "use whatever the machine holds, such as a `--workdir` that is not a directory inside the box's "
          "workspace"),
    ("126", "`zomg exec`: the command was found but could not be run"),
    ("127", "`zomg exec`: the command was not found"),
    ("130", "interrupted (Ctrl-C) while zomg itself was working; for `zomg exec` and `zomg console`, only when "
            "the command died of the interrupt (one that handles Ctrl-C and exits gives its own code)"),
    ("141", "the reader of standard output went away before zomg finished writing: only when the output "
            "outgrows the pipe's buffer (64 KiB on Linux) or the reader has already exited. "
            "`zomg box list | head -1` exits 0 while the listing fits in that buffer"),
    ("other", "`zomg exec` and `zomg console` exit with the command's or shell's own exit code; "
              "a command killed by signal N gives 128+N, as in a shell"),
)

FILES = (
    ("$XDG_DATA_HOME/zomg/boxes/NAME/box.json", "a box's metadata (JSON, written atomically)"),
    ("$XDG_DATA_HOME/zomg/boxes/NAME/workspace/", "the box's workspace, where its commands run"),
    ("$XDG_CONFIG_HOME/zomg/setup.json", "the answers given to `zomg setup`: where boxes live (which then "
                                         "replaces the default $XDG_DATA_HOME/zomg/boxes above), a deployment name, "
                                         "the deployment-metrics "
                                         "choice and its id (mode 0600)"),
    ("$XDG_CONFIG_HOME/zomg/telemetry.json", "your telemetry choice, the installation id, the notice version shown "
                                             "(mode 0600)"),
    ("$XDG_STATE_HOME/zomg/telemetry/", "unsent telemetry events and their delivery state"),
    ("$XDG_CONFIG_DIRS/zomg/telemetry.json", "a system-wide telemetry default set by a packager or admin "
                                              "(default directory /etc/xdg)"),
)

ENVIRONMENT = (
    ("XDG_CONFIG_HOME, XDG_STATE_HOME, XDG_DATA_HOME",
     "where zomg keeps its files; unset, empty or relative values mean ~/.config, ~/.local/state "
     "and ~/.local/share (on macOS ~/Library/Application Support; "
     "on Windows %APPDATA% and %LOCALAPPDATA%)"),
    ("XDG_CONFIG_DIRS", "where system-wide defaults are looked up (default /etc/xdg)"),
    ("ZOMG_TELEMETRY", "off, on or log: overrides the telemetry setting (see docs/telemetry.md)"),
    ("DO_NOT_TRACK", "any value but empty, 0 or false turns telemetry off"),
    ("ZOMG_TELEMETRY_ENDPOINT", "where telemetry is sent"),
    ("SHELL", "the shell `zomg console` opens (default /bin/sh)"),
    ("ZOMG_DEBUG", "set to print the traceback of an internal error"),
    ("NO_COLOR, FORCE_COLOR, PYTHON_COLORS", "whether help is coloured (Python 3.14 and later), as Python decides it"),
    ("ZOMG_BOX", "set by zomg, for the commands it runs: the box's name (a shell prompt can show it)"),
    ("PWD, OLDPWD", "set by zomg exec and zomg console, for the command they run: PWD to the directory it runs in, "
                    "OLDPWD to the one zomg was started in (as after cd)"),
)


def _use_source_tree_if_needed() -> None:
    # An installed zomg (tests under tox) is checked as installed; a bare checkout uses its own tree.
    try:
        import zomg  # noqa: F401
    except ImportError:
        sys.path.insert(0, ROOT)


def _commands():
    _use_source_tree_if_needed()
    from zomg import commands

    return commands


def _walk(spec, path=()):
    path = path + (spec.name,)
    yield path, spec
    for child in spec.subcommands:
        yield from _walk(child, path)


def _arg_label(arg, commands) -> str:
    if arg.kind == commands.REST:
        return f"-- {arg.metavar}"
    if arg.kind == commands.POSITIONALS:
        return f"{arg.metavar}..."
    if arg.kind == commands.WORDS:
        return f"[{arg.metavar}...]"
    if not arg.is_option:
        return arg.metavar
    value = "" if arg.kind == commands.FLAG else f" {arg.metavar}"
    return ", ".join(f"{name}{value}" for name in arg.names)


def _markdown_examples(examples) -> list[str]:
    if not examples:
        return []
    return ["Examples:", "", "```sh", *(line for what, cmd in examples for line in (f"# {what}", cmd)), "```", ""]


def _roff_examples(examples) -> list[str]:
    if not examples:
        return []
    out = [".PP", "Examples:", ".RS", ".nf"]
    for what, cmd in examples:
        out += [_roff(f"# {what}"), _roff(cmd)]
    return out + [".fi", ".RE"]


def markdown() -> str:
    commands = _commands()
    out = [
        "# zomg command reference",
        "",
        "<!-- Generated by `python scripts/gen_docs.py` from zomg's command definitions; do not edit. -->",
        "",
        "```",
        commands.ROOT_SYNOPSIS,
        "```",
        "",
        "Every command accepts `-h`/`--help`. `zomg --version` prints the version. Options are never",
        "abbreviated: `--proj` is an error, not `--project`.",
        "",
        "Help is coloured as Python's own argparse colours it: from Python 3.14 on, when standard output",
        "is a terminal, unless `NO_COLOR` is set or `PYTHON_COLORS=0`; `FORCE_COLOR` or `PYTHON_COLORS=1`",
        "colours it anywhere. Before 3.14 help is never coloured. Nothing but help is coloured, and the",
        "colour support is loaded only when help is written, so it costs other commands nothing.",
        "",
        "Box, project and deployment names are 1 to 63 lowercase letters, digits and `-`, starting with a",
        "letter or digit. Results go to standard output; messages for people (and every error, as one",
        "line `zomg: error: ...`) go to standard error, so output stays pipeable. An unknown option is",
        "named at the level where it was given (`zomg --bogus box list` blames `zomg`, not `box list`),",
        "and a close misspelling of a command, option or value gets a suggestion (\"did you mean 'list'?\").",
        "",
        "`zomg completion bash|zsh|fish` prints a completion script: commands and options, box names where",
        "an existing box is named (not for `box create`), declared values (`--deployment-metrics on|off`),",
        "directories for `--boxes-dir` (and for `--workdir`, inside the named box's workspace), and after",
        "`zomg exec NAME --` the command line to run. `zomg completion --help` says how to install it for each",
        "shell.",
        "",
        "`zomg` alone prints this help (exit 0), as does a command group alone (`zomg box`); `zomg help box list`",
        "prints what `zomg box list --help` prints.",
        "",
        *_markdown_examples(commands.ROOT_EXAMPLES),
    ]
    for top in commands.load_all():
        for path, spec in _walk(top):
            out += [f"## `zomg {' '.join(path)}`", "", commands.describe(spec),
                    "", "```", commands.synopsis(path, spec), "```", ""]
            if spec.args:
                out += ["| argument | meaning |", "|---|---|"]
                out += [f"| `{_arg_label(a, commands)}` | {a.help} |" for a in spec.args]
                out.append("")
            if spec.subcommands:
                out += ["| command | meaning |", "|---|---|"]
                out += [f"| `{c.name}` | {c.help} |" for c in spec.subcommands]
                out.append("")
            out += _markdown_examples(spec.examples)
    out += ["## Exit codes", "", "| code | meaning |", "|---|---|"]
    out += [f"| {code} | {meaning} |" for code, meaning in EXIT_CODES]
    out += ["", "## Files", "", "| path | what |", "|---|---|"]
    out += [f"| `{path}` | {what} |" for path, what in FILES]
    out += ["", "## Environment", "", "| variable | effect |", "|---|---|"]
    out += [f"| `{var}` | {effect} |" for var, effect in ENVIRONMENT]
    out.append("")
    return "\n".join(out)


def _roff(text: str) -> str:
    text = text.replace("\\", "\\e").replace("`", "")
    lines = text.split("\n")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in lines).replace("-", "\\-")


def manpage() -> str:
    from zomg import __version__

    commands = _commands()
    out = [
        '.\\" Generated by scripts/gen_docs.py from zomg\'s command definitions; do not edit.',
        f'.TH ZOMG 1 "" "zomg {__version__}" "User Commands"',
        ".SH NAME",
        "zomg \\- named workspaces (boxes) for running commands and shells",
        ".SH SYNOPSIS",
        _roff(commands.ROOT_SYNOPSIS),
        ".SH DESCRIPTION",
        "zomg keeps \\fIboxes\\fR: named workspaces in which you run commands (\\fBzomg exec\\fR) "
        "and open shells (\\fBzomg console\\fR). Options are never abbreviated.",
        ".SH OPTIONS",
        ".TP", "\\fB\\-h\\fR, \\fB\\-\\-help\\fR", _roff(commands.HELP_ARG.help),
        ".TP", "\\fB\\-\\-version\\fR", _roff(commands.VERSION_ARG.help),
        ".SH COMMANDS",
    ]
    for top in commands.load_all():
        for path, spec in _walk(top):
            out += [".SS " + _roff(commands.synopsis(path, spec)), _roff(commands.describe(spec))]
            for arg in spec.args:
                out += [".TP", "\\fB" + _roff(_arg_label(arg, commands)) + "\\fR", _roff(arg.help)]
            out += _roff_examples(spec.examples)
    out.append(".SH EXAMPLES")
    out += _roff_examples(commands.ROOT_EXAMPLES)[2:]
    out.append(".SH EXIT STATUS")
    for code, meaning in EXIT_CODES:
        out += [".TP", f"\\fB{code}\\fR", _roff(meaning)]
    out.append(".SH ENVIRONMENT")
    for var, effect in ENVIRONMENT:
        out += [".TP", f"\\fB{_roff(var)}\\fR", _roff(effect)]
    out.append(".SH FILES")
    for path, what in FILES:
        out += [".TP", f"\\fI{_roff(path)}\\fR", _roff(what)]
    out += [".SH TELEMETRY",
            "zomg sends pseudonymous usage data (command and option names, never their values) "
            "after telling you so once. Turn it off with \\fBzomg telemetry off\\fR, "
            "\\fBZOMG_TELEMETRY=off\\fR or \\fBDO_NOT_TRACK=1\\fR. "
            "Packagers can ship it off or locked off in \\fI/etc/xdg/zomg/telemetry.json\\fR.",
            ""]
    return "\n".join(out)


def outputs() -> dict[str, str]:
    _use_source_tree_if_needed()
    from zomg import completion

    return {
        "docs/cli.md": markdown(),
        "docs/zomg.1": manpage(),
        "docs/completions/zomg.bash": completion.bash(),
        "docs/completions/_zomg": completion.zsh(),
        "docs/completions/zomg.fish": completion.fish(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1 if any)")
    args = parser.parse_args()
    stale = []
    for rel, text in outputs().items():
        path = os.path.join(ROOT, rel)
        try:
            with open(path, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current == text:
            continue
        stale.append(rel)
        if not args.check:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if args.check and stale:
        print("stale (run python scripts/gen_docs.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    for rel in stale:
        print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
