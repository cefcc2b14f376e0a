"""plait-prices: what models cost, from the maintained ``genai-prices`` data.

Installed, it answers plait's ``plait_price`` hook ahead of the price tables the provider
plugins ship (frozen at the date they were compiled), and prices models those tables
leave out (OpenRouter's, Groq's, Together's). A model the data does not know is left to
the tables. ``Runtime(prices=...)`` and ``Agent(price=...)`` still win over it.

genai-prices takes half a second to import, so it is imported on the first price asked
for, never when plait loads its plugins.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any

import plait

__all__ = ["PROVIDERS", "plait_price", "price_of"]

__version__ = "0.1.0"

PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "openrouter": "openrouter",
    "groq": "groq",
    "together": "together",
}
"""plait's provider prefixes and the genai-prices provider each one is priced as; other
prefixes (a local server, the fake) are not priced here."""

# Rates are read off a price for this many tokens: small enough to stay below any
# long-context tier (Gemini charges more past 200k input tokens).
_SAMPLE = 1_000
_PER_MILLION = Decimal(1_000_000 // _SAMPLE)


@plait.hookimpl
def plait_price(provider: str, model: str) -> plait.Price | None:
    genai_provider = PROVIDERS.get(provider)
    return None if genai_provider is None else price_of(genai_provider, model)


@functools.cache
def price_of(provider_id: str, model: str) -> plait.Price | None:
    """``model``'s current price at ``provider_id`` (a genai-prices provider), per
    million tokens; ``None`` when the data does not know the model."""
    input_rate = _rate(provider_id, model, "input_price", input_tokens=_SAMPLE)
    if input_rate is None:
        return None
    output_rate = _rate(provider_id, model, "output_price", output_tokens=_SAMPLE)
    cached = _rate(provider_id, model, "input_price", input_tokens=_SAMPLE,
                   cache_read_tokens=_SAMPLE)
    written = _rate(provider_id, model, "input_price", input_tokens=_SAMPLE,
                    cache_write_tokens=_SAMPLE)
    return plait.Price(input_rate, output_rate or Decimal(0), cached, written)


def _rate(provider_id: str, model: str, part: str, **tokens: int) -> Decimal | None:
    """USD per million tokens of one kind, or ``None`` when genai-prices has no price."""
    from genai_prices import Usage, calc_price  # heavy: only once a price is asked for

    try:
        found: Any = calc_price(Usage(**tokens), model_ref=model, provider_id=provider_id)
    except (LookupError, ValueError):  # an unknown model, or a kind it has no rate for
        return None
    return Decimal(getattr(found, part)) * _PER_MILLION
