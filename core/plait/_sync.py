"""``run_sync``: run a pipeline from synchronous code, refusing to nest inside a loop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import sniffio

from ._results import PipelineResult

__all__ = ["run_sync"]


def run_sync(pipeline: Any, inputs: Mapping[str, Any] | None = None, *, deps: Any = None,
             runtime: Any = None, backend: str = "asyncio") -> PipelineResult:
    """Run ``pipeline`` to completion from synchronous code and return its result.

    Refuses to run inside an already-running event loop (that would block it): there,
    ``await pipeline.run(...)`` instead. No hidden second loop, no nest_asyncio.
    """
    try:
        library: str | None = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = "asyncio" if _asyncio_loop_running() else None
    if library is not None:
        raise RuntimeError(
            f"plait.run_sync() was called inside a running {library} event loop, where it "
            f"would block the loop; use `await pipeline.run(inputs)` instead")

    async def main() -> PipelineResult:
        result: PipelineResult = await pipeline.run(inputs, deps=deps, runtime=runtime)
        return result

    return anyio.run(main, backend=backend)


def _asyncio_loop_running() -> bool:
    """True in sync code under a running asyncio loop that sniffio cannot see (Jupyter)."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
