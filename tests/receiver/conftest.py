"""Fixtures for the receiver's tests; the plain helpers are in tests/support/."""
from __future__ import annotations

import sys

import pytest

from tests.support.servers import FakePostHog, Served, clean_env
from tests.support.wsgi import Deliveries, Forwarding


@pytest.fixture
def fake_posthog():
    server = FakePostHog()
    yield server
    server.close()


@pytest.fixture
def deliveries():
    return Deliveries()


@pytest.fixture
def serve(tmp_path):
    """``serve(argv, env, ready_regex)`` starts a server process and stops it after the test."""
    started = []

    def start(argv: list, env: dict, ready: str = r"listening on (http://\S+)") -> Served:
        served = Served(argv, env, str(tmp_path), ready)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


@pytest.fixture
def receiver_process(serve):
    """``python -m zomg.receiver`` on a free loopback port, with the given extra environment."""

    def start(*args: str, **env: str) -> Served:
        return serve([sys.executable, "-m", "zomg.receiver", "--port", "0", *args], clean_env(**env))

    return start


@pytest.fixture
def forwarding(fake_posthog, tmp_path):
    """``forwarding(**bounds)``: a Forwarding to the fake with a spool of its own; closed after the test."""
    made = []

    def make(directory: str | None = None, **bounds) -> Forwarding:
        made.append(Forwarding(fake_posthog, directory or str(tmp_path / f"spool{len(made)}"), **bounds))
        return made[-1]

    yield make
    fake_posthog.release()
    for each in made:
        each.forwarder.close(5)
