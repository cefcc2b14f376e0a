"""Agents: a model plus how to ask it (system prompt, typed output, sampling settings)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._calls import call_model
from ._config import Config
from ._conversation import render_examples
from ._model import Message, split_model
from ._money import Price
from ._results import Reply
from ._runtime import default_runtime
from ._serialize import _default_converter
from ._step import Step, render_prompt
from ._stream import ModelStream
from ._tools import Tool, as_tools

if TYPE_CHECKING:
    from ._context import StepContext
    from ._runtime import Runtime

__all__ = ["Agent", "AgentStep"]


def _check_model(_inst: Any, _attr: Any, value: Any) -> None:
    split_model(value)


def _check_temperature(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                              or not 0 <= value <= 2):
        raise ValueError(f"temperature must be a number in [0, 2] or None, got {value!r}")


def _check_max_tokens(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"max_tokens must be an int >= 1 or None, got {value!r}")


def _as_models(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):  # tuple("openai:x") would be its letters
        raise TypeError(f"fallback takes a list of models, got the string {value!r}; "
                        f"write fallback=[{value!r}]")
    models = tuple(value)
    for model in models:
        split_model(model)
    return models


def _check_rounds(_inst: Any, _attr: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_tool_rounds must be an int >= 1, got {value!r}")


def _as_examples(value: Iterable[tuple[Any, Any]]) -> tuple[tuple[Any, Any], ...]:
    return tuple(value)


def _output_spec(agent: Agent) -> Any:
    from ._structured import OutputSpec  # on first agent: `import plait` leaves cattrs out

    return OutputSpec.of(agent.output)


def _example_turns(agent: Agent) -> tuple[Message, ...]:
    return render_examples(agent.examples, agent.spec, _default_converter()) \
        if agent.examples else ()


@attrs.frozen
class Agent:
    """A model and how to ask it.

    ``output`` is the type of ``reply.output``: ``str`` (default), an attrs class, a
    dataclass, a TypedDict, a pydantic model, an Enum, ``Literal[...]``, ``list[...]``,
    ``tuple[...]``, ``dict[str, X]``, dates, UUIDs, ``Decimal``, ``Annotated[X, ...]``,
    unions of classes (told apart by a ``Literal`` tag field) or nested combinations. plait
    derives a JSON schema, asks for native structured output where the provider has it,
    parses, and re-asks with the error when a reply does not fit.

    ``fallback`` lists models asked in turn when this one stays down: after its retries
    are spent on a transient error (unavailable, rate limited, timed out), never on a
    permanent one (a bad key, a bad request).

    ``examples`` are few-shot ``(input, output)`` pairs, sent after the system prompt as
    user and assistant turns (typed outputs as the JSON the agent asks for).

    ``tools`` are functions (or ``plait.Tool``) the model may call for lookups before it
    answers, each described by its signature and docstring; ``max_tool_rounds`` bounds
    the rounds of calls in one ``ask`` (``plait.ToolRoundsExceeded`` past it).
    """

    model: str = attrs.field(validator=_check_model)
    system: str | None = None
    output: Any = str
    temperature: float | None = attrs.field(default=None, validator=_check_temperature)
    max_tokens: int | None = attrs.field(default=None, validator=_check_max_tokens)
    stop: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    seed: int | None = None
    price: Price | None = None  # overrides the provider's price table for this agent
    name: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)  # vendor-specific request fields
    examples: tuple[tuple[Any, Any], ...] = attrs.field(default=(), converter=_as_examples)
    fallback: tuple[str, ...] = attrs.field(default=(), converter=_as_models)
    tools: tuple[Tool, ...] = attrs.field(default=(), converter=as_tools)
    max_tool_rounds: int = attrs.field(default=5, validator=_check_rounds)
    spec: Any = attrs.field(init=False, repr=False, eq=False,
                            default=attrs.Factory(_output_spec, takes_self=True))
    # the examples as few-shot turns, rendered (and checked) once
    shots: tuple[Message, ...] = attrs.field(
        init=False, repr=False, eq=False, default=attrs.Factory(_example_turns, takes_self=True))
    _split: tuple[str, str] = attrs.field(init=False, repr=False, eq=False, default=attrs.Factory(
        lambda self: split_model(self.model), takes_self=True))  # split once, used every call

    @property
    def provider(self) -> str:
        """``"openai"`` for ``"openai:gpt-4o-mini"``."""
        return self._split[0]

    @property
    def model_name(self) -> str:
        """``"gpt-4o-mini"`` for ``"openai:gpt-4o-mini"``."""
        return self._split[1]

    async def ask(self, prompt: str | Sequence[Message], *, runtime: Runtime | None = None,
                  **overrides: Any) -> Reply:
        """Ask outside a pipeline (no run budget); inside a step use ``ctx.ask``."""
        return await call_model(runtime or default_runtime(), self, prompt, overrides)

    def stream(self, prompt: str, *, runtime: Runtime | None = None,
               **overrides: Any) -> ModelStream:
        """Ask outside a pipeline and read the reply as it is written (see ``ctx.stream``)."""
        return ModelStream(runtime or default_runtime(), self, prompt, overrides)

    def as_step(self, prompt: str | Callable[[StepContext], str | Awaitable[str]], *,
                name: str | None = None, stream: bool = False, **config: Any) -> AgentStep:
        """A one-call step. ``prompt`` is a function of the context, or a template
        formatted with the run inputs and dependency outputs (``"Summarize: {text}"``).
        Keywords are the step's ``plait.Config`` (``timeout``, ``retries``, ``validate``...).
        ``stream=True`` makes the call through ``ctx.stream``, so ``pipe.stream`` shows
        its text as it is written.
        """
        return AgentStep(self, prompt, Config(**config), name, stream=stream)


class AgentStep(Step):
    """A step that is one model call (made by ``Agent.as_step``)."""

    validates_itself = True  # validators re-ask inside the call instead of failing after

    def __init__(self, agent: Agent, prompt: str | Callable[[StepContext], Any],
                 config: Config, name: str | None, *, stream: bool = False) -> None:
        if not (isinstance(prompt, str) or callable(prompt)):
            raise TypeError(f"as_step takes a prompt string or a function of the context, "
                            f"got {prompt!r}")
        self.agent = agent
        self.prompt = prompt
        self.config = config
        self.name = name or agent.name or f"ask {agent.model}"
        self.stream = stream

    @property
    def output_type(self) -> Any:
        return self.agent.output  # what the reply is parsed into

    async def run(self, ctx: StepContext) -> Any:
        text = await render_prompt(self.prompt, ctx)
        if self.stream:
            async with ctx.stream(self.agent, text, validate=ctx.config.validate) as stream:
                async for _ in stream:
                    pass
            return stream.reply.output
        reply = await ctx.ask(self.agent, text, validate=ctx.config.validate)
        return reply.output
