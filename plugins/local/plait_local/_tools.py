"""Tool calls for a local model, through its JSON grammar.

A small model has no native tool API (and chat templates differ in whether they know a
"tool" role), so a request with tools constrains the reply to one JSON choice:
``{"tool": "<name>", "arguments": {...}}`` to call a tool, or ``{"answer": ...}`` to
answer (the answer as the requested schema, or a string). Earlier calls go back as the
assistant's JSON and their results as user turns, which every template knows.
"""

from __future__ import annotations

import json
from typing import Any

import plait

__all__ = ["tool_arguments", "tool_reply"]


def tool_arguments(request: plait.ModelRequest, arguments: dict[str, Any]) -> None:
    """Add the tool choice grammar and the tool conversation to ``arguments``."""
    answer = dict(request.json_schema) if request.json_schema is not None else {"type": "string"}
    choices = [_choice({"tool": {"const": t.name}, "arguments": dict(t.parameters)})
               for t in request.tools]
    arguments["response_format"] = {"type": "json_object", "schema": {
        "anyOf": [*choices, _choice({"answer": answer})]}}
    listed = "\n".join(f"- {t.name}: {t.description} Arguments: {json.dumps(t.parameters)}"
                       for t in request.tools)
    hint = ("You can call a tool to look something up before you answer. Tools:\n"
            f"{listed}\nReply with one JSON object: "
            '{"tool": "<name>", "arguments": {...}} to call a tool, or '
            '{"answer": ...} when you can answer.')
    messages = [_message(m) for m in request.messages]
    if messages and messages[0]["role"] == "system":
        messages[0] = {"role": "system", "content": f"{messages[0]['content']}\n\n{hint}"}
    else:
        messages.insert(0, {"role": "system", "content": hint})
    arguments["messages"] = messages


def tool_reply(text: str, structured: bool) -> tuple[str, Any, tuple[plait.ToolCall, ...]]:
    """The reply's text, parsed value and tool calls, from the JSON choice it made."""
    choice = plait.json_or_none(text)
    if isinstance(choice, dict) and isinstance(choice.get("tool"), str):
        return "", None, (plait.ToolCall(choice["tool"], choice.get("arguments", {})),)
    if isinstance(choice, dict) and "answer" in choice:
        answer = choice["answer"]
        if isinstance(answer, str) and not structured:
            return answer, None, ()
        return json.dumps(answer), answer if structured else None, ()
    return text, None, ()  # cut short: the engine parses and re-asks as for any reply


def _choice(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def _message(m: plait.Message) -> dict[str, str]:
    if m.role == "tool":
        return {"role": "user", "content": f"Result of {m.name}: {m.content}\n"
                "If that is enough, reply with {\"answer\": ...}."}
    if m.tool_calls:
        return {"role": "assistant", "content": "\n".join(
            json.dumps({"tool": c.name, "arguments": c.arguments}) for c in m.tool_calls)}
    return {"role": m.role, "content": m.content}
