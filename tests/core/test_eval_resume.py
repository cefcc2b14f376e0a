"""A resumable eval: finished cases are restored from the run store, the rest run."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import anyio
import attrs
import plait
import pytest
from click.testing import CliRunner
from plait._calls import estimate_input_tokens
from plait._cli import cli
from plait_testing import PRICES, FakeProvider, provider_plugin

pytestmark = pytest.mark.anyio

AGENT = plait.Agent("fake:priced", max_tokens=10)
# words of one length: every case costs the same and reserves the same worst case
CASES = [{"inputs": {"word": f"w{i:02d}"}, "expected": f"w{i:02d}", "id": f"c{i}"}
         for i in range(12)]


@pytest.fixture
def runtime(tmp_path: pathlib.Path) -> plait.Runtime:
    return plait.Runtime(entry_points=False, store=tmp_path / "runs.db")


@pytest.fixture
def fake(runtime: plait.Runtime) -> FakeProvider:
    provider = FakeProvider()
    runtime.register(provider_plugin(provider, "fake", prices=PRICES))
    return provider


@plait.step(retries=0)
async def ask(ctx: plait.StepContext) -> str:
    return str((await ctx.ask(AGENT, ctx.input("word"))).output)


def timeless(report: plait.EvalReport) -> dict[str, Any]:
    """The report without what differs between an interrupted and a straight run."""
    variants = [attrs.evolve(v, latency_p50=0.0, latency_p95=0.0,
                             results=tuple(attrs.evolve(r, latency_s=0.0) for r in v.results))
                for v in report.variants]
    data: dict[str, Any] = json.loads(attrs.evolve(report, variants=variants).to_json())
    for key in ("eval_id", "restored", "budget", "stopped"):
        data.pop(key)
    return data


async def test_a_budget_stop_then_resume_runs_only_the_missing_cases(
        runtime: plait.Runtime, fake: FakeProvider) -> None:
    async with runtime:
        with anyio.fail_after(20):
            straight = await plait.evaluate(ask, CASES, runtime=runtime, limit=1,
                                            vary={"n": [1, 2]})
            cost = straight.variants[0].results[0].usage.cost
            # a call reserves its worst case: this budget lets 6 cases of the 24 finish
            budget = plait.Price.per_million("1", "2").worst_case(
                estimate_input_tokens(fake.requests[0]), 10) + cost * 5
            fake.requests.clear()
            first = await plait.evaluate(ask, CASES, runtime=runtime, limit=1,
                                         vary={"n": [1, 2]}, budget=budget)
            assert first.stopped is not None
            assert first.eval_id
            paid = len(fake.requests)
            finished = sum(1 for v in first.variants for r in v.results if r.error is None)
            assert finished == 6
            # the same budget again: the restored cases spent it all, nothing new runs
            again = await plait.evaluate(ask, CASES, runtime=runtime, limit=1,
                                         vary={"n": [1, 2]}, budget=budget,
                                         resume=first.eval_id)
            assert len(fake.requests) == paid, again
            assert again.stopped is not None
            assert again.restored == finished
            resumed = await plait.evaluate(ask, CASES, runtime=runtime, limit=1,
                                           vary={"n": [1, 2]}, budget=cost * 100,
                                           resume=first.eval_id)
    assert len(fake.requests) == paid + 24 - finished  # only the missing cases asked
    assert resumed.stopped is None
    assert resumed.restored == finished
    assert resumed.eval_id == first.eval_id
    assert timeless(resumed) == timeless(straight)
    assert resumed.usage.cost == straight.usage.cost


async def test_a_failed_case_resumes_its_run_without_repaying_its_finished_steps(
        runtime: plait.Runtime, fake: FakeProvider) -> None:
    failing = {"c1"}

    @plait.step(retries=0)
    def check(ctx: plait.StepContext) -> str:
        if ctx.input("word") == "w01" and failing:
            raise ValueError("not yet")
        return str(ctx.dep("ask"))

    pipe = plait.Pipeline("checked", steps={"ask": ask, "check": check}, deps={"check": ["ask"]})
    async with runtime:
        with anyio.fail_after(20):
            first = await plait.evaluate(pipe, CASES[:3], runtime=runtime)
            assert [r.error is not None for r in first.variants[0].results] == [False, True, False]
            assert len(fake.requests) == 3
            failing.clear()
            resumed = await plait.evaluate(pipe, CASES[:3], runtime=runtime,
                                           resume=first.eval_id)
    assert len(fake.requests) == 3  # c1's ask step was restored, its check ran again
    assert resumed.restored == 2
    assert resumed.variants[0].accuracy == 1.0


async def test_a_resume_that_does_not_fit_is_refused(runtime: plait.Runtime,
                                                     fake: FakeProvider) -> None:
    async with runtime:
        first = await plait.evaluate(ask, CASES[:3], runtime=runtime)
        changed = [*CASES[:2], {**CASES[2], "expected": "other"}]
        with pytest.raises(plait.ResumeError, match="case 'c2' changed"):
            await plait.evaluate(ask, changed, runtime=runtime, resume=first.eval_id)
        with pytest.raises(plait.ResumeError, match="case 'c3' was added"):
            await plait.evaluate(ask, CASES[:4], runtime=runtime, resume=first.eval_id)
        with pytest.raises(plait.ResumeError, match="variant 'n=1' was added"):
            await plait.evaluate(ask, CASES[:3], runtime=runtime, vary={"n": [1]},
                                 resume=first.eval_id)
        other = plait.Pipeline("ask", steps={"ask": ask, "more": plait.step(lambda ctx: 1)},
                               deps={"more": ["ask"]})
        with pytest.raises(plait.ResumeError, match="target 'ask' changed"):
            await plait.evaluate(other, CASES[:3], runtime=runtime, resume=first.eval_id)
        with pytest.raises(plait.ResumeError, match="metrics are"):
            await plait.evaluate(ask, CASES[:3], runtime=runtime, metrics=["contains"],
                                 resume=first.eval_id)
        with pytest.raises(plait.ResumeError, match="no eval 'nope'"):
            await plait.evaluate(ask, CASES[:3], runtime=runtime, resume="nope")
    async with plait.Runtime(entry_points=False, store="off") as bare:
        with pytest.raises(plait.ResumeError, match="records no runs"):
            await plait.evaluate(ask, CASES[:3], runtime=bare, resume=first.eval_id)
    assert len(fake.requests) == 3


FLOW = '''
import plait

calls = []

@plait.step
def double(ctx):
    calls.append(ctx.input("x"))
    return ctx.input("x") * 2
'''


def test_plait_eval_resume(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"evalresume_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(FLOW)
    cases = [{"inputs": {"x": i}, "expected": i * 2, "id": str(i)} for i in range(3)]
    (tmp_path / "cases.jsonl").write_text("\n".join(json.dumps(c) for c in cases))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLAIT_LOAD_PLUGINS", "")
    monkeypatch.setenv("PLAIT_STORE", str(tmp_path / "runs.db"))
    runner = CliRunner()
    first = runner.invoke(cli, ["eval", f"{name}:double", "--data", "cases.jsonl", "--json"])
    assert first.exit_code == 0, first.output
    eval_id = json.loads(first.stdout)["eval_id"]
    assert f"eval {eval_id}" in first.stderr
    import importlib
    module = importlib.import_module(name)
    assert sorted(module.calls) == [0, 1, 2]
    again = runner.invoke(cli, ["eval", f"{name}:double", "--data", "cases.jsonl",
                                "--resume", eval_id])
    assert again.exit_code == 0, again.output
    assert "3 case result(s) restored" in again.stdout
    assert sorted(module.calls) == [0, 1, 2]  # nothing ran again
    (tmp_path / "cases.jsonl").write_text(json.dumps({**cases[0], "expected": 5}))
    refused = runner.invoke(cli, ["eval", f"{name}:double", "--data", "cases.jsonl",
                                  "--resume", eval_id])
    assert refused.exit_code == 1
    assert "case '0' changed" in refused.output
    assert "case '1' was removed" in refused.output


async def test_an_eval_cancelled_part_way_keeps_what_finished(runtime: plait.Runtime) -> None:
    ran: list[str] = []
    blocking = True

    @plait.step
    async def slow(ctx: plait.StepContext) -> str:
        ran.append(ctx.input("word"))
        if ctx.input("word") == "w03" and blocking:
            await anyio.sleep_forever()
        return str(ctx.input("word"))

    three_done = anyio.Event()

    def progress(variant: str, done: int, total: int) -> None:
        if done == 3:
            three_done.set()

    async with runtime:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                async def interrupted() -> None:
                    await plait.evaluate(slow, CASES[:4], runtime=runtime, progress=progress,
                                         eval_id="ctrl-c")
                tg.start_soon(interrupted)
                await three_done.wait()
                tg.cancel_scope.cancel()  # as Ctrl-C does
            assert sorted(ran) == ["w00", "w01", "w02", "w03"]
            blocking = False
            ran.clear()
            report = await plait.evaluate(slow, CASES[:4], runtime=runtime, resume="ctrl-c")
    assert ran == ["w03"]
    assert report.restored == 3
    assert report.variants[0].accuracy == 1.0
