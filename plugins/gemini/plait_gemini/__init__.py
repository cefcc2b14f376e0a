"""plait-gemini: Google's Gemini models through the Gemini API (generateContent).

``Agent(model="gemini:gemini-2.5-flash")``. Registration is pure: settings and the key
(``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``) are read when a request is sent.
"""

from __future__ import annotations

from collections.abc import Callable

import plait

from ._generate import GeminiProvider
from ._prices import PRICES, PRICES_AS_OF
from ._schema import response_schema

__all__ = [
    "PRICES",
    "PRICES_AS_OF",
    "GeminiProvider",
    "plait_register_providers",
    "response_schema",
]

__version__ = "0.1.0"


@plait.hookimpl
def plait_register_providers(register: Callable[..., None]) -> None:
    register("gemini", GeminiProvider, prices=PRICES)
