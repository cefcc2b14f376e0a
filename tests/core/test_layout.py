"""The repository layout is a contract: every distribution ships complete.

Each distribution under plugins/ (except the _template) and contrib/ has a pyproject.toml
with an entry point, a README, a CHANGELOG with an entry for its version, and its tests in
tests/plugins/<name> or tests/contrib/<name>. A plugin also has a reference page,
docs/plugins/<name>.md, and a row in the root README's Distributions table. Tool
configuration lives only at the root, and mypy checks every package. Inside a package
imports point one way (no cycle between its modules, not even under TYPE_CHECKING).
The template itself must stay a working plugin.
"""

from __future__ import annotations

import ast
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "plugins" / "_template"

pytest_plugins = ["pytester"]


def distributions() -> list[Any]:
    found = []
    for kind in ("plugins", "contrib"):
        for path in sorted((ROOT / kind).iterdir()):
            if path.is_dir() and path != TEMPLATE and not path.name.startswith((".", "__")):
                found.append(pytest.param(kind, path, id=f"{kind}/{path.name}"))
    return found


def pyproject(path: Path) -> dict[str, Any]:
    file = path / "pyproject.toml"
    assert file.is_file(), f"{path.relative_to(ROOT)} has no pyproject.toml"
    with file.open("rb") as f:
        return tomllib.load(f)


def module_file(dist: Path, module: str) -> Path | None:
    """Where ``a.b`` lives inside the distribution directory, if it does."""
    base = dist.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


DISTRIBUTIONS = distributions()


def test_the_repository_has_distributions() -> None:
    assert any(p.values[0] == "plugins" for p in DISTRIBUTIONS)


@pytest.mark.parametrize(("kind", "path"), DISTRIBUTIONS)
def test_distribution_has_docs_files(kind: str, path: Path) -> None:
    version = pyproject(path)["project"]["version"]
    readme = path / "README.md"
    assert readme.is_file(), f"{kind}/{path.name} has no README.md"
    assert readme.read_text().strip(), f"{kind}/{path.name}/README.md is empty"
    changelog = path / "CHANGELOG.md"
    assert changelog.is_file(), f"{kind}/{path.name} has no CHANGELOG.md"
    assert re.search(rf"^## {re.escape(version)}\b", changelog.read_text(), re.MULTILINE), (
        f"{kind}/{path.name}/CHANGELOG.md has no '## {version}' entry for the current version")


def listed_distributions() -> set[str]:
    """The distribution names in the first column of the root README's Distributions table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("\n## Distributions\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([\w.-]+)`", table, re.MULTILINE))


PLUGINS = [p for p in DISTRIBUTIONS if p.values[0] == "plugins"]


@pytest.mark.parametrize(("kind", "path"), PLUGINS)
def test_plugin_has_a_docs_page_and_a_readme_row(kind: str, path: Path) -> None:
    page = ROOT / "docs" / "plugins" / f"{path.name}.md"
    assert page.is_file(), f"plugins/{path.name} has no reference page docs/plugins/{path.name}.md"
    assert f"plait-{path.name}" in listed_distributions(), (
        f"the Distributions table of README.md does not list `plait-{path.name}`")


@pytest.mark.parametrize(("kind", "path"), DISTRIBUTIONS)
def test_distribution_has_tests(kind: str, path: Path) -> None:
    tests = ROOT / "tests" / kind / path.name
    assert tests.is_dir(), f"{kind}/{path.name} has no tests directory tests/{kind}/{path.name}"
    files = [*tests.rglob("test_*.py"), *tests.rglob("*_test.py")]
    assert files, f"tests/{kind}/{path.name} holds no test file"


@pytest.mark.parametrize(("kind", "path"), DISTRIBUTIONS)
def test_distribution_has_an_entry_point(kind: str, path: Path) -> None:
    project = pyproject(path)["project"]
    groups = project.get("entry-points", {})
    if kind == "plugins":
        name = path.name
        assert project["name"] == f"plait-{name}", (
            f"plugins/{name} must be distribution 'plait-{name}', not {project['name']!r}")
        plait_eps = groups.get("plait", {})
        assert name in plait_eps, (
            f"plugins/{name} has no `[project.entry-points.plait] {name} = \"plait_{name}\"`")
        module = plait_eps[name].split(":")[0]
        assert module.split(".")[0] == f"plait_{name}", (
            f"plugins/{name}: the plait entry point must point into package plait_{name}, "
            f"not {module!r}")
    else:
        assert groups or project.get("scripts"), (
            f"contrib/{path.name} declares no entry point (in any group)")
    for group, entries in groups.items():
        for ep_name, value in entries.items():
            module = value.split(":")[0]
            assert module_file(path, module), (
                f"{kind}/{path.name}: entry point {group}.{ep_name} names {module!r}, "
                "which is not a module of the distribution")


@pytest.mark.parametrize(("kind", "path"), DISTRIBUTIONS)
def test_tool_configuration_lives_only_at_the_root(kind: str, path: Path) -> None:
    tools = set(pyproject(path).get("tool", {}))
    shared = tools & {"ruff", "mypy", "pytest", "coverage"}
    assert not shared, (
        f"{kind}/{path.name}/pyproject.toml configures {', '.join(sorted(shared))}; "
        "tool configuration lives once, in the root pyproject.toml")


@pytest.mark.parametrize(("kind", "path"), [*DISTRIBUTIONS, pytest.param(
    "plugins", TEMPLATE, id="plugins/_template")])
def test_mypy_checks_every_package(kind: str, path: Path) -> None:
    checked = set(pyproject(ROOT)["tool"]["mypy"]["files"])
    packages = {p.parent.relative_to(ROOT).as_posix() for p in path.glob("*/__init__.py")}
    assert packages, f"{kind}/{path.name} has no package"
    assert packages <= checked, (f"add {', '.join(sorted(packages - checked))} to "
                                 "[tool.mypy] files in the root pyproject.toml")

@pytest.mark.parametrize(("kind", "path"), DISTRIBUTIONS)
def test_modules_of_a_package_import_one_way(kind: str, path: Path) -> None:
    for package in sorted(p.parent for p in path.glob("*/__init__.py")):
        graph = {module: _own_imports(package, module) for module in _modules(package)}
        cycle = _cycle(graph)
        assert cycle is None, (f"{kind}/{path.name}: import cycle "
                               f"{' -> '.join(cycle or [])}; make the imports point one way")


def _modules(package: Path) -> dict[str, Path]:
    found = {}
    for file in sorted(package.rglob("*.py")):
        parts = list(file.relative_to(package.parent).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return found


def _own_imports(package: Path, module: str) -> set[str]:
    """The modules of ``package`` that ``module`` imports, wherever the import statement is."""
    modules = _modules(package)
    is_package = modules[module].name == "__init__.py"
    imported: set[str] = set()
    for node in ast.walk(ast.parse(modules[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = module.split(".")
            base = parts if is_package else parts[:-1]
            if node.level:
                base = base[:len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:  # a submodule (``from . import _names``), or a name
                submodule = f"{target}.{alias.name}"
                imported.add(submodule if submodule in modules else target)
    return {name for name in imported if name in modules and name != module}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return None
        for target in sorted(graph[node]):
            if found := visit(target, [*path, node]):
                return found
        done.add(node)
        return None

    return next((c for node in sorted(graph) if (c := visit(node, []))), None)


def test_the_template_is_complete_and_excluded_from_the_workspace() -> None:
    project = pyproject(TEMPLATE)["project"]
    assert project["name"] == "plait-example"
    assert project["entry-points"]["plait"] == {"example": "plait_example"}
    for name in ("README.md", "CHANGELOG.md", "plait_example/__init__.py",
                 "tests/test_example.py"):
        assert (TEMPLATE / name).is_file(), f"plugins/_template/{name} is missing"
    root = pyproject(ROOT)["tool"]
    assert "plugins/_template" in root["uv"]["workspace"]["exclude"]
    assert "plugins/_template" in root["ruff"]["extend-exclude"]


def test_the_template_plugin_passes_its_own_tests(pytester: pytest.Pytester) -> None:
    # Run the template's tests as a copy of it would, with the repository's pytest settings.
    shutil.copytree(TEMPLATE / "plait_example", pytester.path / "plait_example")
    shutil.copy(TEMPLATE / "tests" / "test_example.py", pytester.path)
    pytester.makeini("[pytest]\nanyio_mode = auto\nfilterwarnings = error\n")
    pytester.syspathinsert()
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    assert result.ret == pytest.ExitCode.OK
    assert set(result.parseoutcomes()) == {"passed"}  # nothing skipped, failed or errored
