"""`zomg box`: create, list, show, change, rename and remove boxes."""
from __future__ import annotations

from zomg import boxes
from zomg.commands import BOX, FLAG, MULTI, POSITIONAL, POSITIONALS, Arg, Command
from zomg.errors import ConfigError, UsageError, ZomgError
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


def show(name: str, json: bool, workspace: bool) -> int:
    box = boxes.get(name)
    problem = boxes.workspace_problem(box)
    if workspace:
        write_out(box.workspace + "\n")
    elif json:
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


def rm(names: list[str], force: bool) -> int:
    """Remove each box in turn, saying what became of each; exit 1 if any was not removed."""
    unique = list(dict.fromkeys(names))
    for name in unique:
        boxes.check_name(name)  # a mistyped command line removes nothing
    failed = []
    for name in unique:
        try:
            boxes.remove(name, force=force)
        except ZomgError as exc:
            if len(unique) == 1:
                raise
            failed.append(name)
            note(f"zomg: error: {exc.message}")
            continue
        note(f"removed box '{name}'")
    if failed:
        raise ConfigError(f"{len(failed)} of {len(unique)} boxes not removed (see above)")
    return 0


def edit(name: str, env: list[str], unset_env: list[str], project: str | None, no_project: bool) -> int:
    if project is not None and no_project:
        raise UsageError("box edit: --project and --no-project together: choose one")
    if not (env or unset_env or project is not None or no_project):
        raise UsageError("box edit: nothing to change: give --env, --unset-env, --project or --no-project")
    boxes.edit(name, boxes.parse_env(env), unset_env, project, no_project)
    note(f"changed box '{name}' (see: zomg box show {name})")
    return 0


def rename(old: str, new: str) -> int:
    box = boxes.rename(old, new)
    note(f"renamed box '{old}' to '{new}' ({box.workspace})")
    return 0


_NAME = Arg("name", help="the box's name", kind=POSITIONAL, metavar="NAME", complete=BOX)
_JSON = Arg("--json", help="print JSON instead of a table", kind=FLAG)
_ENV_HELP = "set an environment variable for the box's commands (repeatable)"

SPEC = Command(
    "box",
    help="create, list, show, change and remove boxes",
    examples=(("every box of one project", "zomg box list --project shop"),
              ("what a box holds", "zomg box show web")),
    subcommands=(
        Command(
            "create",
            help="create a box",
            description="Create a box: an empty workspace directory and the box's metadata. Names are 1 to 63 "
            "lowercase letters, digits and '-', starting with a letter or digit.",
            run=create,
            args=(
                Arg("name", help="the new box's name", kind=POSITIONAL, metavar="NAME"),
                Arg("--project", help="group the box under a project", metavar="P"),
                Arg("--env", help=_ENV_HELP, kind=MULTI, metavar="KEY=VALUE"),
            ),
            examples=(("a box in project shop whose commands see PORT=8080",
                       "zomg box create web --project shop --env PORT=8080"),),
        ),
        Command(
            "list",
            help="list boxes",
            description="List boxes, sorted by name. A box whose metadata cannot be read, or whose workspace "
            "is missing, is reported on standard error and the exit status is 1; the readable ones are still "
            "listed.",
            run=list_,
            args=(
                Arg("--project", help="only boxes of this project", metavar="P"),
                _JSON,
                Arg("--names", help="print only the names, one per line (for scripts and shell completion)",
                    kind=FLAG),
            ),
            examples=(("the boxes of project shop", "zomg box list --project shop"),
                      ("one name per line, for a script", "zomg box list --names")),
        ),
        Command(
            "show", help="show one box", run=show, args=(
                _NAME, _JSON,
                Arg("--workspace", help="print only the workspace's path (for scripts and shell completion)",
                    kind=FLAG)),
            description="Show a box's project, creation time, workspace and environment (one variable per "
            "line, its value quoted as a shell would need it). A box whose workspace is missing is shown, "
            "marked damaged, and the exit status is 1.",
            examples=(("a box as a table", "zomg box show web"),
                      ("go to its workspace", 'cd "$(zomg box show web --workspace)"')),
        ),
        Command(
            "edit",
            help="change a box's environment or project",
            description="Change a box's environment variables or project; its workspace is untouched. The "
            "metadata is replaced whole, so a failed edit changes nothing.",
            run=edit,
            args=(
                _NAME,
                Arg("--env", help=_ENV_HELP + "; replaces the variable's value", kind=MULTI, metavar="KEY=VALUE"),
                Arg("--unset-env", help="remove an environment variable from the box (repeatable)", kind=MULTI,
                    metavar="KEY"),
                Arg("--project", help="move the box to this project", metavar="P"),
                Arg("--no-project", help="take the box out of its project", kind=FLAG),
            ),
            examples=(("fix a variable and drop another", "zomg box edit web --env PATH=/usr/bin:/bin "
                       "--unset-env DEBUG"),
                      ("move it to another project", "zomg box edit web --project shop")),
        ),
        Command(
            "rename",
            help="rename a box (its workspace moves with it)",
            description="Rename a box; its workspace and files move with it in one rename. Refuses a name "
            "that another box has.",
            run=rename,
            args=(Arg("old", help="the box's name now", kind=POSITIONAL, metavar="OLD", complete=BOX),
                  Arg("new", help="its new name", kind=POSITIONAL, metavar="NEW")),
            examples=(("rename web to shop-web", "zomg box rename web shop-web"),),
        ),
        Command(
            "rm",
            help="remove boxes (refuses one whose workspace holds files unless --force)",
            description="Remove each box named and its workspace, saying what became of each one; the exit "
            "status is 0 only if every one was removed (an invalid name removes none). A box whose workspace "
            "holds files, or whose metadata is damaged or missing, is removed only with --force; even then "
            "zomg removes only a real directory in the boxes directory holding nothing but a box's own files.",
            run=rm,
            args=(Arg("names", help="the boxes' names", kind=POSITIONALS, metavar="NAME", complete=BOX),
                  Arg("--force", "-f", help="remove it even if its workspace holds files or its metadata "
                      "is damaged", kind=FLAG)),
            examples=(("remove three boxes", "zomg box rm a1 a2 a3"),
                      ("remove one with the files in its workspace", "zomg box rm --force web")),
        ),
    ),
)
