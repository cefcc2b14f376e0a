"""Every code example in the guide runs: the docs cannot show code that does not work.

A ```python block preceded by an ``<!-- test -->`` comment, in README.md, under docs/ or
in a contrib distribution's README, is executed as it is written, in a module of its own.
A block with top-level ``await`` runs on asyncio and on trio; any other block runs as a
script (``plait.run_sync`` and all). A plugin and its tests are shown as they would be
written: ``<!-- test: module NAME -->`` blocks are saved as NAME.py, and the page's
``<!-- test: pytest -->`` blocks are run by pytest next to them. In the guide
(docs/index.md and docs/guide/) every python block is either tested or says why not with
``<!-- not tested: reason -->``.

The examples name real models ("openai:gpt-4o-mini", "local:smollm2"...) and run on the
process's default Runtime, or on Runtimes they build, as a user's script would. Here every
Runtime answers the providers they name from one scripted ``plait_testing.FakeProvider``
and has no network: the fake follows the JSON schema of structured-output requests (the
first allowed value of an enum, one item per allowed value in a list...) and otherwise
echoes the prompt. Of the installed plugins only plait-testing and the aggregator and
validator plugins load, so no example can reach a real provider.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import sys
import types
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx
import plait
import pytest
from plait_testing import FakeProvider, provider_plugin

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
GUIDE = [ROOT / "docs" / "index.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]
SOURCES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")),
           *sorted((ROOT / "contrib").glob("*/README.md"))]

# <!-- test -->: run the block. <!-- test: module NAME -->: the block is module NAME.py
# for the page's <!-- test: pytest --> blocks, which are test files run by pytest.
TESTED = re.compile(r"^<!-- test(?:: (?P<kind>pytest|module (?P<module>\w+)))? -->$")
NOT_TESTED = re.compile(r"^<!-- not tested: .+ -->$")

# Providers the examples name, each answered by the scripted fake: priced like a small
# hosted model, or, like the hosted servers plait-openai registers, without a price table.
PRICED = ("openai", "anthropic", "gemini", "local", "ollama")
UNPRICED = ("openrouter",)
PRICE = plait.Price.per_million("0.15", "0.60")
# What a Runtime built inside an example may load: no provider that reaches the network.
SAFE_PLUGINS = "plait-testing,plait-vote,plait-judge,plait-synthesis,plait-validators"


class Block:
    """One ```python block of a markdown file, with the comment before it."""

    def __init__(self, path: Path, line: int, marker: str | None, source: str) -> None:
        self.path = path
        self.line = line
        self.marker = marker
        self.source = source

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def kind(self) -> str | None:
        """``"run"``, ``"pytest"``, ``"module"``, or ``None`` for an untested block."""
        found = TESTED.match(self.marker or "")
        if found is None:
            return None
        return "module" if found["module"] else found["kind"] or "run"

    @property
    def module(self) -> str:
        found = TESTED.match(self.marker or "")
        if found is None or not found["module"]:
            raise ValueError(f"{self.id} is not a module block")
        return str(found["module"])


def python_blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i
            j = i + 1
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            before = [line.strip() for line in lines[:start] if line.strip()]
            marker = before[-1] if before and before[-1].startswith("<!--") else None
            yield Block(path, start + 1, marker, "\n".join(lines[start + 1:j]) + "\n")
            i = j
        i += 1


def marked_blocks(kind: str = "run") -> list[Any]:
    return [pytest.param(b, id=b.id) for path in SOURCES for b in python_blocks(path)
            if b.kind == kind]


def markers_without_a_block(path: Path) -> list[int]:
    """Lines of ``<!-- test... -->`` comments not followed by a python block."""
    lines = path.read_text(encoding="utf-8").splitlines()
    bad = []
    for i, line in enumerate(lines):
        if TESTED.match(line.strip()):
            following = [x.strip() for x in lines[i + 1:] if x.strip()]
            if not following or following[0] != "```python":
                bad.append(i + 1)
    return bad


# -- the scripted fake ----------------------------------------------------------------------


def instance(schema: dict[str, Any], name: str = "value", variant: int = 0) -> Any:
    """A value that fits ``schema``: enums take their ``variant``-th value, a list holds
    one item per value of the enum inside it (at least two), strings name their field."""
    if "enum" in schema:
        values = schema["enum"]
        return values[variant % len(values)]
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]: the non-null one
        kind = next(k for k in kind if k != "null")
    if "anyOf" in schema:
        return instance(schema["anyOf"][0], name, variant)
    if kind == "object":
        return {key: instance(sub, key, variant)
                for key, sub in schema.get("properties", {}).items()}
    if kind == "array":
        n = max(2, len(_enum_inside(schema["items"])))
        return [instance(schema["items"], name, i) for i in range(n)]
    if kind == "integer":
        return variant + 1
    if kind == "number":
        return 0.5
    if kind == "boolean":
        return True
    return f"{name} {variant + 1}"


def _enum_inside(schema: dict[str, Any]) -> list[Any]:
    if "enum" in schema:
        return list(schema["enum"])
    for sub in schema.get("properties", {}).values():
        if "enum" in sub:
            return list(sub["enum"])
    return []


async def follow_schema(request: plait.ModelRequest) -> Any:
    """The fake's reply: a value fitting the requested schema, or the prompt echoed.

    Like a real model it takes its time: it answers once every other task is waiting, so
    calls an example makes in parallel are in flight together, on any scheduler.
    plait-judge's judge (schema ``Verdict``) scores every candidate its prompt shows and
    prefers the first.
    """
    await anyio.wait_all_tasks_blocked()
    prompt = next(m.content for m in reversed(request.messages) if m.role == "user")
    if request.json_schema is None:
        return prompt
    if request.schema_name == "Verdict":
        shown = len(re.findall(r"^<candidate \d+>$", prompt, re.MULTILINE))
        return {"reasoning": "Candidate 1 follows the rubric best.", "winner": 1,
                "scores": [{"candidate": i, "score": 10 - i} for i in range(1, shown + 1)]}
    return instance(dict(request.json_schema))


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider(follow_schema)


@pytest.fixture
def docs_runtime(monkeypatch: pytest.MonkeyPatch, no_network: httpx.MockTransport,
                 fake: FakeProvider) -> plait.Runtime:
    """Every Runtime an example builds, and the one it runs on when it passes none."""
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", SAFE_PLUGINS)
    fakes = [provider_plugin(fake, name, prices={"*": PRICE}) for name in PRICED]
    fakes += [provider_plugin(fake, name) for name in UNPRICED]
    init = plait.Runtime.__init__

    def init_with_fakes(self: plait.Runtime, *, plugins: Any = (), transport: Any = None,
                        **options: Any) -> None:
        init(self, plugins=[*plugins, *fakes], transport=transport or no_network, **options)

    monkeypatch.setattr(plait.Runtime, "__init__", init_with_fakes)
    runtime = plait.Runtime()
    run, ask = plait.Pipeline.run, plait.Agent.ask

    async def run_on_docs_runtime(self: plait.Pipeline, inputs: Any = None, *,
                                  runtime: Any = None, **kwargs: Any) -> Any:
        return await run(self, inputs, runtime=runtime or default, **kwargs)

    async def ask_on_docs_runtime(self: plait.Agent, prompt: str, *, runtime: Any = None,
                                  **overrides: Any) -> Any:
        return await ask(self, prompt, runtime=runtime or default, **overrides)

    default = runtime
    monkeypatch.setattr(plait.Pipeline, "run", run_on_docs_runtime)
    monkeypatch.setattr(plait.Agent, "ask", ask_on_docs_runtime)
    return runtime


# -- running a block ------------------------------------------------------------------------


@contextlib.contextmanager
def example_module(block: Block) -> Iterator[types.ModuleType]:
    """A real module for the example, so dataclasses and attrs resolve its annotations."""
    name = "docs_example_" + re.sub(r"\W", "_", block.id)
    module = types.ModuleType(name)
    module.__file__ = str(block.path)
    sys.modules[name] = module
    try:
        yield module
    finally:
        del sys.modules[name]


def compile_block(block: Block) -> types.CodeType:
    tree = ast.parse(block.source, filename=block.id)
    ast.increment_lineno(tree, block.line)  # tracebacks point into the markdown file
    return compile(tree, str(block.path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def is_async(code: types.CodeType) -> bool:
    import inspect

    return bool(code.co_flags & inspect.CO_COROUTINE)


def execute(block: Block, backend: str = "asyncio") -> dict[str, Any]:
    """Run the block; return its module namespace and what it printed (``__stdout__``)."""
    code = compile_block(block)
    out = io.StringIO()
    with example_module(block) as module, contextlib.redirect_stdout(out):
        if is_async(code):
            async def main() -> None:
                await eval(code, module.__dict__)

            anyio.run(main, backend=backend)
        else:
            exec(code, module.__dict__)
    return {**module.__dict__, "__stdout__": out.getvalue()}


# -- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("block", marked_blocks())
def test_example_runs(block: Block, docs_runtime: plait.Runtime) -> None:
    backends = ("asyncio", "trio") if is_async(compile_block(block)) else ("asyncio",)
    for backend in backends:
        execute(block, backend)


def test_the_readme_workflow_routes_and_prices_its_run(docs_runtime: plait.Runtime,
                                                       fake: FakeProvider) -> None:
    [block] = [b for b in python_blocks(ROOT / "README.md") if "plait.Router(" in b.source]
    assert block.marker == "<!-- test -->"
    ns = execute(block)
    result = ns["result"]
    assert result.ok
    assert result.steps["answer"].route == "billing"  # the fake chose the first Intent
    assert result.output == "I was charged twice this month."  # the billing agent's echo
    classify, billing = fake.requests
    assert classify.json_schema is not None
    assert classify.model == "smollm2"
    assert [m.content for m in billing.messages] == [
        "You are a billing specialist. Be brief.", "I was charged twice this month."]
    assert isinstance(result.usage.cost, Decimal)
    assert result.usage.cost > 0
    assert result.usage.calls == 2
    assert ns["__stdout__"].startswith("I was charged twice this month. billing ")


@pytest.mark.parametrize("block", marked_blocks("pytest"))
def test_pytest_example_passes(block: Block, pytester: pytest.Pytester) -> None:
    """A test file of the docs, next to the page's module blocks, in a pytest session of
    its own with the suite's strictness (warnings are errors, anyio in auto mode)."""
    for module in (b for b in python_blocks(block.path) if b.kind == "module"):
        pytester.makepyfile(**{module.module: module.source})
    pytester.makepyfile(test_docs_example=block.source)
    pytester.makeini("[pytest]\nanyio_mode = auto\nfilterwarnings = error\n")
    pytester.syspathinsert()
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert set(outcomes) == {"passed"}  # nothing skipped, failed or errored
    assert outcomes["passed"] > 0


def test_the_guide_is_tested() -> None:
    """Every python block of the guide is run, or says why it cannot be."""
    untested = [b.id for path in GUIDE for b in python_blocks(path)
                if b.kind is None and not NOT_TESTED.match(b.marker or "")]
    assert not untested, (
        f"python blocks with neither <!-- test --> nor <!-- not tested: reason -->: {untested}")
    assert marked_blocks(), "no example is marked <!-- test -->"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_blocks_serve_a_test_file(path: Path) -> None:
    kinds = [b.kind for b in python_blocks(path)]
    assert "module" not in kinds or "pytest" in kinds, (
        f"{path.relative_to(ROOT)} has <!-- test: module --> blocks but no test file using them")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_test_marker_precedes_a_python_block(path: Path) -> None:
    assert not markers_without_a_block(path), (
        f"{path.relative_to(ROOT)}: <!-- test --> not followed by a ```python block at lines "
        f"{markers_without_a_block(path)}")


def test_the_error_tree_in_the_docs_is_the_real_one() -> None:
    """docs/guide/errors.md draws the hierarchy; it must be the classes' own."""
    text = (ROOT / "docs" / "guide" / "errors.md").read_text(encoding="utf-8")
    tree = text.split("```\nPlaitError\n", 1)[1].split("```", 1)[0]
    drawn = {}
    parents = ["PlaitError"]
    for line in tree.splitlines():
        found = re.match(r"^((?:│   |    )*)[├└]── (\w+)", line)
        assert found, f"not a line of the tree: {line!r}"
        depth = len(found[1]) // 4 + 1
        parents[depth:] = [found[2]]
        drawn[found[2]] = parents[depth - 1]
    errors = {name: getattr(plait, name) for name in plait.__all__
              if isinstance(getattr(plait, name), type)
              and issubclass(getattr(plait, name), plait.PlaitError)
              and name != "PlaitError"}
    real = {name: next(b.__name__ for b in cls.__mro__[1:] if issubclass(b, plait.PlaitError))
            for name, cls in errors.items()}
    assert drawn == real


LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a markdown file."""
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


@pytest.mark.parametrize("path", [*GUIDE, ROOT / "README.md", ROOT / "docs" / "api.md",
                                  *sorted((ROOT / "contrib").glob("**/README.md"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    broken = []
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists() or (anchor and linked.is_file()
                                   and anchor not in anchors(linked)):
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)}: broken links {broken}"
