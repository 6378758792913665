"""`zomg exec NAME -- CMD [ARG...]`: run a command inside a box."""
from __future__ import annotations

import os

from zomg import boxes, process
from zomg.commands import BOX, MULTI, POSITIONAL, REST, WORKSPACE_DIRECTORY, Arg, Command
from zomg.errors import CommandNotFoundError, UsageError


def box_environment(box: boxes.Box, extra: dict[str, str], cwd: str) -> dict[str, str]:
    """The child's environment: the caller's, the box's, ``extra``; then what a shell's `cd cwd` would set."""
    env = dict(os.environ)
    env.update(box.env)
    env.update(extra)
    env["ZOMG_BOX"] = box.name
    # Programs (node, make, build scripts) trust $PWD over getcwd(): it must name where the child runs.
    env["PWD"] = cwd
    try:
        env["OLDPWD"] = os.getcwd()  # as after `cd`: `cd -` goes back to where zomg was started
    except OSError:  # the caller's directory was deleted: there is nowhere to go back to
        env.pop("OLDPWD", None)
    return env


def resolve_workdir(box: boxes.Box, workdir: str | None) -> str:
    """``workdir`` is relative to the box's workspace and must stay inside it.

    Either way it fails, the value given is unusable, so both are usage errors (exit 2).
    """
    workspace = os.path.realpath(box.workspace)
    if not workdir:
        return workspace
    target = os.path.realpath(os.path.join(workspace, workdir))
    if os.path.commonpath([workspace, target]) != workspace:
        raise UsageError(f"--workdir {workdir!r} is outside the workspace of box '{box.name}'")
    if not os.path.isdir(target):
        raise UsageError(f"--workdir {workdir!r}: no such directory in the workspace of box '{box.name}'")
    return target


def enter(name: str, extra: dict[str, str], workdir: str | None = None) -> tuple[boxes.Box, str, dict[str, str]]:
    """Box ``name``, the directory its command runs in and the command's environment (exec and console)."""
    box = boxes.check_workspace(boxes.get(name))
    cwd = resolve_workdir(box, workdir)
    boxes.mark_used(box)
    return box, cwd, box_environment(box, extra, cwd)


def run_child(box: boxes.Box, argv: list[str], cwd: str, env: dict[str, str]) -> int:
    """Run ``argv`` as ``enter`` prepared it; return the exit code."""
    try:
        return process.run(argv, cwd, env)
    except CommandNotFoundError:
        boxes.check_workspace(box)  # removed since `enter` looked: that, not the command, is what is missing
        raise


def run_in_box(name: str, argv: list[str], extra: dict[str, str], workdir: str | None = None) -> int:
    """Run ``argv`` in box ``name`` the way exec and console both do; return the exit code."""
    box, cwd, env = enter(name, extra, workdir)
    return run_child(box, argv, cwd, env)


def run(name: str, env: list[str], workdir: str | None, command: list[str]) -> int:
    extra = boxes.parse_env(env)
    if not command:
        raise UsageError("exec: missing the command to run: zomg exec NAME -- CMD [ARG...]")
    return run_in_box(name, command, extra, workdir)


SPEC = Command(
    "exec",
    help="run a command inside a box",
    description="Run CMD in the box's workspace with the box's environment, PWD set to the directory it "
    "runs in and ZOMG_BOX to the box's name. No shell is involved unless CMD is one. zomg exits with CMD's "
    "exit code.",
    run=run,
    args=(
        Arg("name", help="the box's name", kind=POSITIONAL, metavar="NAME", complete=BOX),
        Arg("--env", help="set an environment variable for this command (repeatable)", kind=MULTI,
            metavar="KEY=VALUE"),
        Arg("--workdir", help="directory inside the workspace to run in", metavar="DIR",
            complete=WORKSPACE_DIRECTORY),
        Arg("command", help="the command and its arguments, after --", kind=REST, metavar="CMD [ARG...]"),
    ),
    examples=(("run the tests in box web", "zomg exec web -- make test"),
              ("in a subdirectory of its workspace, with one more variable",
               "zomg exec web --workdir src --env DEBUG=1 -- python3 app.py"),
              ("a shell command line", "zomg exec web -- sh -c 'ls | wc -l'")),
)
