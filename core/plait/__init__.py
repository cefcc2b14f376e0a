"""plait: deterministic multi-step LLM workflows with a tiny, pluggable core.

The public API is this flat namespace; every module behind it is private.
"""

from ._agent import Agent, AgentStep
from ._config import NOTSET, Config
from ._context import StepContext
from ._ensemble import AggregationJob, Ensemble
from ._errors import (
    AggregationError,
    AuthenticationError,
    BadRequest,
    BudgetExceeded,
    ContentRefused,
    ContextTooLong,
    FanOutError,
    MissingInput,
    ModelNotFound,
    OutputParseError,
    PipelineDefinitionError,
    PlaitError,
    PluginError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    SerializationError,
    StepFailed,
    StepTimeout,
    UndeclaredDependency,
    UnknownPlugin,
    UnknownPrice,
    UnknownRoute,
    ValidationFailed,
)
from ._events import (
    ItemFinished,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    TextDelta,
)
from ._fanout import FanOut
from ._http import (
    error_for_response,
    http_errors,
    json_excerpt,
    json_or_none,
    post_json,
    token_count,
)
from ._model import Limits, Message, ModelCall, ModelRequest, ModelResponse, Provider, ProviderEnv
from ._money import Price, TokenCount, Usage, usd
from ._orchestrator import Orchestrator, OrchestratorResult, TaskReport
from ._pipeline import Pipeline
from ._plugins import PluginInfo, PluginWarning
from ._results import (
    Aggregation,
    Candidate,
    EnsembleResult,
    ErrorInfo,
    FanOutJob,
    FanOutResult,
    ItemError,
    ItemOutcome,
    PipelineResult,
    Reply,
    RunInfo,
    StepRecord,
    Stop,
)
from ._router import Router
from ._runtime import Runtime
from ._step import FunctionStep, Step, step
from ._sync import run_sync
from ._targets import load_target, parse_inputs
from ._version import __version__ as __version__
from ._window import fit
from .hookspecs import hookimpl

__all__ = [
    "NOTSET",
    "Agent",
    "AgentStep",
    "Aggregation",
    "AggregationError",
    "AggregationJob",
    "AuthenticationError",
    "BadRequest",
    "BudgetExceeded",
    "Candidate",
    "Config",
    "ContentRefused",
    "ContextTooLong",
    "Ensemble",
    "EnsembleResult",
    "ErrorInfo",
    "FanOut",
    "FanOutError",
    "FanOutJob",
    "FanOutResult",
    "FunctionStep",
    "ItemError",
    "ItemFinished",
    "ItemOutcome",
    "Limits",
    "Message",
    "MissingInput",
    "ModelCall",
    "ModelNotFound",
    "ModelRequest",
    "ModelResponse",
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
    "Router",
    "RunFailed",
    "RunFinished",
    "RunInfo",
    "RunStarted",
    "Runtime",
    "SerializationError",
    "Step",
    "StepContext",
    "StepFailed",
    "StepFinished",
    "StepRecord",
    "StepStarted",
    "StepTimeout",
    "Stop",
    "TaskReport",
    "TextDelta",
    "TokenCount",
    "UndeclaredDependency",
    "UnknownPlugin",
    "UnknownPrice",
    "UnknownRoute",
    "Usage",
    "ValidationFailed",
    "error_for_response",
    "fit",
    "hookimpl",
    "http_errors",
    "json_excerpt",
    "json_or_none",
    "load_target",
    "parse_inputs",
    "post_json",
    "run_sync",
    "step",
    "token_count",
    "usd",
]
