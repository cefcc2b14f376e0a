"""Context windows: ``plait.fit`` trims a conversation or a document to fit a model.

A provider declares each model's window (``register(..., context_windows=...)``); a call
whose request may not fit is refused with ``ContextTooLong`` before it is sent. ``fit``
counts exactly as that check does (input at worst: every byte a token), so what it returns
is never refused: it drops the oldest turns first, then cuts the longest remaining one
(the long document), keeping its beginning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

from ._agent import Agent
from ._calls import estimate_input_tokens
from ._conversation import as_turns
from ._errors import ContextTooLong
from ._model import Message, ModelRequest, split_model
from ._runtime import Runtime, default_runtime

__all__ = ["TRUNCATED", "fit"]

TRUNCATED = "\n[... cut to fit the context window]"


@overload
def fit(messages: str, model: str | Agent, *, reserve: int | None = None,
        window: int | None = None, runtime: Runtime | None = None) -> str: ...


@overload
def fit(messages: Sequence[Message], model: str | Agent, *, reserve: int | None = None,
        window: int | None = None, runtime: Runtime | None = None) -> list[Message]: ...


def fit(messages: str | Sequence[Message], model: str | Agent, *, reserve: int | None = None,
        window: int | None = None, runtime: Runtime | None = None) -> str | list[Message]:
    """``messages`` (a prompt or a conversation) cut to fit ``model``'s context window.

    ``model`` is an Agent (its system prompt, examples and output schema count too) or a
    model name. ``reserve`` tokens are left for the reply (default: the agent's
    ``max_tokens``, else 0); ``window`` overrides the one the provider declares. A prompt
    comes back as a prompt, a conversation as a list of turns; system turns are kept.
    Raises ``ContextTooLong`` when even the fixed part (system prompt, examples, schema,
    reserve) does not fit, and ``ValueError`` when no window is known.
    """
    agent = model if isinstance(model, Agent) else None
    model_id = model.model if isinstance(model, Agent) else model
    provider, name = split_model(model_id)
    if window is None:
        window = (runtime or default_runtime()).context_window(provider, name)
        if window is None:
            raise ValueError(f"no context window is known for {model_id!r}; its provider "
                             "declares none, so pass fit(..., window=<tokens>)")
    if reserve is None:
        reserve = (agent.max_tokens if agent is not None else None) or 0
    fixed: tuple[Message, ...] = ()
    schema = None
    if agent is not None:
        fixed = (*([Message("system", agent.system)] if agent.system else []), *agent.shots)
        schema = agent.spec.schema
    turns = list(as_turns(messages))

    def needed() -> int:
        request = ModelRequest(name, (*fixed, *turns), json_schema=schema)
        return estimate_input_tokens(request) + reserve

    while needed() > window and sum(t.role != "system" for t in turns) > 1:
        oldest = next(i for i, t in enumerate(turns) if t.role != "system")
        del turns[oldest]
    excess = needed() - window
    if excess > 0:
        longest = max((i for i, t in enumerate(turns) if t.role != "system"),
                      key=lambda i: len(turns[i].content.encode()))
        text = turns[longest].content.encode()
        keep = len(text) - excess - len(TRUNCATED.encode())
        if keep < 0:
            raise ContextTooLong(model_id, needed(), window)
        cut = text[:keep].decode(errors="ignore") + TRUNCATED
        turns[longest] = Message(turns[longest].role, cut)
    if isinstance(messages, str):
        return turns[0].content
    return turns
