"""End to end: the real CLI and its sender, the real receiver, a fake PostHog.

``python -m zomg box list`` runs as a user would run it (HOME and XDG in the
test's temp dir): the first run shows the notice and sends nothing, the next
ones are spooled and sent by the CLI's own sender to the receiver, which
forwards them to the fake PostHog. What the CLI's grace period at exit left
unsent is pushed by ``zomg.telemetry.flush()``, the same sender, so the test
never waits on a clock.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.servers import TOKEN, clean_env

pytestmark = pytest.mark.telemetry_on

RUNS = 12  # the notice run, then ten spooled ones that make a batch due, then one more


def run_python(endpoint: str, *argv: str) -> subprocess.CompletedProcess:
    env = clean_env(ZOMG_TELEMETRY_ENDPOINT=endpoint)
    env.pop("ZOMG_TELEMETRY", None)
    return subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=120)


def installation_id() -> str:
    from zomg.telemetry import files

    return files.read_user(files.Layout()).installation_id


def use_the_cli_against(endpoint: str, fake_posthog) -> None:
    results = [run_python(endpoint, "-m", "zomg", "box", "list") for _ in range(RUNS)]
    assert all(r.returncode == 0 for r in results), results
    assert "telemetry" in results[0].stderr.lower()  # the notice, once
    assert all("telemetry" not in r.stderr.lower() for r in results[1:])

    flushed = run_python(endpoint, "-c", "import zomg.telemetry as t; print(t.flush())")
    assert flushed.returncode == 0, flushed.stderr

    # The receiver answered at once; its forwarder sends to PostHog in the background.
    assert fake_posthog.wait_for(lambda: len(set(fake_posthog.accepted_uuids())) >= RUNS - 1)
    forwarded = fake_posthog.accepted()
    uuids = {event["uuid"] for event in forwarded}
    assert len(uuids) == RUNS - 1  # every recorded run arrived; a resend would carry the same uuid
    ids = installation_id()
    for event in forwarded:
        assert event["event"] == "cli.command"
        assert event["distinct_id"] == ids
        assert event["properties"]["command"] == "box"
        assert event["properties"]["subcommand"] == "list"
        assert event["properties"]["$process_person_profile"] is False
        assert event["properties"]["$geoip_disable"] is True
    for request in fake_posthog.requests:
        assert request["path"] == "/batch/"
        assert json.loads(request["body"])["api_key"] == TOKEN


def test_cli_to_dev_server_to_posthog(receiver_process, fake_posthog):
    server = receiver_process(POSTHOG_PROJECT_API_KEY=TOKEN, POSTHOG_HOST=fake_posthog.url)
    use_the_cli_against(server.url + "/v1/events", fake_posthog)


def test_cli_to_gunicorn_to_posthog(serve, fake_posthog):
    # The documented production command.
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:zomg.receiver.gunicorn_conf", "--bind", "127.0.0.1:0",
            "zomg.receiver:app"]
    env = clean_env(POSTHOG_PROJECT_API_KEY=TOKEN, POSTHOG_HOST=fake_posthog.url)
    server = serve(argv, env, ready=r"Listening at: (http://\S+)")
    use_the_cli_against(server.url + "/v1/events", fake_posthog)
