"""Turn a ready-made provider object into a plugin, to register on one Runtime."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import plait

__all__ = ["provider_plugin"]


class _ProviderPlugin:
    def __init__(self, name: str, provider: Any, prices: Mapping[str, plait.Price] | None,
                 limits: plait.Limits | None,
                 context_windows: Mapping[str, int] | None = None) -> None:
        self.name = name
        self.provider = provider
        self.prices = prices
        self.limits = limits
        self.context_windows = context_windows

    @plait.hookimpl
    def plait_register_providers(self, register: Callable[..., None]) -> None:
        register(self.name, lambda env: self.provider, prices=self.prices, limits=self.limits,
                 context_windows=self.context_windows)

    def __repr__(self) -> str:
        return f"provider_plugin({self.name!r}, {self.provider!r})"


def provider_plugin(
    provider: Any,
    name: str = "fake",
    *,
    prices: Mapping[str, plait.Price] | None = None,
    limits: plait.Limits | None = None,
    context_windows: Mapping[str, int] | None = None,
) -> Any:
    """A plugin object registering ``provider`` itself under ``name`` (with its ``prices``,
    ``limits`` and ``context_windows``, as a provider plugin registers them).

    ``runtime.register(provider_plugin(FakeProvider(...), prices=plait_testing.PRICES))``
    makes ``"fake:..."`` models answer from that very instance, so the test can script it
    and inspect what it received.
    """
    return _ProviderPlugin(name, provider, prices, limits, context_windows)
