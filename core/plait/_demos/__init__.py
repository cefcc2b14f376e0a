"""``plait demo``: the seeds' three worked examples, runnable on any model.

Each demo module defines ``async def main(session)`` and ``fake_reply(request)``, the
scripted model that ``--model fake:...`` (plait-testing's fake provider) answers with,
including the kind of mistakes small models make, so a test can watch validation and
retries catch them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import anyio

from plait._cli_run import check_model

from ._session import DemoSession

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["run_demo"]


def run_demo(name: str, model: str, *, console: Console | None = None) -> None:
    demo = importlib.import_module(f"{__name__}.{name}")
    session = DemoSession(model, console=console, fake_replies=demo.fake_reply,
                          fake_latency=demo.FAKE_LATENCY)
    check_model(model, session.runtime)

    async def main() -> None:
        async with session.runtime:
            await demo.main(session)
        session.finish()

    anyio.run(main)
