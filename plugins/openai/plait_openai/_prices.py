"""OpenAI list prices in USD per million tokens (standard tier, not Batch or Flex).

Registered with the ``openai`` provider; users can override them per Runtime.
``PRICES_AS_OF`` is the date the table was compiled: check OpenAI's pricing page before
relying on it for billing. ``cached_input`` is the rate OpenAI bills for prompt-cache hits.
"""

from __future__ import annotations

from plait import Price

__all__ = ["CONTEXT_WINDOWS", "PRICES", "PRICES_AS_OF"]

PRICES_AS_OF = "2026-11-21"

_p = Price.per_million

PRICES: dict[str, Price] = {
    "gpt-5": _p("1.25", "10.00", cached_input="0.125"),
    # Listed so the Runtime's prefix match cannot price them as their cheaper base model.
    "gpt-5-pro": _p("15.00", "120.00"),
    "o3-pro": _p("20.00", "80.00"),
    "gpt-5-mini": _p("0.25", "2.00", cached_input="0.025"),
    "gpt-5-nano": _p("0.05", "0.40", cached_input="0.005"),
    "gpt-4.1": _p("2.00", "8.00", cached_input="0.50"),
    "gpt-4.1-mini": _p("0.40", "1.60", cached_input="0.10"),
    "gpt-4.1-nano": _p("0.10", "0.40", cached_input="0.025"),
    "gpt-4o": _p("2.50", "10.00", cached_input="1.25"),
    "gpt-4o-mini": _p("0.15", "0.60", cached_input="0.075"),
    "o3": _p("2.00", "8.00", cached_input="0.50"),
    "o4-mini": _p("1.10", "4.40", cached_input="0.275"),
    "o3-mini": _p("1.10", "4.40", cached_input="0.55"),
}

# Tokens each model holds, input and output together (OpenAI's model pages); matched
# like prices.
CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-5": 400_000,
    "gpt-5-pro": 400_000,
    "o3-pro": 200_000,
    "gpt-5-mini": 400_000,
    "gpt-5-nano": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.1-mini": 1_047_576,
    "gpt-4.1-nano": 1_047_576,
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "o3-mini": 200_000,
}
