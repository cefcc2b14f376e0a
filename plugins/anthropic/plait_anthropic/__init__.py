"""plait-anthropic: Claude through Anthropic's Messages API.

``Agent(model="anthropic:claude-sonnet-4-5")``. Registration is pure: settings and the key
(``ANTHROPIC_API_KEY``) are read when a request is sent.
"""

from __future__ import annotations

from collections.abc import Callable

import plait

from ._messages import AnthropicProvider
from ._prices import PRICES, PRICES_AS_OF

__all__ = ["PRICES", "PRICES_AS_OF", "AnthropicProvider", "plait_register_providers"]

__version__ = "0.1.0"


@plait.hookimpl
def plait_register_providers(register: Callable[..., None]) -> None:
    register("anthropic", AnthropicProvider, prices=PRICES)
