"""Tools: functions a model may call for the lookups its answer needs.

``Agent(tools=[fn, ...])`` describes each function to the model: its name, the first
paragraph of its docstring, and a JSON schema of its parameters, compiled by the same
machinery as structured output (a parameter's description comes from the docstring's
``Args:`` section or ``:param name:`` lines). A function that cannot be described (a
parameter without an annotation, ``*args``) is refused when the Agent is built.

Inside a model call (``_calls``), a reply that asks for tools starts a round: every
call of the round runs at once (a sync function in a worker thread), each within its
tool's ``timeout``, inside the ``plait_wrap_tool_call`` wrappers; the results go back
as ``"tool"`` messages and the model is asked again. A tool's error is told to the
model as text, so it can correct its arguments or answer without the lookup, unless
the tool raises its errors. At most ``max_tool_rounds`` rounds: the next request for
tools raises ``ToolRoundsExceeded`` with the conversation so far. Each round's request
is an ordinary request: reserved against the budget, metered and wrapped.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import time
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from ._errors import OutputParseError, ToolDefinitionError, ToolFailed, ToolRoundsExceeded
from ._model import Message, ModelResponse, ToolCall, ToolSpec
from ._results import ToolRecord

if TYPE_CHECKING:
    from ._context import StepContext
    from ._runtime import Runtime

__all__ = ["DEFAULT_TOOL_TIMEOUT", "Tool", "ToolLoop", "as_tools"]

DEFAULT_TOOL_TIMEOUT = 30.0  # seconds, as FastroAI's safe tools
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what every vendor accepts as a tool name
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params)\s*:\s*$", re.I)
_ARG_LINE = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_OTHER_SECTION = re.compile(r"^\s*(Returns?|Raises|Yields?|Examples?|Notes?)\s*:\s*$", re.I)


def _check_timeout(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                              or not value > 0):
        raise ValueError(f"a tool's timeout must be a number of seconds > 0 or None, "
                         f"got {value!r}")


@attrs.frozen
class Tool:
    """A function a model may call: ``Tool(fn, timeout=5)``; a bare function given to
    ``Agent(tools=[...])`` becomes ``Tool(fn)``.

    ``name`` defaults to the function's, ``description`` to its docstring's first
    paragraph. ``timeout`` bounds one run of it (seconds; ``None``: unbounded). A tool
    that raises (or times out) has its error told to the model, which may try again or
    answer without it; ``raise_errors=True`` raises ``plait.ToolFailed`` instead.
    """

    fn: Callable[..., Any]
    name: str = attrs.field(default=attrs.Factory(lambda self: getattr(
        _inner(self.fn), "__name__", type(self.fn).__name__), takes_self=True))
    description: str = attrs.field(default=attrs.Factory(
        lambda self: _summary(inspect.getdoc(_inner(self.fn))), takes_self=True))
    timeout: float | None = attrs.field(default=DEFAULT_TOOL_TIMEOUT, validator=_check_timeout)
    raise_errors: bool = False
    spec: ToolSpec = attrs.field(init=False, repr=False, eq=False)
    _arguments: Any = attrs.field(init=False, repr=False, eq=False)  # their OutputSpec
    _is_async: bool = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if not callable(self.fn):
            raise ToolDefinitionError(repr(self.fn), "is not callable")
        if not _NAME.fullmatch(self.name):
            raise ToolDefinitionError(self.name, "needs a name of 1 to 64 letters, digits, _ "
                                      "or -: give Tool(fn, name=...)")
        arguments, schema = _describe(self.fn, self.name)
        object.__setattr__(self, "_arguments", arguments)
        object.__setattr__(self, "spec", ToolSpec(self.name, self.description, schema))
        object.__setattr__(self, "_is_async", inspect.iscoroutinefunction(self.fn) or
                           inspect.iscoroutinefunction(type(self.fn).__call__))  # an object

    async def run(self, arguments: Any, converter: Any) -> Any:
        """Check ``arguments`` (the model's JSON) and call the function with them."""
        if isinstance(arguments, str):
            raise ValueError(f"the arguments are not valid JSON: {arguments[:200]!r}")
        if not isinstance(arguments, dict):
            raise ValueError(f"the arguments must be a JSON object, got {arguments!r}")
        try:
            kwargs = self._arguments.parse(json.dumps(arguments), arguments, converter)
        except OutputParseError as exc:  # its message lists every problem by path
            raise ValueError(exc.message.replace("the reply does not match",
                                                 "the arguments do not match")) from None
        with anyio.move_on_after(self.timeout):
            if self._is_async:
                return await self.fn(**kwargs)
            # abandoned at the timeout: the thread runs on, its result unused
            return await anyio.to_thread.run_sync(functools.partial(self.fn, **kwargs),
                                                  abandon_on_cancel=True)
        raise TimeoutError(f"the tool {self.name!r} timed out after {self.timeout:g} s")


def as_tools(value: Iterable[Tool | Callable[..., Any]]) -> tuple[Tool, ...]:
    """``Agent(tools=...)``: functions become ``Tool``s; names must be distinct."""
    if callable(value) or isinstance(value, str | bytes):  # type: ignore[unreachable]
        raise TypeError(f"tools takes a list of functions, got {value!r}; write tools=[...]")
    tools = tuple(t if isinstance(t, Tool) else Tool(t) for t in value)
    names = [t.name for t in tools]
    for name in names:
        if names.count(name) > 1:
            raise ToolDefinitionError(name, "is given twice; give one Tool(fn, name=...) "
                                      "another name")
    return tools


# --------------------------------------------------------------------------- describing


def _inner(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The function a ``functools.partial`` binds (its hints, name and docstring): a
    partial is how a tool gets what the model must not give, a database client say."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return fn


def _summary(doc: str | None) -> str:
    """A docstring's first paragraph, on one line."""
    return " ".join((doc or "").split("\n\n", 1)[0].split())


def _parameter_docs(doc: str | None) -> dict[str, str]:
    """Parameter descriptions from a Google-style ``Args:`` section or ``:param x:`` lines;
    a description may continue on more-indented lines."""
    found: dict[str, str] = {}
    current: str | None = None
    in_args = False
    for line in (doc or "").splitlines():
        if _SECTION.match(line):
            in_args, current = True, None
            continue
        if _OTHER_SECTION.match(line):
            in_args, current = False, None
            continue
        sphinx = _SPHINX.match(line)
        arg = sphinx or (_ARG_LINE.match(line) if in_args else None)
        if arg and (sphinx or not line.startswith(" " * 8)):
            current = arg.group(1)
            found[current] = arg.group(2).strip()
        elif current is not None and line.strip():
            found[current] = f"{found[current]} {line.strip()}".strip()
        elif not line.strip():
            current = None
    return found


def _describe(fn: Callable[..., Any], name: str) -> tuple[Any, dict[str, Any]]:
    """The arguments' ``OutputSpec`` (an object type made of the parameters) and the JSON
    schema sent for them: required are the parameters without a default."""
    from ._structured import OutputSpec  # on first tool: `import plait` leaves cattrs out

    try:
        signature = inspect.signature(fn)
        hints = typing.get_type_hints(_inner(fn), include_extras=True)
    except (TypeError, ValueError, NameError) as exc:
        raise ToolDefinitionError(name, f"cannot be described: {exc}") from exc
    docs = _parameter_docs(inspect.getdoc(_inner(fn)))
    fields: dict[str, Any] = {}
    required: list[str] = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(name, f"takes *{param.name} or **{param.name}: a model "
                                      "can only give named arguments, each with a type")
        if param.kind is param.POSITIONAL_ONLY:
            raise ToolDefinitionError(name, f"parameter {param.name!r} is positional-only: "
                                      "a model gives arguments by name")
        if param.name not in hints:
            raise ToolDefinitionError(name, f"parameter {param.name!r} has no type "
                                      "annotation: annotate it so the model knows its type")
        hint = hints[param.name]
        if typing.get_origin(hint) is typing.Annotated:  # Annotated[int, "how many"]
            notes = [m for m in typing.get_args(hint)[1:] if isinstance(m, str)]
            if notes and param.name not in docs:
                docs[param.name] = notes[-1]
        if param.default is param.empty:
            required.append(param.name)
        else:
            hint = typing.NotRequired[hint]
        fields[param.name] = hint
    shape = typing.TypedDict(f"{name}_arguments", fields)  # type: ignore[misc]  # dynamic
    try:
        arguments = OutputSpec.of(shape)
    except TypeError as exc:
        raise ToolDefinitionError(name, f"cannot be described: {exc}") from exc
    schema = arguments.schema
    assert schema is not None, "an object type always has a schema"
    for param_name, text in docs.items():
        if param_name in schema["properties"] and text:
            schema["properties"][param_name].setdefault("description", text)
    schema["required"] = required
    return arguments, schema


# --------------------------------------------------------------------------- the loop


class ToolLoop:
    """The tool rounds of one model call: runs what the model asks for, keeps records."""

    def __init__(self, runtime: Runtime, tools: Sequence[Tool], max_rounds: int,
                 ctx: StepContext | None) -> None:
        self._runtime = runtime
        self._tools = {t.name: t for t in tools}
        self._max_rounds = max_rounds
        self._ctx = ctx
        self.specs = tuple(t.spec for t in tools)
        self.rounds = 0
        self.records: list[ToolRecord] = []

    async def answer(self, messages: tuple[Message, ...],
                     response: ModelResponse) -> tuple[Message, ...]:
        """``messages`` with the model's tool request and every call's result appended."""
        asked = Message("assistant", response.text, tool_calls=response.tool_calls)
        messages = (*messages, asked)
        if self.rounds >= self._max_rounds:
            raise ToolRoundsExceeded(self._max_rounds, messages, self.records)
        self.rounds += 1
        calls = response.tool_calls
        records: list[ToolRecord | None] = [None] * len(calls)
        failed: list[tuple[str, BaseException]] = []

        async def run(i: int, call: ToolCall) -> None:
            records[i] = await self._run(call, failed)

        async with anyio.create_task_group() as tg:
            for i, call in enumerate(calls):
                tg.start_soon(run, i, call)
        done = [r for r in records if r is not None]
        self.records.extend(done)
        results = tuple(Message("tool", _as_text(r), tool_call_id=r.id, name=r.name)
                        for r in done)
        if failed:
            tool, cause = failed[0]
            raise ToolFailed(tool, cause, (*messages, *results), self.records) from cause
        return (*messages, *results)

    async def _run(self, call: ToolCall,
                   failed: list[tuple[str, BaseException]]) -> ToolRecord:
        tool = self._tools.get(call.name)
        if tool is None:
            known = ", ".join(sorted(self._tools))
            return ToolRecord(call.name, call.arguments, error=f"there is no tool named "
                              f"{call.name!r}; the tools are {known}", id=call.id)
        hooks = self._runtime.hooks
        converter = self._runtime.converter
        started = time.perf_counter()
        try:
            if hooks.wraps("plait_wrap_tool_call"):
                value = await hooks.around(
                    "plait_wrap_tool_call", {"call": call, "tool": tool, "ctx": self._ctx},
                    lambda: tool.run(call.arguments, converter))
            else:
                value = await tool.run(call.arguments, converter)
            result = _as_json(value, converter)
        except Exception as exc:  # told to the model, which can try again
            latency = time.perf_counter() - started
            if tool.raise_errors:
                failed.append((tool.name, exc))
            return ToolRecord(call.name, call.arguments, error=f"{type(exc).__name__}: {exc}",
                              latency_s=latency, id=call.id)
        return ToolRecord(call.name, call.arguments, result,
                          latency_s=time.perf_counter() - started, id=call.id)


def _as_json(value: Any, converter: Any) -> Any:
    """A tool's return value as JSON data (a string stays a string)."""
    if isinstance(value, str):
        return value
    return json.loads(json.dumps(converter.unstructure(value), default=str))


def _as_text(record: ToolRecord) -> str:
    if record.error is not None:
        return f"Error: {record.error}"
    return record.result if isinstance(record.result, str) else json.dumps(record.result)

