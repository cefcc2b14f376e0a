"""The public API is a contract: locked here, and documented in docs/api.md from the code.

Adding or removing a public name means changing EXPORTED below on purpose, and
regenerating the reference with ``python docs/_gen_api.py`` (the idea of httpx's
tests/test_exported_members.py, plus docs that cannot drift).
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import plait
import pytest

ROOT = Path(__file__).resolve().parents[2]

# Sorted, as plait.__all__ is.
EXPORTED = [
    "Agent",
    "AgentStep",
    "Aggregation",
    "AggregationError",
    "AggregationJob",
    "AuthenticationError",
    "BadRequest",
    "BudgetExceeded",
    "CallRow",
    "Candidate",
    "CaseDiff",
    "CaseResult",
    "Config",
    "ContentRefused",
    "ContextTooLong",
    "Ensemble",
    "EnsembleResult",
    "ErrorInfo",
    "EvalCase",
    "EvalError",
    "EvalReport",
    "FanOut",
    "FanOutError",
    "FanOutJob",
    "FanOutResult",
    "FunctionStep",
    "ItemError",
    "ItemFinished",
    "ItemOutcome",
    "ItemRow",
    "Limits",
    "Message",
    "MetricContext",
    "MissingInput",
    "ModelCall",
    "ModelNotFound",
    "ModelRequest",
    "ModelResponse",
    "ModelStream",
    "NOTSET",
    "OnceRow",
    "Orchestrator",
    "OrchestratorResult",
    "OutputParseError",
    "Pipeline",
    "PipelineDefinitionError",
    "PipelineResult",
    "PlaitError",
    "PluginError",
    "PluginInfo",
    "PluginWarning",
    "Price",
    "Provider",
    "ProviderEnv",
    "ProviderError",
    "ProviderUnavailable",
    "RateLimited",
    "Reply",
    "ResumeError",
    "Router",
    "RunFailed",
    "RunFinished",
    "RunInfo",
    "RunRow",
    "RunStarted",
    "RunStore",
    "RunStream",
    "Runtime",
    "SQLiteStore",
    "SerializationError",
    "Step",
    "StepContext",
    "StepFailed",
    "StepFinished",
    "StepRecord",
    "StepRow",
    "StepStarted",
    "StepTimeout",
    "Stop",
    "StoreError",
    "StoreWarning",
    "StoredRun",
    "StreamChunk",
    "StreamInterrupted",
    "StreamingProvider",
    "TaskReport",
    "TextDelta",
    "TokenCount",
    "Tool",
    "ToolCall",
    "ToolDefinitionError",
    "ToolFailed",
    "ToolRecord",
    "ToolRoundsExceeded",
    "ToolSpec",
    "UndeclaredDependency",
    "UnknownExecutor",
    "UnknownInput",
    "UnknownPlugin",
    "UnknownPrice",
    "UnknownRoute",
    "Usage",
    "ValidationFailed",
    "VariantReport",
    "error_for_response",
    "evaluate",
    "fit",
    "hookimpl",
    "http_errors",
    "json_excerpt",
    "json_or_none",
    "load_target",
    "parse_inputs",
    "parse_settings",
    "post_json",
    "run_sync",
    "step",
    "stream_post",
    "token_count",
    "usd",
]

PUBLIC_MODULES = {"hookspecs"}  # the plugin contract; every other module is private


def test_the_public_namespace_is_exactly_the_locked_list() -> None:
    assert sorted(plait.__all__) == sorted(EXPORTED), (
        f"added: {sorted(set(plait.__all__) - set(EXPORTED))}, "
        f"removed: {sorted(set(EXPORTED) - set(plait.__all__))}")
    assert plait.__all__ == EXPORTED  # and in the same order, without duplicates


def test_import_plait_loads_nothing_behind_the_namespace() -> None:
    """A name's module loads when the name is first used, so a program pays only for what
    it uses (a plugin that registers a provider, `plait --help`); `import plait` alone
    loads neither attrs nor anything else behind the namespace."""
    code = ("import sys, plait\n"
            "loaded = lambda: sorted(m for m in sys.modules if m.startswith('plait')"
            " or m in ('attrs', 'pluggy', 'anyio', 'httpx', 'rich', 'opentelemetry'))\n"
            "before = loaded()\n"
            "price = plait.Price\n"
            "print(before, 'plait._money' in sys.modules, 'plait._agent' in sys.modules,"
            " 'attrs' in sys.modules, plait.Price is price)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.strip()
    assert out == "['plait', 'plait._version'] True False True True"


def test_the_type_checked_names_are_the_namespace() -> None:
    """Type checkers read the ``if TYPE_CHECKING:`` imports of plait/__init__.py; run time
    reads ``_EXPORTS``: the two list the same names from the same modules."""
    tree = ast.parse(Path(plait.__file__).read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If))
    typed = {(alias.asname, node.module) for node in block.body
             if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert all(alias.name == alias.asname for node in block.body
               if isinstance(node, ast.ImportFrom) for alias in node.names)  # re-exported
    assert typed - {("hookspecs", None)} == {
        (name, module) for module, names in plait._EXPORTS.items() for name in names}
    assert len(plait.__all__) == sum(map(len, plait._EXPORTS.values()))  # no name twice


def test_a_name_that_is_not_public_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'plait' has no attribute 'Agnet'"):
        _ = plait.Agnet  # type: ignore[attr-defined]  # the misspelling is the point
    assert not hasattr(plait, "_agent_private_name")
    assert set(plait.__all__) <= set(dir(plait))
    assert plait.hookspecs.hookimpl is plait.hookimpl


def test_every_exported_name_exists() -> None:
    missing = [name for name in plait.__all__ if not hasattr(plait, name)]
    assert not missing


def test_nothing_public_is_left_out_of_all() -> None:
    undeclared = [name for name, value in vars(plait).items()
                  if not name.startswith("_") and name not in plait.__all__
                  and not (isinstance(value, ModuleType) and name in PUBLIC_MODULES)]
    assert not undeclared, f"public but not in plait.__all__: {undeclared}"


def test_no_public_module_but_the_hookspecs() -> None:
    public = {m.name for m in pkgutil.iter_modules(plait.__path__)
              if not m.name.startswith("_")}
    assert public == PUBLIC_MODULES, (
        f"modules other than plait.hookspecs must be private (start with '_'): "
        f"{sorted(public - PUBLIC_MODULES)}")


def test_exported_names_come_from_plait_itself() -> None:
    # a re-export of a third-party object would tie plait's API to that library
    foreign = [name for name in plait.__all__
               if not _home(getattr(plait, name)).startswith("plait")
               and name != "hookimpl"]  # pluggy's marker, made for "plait" in hookspecs
    assert not foreign
    assert plait.hookimpl is plait.hookspecs.hookimpl
    assert plait.hookimpl.project_name == "plait"


def _home(obj: object) -> str:
    return getattr(obj, "__module__", None) or type(obj).__module__


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_gen_api", ROOT / "docs" / "_gen_api.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_api_reference_is_up_to_date(generator: ModuleType) -> None:
    written = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert written == generator.render(), (
        "docs/api.md does not match the code: run `python docs/_gen_api.py` and commit it")


def test_the_api_reference_documents_every_name(generator: ModuleType) -> None:
    text = generator.render()
    undocumented = [name for name in plait.__all__ if f"### `plait.{name}`" not in text]
    assert not undocumented
    assert " at 0x" not in text  # no memory addresses: the output must be reproducible
