"""`zomg box`: create, list, show and remove boxes."""
from __future__ import annotations

from zomg import boxes
from zomg.commands import BOX, FLAG, MULTI, POSITIONAL, Arg, Command
from zomg.errors import ConfigError
from zomg.output import note, print_json, print_table, write_out


def create(name: str, project: str | None, env: list[str]) -> int:
    box = boxes.create(name, project=project, env=boxes.parse_env(env))
    note(f"created box '{box.name}' ({box.workspace})")
    return 0


def list_(project: str | None, json: bool, names: bool) -> int:
    found, problems = boxes.list_boxes(project)
    if names:
        write_out("".join(box.name + "\n" for box in found))
    elif json:
        print_json([box.to_json() for box in found])
    elif found:
        print_table(("NAME", "PROJECT", "CREATED"), [(b.name, b.project or "-", b.created) for b in found])
    elif project is not None:
        note(f"no box belongs to project '{project}' (see all boxes with: zomg box list)")
    elif not problems:
        note("no boxes yet; create one with: zomg box create NAME")
    for problem in problems[:-1]:
        note(f"zomg: warning: {problem}")
    if problems:
        # The readable boxes were listed; the exit status still says not all were.
        raise ConfigError(problems[-1])
    return 0


def show(name: str, json: bool) -> int:
    box = boxes.get(name)
    problem = boxes.workspace_problem(box)
    if json:
        print_json(box.to_json())
    else:
        import shlex

        # One variable per line, its value shell-quoted: `--env 'A=x B=y'` never reads as two.
        env = [f"{k}={shlex.quote(v)}" for k, v in sorted(box.env.items())] or ["-"]
        print_table(
            ("name:", box.name),
            [("project:", box.project or "-"), ("created:", box.created),
             ("workspace:", box.workspace + (" (damaged)" if problem else "")),
             ("env:", env[0]), *(("", line) for line in env[1:])],
        )
    if problem is not None:
        raise ConfigError(problem)  # shown all the same: the name and the fix are what the user needs
    return 0


def rm(name: str, force: bool) -> int:
    boxes.remove(name, force=force)
    note(f"removed box '{name}'")
    return 0


_NAME = Arg("name", help="the box's name", kind=POSITIONAL, metavar="NAME", complete=BOX)
_JSON = Arg("--json", help="print JSON instead of a table", kind=FLAG)

SPEC = Command(
    "box",
    help="create, list, show and remove boxes",
    subcommands=(
        Command(
            "create",
            help="create a box",
            run=create,
            args=(
                Arg("name", help="the new box's name", kind=POSITIONAL, metavar="NAME"),
                Arg("--project", help="group the box under a project", metavar="P"),
                Arg("--env", help="set an environment variable for the box's commands (repeatable)",
                    kind=MULTI, metavar="KEY=VALUE"),
            ),
        ),
        Command(
            "list",
            help="list boxes",
            description="List boxes, sorted by name. A box whose metadata cannot be read is reported on "
            "standard error and the exit status is 1; the readable ones are still listed.",
            run=list_,
            args=(
                Arg("--project", help="only boxes of this project", metavar="P"),
                _JSON,
                Arg("--names", help="print only the names, one per line (for scripts and shell completion)",
                    kind=FLAG),
            ),
        ),
        Command("show", help="show one box", run=show, args=(_NAME, _JSON)),
        Command(
            "rm",
            help="remove a box (refuses one whose workspace holds files unless --force)",
            description="Remove a box and its workspace. A box whose workspace holds files, or whose "
            "metadata is damaged or missing, is removed only with --force; even then zomg removes only a "
            "real directory in the boxes directory holding nothing but a box's own files.",
            run=rm,
            args=(_NAME, Arg("--force", "-f", help="remove it even if its workspace holds files or its metadata "
                             "is damaged", kind=FLAG)),
        ),
    ),
)
