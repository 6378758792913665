"""Whether zomg runs under a CI system: only a yes or no ever leaves this module.

The rules follow what the widely used CI-detection libraries check: a few
generic variables most CI systems set, and each vendor's own marker. Only
presence (or, for a shared variable such as ``CI_NAME``, a fixed vendor
name) is tested; no value is ever returned or stored.
"""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: startup cost
    from collections.abc import Mapping

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

# (vendor, variables that must all be set); a value after '=' must match exactly,
# and a variable ending in '~' must contain the text after it.
VENDORS = (
    ("Agola CI", ("AGOLA_GIT_REF",)),
    ("Alpic", ("ALPIC_HOST",)),
    ("Appcircle", ("AC_APPCIRCLE",)),
    ("AppVeyor", ("APPVEYOR",)),
    ("AWS CodeBuild", ("CODEBUILD_BUILD_ARN",)),
    ("Azure Pipelines", ("TF_BUILD",)),
    ("Bamboo", ("bamboo_planKey",)),
    ("Bitbucket Pipelines", ("BITBUCKET_COMMIT",)),
    ("Bitrise", ("BITRISE_IO",)),
    ("Buddy", ("BUDDY_WORKSPACE_ID",)),
    ("Buildkite", ("BUILDKITE",)),
    ("CircleCI", ("CIRCLECI",)),
    ("Cirrus CI", ("CIRRUS_CI",)),
    ("Cloudflare Pages", ("CF_PAGES",)),
    ("Cloudflare Workers", ("WORKERS_CI",)),
    ("Codefresh", ("CF_BUILD_ID",)),
    ("Codemagic", ("CM_BUILD_ID",)),
    ("Codeship", ("CI_NAME=codeship",)),
    ("Drone", ("DRONE",)),
    ("dsari", ("DSARI",)),
    ("Earthly", ("EARTHLY_CI",)),
    ("Expo Application Services", ("EAS_BUILD",)),
    ("Gerrit", ("GERRIT_PROJECT",)),
    ("Gitea Actions", ("GITEA_ACTIONS",)),
    ("GitHub Actions", ("GITHUB_ACTIONS",)),
    ("GitLab CI", ("GITLAB_CI",)),
    ("GoCD", ("GO_PIPELINE_LABEL",)),
    ("Google Cloud Build", ("BUILDER_OUTPUT",)),
    ("Harness CI", ("HARNESS_BUILD_ID",)),
    ("Heroku CI", ("NODE~/app/.heroku/node/bin/node",)),
    ("Hudson", ("HUDSON_URL",)),
    ("Jenkins", ("JENKINS_URL", "BUILD_ID")),
    ("LayerCI", ("LAYERCI",)),
    ("Magnum CI", ("MAGNUM",)),
    ("Netlify CI", ("NETLIFY",)),
    ("Nevercode", ("NEVERCODE",)),
    ("Prow", ("PROW_JOB_ID",)),
    ("ReleaseHub", ("RELEASE_BUILD_ID",)),
    ("Render", ("RENDER",)),
    ("Sail CI", ("SAILCI",)),
    ("Screwdriver", ("SCREWDRIVER",)),
    ("Semaphore", ("SEMAPHORE",)),
    ("Shippable", ("SHIPPABLE",)),
    ("Solano CI", ("TDDIUM",)),
    ("Sourcehut", ("CI_NAME=sourcehut",)),
    ("Strider CD", ("STRIDER",)),
    ("TaskCluster", ("TASK_ID", "RUN_ID")),
    ("TeamCity", ("TEAMCITY_VERSION",)),
    ("Travis CI", ("TRAVIS",)),
    ("Vela", ("VELA",)),
    ("Vercel", ("NOW_BUILDER",)),
    ("Vercel", ("VERCEL",)),
    ("Visual Studio App Center", ("APPCENTER_BUILD_ID",)),
    ("Woodpecker", ("CI=woodpecker",)),
    ("Xcode Cloud", ("CI_XCODE_PROJECT",)),
    ("Xcode Server", ("XCS",)),
)


def _holds(rule: str, env: Mapping[str, str]) -> bool:
    if "=" in rule:
        name, _, expected = rule.partition("=")
        return env.get(name) == expected
    if "~" in rule:
        name, _, part = rule.partition("~")
        return part in env.get(name, "")
    return bool(env.get(rule))


def vendor(env: Mapping[str, str] | None = None) -> str | None:
    """The CI vendor's name, for `zomg telemetry status` only; never sent."""
    env = os.environ if env is None else env
    for name, rules in VENDORS:
        if all(_holds(rule, env) for rule in rules):
            return name
    return None


def is_ci(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if env.get("CI", "").strip().lower() == "false":
        return False
    return any(env.get(name) for name in GENERIC) or vendor(env) is not None
