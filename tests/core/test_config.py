"""Config resolution: pipeline < step's own < step_config[id] < per call, most specific wins,
and "not given" (NOTSET) is distinct from an explicit 0 or None."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import plait
import pytest


class Boom(Exception):
    pass


def seen_configs() -> tuple[dict[str, Any], plait.Step]:
    seen: dict[str, Any] = {}

    async def record(ctx: plait.StepContext) -> None:
        seen[ctx.step_id] = ctx.config

    return seen, plait.step(record)


def test_every_field_defaults_to_notset() -> None:
    config = plait.Config()
    for field in ("timeout", "retries", "retry_delay", "retry_max_delay", "retry_on",
                  "budget", "max_concurrency", "validate"):
        assert getattr(config, field) is plait.NOTSET
    assert repr(plait.NOTSET) == "NOTSET"
    assert plait.NOTSET is not None


def test_resolving_nothing_gives_the_documented_defaults() -> None:
    resolved = plait.Config().resolve()
    assert resolved.timeout is None
    assert resolved.retries == 0
    assert not resolved.retries_given
    assert resolved.retry_delay == 0.5
    assert resolved.retry_max_delay == 30.0
    assert resolved.retry_on == (Exception,)
    assert resolved.budget is None
    assert resolved.max_concurrency is None
    assert tuple(resolved.validate) == ()


def test_merge_takes_only_what_the_override_gives() -> None:
    base = plait.Config(timeout=30, retries=2, retry_delay=1)
    merged = base.merge(plait.Config(retries=0, timeout=None))
    assert (merged.timeout, merged.retries, merged.retry_delay) == (None, 0, 1)
    assert base.merge(None) is base
    assert base.merge(plait.Config()) is base


def test_layered_is_least_to_most_specific() -> None:
    layered = plait.Config.layered(plait.Config(timeout=1, retries=1),
                                   None, plait.Config(timeout=2), plait.Config(retries=0))
    assert (layered.timeout, layered.retries) == (2, 0)


def test_retry_on_takes_a_type_or_types() -> None:
    assert plait.Config(retry_on=ValueError).retry_on == (ValueError,)
    assert plait.Config(retry_on=[ValueError, KeyError]).retry_on == (ValueError, KeyError)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"retries": -1}, ValueError, "retries must be an int >= 0"),
    ({"retries": 1.5}, ValueError, "retries must be an int >= 0"),
    ({"retries": True}, ValueError, "retries must be an int >= 0"),
    ({"timeout": -1}, ValueError, "timeout must be >= 0"),
    ({"timeout": "30"}, TypeError, "timeout must be a number"),
    ({"retry_delay": -0.1}, ValueError, "retry_delay must be >= 0"),
    ({"retry_max_delay": False}, TypeError, "retry_max_delay must be a number"),
    ({"budget": 0.1}, TypeError, r"budget must be a Decimal such as plait.usd\('0.10'\)"),
    ({"budget": Decimal(-1)}, ValueError, "budget must be >= 0"),
    ({"max_concurrency": 0}, ValueError, "max_concurrency must be an int >= 1"),
    ({"retry_on": [ValueError, "KeyError"]}, TypeError, "retry_on takes exception types"),
    ({"retry_on": int}, TypeError, "retry_on takes exception types"),
    ({"validate": [42]}, TypeError, "validate takes callables or registered names"),
])
def test_bad_values_are_refused_naming_the_field(kwargs: dict[str, Any], error: type[Exception],
                                                  match: str) -> None:
    with pytest.raises(error, match=match):
        plait.Config(**kwargs)


def test_step_decorator_keywords_are_the_steps_own_config() -> None:
    @plait.step(timeout=5, retries=0)
    async def s(ctx: plait.StepContext) -> None:
        return None

    assert s.config == plait.Config(timeout=5, retries=0)
    assert s.name == "s"


async def test_resolution_order_most_specific_wins(plait_runtime: plait.Runtime) -> None:
    seen, record = seen_configs()
    own = plait.step(timeout=20, retries=1, retry_delay=0.1)(record.fn)  # type: ignore[attr-defined]
    pipe = plait.Pipeline(
        "order",
        steps={"plain": record, "own": own, "configured": own},
        deps={"own": ["plain"], "configured": ["own"]},
        config=plait.Config(timeout=30, retries=3, retry_delay=2, retry_max_delay=9),
        step_config={"configured": plait.Config(timeout=10)},
    )
    await pipe.run({}, runtime=plait_runtime)
    plain, own_cfg, configured = seen["plain"], seen["own"], seen["configured"]
    assert (plain.timeout, plain.retries, plain.retry_delay, plain.retry_max_delay) == (
        30, 3, 2, 9)  # pipeline only
    assert (own_cfg.timeout, own_cfg.retries, own_cfg.retry_delay, own_cfg.retry_max_delay) == (
        20, 1, 0.1, 9)  # the step's own over the pipeline's
    assert (configured.timeout, configured.retries, configured.retry_delay) == (
        10, 1, 0.1)  # step_config over the step's own


async def test_explicit_zero_and_none_override_pipeline_defaults(
    plait_runtime: plait.Runtime,
) -> None:
    seen, record = seen_configs()
    zero = plait.step(retries=0)(record.fn)  # type: ignore[attr-defined]
    pipe = plait.Pipeline(
        "sentinel",
        steps={"zero": zero, "unlimited": record, "inherits": record},
        output="zero",
        config=plait.Config(timeout=30, retries=2),
        step_config={"unlimited": plait.Config(timeout=None)},
    )
    await pipe.run({}, runtime=plait_runtime)
    assert seen["zero"].retries == 0
    assert seen["zero"].timeout == 30
    assert seen["unlimited"].timeout is None
    assert seen["unlimited"].retries == 2
    assert (seen["inherits"].timeout, seen["inherits"].retries) == (30, 2)


async def test_explicit_retries_zero_really_runs_once(plait_runtime: plait.Runtime) -> None:
    calls = 0

    @plait.step(retries=0)
    async def once(ctx: plait.StepContext) -> None:
        nonlocal calls
        calls += 1
        raise Boom

    pipe = plait.Pipeline("p", steps={"once": once},
                          config=plait.Config(retries=5, retry_delay=0))
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=plait_runtime)
    assert calls == 1
    assert info.value.attempts == 1


async def test_step_config_retries_zero_overrides_the_steps_own(
    plait_runtime: plait.Runtime,
) -> None:
    calls = 0

    @plait.step(retries=4, retry_delay=0)
    async def flaky(ctx: plait.StepContext) -> None:
        nonlocal calls
        calls += 1
        raise Boom

    pipe = plait.Pipeline("p", steps={"flaky": flaky},
                          step_config={"flaky": plait.Config(retries=0)})
    with pytest.raises(plait.StepFailed):
        await pipe.run({}, runtime=plait_runtime)
    assert calls == 1


async def test_a_step_class_carries_its_own_config(plait_runtime: plait.Runtime) -> None:
    class Classy(plait.Step):
        config = plait.Config(retries=1, retry_delay=0)

        def __init__(self) -> None:
            self.calls = 0

        async def run(self, ctx: plait.StepContext) -> int:
            self.calls += 1
            if ctx.attempt == 1:
                raise Boom
            return ctx.attempt

    step = Classy()
    pipe = plait.Pipeline("p", steps={"c": step}, config=plait.Config(retries=0))
    result = await pipe.run({}, runtime=plait_runtime)
    assert result.output == 2
    assert step.calls == 2
    assert result.steps["c"].attempts == 2


def test_a_step_subclass_must_implement_run() -> None:
    class Empty(plait.Step):
        pass

    # refused when the pipeline is built, before any step could spend money
    with pytest.raises(plait.PipelineDefinitionError,
                       match=r"step 'e': Empty does not implement `async def run"):
        plait.Pipeline("p", steps={"e": Empty()})
