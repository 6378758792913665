"""Every module in zomg/ opens with a docstring whose first line says, in a sentence, what it owns."""
from __future__ import annotations

import ast
import os

import pytest

import zomg

ROOT = os.path.dirname(zomg.__file__)
MODULES = sorted(
    os.path.relpath(os.path.join(folder, name), os.path.dirname(ROOT))
    for folder, _, files in os.walk(ROOT)
    for name in files
    if name.endswith(".py")
)


def first_line_problem(source: str) -> str | None:
    """Why the module docstring's first line is not a one-line sentence, or None when it is."""
    docstring = ast.get_docstring(ast.parse(source), clean=False)
    if not docstring:
        return "no module docstring"
    first = docstring.splitlines()[0].strip()
    if not first:
        return "the docstring's first line is empty"
    if len(first.split()) < 3:
        return f"the first line is too short to say what the module owns: {first!r}"
    # A line ending in a colon introduces the list it summarises (gunicorn_conf's settings).
    if not first.endswith((".", ":")):
        return f"the first line is not a whole sentence: {first!r}"
    return None


def test_the_walk_finds_the_package():
    assert os.path.join("zomg", "cli.py") in MODULES and os.path.join("zomg", "telemetry", "schema.py") in MODULES


@pytest.mark.parametrize("path", MODULES)
def test_the_module_says_what_it_owns(path):
    with open(os.path.join(os.path.dirname(ROOT), path), encoding="utf-8") as f:
        assert first_line_problem(f.read()) is None, path


@pytest.mark.parametrize("source,problem", [
    ("import os\n", "no module docstring"),
    ('"""\n\nMore."""\n', "the docstring's first line is empty"),
    ('"""Helpers."""\n', "the first line is too short"),
    ('"""Reading the spool and\nwriting it."""\n', "not a whole sentence"),
])
def test_a_missing_or_empty_first_line_is_caught(source, problem):
    assert problem in first_line_problem(source)
