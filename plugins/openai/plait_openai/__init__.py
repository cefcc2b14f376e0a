"""plait-openai: the Chat Completions API, for OpenAI and every server that speaks it.

Prefixes: ``openai:`` (api.openai.com, or ``OPENAI_BASE_URL``) and one per known
compatible server: ``ollama:``, ``lmstudio:``, ``vllm:``, ``llamacpp:`` (local, no key)
and ``openrouter:``, ``groq:``, ``together:``. Add your own with ``profile()``.
Registration is pure: settings and keys are read when a request is sent.
"""

from __future__ import annotations

from collections.abc import Callable

import plait

from ._chat import ChatCompletionsProvider, Profile
from ._prices import PRICES, PRICES_AS_OF
from ._profiles import HOSTED, LOCAL, OPENAI, profile

__all__ = [
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


@plait.hookimpl
def plait_register_providers(register: Callable[..., None]) -> None:
    register(OPENAI.name, OPENAI, prices=PRICES)
    for local in LOCAL:
        register(local.name, local, prices=_FREE)
    for hosted in HOSTED:
        register(hosted.name, hosted)
