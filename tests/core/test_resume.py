"""pipe.resume: restored steps and items, HITL stops, ctx.once, budgets, changed pipelines."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import plait
import pytest
from plait_testing import FakeProvider

pytestmark = pytest.mark.anyio


@attrs.frozen
class Draft:
    title: str
    words: tuple[str, ...]


@pytest.fixture
def runtime(tmp_path: Path) -> plait.Runtime:
    return plait.Runtime(entry_points=False, store=tmp_path / "runs.db")


class Flaky:
    """Steps that log each call and fail while ``failing`` names them."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.failing: set[str] = set()
        self.keys: list[str] = []

    def pipeline(self) -> plait.Pipeline:
        @plait.step
        async def draft(ctx: plait.StepContext) -> Draft:
            self.calls.append("draft")
            self.keys.append(ctx.idempotency_key)
            return Draft(ctx.input("title"), ("a", "b"))

        async def word(w: str) -> str:
            self.calls.append(f"word:{w}")
            if f"word:{w}" in self.failing:
                raise ValueError(f"no {w}")
            return w.upper()

        @plait.step
        async def shout(ctx: plait.StepContext) -> list[str]:
            self.calls.append("shout")
            words = (*ctx.dep("draft").words, "c", "d")
            return list(await ctx.map(word, words))

        @plait.step
        async def final(ctx: plait.StepContext) -> str:
            self.calls.append("final")
            self.keys.append(ctx.idempotency_key)
            if "final" in self.failing:
                raise RuntimeError("final broke")
            return f"{ctx.dep('draft').title}: {' '.join(ctx.dep('shout'))}"

        return plait.Pipeline("flaky", steps={"draft": draft, "shout": shout, "final": final},
                              deps={"shout": ["draft"], "final": ["draft", "shout"]})


async def test_a_failed_run_resumes_without_running_what_finished(
        runtime: plait.Runtime) -> None:
    flaky = Flaky()
    pipe = flaky.pipeline()
    flaky.failing = {"word:c", "final"}
    with pytest.raises(plait.StepFailed):
        await pipe.run({"title": "T"}, runtime=runtime, run_id="run-1")
    assert sorted(flaky.calls) == ["draft", "shout", "word:a", "word:b", "word:c", "word:d"]
    stored = await runtime.store.load("run-1")  # type: ignore[union-attr]
    assert stored is not None
    assert stored.run.status == "failed"
    assert stored.steps["draft"].record.status == "ok"
    assert stored.steps["shout"].record.status == "failed"
    assert sorted(stored.items["shout"]) == [0, 1, 2, 3]
    first_keys = list(flaky.keys)

    flaky.calls.clear()
    flaky.failing = set()
    result = await pipe.resume("run-1", runtime=runtime)
    # the draft is restored; the fan-out runs only its failed item, then final runs
    assert flaky.calls == ["shout", "word:c", "final"]
    assert result.output == "T: A B C D"
    assert result.outputs["draft"] == Draft("T", ("a", "b"))  # its type, not a dict
    assert flaky.keys[:1] == first_keys  # draft's key from the first attempt, and
    assert flaky.keys[-1] == "run-1/final"  # final's is the same on every attempt
    stored = await runtime.store.load("run-1")  # type: ignore[union-attr]
    assert stored is not None
    assert (stored.run.status, stored.run.attempt) == ("ok", 2)


async def test_resuming_a_finished_run_runs_nothing(runtime: plait.Runtime) -> None:
    flaky = Flaky()
    pipe = flaky.pipeline()
    first = await pipe.run({"title": "T"}, runtime=runtime)
    flaky.calls.clear()
    again = await pipe.resume(first.run_id, runtime=runtime)
    assert flaky.calls == []
    assert again.outputs == first.outputs


async def test_a_stopped_run_continues_with_new_inputs(runtime: plait.Runtime) -> None:
    calls: list[str] = []

    @plait.step
    async def quote(ctx: plait.StepContext) -> dict[str, int]:
        calls.append("quote")  # the paid step: it must not run twice
        return {"price": 40}

    @plait.step
    async def contact(ctx: plait.StepContext) -> Any:
        calls.append("contact")
        email = ctx.input("email", None)
        if email is None:
            return plait.Stop("need an email", {"missing": ["email"]})
        return email

    @plait.step
    async def send(ctx: plait.StepContext) -> str:
        calls.append("send")
        return f"{ctx.dep('quote')['price']} to {ctx.dep('contact')} for {ctx.input('name')}"

    pipe = plait.Pipeline("hitl", steps={"quote": quote, "contact": contact, "send": send},
                          deps={"contact": ["quote"], "send": ["quote", "contact"]})
    first = await pipe.run({"name": "Ada"}, runtime=runtime)
    assert first.stopped_early
    assert first.stop == plait.Stop("need an email",
                                                            {"missing": ["email"]})
    stored = await runtime.store.load(first.run_id)  # type: ignore[union-attr]
    assert stored is not None
    assert stored.run.status == "stopped"
    assert stored.run.stop == {"reason": "need an email", "data": {"missing": ["email"]}}
    calls.clear()
    done = await pipe.resume(first.run_id, inputs={"email": "ada@example.com"},
                             runtime=runtime)
    assert calls == ["contact", "send"]
    assert done.output == "40 to ada@example.com for Ada"  # old inputs kept, new merged
    stored = await runtime.store.load(first.run_id)  # type: ignore[union-attr]
    assert stored is not None
    assert stored.run.status == "ok"
    assert stored.run.inputs == {"name": "Ada", "email": "ada@example.com"}


async def test_once_runs_once_under_retries_and_resume(runtime: plait.Runtime) -> None:
    charges: list[tuple[str, str]] = []
    attempts: list[int] = []
    broken = [True]

    def charge(order: str, *, idempotency_key: str) -> dict[str, str]:
        charges.append((order, idempotency_key))
        return {"charge": f"ch_{len(charges)}", "order": order}

    @plait.step(retries=2, retry_delay=0)
    async def pay(ctx: plait.StepContext) -> str:
        attempts.append(ctx.attempt)
        receipt = await ctx.once("charge", charge, "order-7")
        if broken[0]:
            raise RuntimeError("the mail server is down")
        return f"{receipt['charge']} for {receipt['order']}"

    pipe = plait.Pipeline("shop", steps={"pay": pay})
    with pytest.raises(plait.StepFailed):
        await pipe.run({}, runtime=runtime, run_id="order-run")
    assert attempts == [1, 2, 3]
    assert charges == [("order-7", "order-run/once/charge")]  # once, over three attempts
    broken[0] = False
    result = await pipe.resume("order-run", runtime=runtime)
    assert result.output == "ch_1 for order-7"  # the recorded charge, not a new one
    assert charges == [("order-7", "order-run/once/charge")]
    # a new Runtime on the same file (another process, after a crash) sees it too
    other = plait.Runtime(entry_points=False, store=runtime.store.location)  # type: ignore[union-attr]
    again = await pipe.resume("order-run", runtime=other)
    assert again.output == "ch_1 for order-7"
    assert len(charges) == 1


async def test_once_without_a_store_still_dedupes_retries() -> None:
    calls: list[int] = []

    async def effect() -> int:
        calls.append(1)
        return 7

    @plait.step(retries=1, retry_delay=0)
    async def s(ctx: plait.StepContext) -> int:
        value = await ctx.once("fx", effect)
        if ctx.attempt == 1:
            raise RuntimeError("again")
        return value  # type: ignore[no-any-return]

    runtime = plait.Runtime(entry_points=False, store="off")
    result = await plait.Pipeline("p", steps={"s": s}).run(runtime=runtime)
    assert result.output == 7
    assert calls == [1]


AGENT = plait.Agent(model="fake:priced", max_tokens=10)


async def test_a_resumed_run_budget_counts_what_it_spent(tmp_path: Path) -> None:
    fake = FakeProvider()
    from plait_testing import PRICES, provider_plugin

    runtime = plait.Runtime(entry_points=False, store=tmp_path / "runs.db",
                            plugins=[provider_plugin(fake, "fake", prices=PRICES)])
    left: list[Decimal | None] = []
    fail = [True]

    @plait.step
    async def first(ctx: plait.StepContext) -> str:
        return (await ctx.ask(AGENT, "q")).text

    @plait.step
    async def second(ctx: plait.StepContext) -> str:
        left.append(ctx.budget_left)
        if fail[0]:
            await ctx.ask(AGENT, "q")
            raise RuntimeError("after paying")
        return (await ctx.ask(AGENT, "q")).text

    limit = plait.usd("0.01")
    pipe = plait.Pipeline("paid", steps={"first": first, "second": second},
                          deps={"second": ["first"]}, config=plait.Config(budget=limit))
    with pytest.raises(plait.StepFailed) as info:
        await pipe.run({}, runtime=runtime, run_id="paid-1")
    spent = info.value.partial.usage.cost  # type: ignore[union-attr]
    assert spent > 0
    assert left == [limit - spent / 2]
    fail[0] = False
    result = await pipe.resume("paid-1", runtime=runtime)
    assert left[-1] == limit - spent  # the failed attempt's call is counted too
    stored = await runtime.store.load("paid-1")  # type: ignore[union-attr]
    assert stored is not None
    assert stored.run.usage.cost == spent + result.usage.cost
    # a budget the earlier spend already used up refuses the resumed run's calls
    fail[0] = True
    with pytest.raises(plait.StepFailed):
        await pipe.run({}, runtime=runtime, run_id="paid-2")
    tight = plait.Pipeline("paid", steps={"first": first, "second": second},
                           deps={"second": ["first"]},
                           config=plait.Config(budget=spent + spent / 4))
    fail[0] = False
    with pytest.raises(plait.BudgetExceeded):
        await tight.resume("paid-2", runtime=runtime)


async def test_a_changed_pipeline_is_refused_naming_the_change(runtime: plait.Runtime) -> None:
    flaky = Flaky()
    flaky.failing = {"final"}
    pipe = flaky.pipeline()
    with pytest.raises(plait.StepFailed):
        await pipe.run({"title": "T"}, runtime=runtime, run_id="r")
    steps = dict(pipe.steps)
    rewired = plait.Pipeline("flaky", steps=steps, deps={"shout": ["draft"], "final": ["shout"]})
    with pytest.raises(plait.ResumeError, match=r"step 'final' depends on \[shout\] now, "
                       r"on \[draft, shout\]") as info:
        await rewired.resume("r", runtime=runtime)
    assert "force=True" in str(info.value)
    removed = plait.Pipeline("flaky", steps={"draft": steps["draft"], "final": steps["final"]},
                             deps={"final": ["draft"]})
    with pytest.raises(plait.ResumeError, match="step 'shout' was removed"):
        await removed.resume("r", runtime=runtime)
    flaky.failing = set()
    flaky.calls.clear()
    forced = plait.Pipeline("flaky", steps={"draft": steps["draft"],
                                            "final": plait.step(lambda ctx: "forced")},
                            deps={"final": ["draft"]})
    result = await forced.resume("r", runtime=runtime, force=True)
    assert result.output == "forced"
    assert flaky.calls == []


async def test_resume_errors_are_typed(runtime: plait.Runtime) -> None:
    pipe = Flaky().pipeline()
    with pytest.raises(plait.ResumeError, match="no run 'ghost' in the run store"):
        await pipe.resume("ghost", runtime=runtime)
    result = await pipe.run({"title": "T"}, runtime=runtime)
    other = plait.Pipeline("other", steps={"s": plait.step(lambda ctx: 1)})
    with pytest.raises(plait.ResumeError, match="a run of pipeline 'flaky', not of 'other'"):
        await other.resume(result.run_id, runtime=runtime)
    with pytest.raises(plait.ResumeError, match="records no runs"):
        await pipe.resume(result.run_id, runtime=plait.Runtime(entry_points=False,
                                                               store="off"))


async def test_a_declarative_fan_out_resumes_item_by_item(runtime: plait.Runtime) -> None:
    ran: list[int] = []
    keys: dict[int, list[str]] = {}
    broken = {4}

    async def worker(ctx: plait.StepContext, item: int) -> Draft:
        ran.append(item)
        keys.setdefault(item, []).append(ctx.idempotency_key)
        if item in broken:
            raise ValueError(f"item {item}")
        return Draft(str(item), ("x",) * item)

    pipe = plait.Pipeline("drafts", steps={"fan": plait.FanOut(worker, over="items",
                                                               limit=2)})
    with pytest.raises(plait.StepFailed):
        await pipe.run({"items": list(range(6))}, runtime=runtime, run_id="fo")
    first = sorted(ran)
    assert 4 in first
    ran.clear()
    broken.clear()
    result = await pipe.resume("fo", runtime=runtime)
    assert sorted(ran) == [i for i in range(6) if i not in first or i == 4]
    assert list(result.output.values) == [Draft(str(i), ("x",) * i) for i in range(6)]
    assert keys[4] == ["fo/fan/4", "fo/fan/4"]  # the same key on both attempts


def test_what_a_crashed_run_spent_counts_each_row_once() -> None:
    from plait._resume import spent

    def u(cents: int) -> plait.Usage:
        return plait.Usage(calls=1, cost=Decimal(cents) / 100)

    def step(path: str, cents: int, attempt: int) -> plait.StepRow:
        return plait.StepRow("r", path, plait.StepRecord(path.rsplit("/")[-1], "ok",
                                                         usage=u(cents)), 1, attempt)

    def item(path: str, i: int, cents: int, attempt: int) -> plait.ItemRow:
        return plait.ItemRow("r", path, i, 9, i, usage=u(cents), attempt=attempt)

    stored = plait.StoredRun(
        plait.RunRow("r", "p", "running", 1.0, attempt=2, base=u(100)),
        {"a": step("a", 1000, 1),  # restored from attempt 1: already in the base
         "b": step("b", 10, 2), "b/inner": step("b/inner", 7, 2),  # inside b's total
         "n/x": step("n/x", 20, 2)},  # n itself never finished: its step counts
        {"fan": {0: item("fan", 0, 1, 2), 1: item("fan", 1, 2, 2),
                 2: item("fan", 2, 500, 1)},  # attempt 1's item: in the base
         "b/f": {0: item("b/f", 0, 300, 2)}})  # inside b
    assert spent(stored) == u(100) + u(10) + u(20) + u(1) + u(2)
    ended = attrs.evolve(stored, run=attrs.evolve(stored.run, status="failed", usage=u(7)))
    assert spent(ended) == u(7)  # an attempt that ended wrote its total


async def test_undeclared_outputs_are_restored_only_when_json_keeps_them(
        runtime: plait.Runtime) -> None:
    ran: list[str] = []
    values: dict[str, Any] = {"plain": {"a": [1, "x", None]}, "int_keys": {1: "a"},
                              "a_tuple": (1, 2), "an_object": Draft("t", ())}

    def make(name: str) -> Any:
        async def step(ctx: plait.StepContext):  # type: ignore[no-untyped-def]  # undeclared
            ran.append(name)
            return values[name]
        return step

    broken = [True]

    @plait.step
    async def last(ctx: plait.StepContext) -> str:
        ran.append("last")
        if broken[0]:
            raise RuntimeError("first time")
        return "done"

    names = list(values)
    pipe = plait.Pipeline("plain", steps={**{n: make(n) for n in names}, "last": last},
                          deps={"last": names})
    with pytest.raises(plait.StepFailed):
        await pipe.run({}, runtime=runtime, run_id="plain-1")
    ran.clear()
    broken[0] = False
    result = await pipe.resume("plain-1", runtime=runtime)
    # JSON would hand back "1" for 1, a list for the tuple, a dict for the object: those
    # steps run again; the plain one is restored as it was
    assert sorted(ran) == ["a_tuple", "an_object", "int_keys", "last"]
    assert result.outputs == {**values, "last": "done"}
