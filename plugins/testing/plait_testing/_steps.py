"""Unit-test one step with everything a real run gives it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import plait

__all__ = ["StepRun", "run_step"]


@attrs.frozen
class StepRun:
    """One step's run: what it returned (a ``plait.Stop`` included), its record, and the
    one-step run's result (whose ``steps`` also hold the given dependencies)."""

    output: Any
    record: plait.StepRecord
    result: plait.PipelineResult

    @property
    def usage(self) -> plait.Usage:
        """The step's model usage, cost as an exact Decimal."""
        return self.record.usage


async def run_step(
    step: Any,
    *,
    inputs: Mapping[str, Any] | None = None,
    dependencies: Mapping[str, Any] | None = None,
    deps: Any = None,
    runtime: plait.Runtime | None = None,
    config: plait.Config | None = None,
    step_id: str | None = None,
    run_id: str | None = None,
) -> StepRun:
    """Run ``step`` as a pipeline would: ``ctx.input`` sees ``inputs``, ``ctx.dep`` the
    ``dependencies`` (declared ones only: any other id raises
    ``plait.UndeclaredDependency``), ``ctx.deps`` is ``deps``; ``config`` is the run's
    (timeout, retries, validators, budget), below the step's own; plugins' wrappers,
    budgets and metering apply. ``step_id`` defaults to the step's name.

    A failure raises what the run raises (``plait.StepFailed`` with ``.cause``, or
    ``plait.BudgetExceeded``), with ``.partial`` as always.
    """
    given = dict(dependencies or {})
    name = step.label if isinstance(step, plait.Step) else getattr(step, "__name__", None)
    sid: str = step_id or name or "step"
    if sid in given:
        raise ValueError(f"step id {sid!r} is also the id of one of its dependencies")
    steps: dict[str, Any] = {d: _given(value) for d, value in given.items()}
    steps[sid] = step
    pipe = plait.Pipeline(f"test {sid}", steps, {sid: list(given)}, config=config, output=sid)
    result = await pipe.run(inputs, deps=deps, runtime=runtime, run_id=run_id)
    output = result.stop if result.stopped_early else result.outputs[sid]
    return StepRun(output, result.steps[sid], result)


def _given(value: Any) -> plait.Step:
    """A dependency whose output the test gave."""

    async def given(ctx: plait.StepContext) -> Any:
        return value

    return plait.step(given)
