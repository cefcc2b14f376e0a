"""The ``plait`` entry point: registers the ``fake`` provider with its price table.

Settings, from ``plait.Runtime(settings={"fake": {...}})``: ``replies`` and ``latency``,
passed to ``FakeProvider``; reach the instance with ``runtime.provider("fake")``.
"""

from __future__ import annotations

from collections.abc import Callable

import plait

from ._fake import PRICES, FakeProvider

_SETTINGS = ("replies", "latency")


@plait.hookimpl
def plait_register_providers(register: Callable[..., None]) -> None:
    register("fake", build_fake, prices=PRICES)


def build_fake(env: plait.ProviderEnv) -> FakeProvider:
    """Build the Runtime's fake from its settings."""
    unknown = sorted(set(env.settings) - set(_SETTINGS))
    if unknown:
        raise plait.PluginError(
            f"unknown settings for the {env.name!r} provider: {', '.join(unknown)} "
            f"(it takes {', '.join(_SETTINGS)})"
        )
    return FakeProvider(**env.settings)
