"""plait-openai: the Chat Completions API, for OpenAI and every server that speaks it.

Prefixes: ``openai:`` (api.openai.com, or ``OPENAI_BASE_URL``) and one per known
compatible server: ``ollama:``, ``lmstudio:``, ``vllm:``, ``llamacpp:`` (local, no key)
and ``openrouter:``, ``groq:``, ``together:``. Add your own with ``profile()``.
Registration is pure: settings and keys are read when a request is sent.
"""

from __future__ import annotations

import plait
from plait.hookspecs import RegisterProvider

from ._chat import ChatCompletionsProvider, Profile
from ._prices import CONTEXT_WINDOWS, PRICES, PRICES_AS_OF
from ._profiles import HOSTED, LOCAL, OPENAI, profile

__all__ = [
    "CONTEXT_WINDOWS",
    "HOSTED",
    "LOCAL",
    "OPENAI",
    "PRICES",
    "PRICES_AS_OF",
    "ChatCompletionsProvider",
    "Profile",
    "plait_register_providers",
    "profile",
]

__version__ = "0.1.0"

_FREE = {"*": plait.Price.per_million("0", "0")}  # a server on your own machine
# Requests in flight per prefix: the rest wait in plait's FIFO limiter, which is cheap,
# rather than in httpx's connection pool, which is not. Runtime(limits=...) overrides it.
CONCURRENCY = plait.Limits(concurrency=64)


@plait.hookimpl
def plait_register_providers(register: RegisterProvider) -> None:
    register(
        OPENAI.name, OPENAI, prices=PRICES, limits=CONCURRENCY, context_windows=CONTEXT_WINDOWS
    )
    for local in LOCAL:
        register(local.name, local, prices=_FREE, limits=CONCURRENCY)
    for hosted in HOSTED:
        register(hosted.name, hosted, limits=CONCURRENCY)
