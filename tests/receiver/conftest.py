"""Fixtures for the receiver's tests; the plain helpers are in support.py."""
from __future__ import annotations

import sys

import pytest

from tests.receiver.support import TOKEN, Deliveries, FakePostHog, Served, clean_env


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


class Forwarding:
    """The receiver forwarding to the fake PostHog in-process, with short waits and tiny backoffs."""

    def __init__(self, fake, **bounds) -> None:
        from zomg.receiver import make_app
        from zomg.receiver.forwarder import Forwarder
        from zomg.receiver.posthog import PostHogClient

        self.lines: list = []
        self.client = PostHogClient(TOKEN, fake.url, timeout=bounds.pop("timeout", 2.0),
                                    deadline=bounds.pop("deadline", 5.0))
        settings = {"interval": 0.0, "backoff": 0.01, "backoff_cap": 0.05, "log": self.lines.append}
        settings.update(bounds)
        self.forwarder = Forwarder(self.client, **settings)
        self.app = make_app(self.forwarder)

    def flush(self) -> None:
        assert self.forwarder.flush(60), f"still queued: {self.forwarder.queued}; log: {self.lines}"


@pytest.fixture
def forwarding(fake_posthog):
    """``forwarding(**bounds)``: a Forwarding to the fake; closed after the test."""
    made = []

    def make(**bounds) -> Forwarding:
        made.append(Forwarding(fake_posthog, **bounds))
        return made[-1]

    yield make
    fake_posthog.release()
    for each in made:
        each.forwarder.close(5)
