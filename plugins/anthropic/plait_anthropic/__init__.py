"""plait-anthropic: Claude through Anthropic's Messages API.

``Agent(model="anthropic:claude-sonnet-4-5")``. Registration is pure: settings and the key
(``ANTHROPIC_API_KEY``) are read when a request is sent.
"""

from __future__ import annotations

import plait
from plait.hookspecs import RegisterProvider

from ._messages import AnthropicProvider
from ._prices import CONTEXT_WINDOWS, PRICES, PRICES_AS_OF

__all__ = [
    "CONTEXT_WINDOWS",
    "PRICES",
    "PRICES_AS_OF",
    "AnthropicProvider",
    "plait_register_providers",
]

__version__ = "0.1.0"


# Requests in flight at once: the rest wait in plait's FIFO limiter, which is cheap, rather
# than in httpx's connection pool, which is not. Runtime(limits=...) overrides it.
CONCURRENCY = plait.Limits(concurrency=64)


@plait.hookimpl
def plait_register_providers(register: RegisterProvider) -> None:
    register(
        "anthropic",
        AnthropicProvider,
        prices=PRICES,
        limits=CONCURRENCY,
        context_windows=CONTEXT_WINDOWS,
    )
