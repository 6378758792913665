"""Shell completion scripts generated from the command declarations.

The parser is built from the same declarations, so a completion script can
never offer a command or option the parser does not accept. Box names are
completed by asking ``zomg box list`` with telemetry off: pressing Tab is not
a use of zomg worth recording.
"""
from __future__ import annotations

from zomg import commands

SHELLS = ("bash", "zsh", "fish")
_GLOBAL_OPTIONS = (("--help", "-h"), ("--version",))
_HEADER = "generated from zomg's command definitions by `zomg completion {shell}`; do not edit"
_BOX_NAMES = 'env ZOMG_TELEMETRY=off zomg box list 2>/dev/null | tail -n +2 | cut -d" " -f1'


class _Node:
    def __init__(self, path: tuple[str, ...], help: str) -> None:
        self.path = path
        self.help = help
        self.children: list[_Node] = []
        self.options: list[tuple[tuple[str, ...], bool, str]] = [(("--help", "-h"), False, "show help")]
        self.positionals: list[commands.Arg] = []


def tree() -> _Node:
    """Every command as a node with its subcommands, options and positionals."""
    root = _Node((), "zomg")
    root.options.append((("--version",), False, "print the version"))

    def add(parent: _Node, spec: commands.Command) -> None:
        node = _Node(parent.path + (spec.name,), spec.help)
        for arg in spec.args:
            if arg.is_option:
                node.options.append((arg.names, arg.kind != commands.FLAG, arg.help))
            elif arg.kind == commands.POSITIONAL:
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


def _value_words(arg: commands.Arg) -> str:
    if arg.choices:
        return " ".join(arg.choices)
    return ""


def bash() -> str:
    root = tree()
    lines = [f"# bash completion for zomg, {_HEADER.format(shell='bash')}", "_zomg() {",
             '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
             '    local path="" w i npos=0', '    for ((i = 1; i < COMP_CWORD; i++)); do',
             '        w="${COMP_WORDS[i]}"', '        [[ $w == -- ]] && return 0',
             '        case "$path|$w" in']
    for node in _walk(root):
        for child in node.children:
            case = f'"{" ".join(node.path)}|{child.path[-1]}"'
            lines.append(f'            {case}) path="{" ".join(child.path)}"; continue ;;')
    lines += ['        esac', '        [[ $w != -* ]] && case "$prev" in']
    value_opts = sorted({n for node in _walk(root) for names, takes, _ in node.options if takes for n in names})
    lines += [f'            {"|".join(value_opts)}) ;;' if value_opts else '            "") ;;',
              '            *) npos=$((npos + 1)) ;;', '        esac', '    done', '    case "$prev" in']
    for node in _walk(root):
        for names, takes, _ in node.options:
            if takes and names == ("--shell",):
                lines.append(f'        {"|".join(names)}) COMPREPLY=($(compgen -c -- "$cur")); return 0 ;;')
    if value_opts:
        lines.append(f'        {"|".join(value_opts)}) return 0 ;;')
    lines += ['    esac', '    local words=""', '    case "$path" in']
    for node in _walk(root):
        words = [c.path[-1] for c in node.children] + [n for names, _, _ in node.options for n in names]
        pos = ""
        first = node.positionals[0] if node.positionals else None
        if first is not None and first.choices:
            pos = f'; [[ $npos -eq 0 ]] && words="$words {_value_words(first)}"'
        elif first is not None and first.metavar == "NAME":
            pos = f'; [[ $npos -eq 0 && $cur != -* ]] && words="$words $({_BOX_NAMES})"'
        lines.append(f'        "{" ".join(node.path)}") words="{" ".join(words)}"{pos} ;;')
    lines += ['    esac', '    COMPREPLY=($(compgen -W "$words" -- "$cur"))', "}", "complete -F _zomg zomg", ""]
    return "\n".join(lines)


def _quote_single(text: str) -> str:
    return text.replace("'", "'\\''")


def zsh() -> str:
    root = tree()
    lines = ["#compdef zomg", f"# zsh completion for zomg, {_HEADER.format(shell='zsh')}", ""]
    for node in _walk(root):
        fn = "_zomg" + "".join(f"_{p}" for p in node.path)
        lines.append(f"{fn}() {{")
        specs = []
        for names, takes, help_text in node.options:
            value = ":value:" if takes else ""
            if names[0] == "--shell":
                value = ":shell:_command_names -e"
            group = f"({' '.join(names)})" if len(names) > 1 else ""
            target = f"{{{','.join(names)}}}" if len(names) > 1 else names[0]
            specs.append(f"'{group}'{target}'[{_quote_single(help_text)}]{value}'")
        if node.children:
            specs += ["'1:command:->cmds'", "'*::arg:->args'"]
        for i, arg in enumerate(node.positionals, 1):
            action = f"({_value_words(arg)})" if arg.choices else (
                f"{{compadd -- $({_BOX_NAMES})}}" if arg.metavar == "NAME" else "")
            specs.append(f"'{i}:{arg.metavar.lower()}:{action}'")
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


def fish() -> str:
    root = tree()
    lines = [f"# fish completion for zomg, {_HEADER.format(shell='fish')}", "complete -c zomg -f"]
    for node in _walk(root):
        seen = "; and ".join(f"__fish_seen_subcommand_from {p}" for p in node.path)
        cond = f"-n '{seen}'" if node.path else "-n '__fish_use_subcommand'"
        child_names = " ".join(c.path[-1] for c in node.children)
        for child in node.children:
            c = f"-n '{seen}; and not __fish_seen_subcommand_from {child_names}'" if node.path else cond
            lines.append(f"complete -c zomg {c} -a {child.path[-1]} -d '{_quote_single(child.help)}'")
        for names, takes, help_text in node.options:
            parts = []
            for n in names:
                parts.append(f"-l {n[2:]}" if n.startswith("--") else f"-s {n[1:]}")
            value = " -r" if takes else ""
            if names[0] == "--shell":
                value = " -r -a '(__fish_complete_command)'"
            lines.append(f"complete -c zomg {cond} {' '.join(parts)}{value} -d '{_quote_single(help_text)}'")
        for arg in node.positionals[:1]:
            if arg.choices:
                lines.append(f"complete -c zomg {cond} -a '{_value_words(arg)}'")
            elif arg.metavar == "NAME":
                lines.append(f"complete -c zomg {cond} -a '({_BOX_NAMES})'")
    lines.append("")
    return "\n".join(lines)


def script(shell: str) -> str:
    return {"bash": bash, "zsh": zsh, "fish": fish}[shell]()
