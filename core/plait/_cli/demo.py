"""``plait demo NAME``: one of the worked examples of ``plait._demos``, on any model."""

from __future__ import annotations

import importlib
from typing import Any

import anyio

from plait._console import check_model, check_settings
from plait._demos._session import DemoSession
from plait._targets import parse_settings

__all__ = ["run_demo"]


def run_demo(name: str, model: str, settings: tuple[str, ...] = (), **options: Any) -> None:
    """Run demo ``name`` on ``model`` with the ``--set`` provider ``settings``; ``options``
    go to its ``main`` (faq: ``questions``)."""
    provider_settings = parse_settings(settings)
    demo = importlib.import_module(f"plait._demos.{name}")
    session = DemoSession(model, fake_replies=demo.fake_reply, fake_latency=demo.FAKE_LATENCY,
                          settings=provider_settings)
    check_model(model, session.runtime)
    check_settings(provider_settings, session.runtime)

    async def main() -> None:
        async with session.runtime:
            if session.provider != "fake":  # the fake answers only what the demo scripted
                await session.warm_up()
            await demo.main(session, **options)
        session.finish()

    anyio.run(main)
