"""core/plait is layered: imports point down, never up and never in a circle.

The import graph is read from the source (AST), function-local imports included;
imports under ``if TYPE_CHECKING:`` are left out (they only name types for signatures).
A new module gets a layer in LAYERS below, which is the map of where things live.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "core" / "plait"

# Lowest first. A module may import its own layer (without a cycle) and the ones below.
LAYERS: list[tuple[str, list[str]]] = [
    ("values", ["_version", "_money", "_config", "_errors", "_model", "_types", "_serialize",
                "_results", "_events", "_store", "_eval_report"]),
    ("mechanisms", ["_budget", "_limits", "_structured", "_conversation", "_inputs", "_http",
                    "_client", "_policy", "_timeouts", "_hooks", "_durable", "_sqlite_store",
                    "_in_context"]),
    ("runtime", ["hookspecs", "_plugins", "_runtime", "_stores", "_recorder"]),
    ("engine", ["_step", "_scope", "_execution", "_fallback", "_tools", "_calls", "_stream",
                "_agent", "_window", "_map", "_ensemble", "_answer", "_once"]),
    ("workflows", ["_context", "_router", "_fanout", "_orchestrator", "_graph", "_run_stream",
                   "_pipeline", "_resume", "_eval_resume", "_eval"]),
    ("faces", ["_sync", "_targets", "_console", "_eval_view", "_plot", "_builtin", "_demos",
               "_cli", "__init__"]),
]

# Function-local imports of plait's own modules, each with the reason it is deferred.
DEFERRED = {
    ("plait._agent", "plait._structured"): "cattrs loads on the first Agent, not on import",
    ("plait._inputs", "plait._structured"): "cattrs loads with the first schema, not on import",
    ("plait._tools", "plait._structured"): "cattrs loads on the first tool, not on import",
    **{("plait._builtin", f"plait.{module}"): "the built-in plugin is registered by every "
       "plugin manager; what it registers loads on first use"
       for module in ("_context", "_map", "_sqlite_store")},
    **{(f"plait._builtin.{tracer}", "plait._results"): "a built-in tracer is registered by "
       "every plugin manager; results load when it traces"
       for tracer in ("progress", "steplog")},
    **{("plait._cli", f"plait._cli.{command}"): "a command's module loads when it runs, so "
       "`plait --help` does not import the engine"
       for command in ("demo", "eval", "graph", "plugins", "run", "runs")},
}


def _module_name(path: pathlib.Path, package: pathlib.Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(module: str, is_package: bool, node: ast.ImportFrom | ast.Import,
             modules: set[str]) -> list[str]:
    """The plait modules an import statement loads."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "plait"]
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - node.level + 1]
        base = ".".join([*anchor, *([base] if base else [])])
    if base.split(".")[0] != "plait":
        return []
    # `from plait import hookspecs` loads a module; `from plait._x import name` loads _x
    found = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
    return found or [base]


def import_graph(package: pathlib.Path = PACKAGE) -> dict[tuple[str, str], bool]:
    """``(importer, imported) -> whether the import is function-local``."""
    files = {_module_name(p, package): p for p in package.rglob("*.py")}
    modules = set(files)
    edges: dict[tuple[str, str], bool] = {}

    def visit(module: str, is_package: bool, node: ast.AST, local: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(module, is_package, child, local)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            for target in _resolve(module, is_package, node, modules):
                if target != module:
                    edges[(module, target)] = edges.get((module, target), True) and local
            return
        inner = local or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(module, is_package, child, inner)

    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        visit(module, path.name == "__init__.py", tree, False)
    return edges


def layer_of(module: str) -> int:
    short = module.split(".")[1] if "." in module else "__init__"
    for i, (_, names) in enumerate(LAYERS):
        if short in names:
            return i
    raise KeyError(module)


def cycles(edges: dict[tuple[str, str], bool]) -> list[list[str]]:
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
    found: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def dfs(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                dfs(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            dfs(node)
    return found


EDGES = import_graph()


def test_every_module_has_a_layer() -> None:
    modules = {m for edge in EDGES for m in edge} | {
        _module_name(p) for p in PACKAGE.rglob("*.py")}
    unplaced = []
    for m in sorted(modules):
        try:
            layer_of(m)
        except KeyError:
            unplaced.append(m)
    assert not unplaced, f"give these modules a layer in LAYERS: {unplaced}"


def test_no_import_points_up() -> None:
    upward = [f"{a} ({LAYERS[layer_of(a)][0]}) -> {b} ({LAYERS[layer_of(b)][0]})"
              for a, b in EDGES if layer_of(b) > layer_of(a)]
    assert not upward, "imports must point down:\n" + "\n".join(sorted(upward))


def test_no_import_cycles() -> None:
    found = cycles(EDGES)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_function_local_imports_are_only_deferrals() -> None:
    local = {edge for edge, is_local in EDGES.items() if is_local}
    assert local == set(DEFERRED), (
        "a function-local import of a plait module hides a cycle; import at the top "
        f"(or defer a heavy third-party import, listed in DEFERRED): {sorted(local)}")


@pytest.mark.parametrize(("source", "message"), [
    ("from ._runtime import Runtime\n", "_money (values) -> plait._runtime (runtime)"),
    ("def f():\n    from ._pipeline import Pipeline\n", "_money (values) -> plait._pipeline"),
])
def test_the_guard_names_an_upward_edge(tmp_path: pathlib.Path, source: str,
                                        message: str) -> None:
    """Break the rule on purpose in a copy of the package: the guard names the edge."""
    copy = tmp_path / "plait"
    for path in PACKAGE.rglob("*.py"):
        target = copy / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    money = copy / "_money.py"
    money.write_text(money.read_text(encoding="utf-8") + source, encoding="utf-8")
    edges = import_graph(copy)
    upward = [f"{a} ({LAYERS[layer_of(a)][0]}) -> {b} ({LAYERS[layer_of(b)][0]})"
              for a, b in edges if layer_of(b) > layer_of(a)]
    assert any(message in line for line in upward), upward
    assert cycles(edges), "importing the runtime or a pipeline from _money closes a cycle"
