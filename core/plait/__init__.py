"""plait: deterministic multi-step LLM workflows with a tiny, pluggable core.

The public API is this flat namespace; every module behind it is private. A name's module
is imported the first time the name is used (PEP 562), so ``import plait`` costs about a
millisecond and a program pays only for what it uses: ``plait --help``, a plugin that
registers a provider, an ``llm`` command that loads every installed plugin.
"""

import importlib as _importlib

from ._version import __version__ as __version__

TYPE_CHECKING = False  # typing's own flag, without importing typing (8 ms)

# Each private module and the public names it defines: the namespace at run time.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "_agent": ("Agent", "AgentStep"),
    "_config": ("NOTSET", "Config"),
    "_context": ("StepContext",),
    "_ensemble": ("AggregationJob", "Ensemble"),
    "_errors": (
        "AggregationError", "AuthenticationError", "BadRequest", "BudgetExceeded",
        "ContentRefused", "ContextTooLong", "EvalError", "FanOutError", "MissingInput",
        "ModelNotFound", "OutputParseError", "PipelineDefinitionError", "PlaitError",
        "PluginError", "ProviderError", "ProviderUnavailable", "RateLimited", "ResumeError",
        "SerializationError", "StepFailed", "StepTimeout", "StoreError", "StreamInterrupted",
        "ToolDefinitionError", "ToolFailed", "ToolRoundsExceeded", "UndeclaredDependency",
        "UnknownExecutor", "UnknownInput", "UnknownPlugin", "UnknownPrice", "UnknownRoute",
        "ValidationFailed",
    ),
    "_eval": ("evaluate",),
    "_eval_report": (
        "CaseDiff", "CaseResult", "EvalCase", "EvalReport", "MetricContext", "VariantReport",
    ),
    "_events": (
        "ItemFinished", "RunFailed", "RunFinished", "RunStarted", "StepFinished", "StepStarted",
        "TextDelta",
    ),
    "_fanout": ("FanOut",),
    "_http": (
        "error_for_response", "http_errors", "json_excerpt", "json_or_none", "post_json",
        "stream_post", "token_count",
    ),
    "_model": (
        "Limits", "Message", "ModelCall", "ModelRequest", "ModelResponse", "Provider",
        "ProviderEnv", "StreamChunk", "StreamingProvider", "ToolCall", "ToolSpec",
    ),
    "_money": ("Price", "TokenCount", "Usage", "usd"),
    "_orchestrator": ("Orchestrator", "OrchestratorResult", "TaskReport"),
    "_pipeline": ("Pipeline",),
    "_plugins": ("PluginInfo", "PluginWarning"),
    "_recorder": ("StoreWarning",),
    "_results": (
        "Aggregation", "Candidate", "EnsembleResult", "ErrorInfo", "FanOutJob", "FanOutResult",
        "ItemError", "ItemOutcome", "PipelineResult", "Reply", "RunInfo", "StepRecord", "Stop",
        "ToolRecord",
    ),
    "_router": ("Router",),
    "_run_stream": ("RunStream",),
    "_runtime": ("Runtime",),
    "_sqlite_store": ("SQLiteStore",),
    "_step": ("FunctionStep", "Step", "step"),
    "_store": ("CallRow", "ItemRow", "OnceRow", "RunRow", "RunStore", "StepRow", "StoredRun"),
    "_stream": ("ModelStream",),
    "_sync": ("run_sync",),
    "_targets": ("load_target", "parse_inputs", "parse_settings"),
    "_tools": ("Tool",),
    "_window": ("fit",),
    "hookspecs": ("hookimpl",),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_HOME)

if TYPE_CHECKING:  # the same names for type checkers (a test keeps the two equal)
    from . import hookspecs as hookspecs
    from ._agent import Agent as Agent
    from ._agent import AgentStep as AgentStep
    from ._config import NOTSET as NOTSET
    from ._config import Config as Config
    from ._context import StepContext as StepContext
    from ._ensemble import AggregationJob as AggregationJob
    from ._ensemble import Ensemble as Ensemble
    from ._errors import AggregationError as AggregationError
    from ._errors import AuthenticationError as AuthenticationError
    from ._errors import BadRequest as BadRequest
    from ._errors import BudgetExceeded as BudgetExceeded
    from ._errors import ContentRefused as ContentRefused
    from ._errors import ContextTooLong as ContextTooLong
    from ._errors import EvalError as EvalError
    from ._errors import FanOutError as FanOutError
    from ._errors import MissingInput as MissingInput
    from ._errors import ModelNotFound as ModelNotFound
    from ._errors import OutputParseError as OutputParseError
    from ._errors import PipelineDefinitionError as PipelineDefinitionError
    from ._errors import PlaitError as PlaitError
    from ._errors import PluginError as PluginError
    from ._errors import ProviderError as ProviderError
    from ._errors import ProviderUnavailable as ProviderUnavailable
    from ._errors import RateLimited as RateLimited
    from ._errors import ResumeError as ResumeError
    from ._errors import SerializationError as SerializationError
    from ._errors import StepFailed as StepFailed
    from ._errors import StepTimeout as StepTimeout
    from ._errors import StoreError as StoreError
    from ._errors import StreamInterrupted as StreamInterrupted
    from ._errors import ToolDefinitionError as ToolDefinitionError
    from ._errors import ToolFailed as ToolFailed
    from ._errors import ToolRoundsExceeded as ToolRoundsExceeded
    from ._errors import UndeclaredDependency as UndeclaredDependency
    from ._errors import UnknownExecutor as UnknownExecutor
    from ._errors import UnknownInput as UnknownInput
    from ._errors import UnknownPlugin as UnknownPlugin
    from ._errors import UnknownPrice as UnknownPrice
    from ._errors import UnknownRoute as UnknownRoute
    from ._errors import ValidationFailed as ValidationFailed
    from ._eval import evaluate as evaluate
    from ._eval_report import CaseDiff as CaseDiff
    from ._eval_report import CaseResult as CaseResult
    from ._eval_report import EvalCase as EvalCase
    from ._eval_report import EvalReport as EvalReport
    from ._eval_report import MetricContext as MetricContext
    from ._eval_report import VariantReport as VariantReport
    from ._events import ItemFinished as ItemFinished
    from ._events import RunFailed as RunFailed
    from ._events import RunFinished as RunFinished
    from ._events import RunStarted as RunStarted
    from ._events import StepFinished as StepFinished
    from ._events import StepStarted as StepStarted
    from ._events import TextDelta as TextDelta
    from ._fanout import FanOut as FanOut
    from ._http import error_for_response as error_for_response
    from ._http import http_errors as http_errors
    from ._http import json_excerpt as json_excerpt
    from ._http import json_or_none as json_or_none
    from ._http import post_json as post_json
    from ._http import stream_post as stream_post
    from ._http import token_count as token_count
    from ._model import Limits as Limits
    from ._model import Message as Message
    from ._model import ModelCall as ModelCall
    from ._model import ModelRequest as ModelRequest
    from ._model import ModelResponse as ModelResponse
    from ._model import Provider as Provider
    from ._model import ProviderEnv as ProviderEnv
    from ._model import StreamChunk as StreamChunk
    from ._model import StreamingProvider as StreamingProvider
    from ._model import ToolCall as ToolCall
    from ._model import ToolSpec as ToolSpec
    from ._money import Price as Price
    from ._money import TokenCount as TokenCount
    from ._money import Usage as Usage
    from ._money import usd as usd
    from ._orchestrator import Orchestrator as Orchestrator
    from ._orchestrator import OrchestratorResult as OrchestratorResult
    from ._orchestrator import TaskReport as TaskReport
    from ._pipeline import Pipeline as Pipeline
    from ._plugins import PluginInfo as PluginInfo
    from ._plugins import PluginWarning as PluginWarning
    from ._recorder import StoreWarning as StoreWarning
    from ._results import Aggregation as Aggregation
    from ._results import Candidate as Candidate
    from ._results import EnsembleResult as EnsembleResult
    from ._results import ErrorInfo as ErrorInfo
    from ._results import FanOutJob as FanOutJob
    from ._results import FanOutResult as FanOutResult
    from ._results import ItemError as ItemError
    from ._results import ItemOutcome as ItemOutcome
    from ._results import PipelineResult as PipelineResult
    from ._results import Reply as Reply
    from ._results import RunInfo as RunInfo
    from ._results import StepRecord as StepRecord
    from ._results import Stop as Stop
    from ._results import ToolRecord as ToolRecord
    from ._router import Router as Router
    from ._run_stream import RunStream as RunStream
    from ._runtime import Runtime as Runtime
    from ._sqlite_store import SQLiteStore as SQLiteStore
    from ._step import FunctionStep as FunctionStep
    from ._step import Step as Step
    from ._step import step as step
    from ._store import CallRow as CallRow
    from ._store import ItemRow as ItemRow
    from ._store import OnceRow as OnceRow
    from ._store import RunRow as RunRow
    from ._store import RunStore as RunStore
    from ._store import StepRow as StepRow
    from ._store import StoredRun as StoredRun
    from ._stream import ModelStream as ModelStream
    from ._sync import run_sync as run_sync
    from ._targets import load_target as load_target
    from ._targets import parse_inputs as parse_inputs
    from ._targets import parse_settings as parse_settings
    from ._tools import Tool as Tool
    from ._window import fit as fit
    from .hookspecs import hookimpl as hookimpl


if not TYPE_CHECKING:  # hidden from type checkers, which then flag a misspelt name

    def __getattr__(name: str) -> object:
        module = _HOME.get(name)
        if module is None:
            if name == "hookspecs":  # the public module of the plugin contract
                return _importlib.import_module(".hookspecs", __name__)
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(_importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value  # asked once: later lookups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})

del TYPE_CHECKING  # a flag for the blocks above, not a name of the API
