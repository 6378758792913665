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


def _holds(env: Mapping[str, str], name: str, how: str, text: str) -> bool:
    value = env.get(name)
    if not value:
        return False
    return value == text if how == "=" else text in value if how == "~" else True


def vendor(env: Mapping[str, str] | None = None) -> str | None:
    """The CI vendor's name, for `zomg telemetry status` only; never sent."""
    env = os.environ if env is None else env
    for name in VENDOR_VARS:
        if name in env and env[name]:
            return VENDOR_VARS[name]
    for name, rules in VENDOR_RULES:
        if all(_holds(env, *rule) for rule in rules):
            return name
    return None


def is_ci(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if env.get("CI", "").strip().lower() == "false":
        return False
    return any(env.get(name) for name in GENERIC) or vendor(env) is not None
