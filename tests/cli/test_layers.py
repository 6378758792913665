"""The CLI side's import arrows point down, and argparse's insides are touched in one module only."""
from __future__ import annotations

import ast
import os

import zomg

ROOT = os.path.dirname(zomg.__file__)


def _modules():
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                with open(path, encoding="utf-8") as f:
                    yield rel.removesuffix(".__init__"), ast.parse(f.read(), path)


def _imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "zomg" or name.startswith("zomg.")}


def test_foundations_and_telemetry_never_import_upward():
    modules = dict(_modules())
    assert _imports(modules["zomg.paths"]) == set(), "paths is a foundation: it imports no zomg module"
    above_telemetry = ("zomg.commands", "zomg.cli", "zomg.parser", "zomg.argparse_private")
    for name, tree in modules.items():
        if name.startswith("zomg.telemetry"):
            upward = {i for i in _imports(tree) if i.startswith(above_telemetry)}
            assert not upward, f"{name} imports {upward}"


def test_argparse_private_names_are_used_only_in_the_adapter():
    users = set()
    for name, tree in _modules():
        for node in ast.walk(tree):
            private = (
                isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "argparse"
                and node.attr.startswith("_")
            ) or (
                isinstance(node, ast.ImportFrom) and node.module == "argparse"
                and any(alias.name.startswith("_") for alias in node.names)
            ) or (isinstance(node, ast.FunctionDef) and node.name == "_check_value")
            if private:
                users.add(name)
    assert users == {"zomg.argparse_private"}
