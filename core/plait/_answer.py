"""The seam before a request is sent: a plugin may answer it instead (a cache).

``plait_answer_model_call`` is consulted before the budget reservation, the limiters and
the model-call wrappers, so a request a plugin answers reserves nothing, waits for no
limiter and is charged nothing. Whether it was answered is decided here, not by the
plugin: a request whose ``send`` was never awaited came from the plugin, and counts as
a cache hit (``Usage.cache_hits``, ``Reply.cached``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ._errors import PluginError
from ._model import ModelCall, ModelRequest, ModelResponse
from ._money import Usage

if TYPE_CHECKING:
    from ._calls import _Plan
    from ._runtime import Runtime

__all__ = ["HOOK", "answer"]

HOOK = "plait_answer_model_call"
_HIT = Usage(cache_hits=1)

Send = Callable[["Runtime", "_Plan", ModelRequest, int], Awaitable[tuple[ModelResponse, Usage]]]


async def answer(runtime: Runtime, plan: _Plan, request: ModelRequest, attempt: int,
                 send: Send) -> tuple[ModelResponse, Usage]:
    """``send`` the request, unless a plugin answers it first."""
    usage: Usage | None = None

    async def sent() -> ModelResponse:
        nonlocal usage
        response, usage = await send(runtime, plan, request, attempt)
        call.usage = usage
        return response

    call = ModelCall(plan.provider_name, plan.model, plan.price, attempt)
    response = await runtime.hooks.decide(HOOK, request=request, provider=plan.provider_name,
                                          call=call, runtime=runtime, send=sent)
    if usage is not None:
        return response, usage
    if not isinstance(response, ModelResponse):
        raise PluginError(f"{HOOK} returned {type(response).__name__}, not a "
                          "plait.ModelResponse")
    call.usage = _HIT
    if plan.meter is not None:
        plan.meter.add(_HIT, f"{plan.provider_name}:{plan.model}")  # the step used it
    return response, _HIT
