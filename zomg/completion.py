"""Shell completion scripts generated from the command declarations.

The parser is built from the same declarations, so a completion script can
never offer a command or option the parser does not accept. What a value or
positional completes to is declared with it (``choices``, or ``complete``:
box names, directories, programs); a positional that declares neither, such
as the name of a box about to be created, completes to nothing. After ``--``
the box's command completes as a program, then as files.

Box names come from ``zomg box list --names`` (one per line, made for this),
run with telemetry off: pressing Tab is not a use of zomg worth recording.
"""
from __future__ import annotations

from zomg import commands

SHELLS = ("bash", "zsh", "fish")
_HEADER = "generated from zomg's command definitions by `zomg completion {shell}`; do not edit"
_BOX_NAMES = "env ZOMG_TELEMETRY=off zomg box list --names 2>/dev/null"
# The workspace of the box named by the shell variable in {box}: --workdir is resolved inside it.
_WORKSPACE = "env ZOMG_TELEMETRY=off zomg box show --workspace -- {box} 2>/dev/null"


class _Node:
    def __init__(self, path: tuple[str, ...], help: str) -> None:
        self.path = path
        self.help = help
        self.children: list[_Node] = []
        self.options: list[commands.Arg] = [commands.HELP_ARG]
        self.positionals: list[commands.Arg] = []
        self.rest = False

    @property
    def box_index(self) -> int:
        """Which positional names the box (for a directory inside its workspace), -1 when none does."""
        return next((i for i, arg in enumerate(self.positionals) if arg.complete == commands.BOX), -1)

    def repeats(self, i: int) -> bool:
        """Whether positional ``i`` takes every word from there on (NAME...)."""
        return self.positionals[i].kind == commands.POSITIONALS

    @property
    def key(self) -> str:
        return " ".join(self.path)


def tree() -> _Node:
    """Every command as a node with its subcommands, options and positionals."""
    root = _Node((), "zomg")
    root.options.append(commands.VERSION_ARG)

    def add(parent: _Node, spec: commands.Command) -> None:
        node = _Node(parent.path + (spec.name,), spec.help)
        for arg in spec.args:
            if arg.kind == commands.REST:
                node.rest = True
            elif arg.is_option:
                node.options.append(arg)
            else:
                node.positionals.append(arg)
        for child in spec.subcommands:
            add(node, child)
        parent.children.append(node)

    for spec in commands.load_all():
        add(root, spec)
    return root


def _walk(node: _Node):
    yield node
    for child in node.children:
        yield from _walk(child)


def _takes_value(arg: commands.Arg) -> bool:
    return arg.kind != commands.FLAG


def _quote_single(text: str) -> str:
    return text.replace("'", "'\\''")


# --- bash ------------------------------------------------------------------------

def _words(arg: commands.Arg) -> tuple[str, ...]:
    """The fixed words ``arg`` completes to: its choices, or zomg's command names."""
    return arg.choices or (tuple(commands.TOP_LEVEL) if arg.complete == commands.COMMAND else ())


def _bash_values(arg: commands.Arg, node: _Node) -> str:
    """Commands that fill COMPREPLY with the values ``arg`` (of ``node``) takes, matching $cur."""
    if _words(arg):
        return f'COMPREPLY=($(compgen -W "{" ".join(_words(arg))}" -- "$cur"))'
    if arg.complete == commands.WORKSPACE_DIRECTORY:
        return f'_zomg_workspace_dirs "${{pos[{node.box_index}]}}"'
    if arg.complete == commands.BOX:
        return f'COMPREPLY=($(compgen -W "$({_BOX_NAMES})" -- "$cur"))'
    if arg.complete == commands.DIRECTORY:
        return 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur"))'
    if arg.complete == commands.PROGRAM:
        return 'COMPREPLY=($(compgen -c -- "$cur"))'
    return "COMPREPLY=()"


def _bash_case(patterns: list[str], body: str) -> str:
    return f'        {"|".join(patterns)}) {body} ;;'


def bash() -> str:
    root = tree()
    nodes = list(_walk(root))
    lines = [
        f"# bash completion for zomg, {_HEADER.format(shell='bash')}",
        "_zomg_workspace_dirs() {",
        "    local ws IFS=$'\\n'",
        '    ws="$(' + _WORKSPACE.format(box='"$1"') + ')"',
        '    [[ -n $ws && -d $ws ]] || { COMPREPLY=(); return 0; }',
        "    compopt -o nospace 2>/dev/null",
        '    COMPREPLY=($(cd -- "$ws" && compgen -d -S / -- "$cur"))',
        "}",
        "_zomg() {",
        # bash splits `--env A=1` at '=' (COMP_WORDBREAKS): glue those pieces back into words.
        '    local -a words=()',
        '    local w i',
        '    for ((i = 0; i <= COMP_CWORD; i++)); do',
        '        w="${COMP_WORDS[i]}"',
        '        if (( i > 1 )) && [[ $w == = || ${COMP_WORDS[i-1]} == = ]]; then',
        '            words[${#words[@]}-1]+="$w"',
        '        else',
        '            words+=("$w")',
        '        fi',
        '    done',
        '    local n=$((${#words[@]} - 1)) path="" npos=0 expect="" dashdash=-1',
        '    local -a pos=()',
        '    local cur="${words[n]}" prefix=""',
        '    for ((i = 1; i < n; i++)); do',
        '        w="${words[i]}"',
        '        if [[ -n $expect ]]; then expect=""; continue; fi',
        '        if [[ $w == -- ]]; then dashdash=$i; break; fi',
        '        case "$w" in',
        '            --*=*) continue ;;',
        '            -*) case "$path|$w" in',
    ]
    value_options = [f'"{node.key}|{name}"' for node in nodes for arg in node.options if _takes_value(arg)
                     for name in arg.names]
    lines += [f'                {"|".join(value_options)}) expect="$w" ;;', '                esac; continue ;;',
              '        esac', '        if (( npos == 0 )); then', '            case "$path|$w" in']
    for node in nodes:
        for child in node.children:
            lines.append(f'                "{node.key}|{child.path[-1]}") path="{child.key}"; continue ;;')
    lines += ['            esac', '        fi', '        pos+=("$w")', '        npos=$((npos + 1))', '    done']
    # After `--`: the box's command, then its arguments (files).
    rest = [f'"{node.key}"' for node in nodes if node.rest]
    lines += ['    if (( dashdash >= 0 )); then', '        case "$path" in',
              f'            {"|".join(rest) or "__none__"})',
              '                if (( n == dashdash + 1 )); then COMPREPLY=($(compgen -c -- "$cur"))',
              '                else compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); fi ;;',
              '            *) COMPREPLY=() ;;', '        esac', '        return 0', '    fi']
    # A value: after an option that takes one, or inline as --option=value.
    lines += ['    if [[ -z $expect && $cur == --*=* ]]; then',
              '        expect="${cur%%=*}"',
              '        [[ ${COMP_WORDS[COMP_CWORD]} == "$cur" ]] && prefix="$expect="',
              '        cur="${cur#*=}"',
              '    fi',
              '    if [[ -n $expect ]]; then', '        case "$path|$expect" in']
    for node in nodes:
        for arg in node.options:
            if _takes_value(arg):
                lines.append(_bash_case([f'"{node.key}|{name}"' for name in arg.names], _bash_values(arg, node)))
    lines += ['            *) COMPREPLY=() ;;', '        esac',
              '        [[ -n $prefix ]] && COMPREPLY=("${COMPREPLY[@]/#/$prefix}")', '        return 0', '    fi']
    # An option name, a command name or a positional.
    lines += ['    if [[ $cur == -* ]]; then', '        case "$path" in']
    for node in nodes:
        names = [name for arg in node.options for name in arg.names] + (["--"] if node.rest else [])
        lines.append(f'            "{node.key}") COMPREPLY=($(compgen -W "{" ".join(names)}" -- "$cur")) ;;')
    lines += ['        esac', '        return 0', '    fi', '    case "$path|$npos" in']
    for node in nodes:
        if node.children:
            words = " ".join(child.path[-1] for child in node.children)
            lines.append(f'        "{node.key}|0") COMPREPLY=($(compgen -W "{words}" -- "$cur")) ;;')
        for i, arg in enumerate(node.positionals):
            at = f'"{node.key}|"*' if node.repeats(i) else f'"{node.key}|{i}"'
            lines.append(_bash_case([at], _bash_values(arg, node)))
        if node.rest:
            lines.append(f'        "{node.key}|{len(node.positionals)}") COMPREPLY=($(compgen -W "--" -- "$cur")) ;;')
    lines += ['        *) COMPREPLY=() ;;', '    esac', "}", "complete -F _zomg zomg", ""]
    return "\n".join(lines)


# --- zsh -------------------------------------------------------------------------

def _zsh_action(arg: commands.Arg, node: _Node) -> str:
    if _words(arg):
        return f"({' '.join(_words(arg))})"
    if arg.complete == commands.WORKSPACE_DIRECTORY:
        # $line holds the positional words given so far.
        return f"{{_zomg_workspace_dirs {node.box_index + 1}}}"  # braces: called with only this argument
    return {commands.BOX: "_zomg_boxes", commands.DIRECTORY: "_files -/",
            commands.PROGRAM: "_command_names -e"}.get(arg.complete, " ")


def _zsh_option(arg: commands.Arg, node: _Node) -> str:
    help_text = _quote_single(arg.help)
    value = f":{arg.metavar.lower()}:{_zsh_action(arg, node)}" if _takes_value(arg) else ""
    repeat = "*" if arg.kind == commands.MULTI else ""
    if len(arg.names) > 1:
        return f"'({' '.join(arg.names)})'{{{','.join(arg.names)}}}'[{help_text}]{value}'"
    return f"'{repeat}{arg.names[0]}[{help_text}]{value}'"


def zsh() -> str:
    root = tree()
    lines = ["#compdef zomg", f"# zsh completion for zomg, {_HEADER.format(shell='zsh')}", "",
             "_zomg_boxes() {", "    local -a names",
             f'    names=(${{(f)"$({_BOX_NAMES})"}})',
             "    _describe -t boxes box names", "}", "",
             "_zomg_workspace_dirs() {", "    local ws",
             "    ws=$(" + _WORKSPACE.format(box="${line[$1]}") + ")",
             "    [[ -n $ws && -d $ws ]] && _files -/ -W $ws", "}", ""]
    for node in _walk(root):
        fn = "_zomg" + "".join(f"_{p}" for p in node.path)
        lines.append(f"{fn}() {{")
        specs = [_zsh_option(arg, node) for arg in node.options]
        if node.children:
            specs += ["'1:command:->cmds'", "'*::arg:->args'"]
        for i, arg in enumerate(node.positionals, 1):
            at = "*" if node.repeats(i - 1) else str(i)
            specs.append(f"'{at}:{arg.metavar.lower()}:{_zsh_action(arg, node)}'")
        if node.rest:
            # After `--` comes a command line of its own, completed as zsh completes any command.
            lines += ["    local dashdash=${words[(i)--]}", "    if (( dashdash < CURRENT )); then",
                      "        shift $dashdash words", "        (( CURRENT -= dashdash ))", "        _normal",
                      "        return", "    fi"]
            specs.append(f"'{len(node.positionals) + 1}:separator:(--)'")
        lines.append("    local state line")
        lines.append("    _arguments -s \\\n        " + " \\\n        ".join(specs))
        if node.children:
            lines.append("    case $state in")
            lines.append("        cmds)")
            lines.append("            local -a cmds=(")
            for child in node.children:
                lines.append(f"                '{child.path[-1]}:{_quote_single(child.help)}'")
            lines.append("            )")
            lines.append("            _describe command cmds ;;")
            lines.append("        args)")
            lines.append("            case $line[1] in")
            for child in node.children:
                lines.append(f"                {child.path[-1]}) {fn}_{child.path[-1]} ;;")
            lines.append("            esac ;;")
            lines.append("    esac")
        lines.append("}")
        lines.append("")
    lines.append('_zomg "$@"')
    lines.append("")
    return "\n".join(lines)


# --- fish ------------------------------------------------------------------------

def _fish_values(arg: commands.Arg, node: _Node) -> str:
    if _words(arg):
        return f"-a '{' '.join(_words(arg))}'"
    if arg.complete == commands.WORKSPACE_DIRECTORY:
        return f"-a '(__zomg_workspace_dirs {node.box_index + 1})'"
    return {commands.BOX: "-a '(__zomg_boxes)'", commands.DIRECTORY: "-a '(__fish_complete_directories)'",
            commands.PROGRAM: "-a '(__fish_complete_command)'"}.get(arg.complete, "")


def fish() -> str:
    root = tree()
    nodes = list(_walk(root))
    value_options = sorted({n for node in nodes for arg in node.options if _takes_value(arg) for n in arg.names})
    flag_options = {n for node in nodes for arg in node.options if not _takes_value(arg) for n in arg.names}
    assert not flag_options & set(value_options), "an option name must take a value everywhere or nowhere"
    paths = " ".join(f"'{node.key}'" for node in nodes if node.path)
    lines = [
        f"# fish completion for zomg, {_HEADER.format(shell='fish')}",
        "complete -c zomg -f",
        "function __zomg_boxes",
        f"    {_BOX_NAMES}",
        "end",
        "function __zomg_workspace_dirs",
        "    __zomg_at '' any",
        "    set -l ws (" + _WORKSPACE.format(box="$__zomg_pos[$argv[1]]") + ")",
        "    test -n \"$ws\"; and test -d \"$ws\"; or return",
        "    set -l cur (string replace -r -- '^--[^=]*=' '' (commandline -ct))",
        "    for dir in $ws/$cur*/",
        "        string replace -- \"$ws/\" '' $dir",
        "    end",
        "end",
        "# Where the cursor is: __zomg_at PATH N is true at the Nth positional of command PATH (N+: at it or",
        "# after), PATH any anywhere before `--`, PATH rest at the command after `--`, PATH rest+ after that.",
        "# It leaves the positional words in __zomg_pos.",
        "function __zomg_at",
        "    set -g __zomg_pos",
        "    set -l tokens (commandline -opc)",
        "    set -e tokens[1]",
        "    set -l path ''",
        "    set -l npos 0",
        "    set -l expect 0",
        "    set -l rest -1",
        "    for t in $tokens",
        "        if test $rest -ge 0",
        "            set rest (math $rest + 1)",
        "            continue",
        "        end",
        "        if test $expect = 1",
        "            set expect 0",
        "            continue",
        "        end",
        "        switch $t",
        "            case --",
        "                set rest 0",
        "                continue",
        "            case '--*=*'",
        "                continue",
        "            case '-*'",
        f"                contains -- $t {' '.join(value_options)}; and set expect 1",
        "                continue",
        "        end",
        "        set -l deeper (string trim -- \"$path $t\")",
        f"        if test $npos = 0; and contains -- $deeper {paths}",
        "            set path $deeper",
        "            continue",
        "        end",
        "        set -a __zomg_pos $t",
        "        set npos (math $npos + 1)",
        "    end",
        "    test \"$path\" = \"$argv[1]\"; or return 1",
        "    switch $argv[2]",
        "        case any",
        "            test $rest = -1",
        "        case rest",
        "            test $rest = 0",
        "        case rest+",
        "            test $rest -gt 0",
        "        case '*+'",
        "            test $rest = -1; and test $expect = 0; and test $npos -ge (string trim -r -c + -- $argv[2])",
        "        case '*'",
        "            test $rest = -1; and test $expect = 0; and test $npos = $argv[2]",
        "    end",
        "end",
    ]
    for node in nodes:
        seen = f"-n '__zomg_at \"{node.key}\" 0'"
        anywhere = f"-n '__zomg_at \"{node.key}\" any'"
        for child in node.children:
            lines.append(f"complete -c zomg {seen} -a {child.path[-1]} -d '{_quote_single(child.help)}'")
        for arg in node.options:
            parts = " ".join(f"-l {n[2:]}" if n.startswith("--") else f"-s {n[1:]}" for n in arg.names)
            value = f" -x {_fish_values(arg, node)}".rstrip() if _takes_value(arg) else ""
            lines.append(f"complete -c zomg {anywhere} {parts}{value} -d '{_quote_single(arg.help)}'")
        for i, arg in enumerate(node.positionals):
            values = _fish_values(arg, node)
            if values:
                at = f"{i}+" if node.repeats(i) else str(i)
                lines.append(f"complete -c zomg -n '__zomg_at \"{node.key}\" {at}' {values}")
        if node.rest:
            lines.append(f"complete -c zomg -n '__zomg_at \"{node.key}\" rest' -a '(__fish_complete_command)'")
            lines.append(f"complete -c zomg -n '__zomg_at \"{node.key}\" rest+' -F")
    lines.append("")
    return "\n".join(lines)


def script(shell: str) -> str:
    return {"bash": bash, "zsh": zsh, "fish": fish}[shell]()
