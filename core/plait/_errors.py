"""Every error plait raises, as one hierarchy.

    PlaitError
    ├── PipelineDefinitionError    a pipeline, router or fan-out is malformed (at construction)
    ├── MissingInput               ctx.input(name) for an input the run was not given
    ├── UnknownInput               a run was given an input its pipeline does not declare
    ├── UndeclaredDependency       ctx.dep(id) for a step that is not a declared dependency
    ├── StepFailed                 a step failed after its retries (.cause, .partial: all done)
    ├── StepTimeout                one attempt of a step ran past its timeout
    ├── UnknownRoute               a router's key names no branch and there is no fallback
    ├── FanOutError                a fan-out failed (.values and .errors: nothing is lost)
    ├── BudgetExceeded             a model call could not reserve its worst case within a budget
    ├── UnknownPrice               a budget is set but the model's price is unknown
    ├── ContextTooLong             a request would not fit in its model's context window
    ├── ProviderError              a model provider failed (.provider .model .status)
    │   ├── RateLimited            429, with .retry_after when the provider said
    │   ├── AuthenticationError    401 / 403
    │   ├── ModelNotFound          404
    │   ├── BadRequest             400 and other client errors, with the provider's message
    │   ├── ProviderUnavailable    5xx, connection failures and request timeouts (retryable)
    │   ├── ContentRefused         the model refused or a safety filter blocked the reply
    │   └── StreamInterrupted      a streamed reply broke after it started (.text, .cause)
    ├── OutputParseError           a reply could not be parsed into the agent's output type
    ├── ValidationFailed           a validation gate rejected a step's output
    ├── ToolDefinitionError        a tool cannot be described to a model (at Agent construction)
    ├── ToolRoundsExceeded         the model kept calling tools past max_tool_rounds (.messages)
    ├── ToolFailed                 a tool raised and it asked for errors raised (.cause)
    ├── SerializationError         an output cannot be turned into JSON (names step and path)
    ├── AggregationError           an aggregator could not decide
    ├── EvalError                  an evaluation's cases, metrics or variants are malformed
    ├── StoreError                 a run store cannot be opened or used (names the file)
    ├── ResumeError                a run cannot be resumed (unknown id, changed pipeline)
    └── PluginError                a plugin is missing, broken or misbehaving
        └── UnknownPlugin          no installed plugin provides a name (provider, aggregator...)
            └── UnknownExecutor    no installed plugin registered the fan-out executor named

Foreign exceptions (httpx, llama.cpp, a user's step) are translated at the boundary or
carried as ``.cause``; they never escape a run untyped.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._money import format_usd

if TYPE_CHECKING:
    from ._model import Message
    from ._results import PipelineResult, ToolRecord

__all__ = [
    "AggregationError",
    "AuthenticationError",
    "BadRequest",
    "BudgetExceeded",
    "ContentRefused",
    "ContextTooLong",
    "EvalError",
    "FanOutError",
    "MissingInput",
    "ModelNotFound",
    "OutputParseError",
    "PipelineDefinitionError",
    "PlaitError",
    "PluginError",
    "ProviderError",
    "ProviderUnavailable",
    "RateLimited",
    "ResumeError",
    "SerializationError",
    "StepFailed",
    "StepTimeout",
    "StoreError",
    "StreamInterrupted",
    "ToolDefinitionError",
    "ToolFailed",
    "ToolRoundsExceeded",
    "UndeclaredDependency",
    "UnknownExecutor",
    "UnknownInput",
    "UnknownPlugin",
    "UnknownPrice",
    "UnknownRoute",
    "ValidationFailed",
]


def did_you_mean(name: object, names: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` naming the closest of ``names`` to ``name``, or ``""`` when
    none is close: the one hint every error that lists valid names ends with."""
    close = difflib.get_close_matches(str(name), list(names), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class PlaitError(Exception):
    """Base of every plait error.

    ``retryable`` tells the step runner whether running the step again could help;
    ``partial`` is the run's partial result when the error ended a run; ``requests`` is
    how many requests the model call that raised it sent (re-asks and retries included).
    """

    retryable: bool = False
    partial: PipelineResult | None = None
    requests: int | None = None  # set on the error a model call raises: requests it sent

    def __str__(self) -> str:
        text = super().__str__()
        if self.requests is not None and self.requests > 1:
            return f"{text} (after {self.requests} requests)"
        return text


class PipelineDefinitionError(PlaitError):
    """A pipeline, router or fan-out definition is invalid."""


class MissingInput(PlaitError, KeyError):
    """A step asked for a run input that was not given."""

    def __init__(self, name: str, available: Sequence[str]) -> None:
        self.name = name
        self.available = tuple(available)
        shown = ", ".join(sorted(self.available)) or "none"
        super().__init__(f"missing input {name!r} (inputs given: {shown})"
                         f"{did_you_mean(name, self.available)}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class UnknownInput(PlaitError, KeyError):
    """A run was given an input that its pipeline's ``inputs=`` does not declare."""

    def __init__(self, pipeline: str, name: str, declared: Sequence[str]) -> None:
        self.pipeline = pipeline
        self.name = name
        self.declared = tuple(declared)
        shown = ", ".join(self.declared) or "none"
        super().__init__(f"pipeline {pipeline!r} takes no input {name!r} (inputs: {shown})"
                         f"{did_you_mean(name, self.declared)}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class UndeclaredDependency(PlaitError):
    """A step read the output of a step it did not declare as a dependency."""

    def __init__(self, step_id: str, requested: str, declared: Sequence[str]) -> None:
        self.step_id = step_id
        self.requested = requested
        self.declared = tuple(declared)
        shown = ", ".join(self.declared) or "none"
        super().__init__(
            f"step {step_id!r} read {requested!r}, which is not one of its declared "
            f"dependencies ({shown}); add it to the pipeline's deps"
        )


class StepTimeout(PlaitError):
    """One attempt of a step took longer than its timeout."""

    retryable = True

    def __init__(self, step_id: str, timeout: float) -> None:
        self.step_id = step_id
        self.timeout = timeout
        super().__init__(f"step {step_id!r} timed out after {timeout:g}s")


class StepFailed(PlaitError):
    """A step failed (after its retries); dependents were skipped, the rest ran.

    ``partial`` holds every completed output and step record of the run. A step of a
    nested pipeline is named by its path (``"outer_step/inner_step"``) and ``cause`` is
    its own error; ``nested_partials`` holds the partial result of each nested pipeline
    the failure happened in, by that pipeline's step path.
    """

    def __init__(
        self,
        step_id: str,
        attempts: int,
        cause: BaseException,
        partial: PipelineResult | None = None,
        nested_partials: Mapping[str, PipelineResult] | None = None,
    ) -> None:
        self.step_id = step_id
        self.attempts = attempts
        self.cause = cause
        self.partial = partial
        self.nested_partials: Mapping[str, PipelineResult] = dict(nested_partials or {})
        tries = "attempt" if attempts == 1 else "attempts"
        super().__init__(
            f"step {step_id!r} failed after {attempts} {tries}: {type(cause).__name__}: {cause}"
        )


class UnknownRoute(PlaitError):
    """A router's ``route`` returned a key that names no branch."""

    def __init__(self, router: str, key: object, valid: Sequence[str]) -> None:
        self.router = router
        self.key = key
        self.valid = tuple(valid)
        super().__init__(
            f"router {router!r} chose {key!r}, which is not a branch; "
            f"valid keys: {', '.join(map(repr, self.valid))}{did_you_mean(key, self.valid)}"
        )


class FanOutError(PlaitError):
    """A fan-out failed; ``values`` and ``errors`` keep everything that finished."""

    def __init__(self, message: str, values: Sequence[Any], errors: Sequence[Any]) -> None:
        self.values = list(values)
        self.errors = list(errors)
        super().__init__(message)


class BudgetExceeded(PlaitError):
    """A model call could not reserve its worst-case cost within a budget.

    Amounts are exact USD decimals: ``spent`` (settled), ``reserved`` (held by calls in
    flight plus the one refused), ``limit``.
    """

    def __init__(
        self,
        spent: Decimal,
        reserved: Decimal,
        limit: Decimal,
        scope: str = "run",
        partial: PipelineResult | None = None,
    ) -> None:
        self.spent = spent
        self.reserved = reserved
        self.limit = limit
        self.scope = scope
        self.partial = partial
        super().__init__(
            f"{scope} budget of {format_usd(limit)} exceeded: {format_usd(spent)} spent, "
            f"{format_usd(reserved)} reserved "
            "by calls in flight and this call's worst case"
        )


class UnknownPrice(PlaitError):
    """A budget is set but nothing says what the model costs, so it cannot be held."""

    def __init__(self, model: str) -> None:
        self.model = model
        super().__init__(
            f"no price is known for {model!r} and a budget is set; give one with "
            f"Agent(price=plait.Price.per_million(...)) or Runtime(prices={{{model!r}: ...}})")


class ContextTooLong(PlaitError):
    """A request would not fit in its model's context window; raised before it is sent."""

    retryable = False  # the same request never fits

    def __init__(self, model: str, tokens: int, window: int) -> None:
        self.model = model
        self.tokens = tokens
        self.window = window
        super().__init__(
            f"a request to {model!r} may need up to {tokens} tokens (its input counted at "
            f"worst, plus max_tokens), over the model's context window of {window}; shorten "
            "it with plait.fit(messages, agent)")


class ProviderError(PlaitError):
    """A model provider failed. Never carries credentials."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.status = status
        if retryable is not None:
            self.retryable = retryable
        where = ":".join(p for p in (provider, model) if p)
        prefix = f"{where}: " if where else ""
        code = f" (HTTP {status})" if status is not None else ""
        self.message = message
        super().__init__(f"{prefix}{message}{code}")


class RateLimited(ProviderError):
    """The provider rate-limited the call (HTTP 429)."""

    retryable = True

    def __init__(self, message: str = "rate limited", *, retry_after: float | None = None,
                 **kwargs: Any) -> None:
        self.retry_after = retry_after
        kwargs.setdefault("status", 429)
        super().__init__(message, **kwargs)


class AuthenticationError(ProviderError):
    """The provider rejected the credentials (HTTP 401 / 403)."""


class ModelNotFound(ProviderError):
    """The provider does not know the model (HTTP 404)."""


class BadRequest(ProviderError):
    """The provider rejected the request; the message is the provider's own."""


class ProviderUnavailable(ProviderError):
    """A transient failure: 5xx, a dropped connection or a request timeout."""

    retryable = True


class ContentRefused(ProviderError):
    """The model refused, or a safety filter blocked the reply."""


class StreamInterrupted(ProviderError):
    """A streamed reply failed after text had arrived: ``text`` is what came, ``cause``
    the provider's typed error (a dropped connection, an error event in the stream).

    Not retried by the call (the caller has seen the text); as retryable for a step's
    retries as its cause.
    """

    def __init__(self, text: str, cause: ProviderError) -> None:
        self.text = text
        self.cause = cause
        self.retryable = cause.retryable
        super().__init__(f"the stream broke after {len(text)} characters: {cause.message}",
                         provider=cause.provider, model=cause.model, status=cause.status)


class OutputParseError(PlaitError):
    """A model reply could not be parsed into the expected output type."""

    def __init__(self, message: str, raw: str, expected: str = "") -> None:
        self.message = message
        self.raw = raw
        self.expected = expected
        super().__init__(f"{message}; raw reply: {raw[:200]!r}")


class ValidationFailed(PlaitError):
    """A validation gate rejected a step's output before any dependent saw it."""

    retryable = True

    def __init__(self, step_id: str, validator: str, reason: str) -> None:
        self.step_id = step_id
        self.validator = validator
        self.reason = reason
        super().__init__(f"step {step_id!r}: validator {validator!r} rejected the output: {reason}")


class SerializationError(PlaitError):
    """An output cannot be serialized; names the step and the path inside the value."""

    def __init__(self, step_id: str, path: str, detail: str) -> None:
        self.step_id = step_id
        self.path = path
        super().__init__(f"output of step {step_id!r} is not serializable at {path}: {detail}")


class AggregationError(PlaitError):
    """An aggregator could not decide on a winner."""


class EvalError(PlaitError):
    """``plait.evaluate`` (or ``plait eval``) was given malformed cases, metrics or
    variants; the message names the case, line or option."""


class StoreError(PlaitError):
    """A run store cannot be opened or used: a corrupt or foreign file, a schema from a
    newer plait, an unknown ``PLAIT_STORE`` scheme. ``location`` names the file (or URL);
    the file is never changed or replaced."""

    def __init__(self, location: str, detail: str) -> None:
        self.location = location
        super().__init__(f"run store {location}: {detail}")


class ResumeError(PlaitError):
    """A run cannot be resumed: no store, an unknown run id, another pipeline's run, or a
    pipeline whose structure changed so that recorded outputs no longer fit
    (``pipe.resume(..., force=True)`` resumes anyway)."""


class PluginError(PlaitError):
    """A plugin is missing, failed to load, or broke the hook contract."""


class UnknownPlugin(PluginError, LookupError):
    """No installed plugin registered the name asked for."""

    def __init__(self, kind: str, name: str, installed: Sequence[str],
                 distribution: str | None = None) -> None:
        self.kind = kind
        self.name = name
        self.installed = tuple(installed)
        self.distribution = distribution
        hint = f"; install {distribution} to add it" if distribution else ""
        shown = ", ".join(sorted(self.installed)) or "none"
        super().__init__(f"unknown {kind} {name!r} (installed: {shown})"
                         f"{did_you_mean(name, self.installed)}{hint}")


class UnknownExecutor(UnknownPlugin):
    """No installed plugin registered the fan-out executor named (``executor="ray"``)."""

    def __init__(self, name: str, installed: Sequence[str],
                 distribution: str | None = None) -> None:
        super().__init__("executor", name, installed, distribution)


class ToolDefinitionError(PlaitError, TypeError):
    """A tool given to an Agent cannot be described to a model (raised at construction)."""

    def __init__(self, tool: str, problem: str) -> None:
        self.tool = tool
        super().__init__(f"tool {tool!r} {problem}")


class ToolRoundsExceeded(PlaitError):
    """The model still asked for tools after ``max_tool_rounds`` rounds of them.

    ``messages`` is the conversation so far (the last turn is the unanswered tool
    request) and ``tool_calls`` every call that ran, so nothing already computed is lost.
    """

    def __init__(self, rounds: int, messages: Sequence[Message],
                 tool_calls: Sequence[ToolRecord]) -> None:
        self.rounds = rounds
        self.messages = tuple(messages)
        self.tool_calls = tuple(tool_calls)
        super().__init__(f"the model asked for more tools after max_tool_rounds={rounds} "
                         "rounds; raise Agent(max_tool_rounds=) or give it fewer lookups")


class ToolFailed(PlaitError):
    """A tool raised, and it was built with ``Tool(fn, raise_errors=True)``; ``.cause``
    is its exception (a ``TimeoutError`` past its ``timeout``), ``messages`` the
    conversation so far."""

    def __init__(self, tool: str, cause: BaseException, messages: Sequence[Message],
                 tool_calls: Sequence[ToolRecord]) -> None:
        self.tool = tool
        self.cause = cause
        self.messages = tuple(messages)
        self.tool_calls = tuple(tool_calls)
        super().__init__(f"tool {tool!r} failed: {type(cause).__name__}: {cause}")
