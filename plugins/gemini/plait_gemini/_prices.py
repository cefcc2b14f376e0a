"""Gemini API list prices in USD per million tokens (paid tier, text, not Batch).

Registered with the ``gemini`` provider; users can override them per Runtime. The Runtime
prices a dated or preview snapshot by its base (``gemini-2.5-flash-preview-09-2025`` by
``gemini-2.5-flash``). Pro models list their rate for prompts up to 200k tokens: Google
bills longer prompts at a higher rate. Context-cache reads are left at the input rate, an
overestimate. ``PRICES_AS_OF`` is the date the table was compiled: check Google's pricing
page before relying on it for billing.
"""

from __future__ import annotations

from plait import Price

__all__ = ["CONTEXT_WINDOWS", "PRICES", "PRICES_AS_OF"]

PRICES_AS_OF = "2026-11-21"

_p = Price.per_million

PRICES: dict[str, Price] = {
    "gemini-3-pro": _p("2.00", "12.00"),
    "gemini-2.5-pro": _p("1.25", "10.00"),
    "gemini-2.5-flash": _p("0.30", "2.50"),
    "gemini-2.5-flash-lite": _p("0.10", "0.40"),
    "gemini-2.0-flash": _p("0.10", "0.40"),
    "gemini-2.0-flash-lite": _p("0.075", "0.30"),
}

# Tokens each model holds (Gemini's model pages, input token limit); matched like prices.
CONTEXT_WINDOWS: dict[str, int] = {
    "gemini-3-pro": 1_048_576,
    "gemini-2.5-pro": 1_048_576,
    "gemini-2.5-flash": 1_048_576,
    "gemini-2.5-flash-lite": 1_048_576,
    "gemini-2.0-flash": 1_048_576,
    "gemini-2.0-flash-lite": 1_048_576,
}
