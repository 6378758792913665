"""A real headless Chromium (Debian's ``chromium``) opening a page: its screenshot, console lines and requests.

Chromium runs with a fresh profile, without background networking, and
with every request (loopback included) sent through a proxy this module
listens with on 127.0.0.1, which records each request and answers 404:
a page that fetches anything is seen doing so, and nothing reaches the
network. ``Opened.requests`` leaves out Chromium's own calls home. Console messages come from
Chromium's own log on stderr (``--enable-logging=stderr``).
"""
from __future__ import annotations

import os
import shutil
import socketserver
import subprocess
import threading

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
         # The browser's own traffic (updates, time, sign-in, safe browsing), off as far as flags go.
         "--disable-extensions", "--disable-default-apps", "--no-pings", "--disable-domain-reliability",
         "--disable-client-side-phishing-detection", "--disable-component-extensions-with-background-pages",
         "--no-default-browser-check", "--disable-breakpad", "--metrics-recording-only",
         "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,"
         "CertificateTransparencyComponentUpdater,NetworkTimeServiceQuerying,SafeBrowsing")


# Chromium itself calls these (component updates, sign-in) whatever the flags say; a page's request to
# anywhere else is the page's. The report names no host at all (tests/receiver/test_report.py checks).
BROWSER_HOSTS = ("update.googleapis.com", "accounts.google.com", "clients2.google.com")


def page_requests(requests: list) -> list:
    """The recorded requests that are not Chromium's own."""
    return [r for r in requests if not any(f" {h}:" in r or f"://{h}/" in r for h in BROWSER_HOSTS)]


def find_chromium() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class _Recorder(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(4096).decode("latin-1").strip()
        self.server.requests.append(line)
        self.wfile.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


class Opened:
    def __init__(self, screenshot: str, console: list, requests: list, stderr: str, returncode: int) -> None:
        self.screenshot, self.console, self.requests = screenshot, console, requests
        self.stderr, self.returncode = stderr, returncode


def open_page(chromium: str, page: str, workdir: str, size: str = "1280,4000") -> Opened:
    """Open ``page`` (a file) in headless Chromium; the screenshot is written into ``workdir``."""
    recorder = _Recorder(("127.0.0.1", 0), _Handler)
    recorder.requests = []
    thread = threading.Thread(target=recorder.serve_forever, daemon=True)
    thread.start()
    screenshot = os.path.join(workdir, os.path.basename(page) + ".png")
    profile = os.path.join(workdir, "chromium-profile")
    proxy = f"http://127.0.0.1:{recorder.server_address[1]}"
    argv = [chromium, *FLAGS, f"--user-data-dir={profile}", f"--proxy-server={proxy}",
            "--proxy-bypass-list=<-loopback>", f"--window-size={size}", f"--screenshot={screenshot}",
            "file://" + os.path.abspath(page)]
    env = dict(os.environ, HOME=workdir)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    finally:
        recorder.shutdown()
        recorder.server_close()
    # The page's own console lines; Chromium's built-in pages (chrome://...) log too, e.g.
    # "Slow network is detected" when the machine has no network at all.
    console = [line for line in proc.stderr.splitlines()
               if ":CONSOLE" in line and "source: chrome://" not in line]
    return Opened(screenshot, console, page_requests(recorder.requests), proc.stderr, proc.returncode)
