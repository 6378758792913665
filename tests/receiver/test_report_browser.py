"""The HTML report in a real headless Chromium: it renders, fetches nothing, logs no console error.

Skipped only where no Chromium can be had (.ci/run installs Debian's
``chromium``). The screenshot stays in the test's temp dir. Two pages that
do fetch and do log an error show that the checks can fail.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.browser import find_chromium, open_page
from tests.support.usage_data import UsageModel
from zomg.receiver.store import Store

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (apt-get install chromium)")


def _png_size(path: str) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_the_html_report_renders_fetches_nothing_and_logs_no_error(tmp_path):
    store = Store(str(tmp_path / "usage.sqlite3"))
    store.write_events(UsageModel(seed=11, installations=40, deployments=10, days=31).events(1500))
    store.close()
    page = tmp_path / "report.html"
    proc = subprocess.run([sys.executable, "-m", "zomg.receiver", "report", str(tmp_path / "usage.sqlite3"),
                           "--since", "2026-03-01", "--until", "2026-03-31", "--min-installations", "3",
                           "--format", "html", "--output", str(page)], capture_output=True, text=True, timeout=120,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    opened = open_page(CHROMIUM, str(page), str(tmp_path))
    assert opened.returncode == 0, opened.stderr[-2000:]
    assert opened.requests == []
    assert opened.console == []
    width, height = _png_size(opened.screenshot)
    assert (width, height) == (1280, 4000)
    # A page of tables and bars compresses far less than a blank one (a blank 1280x4000 PNG is ~20 KB).
    with open(opened.screenshot, "rb") as f:
        assert len(f.read()) > 100_000


def test_the_checks_see_a_fetch_and_a_console_error(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://example.invalid/x.png">'
                    '<script>console.error("zomg-canary")</script></body></html>')
    opened = open_page(CHROMIUM, str(page), str(tmp_path))
    assert any("example.invalid" in request for request in opened.requests), opened.requests
    assert any("zomg-canary" in line for line in opened.console), opened.stderr[-2000:]
