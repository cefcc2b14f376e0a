"""Steps: the unit of work. A function with ``@plait.step`` or a ``plait.Step`` subclass."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar, overload

import anyio.lowlevel
import anyio.to_thread

from ._config import NOTSET, Config, Validator
from ._errors import MissingInput, PipelineDefinitionError
from ._serialize import serializable_type

if TYPE_CHECKING:
    from ._context import StepContext

__all__ = ["FunctionStep", "Step", "as_step", "check_runs", "declared_return", "is_async_callable",
           "render_prompt", "run_in_thread", "step"]

T = TypeVar("T")


class Step:
    """Base class for steps: implement ``async def run(self, ctx)``.

    ``config`` is the step's own configuration (between the pipeline's and
    ``step_config[id]``); ``name`` is used in records when the step is not in a pipeline.
    """

    config: Config = Config()
    name: str | None = None

    async def run(self, ctx: StepContext) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} must implement `async def run(self, ctx)`")

    @property
    def output_type(self) -> Any:
        """The type ``run`` says it returns (``Any`` when it says nothing). When that type
        is one JSON can always hold, the engine trusts the step's outputs to be of it
        instead of walking each one (``PipelineResult.to_json`` still names the step
        and path of an output that lied)."""
        return _class_output_type(type(self))

    @functools.cached_property
    def declares_serializable(self) -> bool:
        """Whether ``output_type`` is a type every value of which JSON holds (decided once
        per step, since a step's type does not change)."""
        try:
            return serializable_type(self.output_type)
        except TypeError:  # an annotation that cannot be a cache key (Annotated with a dict)
            return False

    @property
    def label(self) -> str:
        return self.name or type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label!r}>"


class FunctionStep(Step):
    """A step made from a function of the context, async or sync.

    Sync functions run in a worker thread, so they never block the event loop.
    """

    def __init__(self, fn: Callable[[StepContext], Any], config: Config = Config(),
                 name: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"@plait.step needs a function, got {fn!r}")
        self.fn = fn
        self.config = config
        self.name = name or getattr(fn, "__name__", None)
        self._is_async = is_async_callable(fn)
        self._output_type = declared_return(fn)
        functools.update_wrapper(self, fn)  # keeps __doc__ and __name__

    @property
    def output_type(self) -> Any:
        return self._output_type

    def run(self, ctx: StepContext) -> Coroutine[Any, Any, Any]:
        # The function's own coroutine, not one awaited inside a coroutine of this method:
        # every step of a chain pays for one coroutine less.
        if self._is_async:
            return self.fn(ctx)  # type: ignore[no-any-return]
        return run_in_thread(self.fn, ctx)

    def __call__(self, ctx: StepContext) -> Awaitable[Any]:
        """Call the step directly (e.g. in a unit test) with a context."""
        return self.run(ctx)


@overload
def step(fn: Callable[[StepContext], Any], /) -> FunctionStep: ...


@overload
def step(
    fn: None = None, /, *, timeout: float | None = ..., retries: int = ...,
    retry_delay: float = ..., retry_max_delay: float = ...,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = ...,
    budget: Decimal | None = ..., validate: Validator | list[Validator] = ...,
    name: str | None = None,
) -> Callable[[Callable[[StepContext], Any]], FunctionStep]: ...


def step(
    fn: Callable[[StepContext], Any] | None = None, /, *, timeout: Any = NOTSET,
    retries: Any = NOTSET, retry_delay: Any = NOTSET, retry_max_delay: Any = NOTSET,
    retry_on: Any = NOTSET, budget: Any = NOTSET, validate: Any = NOTSET,
    name: str | None = None,
) -> FunctionStep | Callable[[Callable[[StepContext], Any]], FunctionStep]:
    """Make a step from ``async def f(ctx)`` (or a sync function, run in a thread).

    ``@plait.step`` or ``@plait.step(timeout=30, retries=2, ...)``; the keywords are
    the step's own ``plait.Config``.
    """
    config = Config(timeout=timeout, retries=retries, retry_delay=retry_delay,
                    retry_max_delay=retry_max_delay, retry_on=retry_on, budget=budget,
                    validate=validate)

    def wrap(f: Callable[[StepContext], Any]) -> FunctionStep:
        return FunctionStep(f, config, name)

    return wrap if fn is None else wrap(fn)


def declared_return(fn: Any) -> Any:
    """``fn``'s return annotation, evaluated where ``fn`` was defined; ``Any`` when it has
    none or it does not resolve (a name imported only for type checkers)."""
    annotation = getattr(fn, "__annotations__", {}).get("return", Any)
    if isinstance(annotation, str):  # `from __future__ import annotations`
        try:
            # evaluated in the function's module, as typing.get_type_hints does
            annotation = eval(annotation, getattr(fn, "__globals__", {}))
        except Exception:
            return Any
    return annotation


def _class_output_type(cls: type[Step]) -> Any:
    try:
        return _OUTPUT_TYPES[cls]
    except KeyError:
        found = _OUTPUT_TYPES[cls] = declared_return(cls.run)
        return found


_OUTPUT_TYPES: dict[type, Any] = {}  # per Step class: its run's return annotation


async def run_in_thread(fn: Callable[..., Any], *args: Any, await_result: bool = True) -> Any:
    """Run a sync function in a worker thread, so it never blocks the loop. What it returns
    is awaited when awaitable (unless ``await_result`` is false): ``lambda item:
    fetch(item)`` is sync but hands back a coroutine."""
    # boxed in a tuple: trio refuses a thread function whose result is a coroutine
    (value,) = await anyio.to_thread.run_sync(lambda: (fn(*args),))
    # the thread could not be interrupted: if the run was cancelled meanwhile, stop here
    # instead of handing the value on (a step that never suspends needs no such check)
    try:
        await anyio.lowlevel.checkpoint_if_cancelled()
    except BaseException:
        if inspect.iscoroutine(value):  # never awaited now: close it, so no warning
            value.close()
        raise
    if await_result and inspect.isawaitable(value):
        return await value
    return value


def is_async_callable(fn: Any) -> bool:
    """True for ``async def`` functions and objects whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(type(fn), "__call__", None))  # noqa: B004  # the method, not callability


def as_step(value: Any, where: str) -> Step:
    """Accept a Step or a plain function where a step is expected; refuse anything else."""
    if isinstance(value, Step):
        return check_runs(value, where)
    if callable(value) and not isinstance(value, type):
        return FunctionStep(value)
    raise PipelineDefinitionError(
        f"{where}: expected a plait.Step or a function of the context, got {value!r}"
    )


def check_runs(step: Step, where: str) -> Step:
    """Refuse a Step subclass that never implemented ``run`` when the workflow is built,
    not when it runs (after earlier steps may have spent money)."""
    if type(step).run is Step.run:
        raise PipelineDefinitionError(
            f"{where}: {type(step).__name__} does not implement `async def run(self, ctx)`")
    return step


async def render_prompt(prompt: str | Callable[[StepContext], Any], ctx: StepContext) -> str:
    """A step's prompt: a template over run inputs and dependency outputs, or a function
    of the context (sync or async)."""
    if isinstance(prompt, str):
        values = {**ctx.inputs, **ctx.dependencies}
        try:
            return prompt.format_map(values)
        except KeyError as exc:
            raise MissingInput(str(exc.args[0]), list(values)) from None
    text = prompt(ctx)
    if inspect.isawaitable(text):
        text = await text
    if not isinstance(text, str):
        raise TypeError(f"a prompt function must return a str, got {type(text).__name__}")
    return text
