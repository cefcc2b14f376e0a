"""Anthropic list prices in USD per million tokens (standard tier, not Batch).

Registered with the ``anthropic`` provider; users can override them per Runtime. Keys are
model aliases: the Runtime prices a dated model id by its longest listed prefix
(``claude-sonnet-4-5-20250929`` by ``claude-sonnet-4-5``). ``cached_input`` is the cache-hit
rate and ``cache_write`` the 5-minute cache-write rate (1-hour writes cost more).
``PRICES_AS_OF`` is the date the table was compiled: check Anthropic's pricing page before
relying on it for billing.
"""

from __future__ import annotations

from plait import Price

__all__ = ["CONTEXT_WINDOWS", "PRICES", "PRICES_AS_OF"]

PRICES_AS_OF = "2026-11-21"

_p = Price.per_million

PRICES: dict[str, Price] = {
    "claude-opus-4-5": _p("5.00", "25.00", cached_input="0.50", cache_write="6.25"),
    "claude-opus-4-1": _p("15.00", "75.00", cached_input="1.50", cache_write="18.75"),
    "claude-opus-4": _p("15.00", "75.00", cached_input="1.50", cache_write="18.75"),
    "claude-sonnet-4-5": _p("3.00", "15.00", cached_input="0.30", cache_write="3.75"),
    "claude-sonnet-4": _p("3.00", "15.00", cached_input="0.30", cache_write="3.75"),
    "claude-3-7-sonnet": _p("3.00", "15.00", cached_input="0.30", cache_write="3.75"),
    "claude-haiku-4-5": _p("1.00", "5.00", cached_input="0.10", cache_write="1.25"),
    "claude-3-5-haiku": _p("0.80", "4.00", cached_input="0.08", cache_write="1.00"),
    "claude-3-haiku": _p("0.25", "1.25", cached_input="0.03", cache_write="0.30"),
}

# Tokens each model holds, input and output together (Anthropic's models overview; the
# Sonnet models' 1M-token beta needs a request header); matched like prices.
CONTEXT_WINDOWS: dict[str, int] = {
    "claude-opus-4-5": 200_000,
    "claude-opus-4-1": 200_000,
    "claude-opus-4": 200_000,
    "claude-sonnet-4-5": 200_000,
    "claude-sonnet-4": 200_000,
    "claude-3-7-sonnet": 200_000,
    "claude-haiku-4-5": 200_000,
    "claude-3-5-haiku": 200_000,
    "claude-3-haiku": 200_000,
}
