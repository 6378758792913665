"""Building a ``cli.command`` event from what the parser matched.

Every value comes from a definition, never from the user's input: the
command and subcommand must be names the parser declares, each flag must be
an option one of the matched commands declares (in its canonical, long form),
and everything else is a bucket, a coarse name or a random id. The CLI hands
the declared names over with the recorded ones (see ``build``); a name that
is not declared is dropped, so even a parser bug cannot leak what was typed.
This module never imports the command table: telemetry sits below commands.

Building does not import ``zomg.telemetry.schema``: that module costs more
to import than a command like ``zomg box list`` can afford on every run. The
wire names used here are the schema's (tests check every value this module
can produce against it), and every event is validated by the schema before
it leaves the machine: in the sender, and before a log line is printed.
"""
from __future__ import annotations

import os
import sys
import time

from zomg.telemetry.files import uuid4

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: startup cost
    from collections.abc import Mapping

EVENT = "cli.command"
SCHEMA_VERSION = 1
# (upper bound in seconds, label), as schema.DURATION_BUCKETS.
_DURATIONS = ((1, "<1s"), (10, "1s-10s"), (60, "10s-1m"), (600, "1m-10m"), (float("inf"), ">10m"))
RESULTS = ("success", "error", "interrupted")

_ARCH = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "x64": "x86_64",
    "em64t": "x86_64",
    "arm64": "arm64",
    "aarch64": "arm64",
    "aarch64_be": "arm64",
    "armv8b": "arm64",
    "armv8l": "arm",  # a 32-bit userland on a 64-bit core
    "i386": "x86",
    "i486": "x86",
    "i586": "x86",
    "i686": "x86",
    "i86pc": "x86",
    "x86": "x86",
}


# --- CI detection ---------------------------------------------------------------
# The rules follow what the widely used CI-detection libraries check: a few
# generic variables most CI systems set, and each vendor's own marker. Only
# presence (or, for a shared variable such as ``CI_NAME``, a fixed vendor
# name) is tested; no value is ever returned or stored.

# Set (to anything but empty) by most CI systems, and by people who want CI behaviour.
GENERIC = (
    "CI",
    "CONTINUOUS_INTEGRATION",
    "BUILD_NUMBER",
    "BUILD_ID",
    "RUN_ID",
    "CI_APP_ID",
    "CI_BUILD_ID",
    "CI_BUILD_NUMBER",
    "CI_NAME",
)

# A variable only that vendor sets (set to anything but empty).
VENDOR_VARS = {
    "AGOLA_GIT_REF": "Agola CI",
    "ALPIC_HOST": "Alpic",
    "AC_APPCIRCLE": "Appcircle",
    "APPVEYOR": "AppVeyor",
    "CODEBUILD_BUILD_ARN": "AWS CodeBuild",
    "TF_BUILD": "Azure Pipelines",
    "bamboo_planKey": "Bamboo",
    "BITBUCKET_COMMIT": "Bitbucket Pipelines",
    "BITRISE_IO": "Bitrise",
    "BUDDY_WORKSPACE_ID": "Buddy",
    "BUILDKITE": "Buildkite",
    "CIRCLECI": "CircleCI",
    "CIRRUS_CI": "Cirrus CI",
    "CF_PAGES": "Cloudflare Pages",
    "WORKERS_CI": "Cloudflare Workers",
    "CF_BUILD_ID": "Codefresh",
    "CM_BUILD_ID": "Codemagic",
    "DRONE": "Drone",
    "DSARI": "dsari",
    "EARTHLY_CI": "Earthly",
    "EAS_BUILD": "Expo Application Services",
    "GERRIT_PROJECT": "Gerrit",
    "GITEA_ACTIONS": "Gitea Actions",
    "GITHUB_ACTIONS": "GitHub Actions",
    "GITLAB_CI": "GitLab CI",
    "GO_PIPELINE_LABEL": "GoCD",
    "BUILDER_OUTPUT": "Google Cloud Build",
    "HARNESS_BUILD_ID": "Harness CI",
    "HUDSON_URL": "Hudson",
    "LAYERCI": "LayerCI",
    "MAGNUM": "Magnum CI",
    "NETLIFY": "Netlify CI",
    "NEVERCODE": "Nevercode",
    "PROW_JOB_ID": "Prow",
    "RELEASE_BUILD_ID": "ReleaseHub",
    "RENDER": "Render",
    "SAILCI": "Sail CI",
    "SCREWDRIVER": "Screwdriver",
    "SEMAPHORE": "Semaphore",
    "SHIPPABLE": "Shippable",
    "TDDIUM": "Solano CI",
    "STRIDER": "Strider CD",
    "TEAMCITY_VERSION": "TeamCity",
    "TRAVIS": "Travis CI",
    "VELA": "Vela",
    "NOW_BUILDER": "Vercel",
    "VERCEL": "Vercel",
    "APPCENTER_BUILD_ID": "Visual Studio App Center",
    "CI_XCODE_PROJECT": "Xcode Cloud",
    "XCS": "Xcode Server",
}

# Vendors known by a shared variable's value, by part of it, or by two variables together:
# (vendor, ((variable, "=" exact value | "~" contained text | "" set, text), ...)), all must hold.
VENDOR_RULES = (
    ("Codeship", (("CI_NAME", "=", "codeship"),)),
    ("Sourcehut", (("CI_NAME", "=", "sourcehut"),)),
    ("Woodpecker", (("CI", "=", "woodpecker"),)),
    ("Heroku CI", (("NODE", "~", "/app/.heroku/node/bin/node"),)),
    ("Jenkins", (("JENKINS_URL", "", ""), ("BUILD_ID", "", ""))),
    ("TaskCluster", (("TASK_ID", "", ""), ("RUN_ID", "", ""))),
)

# Every variable a rule above looks at: one pass over the environment's names
# tells whether any could be set (on a person's machine, none is), instead of
# a lookup per name (os.environ raises and catches a KeyError for each name
# that is missing, and there are dozens).
_CI_NAMES = frozenset((*GENERIC, *VENDOR_VARS, *(name for _, rules in VENDOR_RULES for name, _, _ in rules)))


def _may_be_ci(env: Mapping[str, str]) -> bool:
    """Whether any variable a CI rule looks at is set at all (the rules then decide)."""
    if env is os.environ and sys.platform == "win32":
        return not frozenset(map(str.upper, _CI_NAMES)).isdisjoint(env)  # Windows keeps names upper-cased
    return not _CI_NAMES.isdisjoint(env)


def _holds(env: Mapping[str, str], name: str, how: str, text: str) -> bool:
    value = env.get(name)
    if not value:
        return False
    return value == text if how == "=" else text in value if how == "~" else True


def ci_vendor(env: Mapping[str, str] | None = None) -> str | None:
    """The CI vendor's name (for tests and debugging); never sent."""
    env = os.environ if env is None else env
    for name in VENDOR_VARS:
        if name in env and env[name]:
            return VENDOR_VARS[name]
    for name, rules in VENDOR_RULES:
        if all(_holds(env, *rule) for rule in rules):
            return name
    return None


def is_ci(env: Mapping[str, str] | None = None) -> bool:
    """Whether zomg runs under a CI system; only this yes or no ever leaves zomg."""
    env = os.environ if env is None else env
    if not _may_be_ci(env):
        return False
    if env.get("CI", "").strip().lower() == "false":
        return False
    return any(env.get(name) for name in GENERIC) or ci_vendor(env) is not None


# --- the other fields ------------------------------------------------------------

def os_name(platform: str | None = None) -> str:
    """The OS as the schema names it, from ``sys.platform`` (the ``platform`` module is slow to import)."""
    platform = sys.platform if platform is None else platform
    if platform.startswith("linux"):
        return "linux"
    if platform == "darwin":
        return "darwin"
    if platform in ("win32", "cygwin", "msys"):
        return "windows"
    if platform.startswith("freebsd"):
        return "freebsd"
    return "other"


def normalize_arch(machine: str) -> str:
    machine = machine.strip().lower()
    if machine in _ARCH:
        return _ARCH[machine]
    return "arm" if machine.startswith("arm") else "other"


def arch() -> str:
    try:
        machine = os.uname().machine
    except AttributeError:  # Windows has no uname
        machine = os.environ.get("PROCESSOR_ARCHITEW6432") or os.environ.get("PROCESSOR_ARCHITECTURE", "")
    return normalize_arch(machine)


def duration_bucket(seconds: float) -> str:
    return next(label for limit, label in _DURATIONS if seconds < limit)


def timestamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


def _declared(invocation: Mapping) -> tuple[str | None, str | None, set[str]]:
    """The recorded command path, kept only where declared (else None), and the options declared for it."""
    names = invocation.get("declared") or {}
    command, subcommand = invocation.get("command"), invocation.get("subcommand")
    flags = set(names.get("flags", ()))
    if command not in names.get("command", ()):
        return None, None, flags
    return command, subcommand if subcommand in names.get("subcommand", ()) else None, flags


def invocation(path: list[str], flags, declared: dict, duration_s: float, result: str,
               error_class: str | None) -> dict:
    """What one run hands ``build``: the parser's recorded command path and option names, the names it
    declares for them (``declared``), how long it took and how it ended. ``zomg.cli`` builds every
    run's this way, and `zomg telemetry explain` its example."""
    return {
        "declared": declared,
        "command": path[0] if path else None,
        "subcommand": path[1] if len(path) > 1 else None,
        "flags": sorted(flags),
        "duration_s": duration_s,
        "result": result,
        "error_class": error_class,
    }


def build(invocation: dict, installation_id: str, now: float, env=None) -> dict:
    """The event for one finished invocation (see ``zomg.cli._finish_telemetry``).

    ``invocation["declared"]`` holds the names the parser defines for the
    matched command (``zomg.parser.declared``): {"command": [...],
    "subcommand": [...], "flags": [...]}. A recorded name not among them is
    dropped; without them, no command, subcommand or flag is kept.
    """
    from zomg import __version__

    command, subcommand, defined = _declared(invocation)
    result = invocation.get("result")
    if result not in RESULTS:
        result = "error"
    error_class = invocation.get("error_class") if result == "error" else None
    if result == "error":
        from zomg.errors import error_classes  # loaded already by the failure; the schema is not

        if error_class not in error_classes():
            error_class = "internal"
    return {
        "event": EVENT,
        "schema_version": SCHEMA_VERSION,
        "event_id": uuid4(),
        "installation_id": installation_id,
        "timestamp": timestamp(now),
        "cli_version": __version__,
        "command": command,
        "subcommand": subcommand,
        "flags": sorted({f for f in invocation.get("flags", ()) if f in defined}),
        "os": os_name(),
        "arch": arch(),
        "ci": is_ci(env),
        "duration_bucket": duration_bucket(max(0.0, float(invocation.get("duration_s", 0.0)))),
        "result": result,
        "error_class": error_class,
    }
