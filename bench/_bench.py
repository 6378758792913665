"""What the bench scripts share: the zomg command of an interpreter, a child timed or counted, the parser.

A bench times whole processes, so each of these is where the figures
come from: one way to find zomg, one way to time a child (no ``timeout=``,
so nothing polls; CPU from the children's rusage), one way to count its
instructions (callgrind), one way to start the command line. Imported as ``import _bench`` (``python bench/x.py`` puts
bench/ on ``sys.path``).
"""
from __future__ import annotations

import argparse
import os
import re
import resource  # POSIX only, like the benches
import subprocess
import sys
import time


def zomg_command(python: str = sys.executable) -> list[str]:
    """The command that runs the zomg installed for ``python``: its script when there is one, else ``-m zomg``."""
    script = os.path.join(os.path.dirname(python), "zomg")
    if os.path.exists(script):
        return [python, script]
    return [python, "-m", "zomg"]


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``cmd``, its output discarded; no timeout, so nothing polls."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def instructions(cmd: list[str], env: dict) -> int:
    """Instructions one run of ``cmd`` executes, as callgrind counts them (PYTHONHASHSEED=0, so runs repeat)."""
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
                          env=dict(env, PYTHONHASHSEED="0"), check=True, capture_output=True, text=True)
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def parser(doc: str) -> argparse.ArgumentParser:
    """A bench's command line, described by the first line of its docstring."""
    return argparse.ArgumentParser(description=doc.splitlines()[0])


def interpreter(python: str = sys.executable, version: str | None = None) -> str:
    """The line naming the interpreter measured and how zomg was run."""
    version = version or sys.version.split()[0]
    return f"interpreter: {python} (Python {version}); zomg via: " \
           f"{' '.join(os.path.basename(c) for c in zomg_command(python))}"
