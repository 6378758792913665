"""Fixtures for the telemetry tests (each module sets ``pytestmark = pytest.mark.telemetry_on``)."""
from __future__ import annotations

import pytest

from tests.support.cli import FakeClock
from tests.support.servers import Capture, refused_url


@pytest.fixture(autouse=True)
def loopback_endpoint(monkeypatch):
    """No telemetry test may reach the real endpoint: by default nothing listens where events go."""
    monkeypatch.setenv("ZOMG_TELEMETRY_ENDPOINT", refused_url())


@pytest.fixture
def capture():
    server = Capture()
    yield server
    server.close()


@pytest.fixture
def clock():
    return FakeClock()


class CLI:
    """``zomg.cli.main`` in-process (the ``zomg`` fixture), with telemetry's settings and clock injected.

    Tests adjust ``timing`` (the session's grace), ``bounds`` (the spool's due rule, bounds and
    backoff) and ``sending`` (the sender's timeout); all three share one fake ``clock``.
    """

    def __init__(self, run, clock) -> None:
        from zomg.telemetry import SessionTiming
        from zomg.telemetry.files import SpoolBounds
        from zomg.telemetry.sender import SendTiming

        self.run = run
        self.clock = clock
        self.timing = SessionTiming(clock=clock)
        self.bounds = SpoolBounds(batch_size=1)
        self.sending = SendTiming(timeout=2.0, clock=clock)
        self.sessions: list = []

    def __call__(self, *argv: str):
        result = self.run(*argv)
        # Deterministic: whatever this run started has finished before the next. (Those
        # threads never print: what a run shows is written before main() returns.)
        self.drain()
        return result

    def drain(self) -> None:
        """Wait for every send started so far to end (sends are bounded by the socket timeout)."""
        for session in self.sessions:
            for thread in (session.metrics_thread, session.thread):
                if thread is not None:
                    thread.join(30)
                    assert not thread.is_alive()


@pytest.fixture
def cli(monkeypatch, zomg, clock):
    import zomg.telemetry as telemetry

    runner = CLI(zomg, clock)
    real_start = telemetry.start

    def start(telemetry_command=False, **kwargs):
        for name in ("timing", "bounds", "sending"):
            kwargs.setdefault(name, getattr(runner, name))
        session = real_start(telemetry_command, **kwargs)
        if session is not None:
            runner.sessions.append(session)
        return session

    monkeypatch.setattr(telemetry, "start", start)
    from zomg.telemetry import flushing

    real_flush_report = flushing.flush_report  # what `zomg telemetry flush` runs: the same settings and clock
    monkeypatch.setattr(flushing, "flush_report",
                        lambda env=None, bounds=None, sending=None:
                        real_flush_report(env, bounds or runner.bounds, sending or runner.sending))
    yield runner
    runner.drain()
