"""`zomg setup`: configure zomg on this machine, and the deployment-metrics opt-in.

On a terminal it asks, showing each current value as the default (Enter keeps
it), asks again after an invalid answer, and for deployment metrics shows
exactly what would be sent; the first time, that answer defaults to No, so
opting in is always explicit. Without a
terminal (or with --no-input) it never asks: it takes the flags, and deployment
metrics stay as they were unless --deployment-metrics on|off is given.
"""
from __future__ import annotations

import os
import sys

from zomg import paths, setup_config
from zomg.commands import DIRECTORY, FLAG, Arg, Command
from zomg.errors import UsageError
from zomg.output import note, print_table


def _interactive(no_input: bool) -> bool:
    if no_input:
        return False
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _ask(question: str, default: str) -> str:
    """One line from the person at the terminal; end of input aborts without saving anything."""
    try:
        answer = input(f"{question} [{default}]: ")
    except EOFError:
        sys.stdout.write("\n")
        raise UsageError("setup: no answer (end of input); nothing was changed") from None
    return answer.strip()


def _boxes_dir_answer(value: str) -> str:
    value = os.path.expanduser(value)
    if not value:
        raise UsageError("setup: the boxes directory cannot be empty")
    value = os.path.abspath(value)
    if os.path.exists(value) and not os.path.isdir(value):
        raise UsageError(f"setup: {value} is not a directory")
    return value


def _ask_until_valid(question: str, default: str, read):
    """Ask until ``read(answer)`` accepts the answer; it raises UsageError to have the question asked again.

    An invalid answer never ends setup: the answers given so far are kept, and
    only the end of input (or Ctrl-C) stops it, without saving anything.
    """
    while True:
        answer = _ask(question, default)
        try:
            return read(answer)
        except UsageError as exc:
            reason = exc.message[len("setup: "):] if exc.message.startswith("setup: ") else exc.message
            sys.stdout.write(f"{reason}; please answer again.\n")


def _yes_no(answer: str, current: bool) -> bool:
    answer = answer.lower()
    if answer == "":
        return current
    if answer in ("n", "no"):
        return False
    if answer in ("y", "yes"):
        return True
    raise UsageError("please answer y or n")


def _ask_yes_no(question: str, current: bool) -> bool:
    """Yes or no; Enter keeps ``current``, shown as the capital letter."""
    return _ask_until_valid(question, "Y/n" if current else "y/N", lambda answer: _yes_no(answer, current))


def _deployment_name_answer(answer: str, current: str | None) -> str | None:
    if not answer:
        return current
    from zomg.boxes import check_name

    return None if answer == "none" else check_name(answer, "deployment name")


def run(boxes_dir: str | None, deployment_name: str | None, deployment_metrics: str | None,
        no_input: bool, show: bool) -> int:
    if show:
        return _show()
    current = setup_config.load()
    answers = _answers_from_options(current, boxes_dir, deployment_name)
    from zomg.telemetry import deployment

    candidate_id = current.deployment_id or deployment.new_id()
    if _interactive(no_input):
        sys.stdout.write("zomg setup: press Enter to keep the value shown in [brackets].\n\n")
        if boxes_dir is None:
            _ask_boxes_dir(answers)
        if deployment_name is None:
            _ask_deployment_name(answers)
        if deployment_metrics is None:
            deployment_metrics = _ask_deployment_metrics(answers, candidate_id)
    if deployment_metrics is not None:
        answers.deployment_metrics = deployment_metrics == "on"
    _settle(answers, candidate_id)
    setup_config.save(answers)
    if current.deployment_metrics and not answers.deployment_metrics:
        from zomg.telemetry.files import Layout

        deployment.forget(Layout())
    _report_changes(current, answers)
    return 0


def _answers_from_options(current: setup_config.Answers, boxes_dir: str | None,
                          deployment_name: str | None) -> setup_config.Answers:
    """The stored answers, changed by the options given (each checked: UsageError before anything is asked)."""
    answers = setup_config.Answers(**current.to_json())
    if deployment_name is not None:
        from zomg.boxes import check_name

        answers.deployment_name = check_name(deployment_name, "deployment name") if deployment_name else None
    if boxes_dir is not None:
        answers.boxes_dir = _boxes_dir_answer(boxes_dir)
    return answers


def _ask_boxes_dir(answers: setup_config.Answers) -> None:
    kept = answers.boxes_dir
    answers.boxes_dir = _ask_until_valid("Where should boxes live?", kept or paths.default_boxes_dir(),
                                         lambda answer: _boxes_dir_answer(answer) if answer else kept)


def _ask_deployment_name(answers: setup_config.Answers) -> None:
    kept = answers.deployment_name
    answers.deployment_name = _ask_until_valid("Deployment name (shown locally, never sent)", kept or "none",
                                               lambda answer: _deployment_name_answer(answer, kept))


def _ask_deployment_metrics(answers: setup_config.Answers, candidate_id: str) -> str:
    """Show what deployment metrics would send under ``candidate_id``, then ask: "on" or "off"."""
    from zomg.telemetry import deployment

    sys.stdout.write(
        "\nDeployment metrics are separate from command telemetry: once a day, a summary of this\n"
        "deployment (machine size, boxes used in the last 7 days, storage used), under its own\n"
        "random id. Nothing is sent unless you answer yes. Right now it would send exactly:\n\n"
        f"  {deployment.preview(candidate_id)}\n\n"
    )
    now = "on" if answers.deployment_metrics else "off"
    keep = _ask_yes_no(f"Send deployment metrics? (now {now})", bool(answers.deployment_metrics))
    return "on" if keep else "off"


def _settle(answers: setup_config.Answers, candidate_id: str) -> None:
    """What is stored follows from the answers: an id only while opted in, no boxes dir when it is the default."""
    answers.deployment_id = candidate_id if answers.deployment_metrics else None
    if answers.boxes_dir == paths.default_boxes_dir():
        answers.boxes_dir = None


def _report_changes(before: setup_config.Answers, after: setup_config.Answers) -> None:
    from zomg.telemetry import messages

    old_dir = before.boxes_dir or paths.default_boxes_dir()
    new_dir = after.boxes_dir or paths.default_boxes_dir()
    if old_dir != new_dir and os.path.isdir(old_dir) and any(not n.startswith(".") for n in os.listdir(old_dir)):
        note(f"zomg: note: boxes already in {old_dir} stay there; move them to {new_dir} to keep using them")
    note(f"saved {setup_config.path()}")
    note(messages.deployment_chosen_line(bool(after.deployment_metrics)))


def _show() -> int:
    from zomg.telemetry import deployment, messages

    answers = setup_config.load()
    print_table(
        ("setup file:", setup_config.path()),
        [
            ("boxes dir:", answers.boxes_dir or f"{paths.default_boxes_dir()} (default)"),
            ("deployment name:", answers.deployment_name or "none"),
            ("deployment metrics:", messages.deployment_setup_state(bool(answers.deployment_metrics),
                                                                    os.path.exists(setup_config.path()))),
            ("deployment id:", answers.deployment_id or "none"),
        ],
    )
    sys.stdout.write("\nA deployment-metrics payload right now would be exactly:\n")
    sys.stdout.write(deployment.preview(answers.deployment_id or "00000000-0000-4000-8000-000000000000") + "\n")
    if not answers.deployment_id:
        sys.stdout.write("(the deployment id shown is a placeholder: none exists until you opt in)\n")
    return 0


SPEC = Command(
    "setup",
    help="configure zomg on this machine (and opt in to deployment metrics)",
    description="Configure where boxes live, a deployment name, and whether deployment metrics are sent. "
    "On a terminal it asks (Enter keeps the value shown; an invalid answer is asked again; end of input "
    "stops without saving); otherwise it only takes the options given. Deployment metrics are off "
    "unless you opt in.",
    run=run,
    args=(
        Arg("--boxes-dir", help="where boxes live", metavar="PATH", complete=DIRECTORY),
        Arg("--deployment-name", help="a name for this deployment (shown locally, never sent)", metavar="NAME"),
        Arg("--deployment-metrics", help="send deployment metrics once a day (default off)", metavar="on|off",
            choices=("on", "off")),
        Arg("--no-input", help="never ask; take only the options given", kind=FLAG),
        Arg("--show", help="print the current answers and the deployment-metrics payload, change nothing",
            kind=FLAG),
    ),
    examples=(("answer the questions on a terminal", "zomg setup"),
              ("from a script: where boxes live, and no deployment metrics",
               "zomg setup --no-input --boxes-dir /srv/boxes --deployment-metrics off"),
              ("what is stored, and what deployment metrics would send", "zomg setup --show")),
)
