"""``plait demo``: the seeds' three worked examples, runnable on any model.

Each demo module defines ``async def main(session, **options)``, and ``fake_reply(request)`` with
``FAKE_LATENCY``: the scripted model that ``--model fake:...`` (plait-testing's fake
provider) answers with, including the kind of mistakes small models make, so a test can
watch validation and retries catch them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import anyio

from plait._console import check_model, check_settings

from ._session import DemoSession

__all__ = ["run_demo"]


def run_demo(name: str, model: str, *, settings: Mapping[str, Mapping[str, Any]] | None = None,
             **options: Any) -> None:
    """Run demo ``name`` on ``model`` with provider ``settings`` (``--set``); ``options``
    go to its ``main`` (faq: ``questions``)."""
    demo = importlib.import_module(f"{__name__}.{name}")
    session = DemoSession(model, fake_replies=demo.fake_reply, fake_latency=demo.FAKE_LATENCY,
                          settings=settings)
    check_model(model, session.runtime)
    check_settings(settings or {}, session.runtime)

    async def main() -> None:
        async with session.runtime:
            if session.provider != "fake":  # the fake answers only what the demo scripted
                await session.warm_up()
            await demo.main(session, **options)
        session.finish()

    anyio.run(main)
