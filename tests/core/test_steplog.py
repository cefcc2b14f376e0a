"""The built-in step log: JSON lines per step and per run, enabled by PLAIT_STEP_LOG."""

from __future__ import annotations

import datetime
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import plait
import pytest
from plait_testing import PRICES, FakeProvider, provider_plugin


@pytest.fixture
def log_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "steps.jsonl"
    monkeypatch.setenv("PLAIT_STEP_LOG", str(path))
    return path


@pytest.fixture
async def runtime(no_network: httpx.MockTransport, anyio_backend: Any
                  ) -> AsyncIterator[tuple[plait.Runtime, FakeProvider]]:
    """Built when the test asks for it: after the environment is set."""
    fake = FakeProvider()
    async with plait.Runtime(entry_points=False, transport=no_network,
                             plugins=[provider_plugin(fake, "fake", prices=PRICES)]) as rt:
        yield rt, fake


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _rotate(path: Path) -> Path:
    return path.rename(path.with_suffix(".1"))


def _const(value: Any) -> plait.FunctionStep:
    @plait.step
    async def const(ctx: plait.StepContext) -> Any:
        return value

    return const


async def test_one_line_per_step_and_one_per_run(
    log_path: Path, runtime: tuple[plait.Runtime, FakeProvider]
) -> None:
    rt, fake = runtime
    fake.script("Tea is a drink.")
    agent = plait.Agent(model="fake:priced", max_tokens=10)
    pipe = plait.Pipeline(
        "faq", steps={"topic": _const("tea"), "answer": agent.as_step("Explain {topic}.")},
        deps={"answer": ["topic"]})
    result = await pipe.run({}, runtime=rt, run_id="run-1")

    topic, answer, run = _lines(log_path)
    assert topic["event"] == answer["event"] == "step"
    assert (topic["step"], answer["step"]) == ("topic", "answer")
    assert answer == {
        **answer,
        "run_id": "run-1", "pipeline": "faq", "status": "ok", "attempts": 1,
        "input_tokens": 2, "output_tokens": 4, "calls": 1,
        "cost_usd": str(result.usage.cost), "route": None, "error": None,
    }
    assert answer["latency_s"] >= 0
    started = datetime.datetime.fromisoformat(answer["started_at"])
    ended = datetime.datetime.fromisoformat(answer["ended_at"])
    assert started.tzinfo == datetime.UTC
    assert started <= ended
    assert "inputs" not in answer
    assert "output" not in answer  # content is opt-in
    assert run == {
        **run, "event": "run", "run_id": "run-1", "pipeline": "faq", "status": "ok",
        "input_tokens": 2, "output_tokens": 4, "calls": 1, "cost_usd": str(result.usage.cost),
        "error": None,
    }


async def test_a_streamed_call_is_logged_with_its_usage(
    log_path: Path, runtime: tuple[plait.Runtime, FakeProvider]
) -> None:
    rt, fake = runtime
    fake.script("Tea is a drink.")
    agent = plait.Agent(model="fake:priced", max_tokens=10)
    pipe = plait.Pipeline("faq", steps={"answer": agent.as_step("Explain tea.", stream=True)})
    result = await pipe.run({}, runtime=rt)
    answer, run = _lines(log_path)
    assert (answer["step"], answer["status"]) == ("answer", "ok")
    assert (answer["input_tokens"], answer["output_tokens"], answer["calls"]) == (2, 4, 1)
    assert run["cost_usd"] == str(result.usage.cost) != "0"


async def test_failures_are_logged_with_their_error(
    log_path: Path, runtime: tuple[plait.Runtime, FakeProvider]
) -> None:
    rt, _ = runtime

    @plait.step(retries=1, retry_delay=0)
    async def broken(ctx: plait.StepContext) -> None:
        raise ValueError("no good")

    pipe = plait.Pipeline("p", steps={"ok": _const(1), "broken": broken, "after": _const(2)},
                          deps={"after": ["broken"]}, output="after")
    with pytest.raises(plait.StepFailed):
        await pipe.run({}, runtime=rt, run_id="r")

    lines = {line.get("step", "run"): line for line in _lines(log_path)}
    assert set(lines) == {"ok", "broken", "run"}  # a skipped step never started
    assert lines["broken"]["status"] == "failed"
    assert lines["broken"]["attempts"] == 2
    assert lines["broken"]["error"] == {"type": "ValueError", "message": "no good"}
    assert lines["run"]["status"] == "failed"
    assert lines["run"]["error"]["type"] == "StepFailed"
    assert lines["run"]["calls"] == 0


async def test_routes_nested_steps_stops_and_cancellations(
    log_path: Path, runtime: tuple[plait.Runtime, FakeProvider]
) -> None:
    rt, _ = runtime
    started = anyio.Event()

    @plait.step
    async def slow(ctx: plait.StepContext) -> None:
        started.set()
        await anyio.sleep_forever()

    @plait.step
    async def stop(ctx: plait.StepContext) -> plait.Stop:
        await started.wait()  # so the stop cancels a running step
        return plait.Stop("enough")

    router = plait.Router("route", route=lambda ctx: "b",
                          branches={"a": _const("A"), "b": stop})
    pipe = plait.Pipeline("p", steps={"route": router, "slow": slow}, output="route")
    result = await pipe.run({}, runtime=rt)
    assert result.stopped_early

    lines = {line.get("step", "run"): line for line in _lines(log_path)}
    assert lines["route/b"]["status"] == "stopped"
    assert lines["route"] == {**lines["route"], "status": "stopped", "route": "b"}
    assert lines["slow"]["status"] == "cancelled"
    assert lines["slow"]["error"] is None
    assert lines["run"]["status"] == "stopped"


async def test_content_is_logged_when_asked(
    log_path: Path, monkeypatch: pytest.MonkeyPatch, runtime: tuple[plait.Runtime, FakeProvider]
) -> None:
    monkeypatch.setenv("PLAIT_STEP_LOG_CONTENT", "1")
    rt, _ = runtime

    @attrs.frozen
    class Doc:
        title: str
        tags: tuple[str, ...]

    @plait.step
    async def upper(ctx: plait.StepContext) -> Doc:
        doc = ctx.dep("doc")
        return Doc(doc.title.upper(), doc.tags)

    pipe = plait.Pipeline("p", steps={"doc": _const(Doc("tea", ("b", "a"))),
                                      "upper": upper}, deps={"upper": ["doc"]})
    await pipe.run({}, runtime=rt)
    doc, up, _run = _lines(log_path)
    assert doc["inputs"] == {}
    assert up["inputs"] == {"doc": {"title": "tea", "tags": ["b", "a"]}}
    assert up["output"] == {"title": "TEA", "tags": ["b", "a"]}


async def test_dash_writes_to_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    runtime: tuple[plait.Runtime, FakeProvider],
) -> None:
    monkeypatch.setenv("PLAIT_STEP_LOG", "-")
    rt = plait.Runtime(entry_points=False)
    await plait.Pipeline("p", steps={"s": _const(1)}).run({}, runtime=rt, run_id="x")
    err = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["event"] for line in err] == ["step", "run"]


async def test_off_unless_the_variable_is_set_or_the_tracer_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], anyio_backend: Any
) -> None:
    monkeypatch.delenv("PLAIT_STEP_LOG", raising=False)
    quiet = plait.Runtime(entry_points=False)
    await plait.Pipeline("p", steps={"s": _const(1)}).run({}, runtime=quiet)
    assert not quiet.pm.has_plugin("tracer:steplog")
    assert capsys.readouterr().err == ""

    named = plait.Runtime(entry_points=False, tracers=["steplog"])
    await plait.Pipeline("p", steps={"s": _const(1)}).run({}, runtime=named)
    assert named.pm.has_plugin("tracer:steplog")
    assert len(capsys.readouterr().err.splitlines()) == 2  # stderr by default


async def test_a_log_that_cannot_be_written_warns_once_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, anyio_backend: Any
) -> None:
    monkeypatch.setenv("PLAIT_STEP_LOG", str(tmp_path / "missing-dir" / "log.jsonl"))
    rt = plait.Runtime(entry_points=False)
    pipe = plait.Pipeline("p", steps={"a": _const(1), "b": _const(2)}, deps={"b": ["a"]})
    with pytest.warns(RuntimeWarning, match="plait step log: cannot write to") as caught:
        result = await pipe.run({}, runtime=rt)
    assert result.output == 2
    assert len(caught) == 1


async def test_lines_append_across_runs(
    log_path: Path, runtime: tuple[plait.Runtime, FakeProvider]
) -> None:
    rt, _ = runtime
    pipe = plait.Pipeline("p", steps={"s": _const(1)})
    await pipe.run({}, runtime=rt, run_id="one")
    await pipe.run({}, runtime=rt, run_id="two")
    assert [(line["event"], line["run_id"]) for line in _lines(log_path)] == [
        ("step", "one"), ("run", "one"), ("step", "two"), ("run", "two")]


async def test_the_file_is_reopened_per_run_so_it_can_be_rotated(
    log_path: Path, runtime: tuple[plait.Runtime, FakeProvider]
) -> None:
    rt, _ = runtime
    pipe = plait.Pipeline("p", steps={"s": _const(1)})
    await pipe.run({}, runtime=rt, run_id="one")
    rotated = _rotate(log_path)
    await pipe.run({}, runtime=rt, run_id="two")
    assert {line["run_id"] for line in _lines(rotated)} == {"one"}
    assert {line["run_id"] for line in _lines(log_path)} == {"two"}
