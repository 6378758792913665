"""The small pieces: CI detection, OS and architecture names, ids, buckets, backoff, grace; all against the schema."""
from __future__ import annotations

import pytest

from zomg.parser import declared
from zomg.telemetry import MAX_GRACE, SessionTiming, event, files, schema
from zomg.telemetry.files import SpoolBounds

pytestmark = pytest.mark.telemetry_on


@pytest.mark.parametrize(
    "env,expected",
    [
        ({}, False),
        ({"CI": "true"}, True),
        ({"CI": "1"}, True),
        ({"CI": ""}, False),
        ({"CI": "false"}, False),
        ({"CI": "False", "GITHUB_ACTIONS": "true"}, False),
        ({"CONTINUOUS_INTEGRATION": "yes"}, True),
        ({"BUILD_NUMBER": "12"}, True),
        ({"RUN_ID": "3"}, True),
        ({"GITHUB_ACTIONS": "true"}, True),
        ({"GITLAB_CI": "true"}, True),
        ({"TF_BUILD": "True"}, True),
        ({"bamboo_planKey": "X"}, True),
        ({"CI_NAME": "codeship"}, True),
        ({"NODE": "/app/.heroku/node/bin/node"}, True),
        ({"NODE": "/usr/bin/node"}, False),
        ({"JENKINS_URL": "http://j"}, False),
        ({"JENKINS_URL": "http://j", "BUILD_ID": "1"}, True),
        ({"TASK_ID": "1"}, False),
        ({"HOME": "/home/ci", "TERM": "xterm"}, False),
    ],
)
def test_ci_detection(env, expected):
    assert event.is_ci(env) is expected


def test_ci_detection_reads_the_process_environment(monkeypatch):
    for name in event._CI_NAMES:
        monkeypatch.delenv(name, raising=False)
    assert event.is_ci() is False
    monkeypatch.setenv("bamboo_planKey", "x")  # a mixed-case name, as its vendor sets it
    assert event.is_ci() is True
    monkeypatch.setenv("CI", "false")
    assert event.is_ci() is False


def test_every_vendor_is_detected_by_its_own_marker():
    vendors = set(event.VENDOR_VARS.values()) | {name for name, _ in event.VENDOR_RULES}
    assert len(vendors) >= 50
    for variable, name in event.VENDOR_VARS.items():
        assert event.ci_vendor({variable: "1"}) == name and event.is_ci({variable: "1"}) is True
        assert event.ci_vendor({variable: ""}) is None
    for name, rules in event.VENDOR_RULES:
        env = {variable: text or "1" for variable, _, text in rules}
        assert event.ci_vendor(env) == name and event.is_ci(env) is True, name
        if len(rules) > 1:
            assert event.ci_vendor(dict([next(iter(env.items()))])) is None, name


@pytest.mark.parametrize("platform,name", [("linux", "linux"), ("linux2", "linux"), ("darwin", "darwin"),
                                           ("win32", "windows"), ("cygwin", "windows"), ("freebsd14", "freebsd"),
                                           ("openbsd7", "other"), ("sunos5", "other")])
def test_os_names(platform, name):
    assert event.os_name(platform) == name
    assert name in schema.OS_VALUES


@pytest.mark.parametrize("machine,arch", [("x86_64", "x86_64"), ("AMD64", "x86_64"), ("amd64", "x86_64"),
                                          ("aarch64", "arm64"), ("arm64", "arm64"), ("ARM64", "arm64"),
                                          ("i686", "x86"), ("i386", "x86"), ("x86", "x86"), ("armv7l", "arm"),
                                          ("armv6l", "arm"), ("riscv64", "other"), ("ppc64le", "other"),
                                          ("", "other")])
def test_arch_names(machine, arch):
    assert event.normalize_arch(machine) == arch
    assert arch in schema.ARCH_VALUES


def test_this_machine_has_schema_names():
    assert event.os_name() in schema.OS_VALUES and event.arch() in schema.ARCH_VALUES


@pytest.mark.parametrize("seconds,bucket", [(0, "<1s"), (0.999, "<1s"), (1, "1s-10s"), (9.9, "1s-10s"),
                                            (10, "10s-1m"), (59, "10s-1m"), (60, "1m-10m"), (599, "1m-10m"),
                                            (600, ">10m"), (86400, ">10m")])
def test_duration_buckets(seconds, bucket):
    assert event.duration_bucket(seconds) == bucket


def test_the_builder_speaks_the_schemas_names():
    """event.py builds without importing the schema: its names must be the schema's, exactly."""
    assert [label for _, label in event._DURATIONS] == list(schema.DURATION_BUCKETS)
    assert event.RESULTS == schema.RESULTS
    assert (event.EVENT, event.SCHEMA_VERSION) == (schema.CLI_COMMAND, schema.SCHEMA_VERSION)
    for result in schema.RESULTS:
        for error_class in (None, "usage", "weird"):
            built = event.build({"declared": declared(["box", "rm"]),
                                 "command": "box", "subcommand": "rm", "flags": ["--force", "--bogus", "-f"],
                                 "duration_s": 12.0, "result": result, "error_class": error_class},
                                files.uuid4(), 1_800_000_000)
            schema.validate_event(built)
            assert built["flags"] == ["--force"]
            assert tuple(built) == schema.field_names(schema.CLI_COMMAND)


def test_unknown_names_from_the_recorder_are_dropped():
    built = event.build({"declared": declared(["secret-token", "x"]),
                         "command": "secret-token", "subcommand": "x", "flags": ["--password"],
                         "duration_s": 0, "result": "error", "error_class": "usage"}, files.uuid4(), 0)
    assert (built["command"], built["subcommand"], built["flags"]) == (None, None, [])
    built = event.build({"declared": declared(["box", "hunter2"]),
                         "command": "box", "subcommand": "hunter2", "flags": [], "duration_s": 0,
                         "result": "weird", "error_class": None}, files.uuid4(), 0)
    assert (built["command"], built["subcommand"], built["result"], built["error_class"]) == (
        "box", None, "error", "internal")


def test_without_the_declared_names_no_recorded_name_is_kept():
    """The CLI hands over what the parser declares; a caller that does not gets no names through."""
    built = event.build({"command": "box", "subcommand": "list", "flags": ["--json"], "duration_s": 0,
                         "result": "success", "error_class": None}, files.uuid4(), 0)
    assert (built["command"], built["subcommand"], built["flags"]) == (None, None, [])
    schema.validate_event(built)


def test_uuid4_matches_the_schema():
    made = {files.uuid4() for _ in range(2000)}
    assert len(made) == 2000
    for value in made:
        assert files.is_uuid4(value)
        schema.validate_event(dict(event.build({"result": "success"}, value, 0), event_id=value))
    for bad in ("", "not-a-uuid", "6F1C2A4E-9B3D-4C5E-8F7A-1B2C3D4E5F60", "6f1c2a4e-9b3d-1c5e-8f7a-1b2c3d4e5f60",
                "6f1c2a4e-9b3d-4c5e-cf7a-1b2c3d4e5f60", "6f1c2a4e-9b3d-4c5e-8f7a-1b2c3d4e5f6g", None, 7):
        assert not files.is_uuid4(bad), bad


def test_timestamps_are_utc_seconds():
    assert event.timestamp(0) == "1970-01-01T00:00:00Z"
    assert event.timestamp(1_700_000_000.9) == "2023-11-14T22:13:20Z"


def test_backoff_doubles_from_a_few_seconds_to_an_hour():
    bounds = SpoolBounds()
    assert [bounds.backoff(n) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert bounds.backoff(11) == 3600 and bounds.backoff(1000) == 3600


def test_the_grace_can_never_exceed_half_a_second():
    assert SessionTiming().grace == MAX_GRACE == 0.5
    assert SessionTiming(grace=10).grace == 0.5
