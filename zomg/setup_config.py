"""The answers `zomg setup` stores: ``<config dir>/setup.json`` (mode 0600).

``boxes_dir``            where boxes live (absolute), or null for the default
``deployment_name``      a name for this deployment, shown locally, never sent
``deployment_metrics``   true only after an explicit opt-in
``deployment_id``        random id of the deployment-metrics data set; exists
                         only while deployment metrics are on

A missing file means every default (deployment metrics off). A damaged file
is an error that names it: zomg never guesses where boxes live.
"""
from __future__ import annotations

import os

from zomg import paths
from zomg.errors import ConfigError, from_os_error

KEYS = ("boxes_dir", "deployment_name", "deployment_metrics", "deployment_id")


class Answers:
    __slots__ = KEYS

    def __init__(self, boxes_dir: str | None = None, deployment_name: str | None = None,
                 deployment_metrics: bool = False, deployment_id: str | None = None) -> None:
        self.boxes_dir = boxes_dir
        self.deployment_name = deployment_name
        self.deployment_metrics = deployment_metrics
        self.deployment_id = deployment_id

    def to_json(self) -> dict:
        return {key: getattr(self, key) for key in KEYS}


def path() -> str:
    return paths.setup_file()


def load() -> Answers:
    import json
    import stat

    where = path()
    try:
        # O_NONBLOCK and a regular-file check: a FIFO planted here must not hang every command.
        fd = os.open(where, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ConfigError(f"{where} is not a regular file; remove it and run 'zomg setup' again")
            data = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        return Answers()
    except OSError as exc:
        raise from_os_error(exc, f"cannot read {where}") from None
    except ValueError:
        raise ConfigError(f"{where} is not valid JSON; fix it or run 'zomg setup' again after removing it") from None
    ok = isinstance(data, dict) and set(data) <= set(KEYS)
    answers = Answers()
    if ok:
        answers = Answers(data.get("boxes_dir"), data.get("deployment_name"),
                          data.get("deployment_metrics", False), data.get("deployment_id"))
        ok = (
            (answers.boxes_dir is None or (isinstance(answers.boxes_dir, str) and os.path.isabs(answers.boxes_dir)))
            and (answers.deployment_name is None or isinstance(answers.deployment_name, str))
            and isinstance(answers.deployment_metrics, bool)
            and (answers.deployment_id is None or isinstance(answers.deployment_id, str))
        )
    if not ok:
        raise ConfigError(f"{where} has unexpected contents; fix it or remove it and run 'zomg setup' again")
    return answers


def save(answers: Answers) -> None:
    import json

    from zomg.fsutil import make_private_dirs, write_atomic

    where = path()
    try:
        make_private_dirs(os.path.dirname(where))
        write_atomic(where, (json.dumps(answers.to_json(), indent=2, sort_keys=True) + "\n").encode(), 0o600)
    except OSError as exc:
        raise from_os_error(exc, f"cannot write {where}") from None

