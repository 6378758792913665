"""The production deployment as one foreground command: nginx in front of the receiver's gunicorn.

``scripts/receiver-stack --port PORT`` (or ``python -m zomg.receiver.stack``)
checks the receiver's settings, starts gunicorn with the shipped
configuration (``gunicorn_conf``) on a unix socket in a private directory,
then nginx with the shipped configuration (``nginx.conf.in``, filled in here)
listening on HOST:PORT and passing whole requests to that socket. It says
``zomg-receiver: listening on http://HOST:PORT`` once nginx answers.

SIGTERM or SIGINT stops it all: nginx first (it finishes the requests it has,
at most 10 s), then gunicorn (its workers drain to PostHog), then the private
directory is removed; the stack exits 0 once both are gone. SIGHUP reloads
both. If either dies on its own, the other is stopped and the stack exits 1.
nginx's error lines are relayed in the receiver's log format with the part
naming the client (``, client: ...``) cut off.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping

from zomg.receiver.log import emit, format_line, mask_addresses, write_whole
from zomg.receiver.settings import port_number
from zomg.receiver.wsgi import TOO_LARGE, error_body

EXIT_OK = 0
EXIT_ERROR = 1
NGINX_VAR = "ZOMG_RECEIVER_NGINX"  # the nginx binary, when it is not on PATH or in /usr/sbin
SOCKET_NAME = "gunicorn.sock"
START_SECONDS = 60.0
NGINX_STOP_SECONDS = 15.0  # its worker_shutdown_timeout (10 s) and a margin
GUNICORN_STOP_SECONDS = 35.0  # gunicorn_conf's graceful timeout (25 s) and a margin
# nginx's own refusals, each answered in JSON with a fixed message (status, answered as, message).
NGINX_ERRORS = (
    (400, 400, "request: not valid HTTP/1.1"),
    (404, 404, "not found"),
    (405, 405, "method not allowed"),
    (408, 408, "request: not sent in time"),
    (413, 413, TOO_LARGE),
    (414, 414, "request line: longer than 4096 bytes"),
    (494, 431, "headers: one longer than 4096 bytes"),
    (411, 411, "Content-Length: required"),
    (501, 501, "Transfer-Encoding: not supported"),
    (500, 500, "internal error"),
    # gunicorn not there (starting, reloading, stopped) or too slow: nothing was accepted; send again.
    (502, 503, "receiver: unavailable; send the events again"),
    (503, 503, "receiver: unavailable; send the events again"),
    (504, 503, "receiver: unavailable; send the events again"),
)
_NGINX_LEVELS = {"emerg": "CRITICAL", "alert": "CRITICAL", "crit": "CRITICAL", "error": "ERROR",
                 "warn": "WARNING", "notice": "INFO", "info": "INFO", "debug": "DEBUG"}
_NGINX_LINE = re.compile(r"(?:\d{4}/\d\d/\d\d \d\d:\d\d:\d\d |nginx: )\[(\w+)\] (?:(\d+)#\d+: )?(?:\*\d+ )?(.*)")


class StackError(Exception):
    """The stack cannot start; the message is the one line it stops with."""


def template_path() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "nginx.conf.in")


def error_pages() -> str:
    """The nginx lines that answer each of its own refusals in JSON."""
    lines = []
    for status, answered, message in NGINX_ERRORS:
        body = error_body(message).decode("ascii")
        assert "'" not in body and "\\" not in body  # one nginx single-quoted string
        # A URI, not a named location: nginx cannot redirect to one before it has read a request line.
        lines.append(f"        error_page {status} ={answered} /zomg-error/{status};")
        extra = " add_header Retry-After 1 always;" if answered == 503 else ""
        # client_max_body_size 0: the redirect is checked against the limit again, and must not fail it.
        lines.append(f"        location = /zomg-error/{status} {{ internal; client_max_body_size 0;{extra} "
                     f"return {answered} '{body}'; }}")
    return "\n".join(lines)


def nginx_config(host: str, port: int, rundir: str, nofile: int, worker_user: str | None) -> str:
    """The shipped nginx configuration, filled in for one run."""
    from zomg.receiver.wsgi import MAX_BODY_BYTES

    with open(template_path(), encoding="utf-8") as handle:
        text = handle.read()
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    values = {
        "NOFILE": str(nofile),
        "CONNECTIONS": str(max(256, min(8192, nofile // 2 - 32))),
        "RUNDIR": rundir,
        "USER": f"user {worker_user};" if worker_user else "",
        "MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "SOCKET": os.path.join(rundir, SOCKET_NAME),
        "LISTEN": listen,
        "ERROR_PAGES": error_pages(),
    }
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise StackError(f"nginx configuration: {left[0]} not filled in")
    return text


def find_nginx(environ: Mapping[str, str]) -> str:
    chosen = environ.get(NGINX_VAR)
    if chosen:
        if os.access(chosen, os.X_OK) and not os.path.isdir(chosen):
            return chosen
        raise StackError(f"{NGINX_VAR}: {chosen} is not an executable file")
    path = os.pathsep.join([environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])
    found = shutil.which("nginx", path=path)
    if found is None:
        raise StackError("nginx is not installed (Debian: apt-get install nginx-light); "
                         f"or set {NGINX_VAR} to its path")
    return found


def _free_port(host: str, port: int) -> int:
    """``port`` once it is known free (any free one for 0); OSError when it cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        # As nginx binds: a port with connections of a stopped server in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        return probe.getsockname()[1]


def _nofile() -> int:
    """The descriptors nginx may use: the hard limit (raised to, as far as allowed), at most 65536."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    return max(soft, wanted)


def relay_nginx(stream: object) -> None:
    """nginx's stderr, line by line, as the receiver's log lines, with the part naming the client cut off."""
    for raw in stream:
        text = raw.decode("utf-8", "replace").rstrip("\n")
        if not text:
            continue
        found = _NGINX_LINE.fullmatch(text)
        level, pid = "ERROR", None
        if found:
            level = _NGINX_LEVELS.get(found.group(1), "ERROR")
            pid = int(found.group(2)) if found.group(2) else None
            text = found.group(3)
        text = mask_addresses(text.split(", client: ")[0])
        write_whole(sys.stderr, format_line(f"nginx: {text}", level, pid=pid))


class Stack:
    """gunicorn and nginx, started, watched and stopped together."""

    def __init__(self, host: str, port: int, nginx: str, environ: Mapping[str, str]) -> None:
        self.host = host
        self.port = port
        self.nginx = nginx
        self.environ = dict(environ)
        self.rundir = ""
        self.gunicorn: subprocess.Popen | None = None
        self.proxy: subprocess.Popen | None = None
        self.stopping = threading.Event()
        self.reload = threading.Event()

    def start(self) -> None:
        self.rundir = tempfile.mkdtemp(prefix="zomg-receiver-stack-")
        sock = os.path.join(self.rundir, SOCKET_NAME)
        argv = [sys.executable, "-m", "gunicorn", "-c", "python:zomg.receiver.gunicorn_conf",
                "--bind", f"unix:{sock}", "zomg.receiver:app"]
        # Their own session: a terminal's Ctrl-C reaches the stack alone, which stops them in order.
        self.gunicorn = subprocess.Popen(argv, env=self.environ, start_new_session=True)
        self._wait_for(lambda: os.path.exists(sock), self.gunicorn, "gunicorn")
        worker_user = None
        if os.geteuid() == 0:
            # nginx's workers drop root for nobody: they alone (and root) may reach the socket.
            import grp
            import pwd

            nobody = pwd.getpwnam("nobody")
            os.chmod(self.rundir, 0o711)
            os.chown(sock, nobody.pw_uid, -1)
            os.chmod(sock, 0o600)
            worker_user = f"nobody {grp.getgrgid(nobody.pw_gid).gr_name}"
        conf = os.path.join(self.rundir, "nginx.conf")
        with open(conf, "w", encoding="utf-8") as handle:
            handle.write(nginx_config(self.host, self.port, self.rundir, _nofile(), worker_user))
        self.proxy = subprocess.Popen(
            [self.nginx, "-p", self.rundir + "/", "-c", conf, "-e", "stderr", "-g", "daemon off;"],
            env={"PATH": os.defpath, "TZ": "UTC"}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True)
        threading.Thread(target=relay_nginx, args=(self.proxy.stderr,), daemon=True).start()
        self._wait_for(self._answers, self.proxy, "nginx")

    def _answers(self) -> bool:
        """Whether the receiver answers /healthz through nginx (not merely: something listens there)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as probe:
                probe.sendall(b"GET /healthz HTTP/1.0\r\nHost: stack\r\n\r\n")
                answer = b""
                while len(answer) < 4096:
                    chunk = probe.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
        except OSError:
            return False
        return answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"status":"ok"}')

    def _wait_for(self, condition: object, process: subprocess.Popen, name: str) -> None:
        end = time.monotonic() + START_SECONDS
        while not condition():
            if process.poll() is not None:
                raise StackError(f"{name} exited at start (status {process.returncode})")
            if self.stopping.is_set():
                raise StackError("stopped while starting")
            if time.monotonic() > end:
                raise StackError(f"{name} did not start within {START_SECONDS:g} s")
            time.sleep(0.05)

    def watch(self) -> int:
        """Until told to stop or a part dies; the exit status."""
        while not self.stopping.wait(0.2):
            if self.reload.is_set():
                self.reload.clear()
                for process in (self.gunicorn, self.proxy):
                    process.send_signal(signal.SIGHUP)
            for name, process in (("gunicorn", self.gunicorn), ("nginx", self.proxy)):
                if process.poll() is not None:
                    emit(f"zomg-receiver: {name} exited (status {process.returncode}); stopping", "ERROR")
                    return EXIT_ERROR
        return EXIT_OK

    def stop(self) -> bool:
        """nginx, then gunicorn, each with its own grace; True when both exited cleanly."""
        clean = True
        for process, sig, grace in ((self.proxy, signal.SIGQUIT, NGINX_STOP_SECONDS),
                                    (self.gunicorn, signal.SIGTERM, GUNICORN_STOP_SECONDS)):
            if process is None:
                continue
            if process.poll() is None:
                process.send_signal(sig)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                emit(f"zomg-receiver: {os.path.basename(process.args[0])} did not stop in {grace:g} s; killed",
                     "ERROR")
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                clean = False
            if process.returncode != 0:
                emit(f"zomg-receiver: {os.path.basename(process.args[0])} exited with status {process.returncode}",
                     "ERROR")
                clean = False
        if self.rundir:
            shutil.rmtree(self.rundir, ignore_errors=True)
        return clean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="receiver-stack",
        description="Run the receiver's production deployment in the foreground: nginx in front of gunicorn.",
        allow_abbrev=False,
    )
    parser.add_argument("--port", type=port_number, required=True, help="port to listen on; 0 for any free one")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    args = parser.parse_args(argv)

    from zomg.receiver.settings import SettingsError, check_env, refuse_to_start

    try:
        check_env(os.environ)
        nginx = find_nginx(os.environ)
    except SettingsError as exc:
        return refuse_to_start(exc)
    except StackError as exc:
        return refuse_to_start(SettingsError(str(exc)))
    try:
        port = _free_port(args.host, args.port)
    except OSError as exc:
        return refuse_to_start(SettingsError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"))
    stack = Stack(args.host, port, nginx, os.environ)

    def stop(signum: int, frame: object) -> None:
        stack.stopping.set()

    def reload(signum: int, frame: object) -> None:
        stack.reload.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    status = EXIT_OK
    try:
        stack.start()
        shown = f"[{args.host}]" if ":" in args.host else args.host
        emit(f"zomg-receiver: listening on http://{shown}:{port} (nginx in front of gunicorn)")
        status = stack.watch()
    except StackError as exc:
        if not stack.stopping.is_set():  # told to stop while starting: a stop, not a failure
            emit(f"zomg-receiver: error: {exc}", "ERROR")
            status = EXIT_ERROR
    finally:
        clean = stack.stop()
    return status if status != EXIT_OK or clean else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
