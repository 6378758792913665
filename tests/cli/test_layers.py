"""zomg's import arrows point down through four layers, with no circles, and argparse's insides stay in one module."""
from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

import zomg

ROOT = os.path.dirname(zomg.__file__)

# Top to bottom: a module may import from its own layer or any layer below, never above.
# A module's layer is decided by the longest prefix below that names it or its package, so a
# module added or renamed inside a listed package (zomg.telemetry.layout, say) needs no edit.
LAYERS = [
    ("CLI face", ("zomg.cli", "zomg.__main__", "zomg.parser", "zomg.argparse_private")),
    # zomg.commands.completion_scripts, the completion generator, reads only the declarations.
    ("commands", ("zomg.commands",)),
    ("domain", ("zomg.boxes", "zomg.process", "zomg.setup_config", "zomg.telemetry")),
    ("foundations", ("zomg.paths", "zomg.errors", "zomg.fsutil", "zomg.output", "zomg.json_light")),
]
# The package itself holds only ``__version__``: anything may read it.
ROOT_PACKAGE = "zomg"
# The receiver is a separate program: besides itself it may use only what the CLI and it share, the
# wire schema (what a batch holds) and the protocol (the rest of the exchange: the events path,
# Retry-After, no redirects, backoff). The receiver is the CLI's server and an HTTP client of
# PostHog's like the CLI's sender, so those are one contract with one home; both import nothing of zomg.
RECEIVER = "zomg.receiver"
SHARED = ("zomg.telemetry.protocol", "zomg.telemetry.schema")
RECEIVER_MAY_IMPORT = (*SHARED, ROOT_PACKAGE)

# Edges in today's tree that break the rule, each with the reason it is still here.
# When one is fixed the test says so: delete it from this list then.
KNOWN_EXCEPTIONS: set = set()


def _modules() -> dict[str, tuple[str, ast.AST]]:
    """Every module under zomg/: dotted name -> (path, parsed tree)."""
    found = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                with open(path, encoding="utf-8") as f:
                    found[rel.removesuffix(".__init__")] = (path, ast.parse(f.read(), path))
    return found


def _imports(name: str, path: str, tree: ast.AST, known: set[str]) -> set[str]:
    """The zomg modules ``name`` imports anywhere in its body (function-local ones too)."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([module] if module else []))
            for alias in node.names:
                # `from zomg.telemetry import config` imports a module; `from zomg import __version__` a name.
                submodule = f"{module}.{alias.name}"
                found.add(submodule if submodule in known else module)
    return {i for i in found if i == ROOT_PACKAGE or i.startswith(ROOT_PACKAGE + ".")}


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:``: imports for annotations only never run."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                todo.extend(child.orelse)
            else:
                todo.append(child)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, tree, known) - {name} for name, (path, tree) in modules.items()}


def _layer(name: str) -> int | None:
    """Index into LAYERS (0 is the top), or None for the root package and the receiver."""
    if name == ROOT_PACKAGE or name == RECEIVER or name.startswith(RECEIVER + "."):
        return None
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[1])):
                best = (index, prefix)
    assert best is not None, f"{name}: which layer is it in? Add it to LAYERS in {__file__}"
    return best[0]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _allowed(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    return {source: {t for t in targets if (source, t) not in KNOWN_EXCEPTIONS} for source, targets in graph.items()}


def test_the_walk_sees_every_kind_of_import():
    graph = _graph()
    assert "zomg.parser" in graph["zomg.cli"], "a module-level `from zomg import parser`"
    assert "zomg.commands.completion_scripts" in graph["zomg.commands.completion"], "a function-local import"
    assert graph["zomg.telemetry.schema"] == set()


@pytest.mark.parametrize("shared", SHARED)
def test_what_the_cli_and_the_receiver_share_imports_nothing_of_zomg(shared):
    assert _graph()[shared] == set()


def test_no_module_imports_from_a_layer_above_its_own():
    graph = _allowed(_graph())
    upward = []
    for source, targets in sorted(graph.items()):
        if source == RECEIVER or source.startswith(RECEIVER + "."):
            continue
        for target in sorted(targets):
            if target == RECEIVER or target.startswith(RECEIVER + "."):
                upward.append(f"{source} -> {target} (the CLI never imports the receiver)")
                continue
            source_layer, target_layer = _layer(source), _layer(target)
            if target_layer is not None and source_layer is not None and target_layer < source_layer:
                upward.append(f"{source} ({LAYERS[source_layer][0]}) -> {target} ({LAYERS[target_layer][0]})")
    assert upward == [], upward


def test_paths_is_a_foundation_that_imports_no_zomg_module():
    assert _graph()["zomg.paths"] == set()


def test_the_receiver_depends_only_on_the_shared_schema():
    outside = {
        f"{source} -> {target}"
        for source, targets in _graph().items()
        if source == RECEIVER or source.startswith(RECEIVER + ".")
        for target in targets
        if not (target in RECEIVER_MAY_IMPORT or target == RECEIVER or target.startswith(RECEIVER + "."))
    }
    assert outside == set()


def test_the_running_receiver_loads_nothing_of_the_cli():
    """The walk sees written imports; importing a shared module also runs zomg/telemetry/__init__.py."""
    entry_points = ("__main__", "gunicorn_conf")  # one starts a server, the other reads gunicorn's settings
    names = sorted(n for n in _graph() if n.startswith(RECEIVER + ".") and not n.endswith(entry_points))
    code = (
        "import sys\n"
        f"for name in {names!r}:\n"
        "    __import__(name)\n"
        f"print([m for m in sorted(sys.modules) if m.split('.')[0] == 'zomg' and not m.startswith({RECEIVER!r})])"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert ast.literal_eval(loaded) == ["zomg", "zomg.telemetry", *SHARED]


def test_the_import_graph_has_no_circles():
    assert _cycles(_allowed(_graph())) == []


@pytest.mark.parametrize("edge", sorted(KNOWN_EXCEPTIONS), ids="->".join)
def test_each_known_exception_is_still_real(edge):
    source, target = edge
    assert target in _graph().get(source, set()), f"{source} no longer imports {target}: delete the exception"


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_argparse_private_names_are_used_only_in_the_adapter():
    users = set()
    for name, (_, tree) in _modules().items():
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
