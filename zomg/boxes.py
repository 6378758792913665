"""The local box backend: boxes as directories under ``root()``.

A box is ``<boxes>/<name>/`` holding ``box.json`` (its metadata) and
``workspace/`` (where its commands run). A box comes into existence by one
``rename`` of a fully written temporary directory, so other processes see no
box or a whole box, and of two processes creating the same name exactly one
wins. Every function here raises ``ZomgError`` subclasses for what a user can
cause; nothing here prints.
"""
from __future__ import annotations

import os

from zomg import json_light, paths
from zomg.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    UsageError,
    from_os_error,
)

METADATA = "box.json"
WORKSPACE = "workspace"
# Touched by exec and console; its mtime says when the box was last used.
USED_STAMP = ".last-used"
FORMAT = 1

# Checked with sets, not regular expressions: compiling a pattern costs more
# start-up time than `zomg box list` spends on everything else of its own.
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_ENV_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_ENV_CHARS = _ENV_FIRST | frozenset("0123456789")


def _valid_name(name: str) -> bool:
    """``[a-z0-9][a-z0-9-]{0,62}``"""
    return 0 < len(name) <= 63 and name[0] != "-" and _NAME_CHARS.issuperset(name)


def _valid_env_key(key: str) -> bool:
    """``[A-Za-z_][A-Za-z0-9_]*``"""
    return bool(key) and key[0] in _ENV_FIRST and _ENV_CHARS.issuperset(key)


class Box:
    __slots__ = ("name", "project", "env", "created", "path")

    def __init__(self, name: str, project: str | None, env: dict[str, str], created: str, path: str) -> None:
        self.name = name
        self.project = project
        self.env = env
        self.created = created
        self.path = path

    @property
    def workspace(self) -> str:
        return os.path.join(self.path, WORKSPACE)

    def last_used(self) -> float | None:
        try:
            return os.stat(os.path.join(self.path, USED_STAMP)).st_mtime
        except OSError:
            return None

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "project": self.project,
            "env": dict(self.env),
            "created": self.created,
            "workspace": self.workspace,
        }


def check_name(name: str, what: str = "box name") -> str:
    if not _valid_name(name):
        raise UsageError(
            f"invalid {what} {name!r}: use 1 to 63 lowercase letters, digits and '-', starting with a letter or digit"
        )
    return name


def parse_env(assignments: list[str]) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` to a dict; later assignments win."""
    env: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not _valid_env_key(key):
            raise UsageError(f"invalid --env {item!r}: expected KEY=VALUE with KEY made of letters, digits and '_'")
        env[key] = value
    return env


def _remove_hint(name: str) -> str:
    return f"remove it with: zomg box rm --force {name}"


def _damaged(name: str, what: str) -> ConfigError:
    return ConfigError(f"box '{name}' is damaged ({what}); {_remove_hint(name)}")


def workspace_problem(box: Box) -> str | None:
    """The one line saying what is wrong with ``box``'s workspace, or None when it is a directory."""
    if os.path.isdir(box.workspace):
        return None
    what = "is not a directory" if os.path.lexists(box.workspace) else "is missing"
    return f"box '{box.name}': its workspace {what} ({box.workspace}); {_remove_hint(box.name)}"


def check_workspace(box: Box) -> Box:
    """``box``, or the damage error when its workspace is gone: nothing can run in it."""
    problem = workspace_problem(box)
    if problem is not None:
        raise ConfigError(problem)
    return box


def root() -> str:
    """Where the local backend keeps boxes: as chosen in `zomg setup`, else under the data dir."""
    if not os.path.exists(paths.setup_file()):
        return paths.default_boxes_dir()  # no setup yet: nothing more to read or import
    from zomg import setup_config

    return setup_config.load().boxes_dir or paths.default_boxes_dir()


def _box_path(name: str) -> str:
    return os.path.join(root(), check_name(name))


def _load(name: str, path: str) -> Box:
    meta_path = os.path.join(path, METADATA)
    try:
        with open(meta_path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise _damaged(name, f"{meta_path} is missing") from None
    except OSError as exc:
        raise from_os_error(exc, f"cannot read box '{name}' metadata {meta_path}") from None
    try:
        data = json_light.loads(raw.decode("utf-8"))
        env = data["env"]
        project = data["project"]
        ok = (
            data["name"] == name
            and isinstance(data["created"], str)
            and (project is None or isinstance(project, str))
            and isinstance(env, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        )
    except (ValueError, KeyError, TypeError, RecursionError):
        ok = False
    if not ok:
        raise _damaged(name, f"corrupt metadata in {meta_path}")
    return Box(name, project, env, data["created"], path)


def get(name: str) -> Box:
    path = _box_path(name)
    if not os.path.isdir(path):
        raise NotFoundError(f"no box named '{name}' (see 'zomg box list')")
    return _load(name, path)


def create(name: str, project: str | None = None, env: dict[str, str] | None = None) -> Box:
    if project is not None:
        check_name(project, "project name")
    path = _box_path(name)
    root = os.path.dirname(path)
    if os.path.isdir(path):
        _load(name, path)  # a damaged box says so, and how to remove it
        raise ConflictError(f"box '{name}' already exists")
    import time

    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    box = Box(name, project, dict(env or {}), created, path)
    try:
        from zomg.fsutil import make_private_dirs

        make_private_dirs(root)  # 0700 with the parents it makes (~/.local, ~/.local/share), whatever the umask
        tmp = os.path.join(root, f".creating-{name}-{os.getpid()}-{os.urandom(4).hex()}")
        os.mkdir(tmp, 0o700)
    except OSError as exc:
        raise from_os_error(exc, f"cannot create box '{name}' in {root}") from None
    try:
        os.mkdir(os.path.join(tmp, WORKSPACE))
        _write_metadata(box, tmp)
        os.rename(tmp, path)
    except OSError as exc:
        _remove_tree(tmp)
        if os.path.isdir(path):
            raise ConflictError(f"box '{name}' already exists") from None
        raise from_os_error(exc, f"cannot create box '{name}' in {root}") from None
    return box


def _write_metadata(box: Box, where: str | None = None) -> None:
    """Replace ``box``'s metadata in one rename (``where``: the box directory, default its own)."""
    import json

    from zomg.fsutil import write_atomic

    meta = {"format": FORMAT, "name": box.name, "project": box.project, "env": box.env, "created": box.created}
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    write_atomic(os.path.join(where or box.path, METADATA), text.encode("utf-8"), 0o600)


def edit(name: str, set_env: dict[str, str], unset_env: list[str], project: str | None = None,
         clear_project: bool = False) -> Box:
    """Change box ``name``'s environment and project; the metadata is replaced whole or not at all."""
    if project is not None:
        check_name(project, "project name")
    for key in unset_env:
        if not _valid_env_key(key):
            raise UsageError(f"invalid --unset-env {key!r}: expected a KEY made of letters, digits and '_'")
    both = sorted(set(set_env) & set(unset_env))
    if both:
        raise UsageError(f"--env and --unset-env both name {both[0]}: choose one")
    box = get(name)
    missing = [key for key in unset_env if key not in box.env]
    if missing:
        raise NotFoundError(f"box '{name}' has no variable {missing[0]} to unset (see: zomg box show {name})")
    for key in unset_env:
        del box.env[key]
    box.env.update(set_env)
    if project is not None or clear_project:
        box.project = project
    try:
        _write_metadata(box)
    except OSError as exc:
        raise from_os_error(exc, f"cannot change box '{name}'") from None
    return box


def rename(old: str, new: str) -> Box:
    """Rename box ``old`` to ``new``, which must not exist; its workspace moves with it, files and all.

    The directory moves in one rename, onto an empty directory made first to
    claim the name (a rename onto an empty directory replaces it; a box that
    appeared there meanwhile is not empty, so the rename fails and nothing
    moves). The metadata, which names the box, is rewritten right after; if
    that fails the directory moves back.
    """
    check_name(new)
    box = get(old)
    if old == new:
        raise ConflictError(f"box '{old}' already has that name")
    target = os.path.join(os.path.dirname(box.path), new)
    try:
        os.mkdir(target, 0o700)
    except FileExistsError:
        raise ConflictError(f"box '{new}' already exists; choose another name") from None
    except OSError as exc:
        raise from_os_error(exc, f"cannot rename box '{old}'") from None
    try:
        os.rename(box.path, target)
    except OSError as exc:
        _remove_empty(target)
        if os.path.isdir(os.path.join(target, WORKSPACE)):  # a box took the name meanwhile
            raise ConflictError(f"box '{new}' already exists; choose another name") from None
        raise from_os_error(exc, f"cannot rename box '{old}'") from None
    renamed = Box(new, box.project, box.env, box.created, target)
    try:
        _write_metadata(renamed)
    except OSError as exc:
        try:
            os.rename(target, box.path)
        except OSError:
            pass
        raise from_os_error(exc, f"cannot rename box '{old}'") from None
    return renamed


def _remove_empty(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass  # not empty (another box arrived) or gone: not ours to remove


def list_boxes(project: str | None = None) -> tuple[list[Box], list[str]]:
    """Every readable box (sorted by name), and one problem line per unreadable one."""
    where = root()
    try:
        names = sorted(os.listdir(where))
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        raise from_os_error(exc, f"cannot list boxes in {where}") from None
    boxes, problems = [], []
    for name in names:
        if name.startswith(".") or not _valid_name(name):
            continue  # a create or remove in progress, or something not ours
        try:
            box = _load(name, os.path.join(where, name))
        except ConfigError as exc:
            problems.append(exc.message)
            continue
        if project is None or box.project == project:
            boxes.append(box)
            # Listed all the same: its name and metadata are fine, and rm --force needs the name.
            problem = workspace_problem(box)
            if problem is not None:
                problems.append(problem)
    return boxes, problems


# What a box directory may hold; --force removes a damaged one only if it holds nothing else.
_BOX_ENTRIES = frozenset((METADATA, WORKSPACE, USED_STAMP))


def _check_damaged_box_dir(name: str, path: str) -> None:
    """Refuse unless ``path`` is a real directory (not a symlink) holding only a box's own entries."""
    import stat

    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            raise ConflictError(f"{path} is not a box directory (a symlink or a file); zomg leaves it alone")
        entries = set(os.listdir(path))
    except OSError as exc:
        raise from_os_error(exc, f"cannot inspect box '{name}'") from None
    if not entries & {METADATA, WORKSPACE} or entries - _BOX_ENTRIES:
        raise ConflictError(f"{path} does not look like a box directory (it holds "
                            f"{', '.join(sorted(entries)) or 'nothing'}); zomg leaves it alone")


def remove(name: str, force: bool = False) -> None:
    """Remove box ``name``; ``force`` also removes its files, and a box whose metadata is damaged."""
    try:
        path = get(name).path
    except ConfigError:
        if not force:
            raise
        path = _box_path(name)
        _check_damaged_box_dir(name, path)
    try:
        has_files = bool(os.listdir(os.path.join(path, WORKSPACE)))
    except FileNotFoundError:
        has_files = False
    except NotADirectoryError:
        has_files = True  # something the user put in its place: theirs until --force
    except OSError as exc:
        raise from_os_error(exc, f"cannot inspect box '{name}'") from None
    if has_files and not force:
        raise ConflictError(f"box '{name}' has files in its workspace; use --force to remove it with them")
    # Renamed first so the box disappears at once, even if deleting its files takes long or fails halfway.
    doomed = os.path.join(os.path.dirname(path), f".removing-{name}-{os.urandom(4).hex()}")
    try:
        os.rename(path, doomed)
    except FileNotFoundError:
        raise NotFoundError(f"no box named '{name}'") from None
    except OSError as exc:
        raise from_os_error(exc, f"cannot remove box '{name}'") from None
    _remove_tree(doomed)


def mark_used(box: Box) -> None:
    stamp = os.path.join(box.path, USED_STAMP)
    try:
        with open(stamp, "a"):
            pass
        os.utime(stamp)
    except OSError:
        pass  # the stamp is a hint for deployment metrics, never worth failing a command


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
