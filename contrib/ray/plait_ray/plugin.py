"""The plait plugin: registers the "ray" executor (Ray is imported on its first fan-out)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plait import hookimpl

if TYPE_CHECKING:  # registration imports no engine: `plait --help` loads every plugin
    from plait import FanOutJob, ItemOutcome, StepContext
    from plait.hookspecs import RegisterExecutor


@hookimpl
def plait_register_executors(register: RegisterExecutor) -> None:
    register("ray", ray_executor)


async def ray_executor(job: FanOutJob, ctx: StepContext) -> list[ItemOutcome]:
    """Run ``job``'s items on the Ray cluster this process is connected to."""
    from ._executor import run_on_ray

    outcomes: list[ItemOutcome] = await run_on_ray(job, ctx)
    return outcomes


__all__: list[Any] = ["plait_register_executors", "ray_executor"]
