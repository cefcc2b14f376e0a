"""What the Runtime records of a run: rows as the run goes, model calls, and nothing secret."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import plait
import pytest
from plait._durable import recorded_output
from plait_testing import PRICES, FakeProvider, provider_plugin

pytestmark = pytest.mark.anyio

AGENT = plait.Agent(model="fake:priced", system="Be brief.", max_tokens=20)


def asking() -> plait.Pipeline:
    @plait.step
    async def ask(ctx: plait.StepContext) -> str:
        return (await ctx.ask(AGENT, f"about {ctx.input('topic')}")).text

    async def each(word: str) -> str:
        return word

    @plait.step
    async def fan(ctx: plait.StepContext) -> list[str]:
        return list(await ctx.map(each, ctx.dep("ask").split()))

    return plait.Pipeline("asking", steps={"ask": ask, "fan": fan}, deps={"fan": ["ask"]})


def files_of(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.glob("runs.db*"))


def runtime_at(path: Path, fake: FakeProvider, **options: object) -> plait.Runtime:
    options.setdefault("store", path)
    return plait.Runtime(entry_points=False, settings={"fake": {
        "api_key": "sk-secret-never-written"}},
        plugins=[provider_plugin(fake, "fake", prices=PRICES)], **options)  # type: ignore[arg-type]


async def test_a_run_is_recorded_with_its_model_calls(tmp_path: Path) -> None:
    fake = FakeProvider(["tides and moons"])
    runtime = runtime_at(tmp_path / "runs.db", fake)
    result = await asking().run({"topic": "the sea"}, runtime=runtime)
    stored = await runtime.store.load(result.run_id)  # type: ignore[union-attr]
    assert stored is not None
    run = stored.run
    assert (run.pipeline, run.status, run.inputs) == ("asking", "ok", {"topic": "the sea"})
    assert run.structure == {"ask": (), "fan": ("ask",)}
    assert run.usage == result.usage
    assert run.ended_at is not None
    assert run.ended_at >= run.started_at
    assert stored.steps["ask"].output == "tides and moons"
    assert stored.steps["ask"].record == result.steps["ask"]
    assert {i: r.value for i, r in stored.items["fan"].items()} == {0: "tides", 1: "and",
                                                                   2: "moons"}
    [call] = stored.calls
    assert (call.path, call.model, call.attempt) == ("ask", "fake:priced", 1)
    assert call.usage == result.steps["ask"].usage
    assert call.usage.cost > 0
    assert call.latency_s >= 0
    assert (call.prompt, call.reply) == (None, None)  # content is not kept by default
    assert b"sk-secret-never-written" not in files_of(tmp_path)


async def test_content_is_kept_only_when_asked(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_STORE_CONTENT", "1")
    runtime = runtime_at(tmp_path / "runs.db", FakeProvider(["tides"]))
    result = await asking().run({"topic": "the sea"}, runtime=runtime)
    stored = await runtime.store.load(result.run_id)  # type: ignore[union-attr]
    assert stored is not None
    [call] = stored.calls
    assert call.prompt == (("system", "Be brief."), ("user", "about the sea"))
    assert call.reply == "tides"


async def test_a_failed_call_is_recorded_with_its_error(tmp_path: Path) -> None:
    fake = FakeProvider([plait.BadRequest("no", provider="fake", model="priced", status=400)])
    runtime = runtime_at(tmp_path / "runs.db", fake)
    with pytest.raises(plait.StepFailed):
        await asking().run({"topic": "x"}, runtime=runtime, run_id="bad")
    stored = await runtime.store.load("bad")  # type: ignore[union-attr]
    assert stored is not None
    assert stored.run.status == "failed"
    assert stored.run.error is not None
    assert "BadRequest" in stored.run.error.message
    assert [c.error.type for c in stored.calls if c.error] == ["BadRequest"]


async def test_a_store_that_fails_at_the_end_keeps_the_result(tmp_path: Path) -> None:
    class FullDisk(plait.SQLiteStore):
        async def flush(self) -> None:
            raise plait.StoreError(self.location, "database or disk is full")

    runtime = runtime_at(tmp_path / "runs.db", FakeProvider(["a b"]),
                         store=FullDisk(tmp_path / "runs.db"))
    with anyio.fail_after(30), pytest.warns(plait.StoreWarning, match="disk is full"):
        result = await asking().run({"topic": "x"}, runtime=runtime)
    assert result.output == ["a", "b"]


async def test_a_corrupt_store_fails_a_run_before_any_step(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    path.write_bytes(b"\x00garbage" * 512)
    ran: list[str] = []

    @plait.step
    async def s(ctx: plait.StepContext) -> int:
        ran.append("s")
        return 1

    runtime = plait.Runtime(entry_points=False, store=path)
    with pytest.raises(plait.StoreError, match=str(path)):
        await plait.Pipeline("p", steps={"s": s}).run(runtime=runtime)
    assert ran == []
    assert path.read_bytes() == b"\x00garbage" * 512


def test_where_a_runtime_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plait._stores import default_location

    monkeypatch.delenv("PLAIT_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # platformdirs on Linux
    assert default_location() == str(tmp_path / "data" / "plait" / "runs.db")
    store = plait.Runtime(entry_points=False).store
    assert isinstance(store, plait.SQLiteStore)
    assert store.location == default_location()
    monkeypatch.setenv("PLAIT_STORE", str(tmp_path / "elsewhere.db"))
    assert plait.Runtime(entry_points=False).store.location == str(  # type: ignore[union-attr]
        tmp_path / "elsewhere.db")
    for off in ("off", "OFF", " off ", False):
        runtime = plait.Runtime(entry_points=False, store=off)
        assert runtime.store is None
        assert runtime.listeners == ()
    monkeypatch.setenv("PLAIT_STORE", "off")
    assert plait.Runtime(entry_points=False).store is None
    mine = plait.SQLiteStore(tmp_path / "mine.db")
    assert plait.Runtime(entry_points=False, store=mine).store is mine
    with pytest.raises(TypeError, match=r"Runtime\(store=...\) must be a path"):
        plait.Runtime(entry_points=False, store=42)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "plain"), [
    ([1, "a", None, [2.5, True]], True),
    ({"k": [1, {"n": False}]}, True),
    ([1, (2, 3)], False),  # a tuple comes back from JSON as a list
    ({1: "a"}, False),  # an int key comes back as a string
    ([Decimal("1.5")], False),  # JSON holds it only through the converter
])
def test_an_output_is_recorded_as_a_copy_and_plain_only_if_json_gives_it_back(
        value: Any, plain: bool) -> None:
    data, is_plain = recorded_output(value, plait.Runtime(entry_points=False).converter)
    assert is_plain is plain
    if plain:
        assert json.loads(json.dumps(data)) == data == value
    if isinstance(value, list):
        value.append("added later")  # a step mutating what it returned after the record
        assert data[-1] != "added later"
