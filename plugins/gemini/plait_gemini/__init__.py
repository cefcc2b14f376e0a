"""plait-gemini: Google's Gemini models through the Gemini API (generateContent).

``Agent(model="gemini:gemini-2.5-flash")``. Registration is pure: settings and the key
(``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``) are read when a request is sent.
"""

from __future__ import annotations

import plait
from plait.hookspecs import RegisterProvider

from ._generate import GeminiProvider
from ._prices import CONTEXT_WINDOWS, PRICES, PRICES_AS_OF
from ._schema import response_schema

__all__ = [
    "CONTEXT_WINDOWS",
    "PRICES",
    "PRICES_AS_OF",
    "GeminiProvider",
    "plait_register_providers",
    "response_schema",
]

__version__ = "0.1.0"


# Requests in flight at once: the rest wait in plait's FIFO limiter, which is cheap, rather
# than in httpx's connection pool, which is not. Runtime(limits=...) overrides it.
CONCURRENCY = plait.Limits(concurrency=64)


@plait.hookimpl
def plait_register_providers(register: RegisterProvider) -> None:
    register(
        "gemini",
        GeminiProvider,
        prices=PRICES,
        limits=CONCURRENCY,
        context_windows=CONTEXT_WINDOWS,
    )
