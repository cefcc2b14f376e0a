"""The public API is a contract: locked here, and documented in docs/api.md from the code.

Adding or removing a public name means changing EXPORTED below on purpose, and
regenerating the reference with ``python docs/_gen_api.py`` (the idea of httpx's
tests/test_exported_members.py, plus docs that cannot drift).
"""

from __future__ import annotations

import importlib.util
import pkgutil
from pathlib import Path
from types import ModuleType

import plait
import pytest

ROOT = Path(__file__).resolve().parents[2]

# In the order ruff's RUF022 keeps __all__: constants, then classes, then functions.
EXPORTED = [
    "NOTSET",
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
    assert plait.__all__ == EXPORTED  # and in the same (RUF022) order, without duplicates


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
