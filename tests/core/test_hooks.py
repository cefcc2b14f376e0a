"""One test per hook (``test_hook_<name>``), each proving a plugin's implementation takes
effect, plus the meta-test that keeps hooks, their docs pages and these tests in step."""

from __future__ import annotations

import datetime as dt
import inspect
import pathlib
import re
from decimal import Decimal
from typing import Any

import attrs
import click
import plait
import pytest
from plait import hookspecs

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("plait_"))


def _signature(name: str) -> str:
    fn = getattr(hookspecs, name)
    sig = inspect.signature(fn)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({params}) -> {sig.return_annotation}"


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_docs_page_headed_by_its_exact_signature(name: str) -> None:
    page = ROOT / "docs" / "hooks" / f"{name}.md"
    assert page.exists(), f"docs/hooks/{name}.md is missing"
    first = page.read_text().splitlines()[0]
    assert first == f"# `{_signature(name)}`"
    assert f"[`{name}`]({name}.md)" in (ROOT / "docs" / "hooks" / "index.md").read_text()


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_test(name: str) -> None:
    wanted = f"def test_hook_{name.removeprefix('plait_')}("
    found = any(wanted in p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    assert found, f"no {wanted.removeprefix('def ').rstrip('(')} test for {name}"


def test_hookspecs_are_prefixed_documented_and_grouped() -> None:
    source = (ROOT / "core" / "plait" / "hookspecs.py").read_text()
    for banner in ("Registration", "Decisions", "Wrappers"):
        assert re.search(rf"^# {banner}", source, re.M)
    for name in HOOKS:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert "Called for every plugin" in doc or "Stops at first non-None result" in doc


# -- helpers --------------------------------------------------------------------------------

def one_step(fn: Any, name: str = "p") -> plait.Pipeline:
    return plait.Pipeline(name, steps={"only": plait.step(fn)})


class Echo:
    async def complete(self, request: plait.ModelRequest) -> plait.ModelResponse:
        text = request.messages[-1].content
        return plait.ModelResponse(text, plait.TokenCount(3, 2))


# -- registration -----------------------------------------------------------------------------

async def test_hook_register_providers(plait_runtime: plait.Runtime) -> None:
    class Plugin:
        @plait.hookimpl
        def plait_register_providers(self, register: Any) -> None:
            register("echo", lambda env: Echo(),
                     prices={"small": plait.Price.per_million("1", "2")})

    plait_runtime.register(Plugin())
    reply = await plait.Agent("echo:small").ask("hello there", runtime=plait_runtime)
    assert reply.text == "hello there"
    assert reply.usage.cost == Decimal("0.000007")  # 3 in at $1/M + 2 out at $2/M
    assert plait_runtime.price("echo", "small-2026-01-01") == plait.Price.per_million("1", "2")


async def test_hook_register_aggregators(plait_runtime: plait.Runtime, fake_provider: Any) -> None:
    class Plugin:
        @plait.hookimpl
        def plait_register_aggregators(self, register: Any) -> None:
            async def greatest(job: plait.AggregationJob) -> plait.Aggregation:
                best = max(await job.candidates(), key=lambda c: c.output)
                return plait.Aggregation(best.output, winner_index=best.index)

            register("greatest", greatest)

    plait_runtime.register(Plugin())
    fake_provider.script("a", "b", "c")

    async def ens(ctx: plait.StepContext) -> Any:
        result = await ctx.ensemble(plait.Agent("fake:m", temperature=0.8), "q", n=3,
                                    aggregate="greatest")
        return result.winner

    result = await one_step(ens).run(runtime=plait_runtime)
    assert result.output == "c"
    assert fake_provider.calls == 3


async def test_hook_register_validators(plait_runtime: plait.Runtime) -> None:
    class Plugin:
        @plait.hookimpl
        def plait_register_validators(self, register: Any) -> None:
            register("positive", lambda v: v > 0 or "must be positive")

    plait_runtime.register(Plugin())

    @plait.step(validate=["positive"])
    async def negative(ctx: plait.StepContext) -> int:
        return -1

    @plait.step
    async def after(ctx: plait.StepContext) -> int:
        return 1

    pipe = plait.Pipeline("v", {"n": negative, "after": after}, {"after": ["n"]})
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run(runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.ValidationFailed)
    assert info.value.cause.validator == "positive"
    assert info.value.cause.reason == "must be positive"
    assert info.value.partial is not None
    assert info.value.partial.steps["after"].status == "skipped"


async def test_hook_register_tracers() -> None:
    seen: list[str] = []

    class Tracer:
        @plait.hookimpl
        def plait_wrap_step(self, ctx: plait.StepContext) -> Any:
            seen.append(ctx.step_id)
            yield

    class Plugin:
        @plait.hookimpl
        def plait_register_tracers(self, register: Any) -> None:
            register("mine", Tracer(), default=False)

    pipe = one_step(lambda ctx: 1)
    async with plait.Runtime(entry_points=False, plugins=[Plugin()]) as off:
        await pipe.run(runtime=off)
    assert seen == []
    async with plait.Runtime(entry_points=False, plugins=[Plugin()], tracers=["mine"]) as on:
        await pipe.run(runtime=on)
    assert seen == ["only"]
    with pytest.raises(plait.UnknownPlugin, match="otel"):
        plait.Runtime(entry_points=False, tracers=["otel"]).load()


def test_hook_register_commands() -> None:
    @click.command()
    def hello() -> None:
        click.echo("hi")

    class Plugin:
        @plait.hookimpl
        def plait_register_commands(self, register: Any) -> None:
            register(hello)

    runtime = plait.Runtime(entry_points=False, plugins=[Plugin()])
    assert runtime.registry.commands == [hello]
    info = [i for i in runtime.plugin_infos() if "command" in i.registered]
    assert info[0].registered["command"] == ("hello",)


async def test_hook_register_converter_hooks(plait_runtime: plait.Runtime) -> None:
    class Plugin:
        @plait.hookimpl
        def plait_register_converter_hooks(self, register: Any) -> None:
            register(complex, lambda c: [c.real, c.imag], lambda v, _: complex(*v))

    pipe = one_step(lambda ctx: 1 + 2j)
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run(runtime=plait_runtime)
    assert isinstance(info.value.cause, plait.SerializationError)
    plait_runtime.register(Plugin())
    result = await pipe.run(runtime=plait_runtime)
    assert result.output == 1 + 2j
    # plait's own hooks stay next to the plugin's: dates become ISO strings
    assert plait_runtime.converter.unstructure(dt.date(2026, 1, 2)) == "2026-01-02"
    assert plait_runtime.converter.unstructure(3 + 4j) == [3.0, 4.0]


# -- decisions ----------------------------------------------------------------------------------

async def test_hook_run_step(plait_runtime: plait.Runtime) -> None:
    class Plugin:
        @plait.hookimpl
        def plait_run_step(self, step: plait.Step, ctx: plait.StepContext) -> Any:
            if ctx.step_id != "b":
                return None

            async def replaced() -> str:
                return "from plugin"

            return replaced()

    pipe = plait.Pipeline("r", {"a": lambda ctx: "a", "b": lambda ctx: "b"}, {"b": ["a"]})
    plait_runtime.register(Plugin())
    result = await pipe.run(runtime=plait_runtime)
    assert result.outputs == {"a": "a", "b": "from plugin"}


async def test_hook_choose_route(plait_runtime: plait.Runtime) -> None:
    class Plugin:
        @plait.hookimpl
        def plait_choose_route(self, router: plait.Router, ctx: plait.StepContext) -> Any:
            async def forced() -> str:
                return "y"

            return forced()

    router = plait.Router("r", route=lambda ctx: "x",
                          branches={"x": lambda ctx: "X", "y": lambda ctx: "Y"})
    pipe = plait.Pipeline("p", {"route": router})
    assert (await pipe.run(runtime=plait_runtime)).output == "X"
    plait_runtime.register(Plugin())
    result = await pipe.run(runtime=plait_runtime)
    assert result.output == "Y"
    assert result.steps["route"].route == "y"


async def test_hook_execute_fanout(plait_runtime: plait.Runtime) -> None:
    used: list[int] = []

    class Sequential:
        @plait.hookimpl
        def plait_execute_fanout(self, job: plait.FanOutJob) -> Any:
            async def run() -> list[plait.ItemOutcome]:
                out = []
                for i, item in enumerate(job.items):
                    used.append(i)
                    out.append(plait.ItemOutcome(i, await job.fn(i, item)))
                return out

            return run()

    async def double(x: int) -> int:
        return 2 * x

    async def fan(ctx: plait.StepContext) -> list[int]:
        return list((await ctx.map(double, [3, 1, 2])).values)

    plait_runtime.register(Sequential())
    result = await one_step(fan).run(runtime=plait_runtime)
    assert result.output == [6, 2, 4]
    assert used == [0, 1, 2]


async def test_an_executor_may_report_items_in_any_order(plait_runtime: plait.Runtime) -> None:
    class Backwards:  # finishes the last item first, as a remote cluster may
        @plait.hookimpl
        def plait_execute_fanout(self, job: plait.FanOutJob) -> Any:
            async def run() -> list[plait.ItemOutcome]:
                out = []
                for i in reversed(range(len(job.items))):
                    try:
                        out.append(plait.ItemOutcome(i, await job.fn(i, job.items[i])))
                    except Exception as exc:
                        out.append(plait.ItemOutcome(i, error=exc))
                return out

            return run()

    async def double(x: int) -> int:
        if x == 1:
            raise ValueError("one")
        return 2 * x

    async def fan(ctx: plait.StepContext) -> Any:
        return await ctx.map(double, [3, 1, 2, 5], on_error="collect")

    plait_runtime.register(Backwards())
    result = (await one_step(fan).run(runtime=plait_runtime)).output
    assert list(result.values) == [6, 4, 10]  # input order, whatever order they came in
    assert [(e.index, e.item) for e in result.errors] == [(1, 1)]


async def test_hook_aggregate(plait_runtime: plait.Runtime, fake_provider: Any) -> None:
    class Plugin:
        @plait.hookimpl
        def plait_aggregate(self, name: str, job: plait.AggregationJob) -> Any:
            if name != "longest":
                return None

            async def longest() -> plait.Aggregation:
                drawn = await job.candidates()
                best = max(drawn, key=lambda c: len(c.text))
                return plait.Aggregation(best.output, winner_index=best.index)

            return longest()

    plait_runtime.register(Plugin())
    fake_provider.script("ab", "abcd", "a")

    async def ens(ctx: plait.StepContext) -> Any:
        return await ctx.ensemble(plait.Agent("fake:m"), "q", n=3, aggregate="longest")

    result = await one_step(ens).run(runtime=plait_runtime)
    assert result.output.winner == "abcd"
    winner = result.output.candidates[result.output.aggregation.winner_index]
    assert winner.text == "abcd"
    assert sorted(c.text for c in result.output.candidates) == ["a", "ab", "abcd"]


# -- wrappers -----------------------------------------------------------------------------------

@attrs.define
class Recorder:
    """A wrapper plugin for every wrapper hook, recording enter / result / error."""

    label: str
    log: list[tuple[str, str, Any]]

    def _wrap(self, what: str) -> Any:
        self.log.append((self.label, f"enter {what}", None))
        try:
            result = yield
        except BaseException as exc:
            self.log.append((self.label, f"error {what}", type(exc).__name__))
            raise
        self.log.append((self.label, f"exit {what}", result))

    @plait.hookimpl
    def plait_wrap_run(self, run: plait.RunInfo) -> Any:
        return self._wrap(f"run {run.pipeline}")

    @plait.hookimpl
    def plait_wrap_step(self, step_id: str) -> Any:
        return self._wrap(f"step {step_id}")

    @plait.hookimpl
    def plait_wrap_fanout(self, job: plait.FanOutJob) -> Any:
        return self._wrap(f"fanout {len(job.items)}")

    @plait.hookimpl
    def plait_wrap_aggregate(self, name: str) -> Any:
        return self._wrap(f"aggregate {name}")

    @plait.hookimpl
    def plait_wrap_model_call(self, request: plait.ModelRequest, provider: str) -> Any:
        return self._wrap(f"call {provider}:{request.model}")


async def test_hook_wrap_run(plait_runtime: plait.Runtime) -> None:
    log: list[Any] = []
    plait_runtime.register(Recorder("outer", log))
    plait_runtime.register(Recorder("inner", log))
    result = await one_step(lambda ctx: 5, "p").run(runtime=plait_runtime)
    runs = [(who, what) for who, what, _ in log if "run" in what]
    # registered later = called first = outermost; left in reverse order
    assert runs == [("inner", "enter run p"), ("outer", "enter run p"),
                    ("outer", "exit run p"), ("inner", "exit run p")]
    exits = [value for who, what, value in log if what == "exit run p"]
    assert exits == [result, result]

    with pytest.raises(plait.StepFailed):
        await one_step(lambda ctx: 1 / 0, "bad").run(runtime=plait_runtime)
    assert ("outer", "error run bad", "StepFailed") in log


async def test_hook_wrap_step(plait_runtime: plait.Runtime) -> None:
    log: list[Any] = []
    plait_runtime.register(Recorder("r", log))
    pipe = plait.Pipeline("p", {"a": lambda ctx: 1, "b": lambda ctx: ctx.dep("a") + 1},
                          {"b": ["a"]})
    await pipe.run(runtime=plait_runtime)
    steps = [(what, value) for _, what, value in log if "step" in what]
    assert steps == [("enter step a", None), ("exit step a", 1),
                     ("enter step b", None), ("exit step b", 2)]


async def test_hook_wrap_step_errors_and_misbehaving_wrappers(plait_runtime: plait.Runtime) -> None:
    class NoYield:
        @plait.hookimpl
        def plait_wrap_step(self) -> Any:
            return iter(())  # a generator-like object that never yields

    class TwoYields:
        @plait.hookimpl
        def plait_wrap_step(self) -> Any:
            yield
            yield

    class Swallow:
        @plait.hookimpl
        def plait_wrap_step(self) -> Any:
            try:
                yield
            except ZeroDivisionError:
                return  # tries to swallow: the error must still propagate

    class RaisesFirst:
        @plait.hookimpl
        def plait_wrap_step(self) -> Any:
            raise RuntimeError("tracer exploded")
            yield  # a generator: it raises when the engine enters it

    pipe = one_step(lambda ctx: 1)
    for plugin, needle in ((NoYield(), "without yielding"), (TwoYields(), "more than once"),
                           (RaisesFirst(), "failed before the work started: RuntimeError: "
                                           "tracer exploded")):
        with (plait_runtime.plugin(plugin, name="misbehaving"),
              pytest.raises(plait.StepFailed) as info):
            await pipe.run(runtime=plait_runtime)
        assert isinstance(info.value.cause, plait.PluginError)
        assert needle in str(info.value.cause)
        assert "'misbehaving'" in str(info.value.cause)
    with plait_runtime.plugin(Swallow()), pytest.raises(plait.StepFailed) as info:
        await one_step(lambda ctx: 1 / 0).run(runtime=plait_runtime)
    assert isinstance(info.value.cause, ZeroDivisionError)


async def test_hook_wrap_fanout(plait_runtime: plait.Runtime) -> None:
    log: list[Any] = []
    plait_runtime.register(Recorder("r", log))

    async def fan(ctx: plait.StepContext) -> int:
        return len(await ctx.map(lambda x: x, range(4)))

    await one_step(fan).run(runtime=plait_runtime)
    fanouts = [(what, value) for _, what, value in log if "fanout" in what]
    assert [w for w, _ in fanouts] == ["enter fanout 4", "exit fanout 4"]  # once, not per item
    assert list(fanouts[1][1].values) == [0, 1, 2, 3]


async def test_hook_wrap_aggregate(plait_runtime: plait.Runtime, fake_provider: Any) -> None:
    log: list[Any] = []

    class Agg:
        @plait.hookimpl
        def plait_register_aggregators(self, register: Any) -> None:
            async def first(job: plait.AggregationJob) -> plait.Aggregation:
                drawn = await job.candidates()
                return plait.Aggregation(drawn[0].output, 0, agreement=1.0)

            register("first", first)

    plait_runtime.register(Agg())
    plait_runtime.register(Recorder("r", log))

    async def ens(ctx: plait.StepContext) -> Any:
        return (await ctx.ensemble(plait.Agent("fake:m"), "q", n=2, aggregate="first")).winner

    await one_step(ens).run(runtime=plait_runtime)
    aggregates = [(what, value) for _, what, value in log if "aggregate" in what]
    assert [w for w, _ in aggregates] == ["enter aggregate first", "exit aggregate first"]
    assert aggregates[1][1].agreement == 1.0
    # the candidate calls happen inside the aggregation wrapper
    order = [what for _, what, _ in log]
    first_call = order.index("enter call fake:m")
    assert order.index("enter aggregate first") < first_call < order.index("exit aggregate first")


async def test_hook_wrap_model_call(plait_runtime: plait.Runtime, fake_provider: Any) -> None:
    log: list[Any] = []
    plait_runtime.register(Recorder("r", log))
    fake_provider.script("not a number", "42")

    async def ask(ctx: plait.StepContext) -> int:
        return int((await ctx.ask(plait.Agent("fake:m", output=int), "how many?")).output)

    result = await one_step(ask).run(runtime=plait_runtime)
    assert result.output == 42
    calls = [(what, value) for _, what, value in log if "call" in what]
    # one wrapper call per request: the re-ask is its own request
    assert [w for w, _ in calls] == ["enter call fake:m", "exit call fake:m"] * 2
    assert calls[1][1].text == "not a number"
    assert calls[3][1].text == "42"


async def test_results_serialize_through_the_runtime_converter(
        plait_runtime: plait.Runtime) -> None:
    class Plugin:
        @plait.hookimpl
        def plait_register_converter_hooks(self, register: Any) -> None:
            register(complex, lambda c: [c.real, c.imag], lambda v, _: complex(*v))

    plait_runtime.register(Plugin())
    result = await one_step(lambda ctx: 1 + 2j).run(runtime=plait_runtime)
    text = result.to_json(runtime=plait_runtime)
    assert '"output": [1.0, 2.0]' in text
    assert plait.PipelineResult.from_json(text, runtime=plait_runtime).output == [1.0, 2.0]


async def test_a_tracer_registered_after_loading_is_enabled_and_leaves_with_its_plugin(
        plait_runtime: plait.Runtime) -> None:
    seen: list[str] = []

    class Tracer:
        @plait.hookimpl
        def plait_wrap_step(self, ctx: plait.StepContext) -> Any:
            seen.append(ctx.step_id)
            yield

    class Plugin:
        @plait.hookimpl
        def plait_register_tracers(self, register: Any) -> None:
            register("late", Tracer())

    pipe = one_step(lambda ctx: 1)
    await pipe.run(runtime=plait_runtime)  # plugins are loaded by now
    with plait_runtime.plugin(Plugin()):
        await pipe.run(runtime=plait_runtime)
    await pipe.run(runtime=plait_runtime)
    assert seen == ["only"]


async def test_model_call_wrappers_get_the_call_priced_as_charged(
        plait_runtime: plait.Runtime, fake_provider: Any) -> None:
    seen: list[tuple[int, Any]] = []

    class Meter:
        @plait.hookimpl
        def plait_wrap_model_call(self, call: plait.ModelCall) -> Any:
            assert call.usage is None  # not known before the reply
            yield
            seen.append((call.attempt, call.usage))

    plait_runtime.register(Meter())
    fake_provider.script(
        plait.ModelResponse("x", usage=plait.TokenCount(input_tokens=10, output_tokens=2)),
        plait.ModelResponse("7", usage=plait.TokenCount(input_tokens=20, output_tokens=1)))
    agent = plait.Agent("fake:m", output=int, price=plait.Price.per_million("1000", "2000"))

    async def ask(ctx: plait.StepContext) -> int:
        return int((await ctx.ask(agent, "how many?")).output)

    result = await one_step(ask).run(runtime=plait_runtime)
    assert [a for a, _ in seen] == [1, 2]  # the re-ask is attempt 2
    assert [u.cost for _, u in seen] == [Decimal("0.014"), Decimal("0.022")]
    assert sum(u.cost for _, u in seen) == result.usage.cost
