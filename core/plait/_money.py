"""Token usage and exact money: USD as ``Decimal``, never float."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TypeVar

import attrs

__all__ = ["Price", "TokenCount", "Usage", "price_in", "usd"]

_MILLION = Decimal(1_000_000)
T = TypeVar("T")

# a snapshot of a model: gpt-4o-2024-08-06, claude-x-20241022, gemini-x-001, x-latest,
# gemini-2.5-flash-preview-09-2025
_SNAPSHOT = re.compile(
    r"(?P<base>.+?)-(\d{4}-\d{2}-\d{2}|\d{8}|\d{3}|latest|preview(-\d{2}-\d{4})?)$")


def usd(amount: str | int | Decimal) -> Decimal:
    """An exact USD amount: ``plait.usd("0.10")``. Floats are refused (they are inexact)."""
    if isinstance(amount, float | bool):
        raise TypeError(f"usd() takes a str, int or Decimal, not {type(amount).__name__}: "
                        f"write usd({str(amount)!r}) to keep the amount exact")
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(f"not a USD amount: {amount!r}") from exc
    if not value.is_finite() or value < 0:
        raise ValueError(f"a USD amount must be finite and >= 0, got {amount!r}")
    return value


@attrs.frozen
class TokenCount:
    """What one provider call reports it used."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0  # input tokens read from the provider's prompt cache
    cache_write_tokens: int = 0  # input tokens written to the prompt cache (Anthropic)


@attrs.frozen
class Price:
    """A model's price in USD per million tokens.

    ``cached_input`` defaults to ``input``; ``cache_write`` defaults to ``input``.
    """

    input: Decimal = attrs.field(converter=Decimal)
    output: Decimal = attrs.field(converter=Decimal)
    cached_input: Decimal | None = attrs.field(default=None)
    cache_write: Decimal | None = attrs.field(default=None)

    @classmethod
    def per_million(cls, input: str, output: str, cached_input: str | None = None,
                    cache_write: str | None = None) -> Price:
        """``Price.per_million("0.15", "0.60")``, amounts as exact strings."""
        return cls(
            usd(input), usd(output),
            None if cached_input is None else usd(cached_input),
            None if cache_write is None else usd(cache_write),
        )

    def cost(self, tokens: TokenCount) -> Decimal:
        """Exact cost of one call's tokens."""
        cached = self.input if self.cached_input is None else self.cached_input
        write = self.input if self.cache_write is None else self.cache_write
        fresh = max(tokens.input_tokens - tokens.cached_tokens - tokens.cache_write_tokens, 0)
        total = (fresh * self.input + tokens.cached_tokens * cached
                 + tokens.cache_write_tokens * write + tokens.output_tokens * self.output)
        return total / _MILLION

    def worst_case(self, input_tokens: int, max_tokens: int) -> Decimal:
        """The most a call with this many input tokens and this output cap can cost."""
        top_input = max(self.input, self.cache_write or self.input)
        return (input_tokens * top_input + max_tokens * self.output) / _MILLION


@attrs.frozen
class Usage:
    """Tokens, calls and exact cost, summed over any number of model calls.

    ``calls`` counts the requests that were answered; ``requests`` every request sent,
    answered or not (a timed-out or failed request counts there, and a re-ask or a
    retry is a request of its own). ``cost`` is what the answers reported.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    calls: int = 0
    cost: Decimal = Decimal(0)
    requests: int = 0

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            self.calls + other.calls,
            self.cost + other.cost,
            self.requests + other.requests,
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def of_call(cls, tokens: TokenCount, cost: Decimal) -> Usage:
        return cls(tokens.input_tokens, tokens.output_tokens, tokens.cached_tokens, 1, cost, 1)


def price_in(table: Mapping[str, T], model: str) -> T | None:
    """``model``'s price in a provider's table: the exact name, then a snapshot's base
    (``gpt-4o-2024-08-06`` -> ``gpt-4o``, ``x-preview`` -> ``x``), then ``"*"``.

    Only snapshot suffixes fall back to the base, so a variant such as ``o3-pro`` is never
    priced as the cheaper ``o3``. Context windows are looked up the same way."""
    if model in table:
        return table[model]
    snapshot = _SNAPSHOT.match(model)
    if snapshot and snapshot["base"] in table:
        return table[snapshot["base"]]
    return table.get("*")
