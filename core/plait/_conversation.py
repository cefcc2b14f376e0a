"""Conversations and few-shot examples: what a model call's messages are made of.

``ctx.ask(agent, prompt)`` takes a prompt string or a conversation, a sequence of
``plait.Message`` turns; ``Agent(examples=[(input, output), ...])`` becomes user and
assistant turns placed after the system prompt, typed outputs written as the JSON the
agent asks the model for.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Sequence
from typing import Any

from ._model import Message, Role

__all__ = ["as_turns", "render_examples"]

_ROLES = typing.get_args(Role)


def as_turns(prompt: Any) -> tuple[Message, ...]:
    """The turns of a prompt: a string is one user turn; a conversation is checked."""
    if isinstance(prompt, str):
        return (Message("user", prompt),)
    if not isinstance(prompt, Sequence) or isinstance(prompt, bytes):
        raise TypeError(f"a prompt must be a str or a sequence of plait.Message, "
                        f"got {type(prompt).__name__}")
    turns = tuple(prompt)
    for i, turn in enumerate(turns):
        if not isinstance(turn, Message):
            raise TypeError(f"conversation turn {i} must be a plait.Message, "
                            f"got {type(turn).__name__}")
        if turn.role not in _ROLES:
            raise ValueError(f"conversation turn {i} has role {turn.role!r}; roles are "
                             f"{', '.join(map(repr, _ROLES))}")
        if not isinstance(turn.content, str):
            raise TypeError(f"conversation turn {i} content must be a str, "
                            f"got {type(turn.content).__name__}")
    if not any(t.role == "user" for t in turns):
        raise ValueError("a conversation needs at least one user turn to answer")
    return turns


def render_examples(examples: Sequence[Any], spec: Any, converter: Any) -> tuple[Message, ...]:
    """Few-shot turns: each ``(input, output)`` as a user turn and the assistant's reply.

    ``spec`` is the agent's ``OutputSpec``: an output is written as the JSON it asks for
    (wrapped as ``{"value": ...}`` where the schema is), then parsed back, so an example
    that the agent itself would refuse fails here, at construction.
    """
    turns: list[Message] = []
    for i, example in enumerate(examples):
        if not (isinstance(example, tuple) and len(example) == 2):
            raise TypeError(f"examples[{i}] must be an (input, output) pair, got {example!r}")
        given, output = example
        if not isinstance(given, str):
            raise TypeError(f"examples[{i}] input must be a str, got {type(given).__name__}")
        if spec.schema is None:
            if not isinstance(output, str):
                raise TypeError(f"examples[{i}] output must be a str (the agent's output "
                                f"type), got {type(output).__name__}")
            text = output
        else:
            try:
                data = converter.unstructure(output)
                text = json.dumps({"value": data} if spec.wrapped else data)
                spec.parse(text, None, converter)
            except Exception as exc:  # not the agent's output type, in any of many ways
                raise TypeError(f"examples[{i}] output {output!r} is not a valid "
                                f"{spec.describe()}: {exc}") from exc
        turns += (Message("user", given), Message("assistant", text))
    return tuple(turns)
