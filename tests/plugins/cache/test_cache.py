"""plait-cache: hits and misses, what a hit costs, the key, concurrency, a corrupt file."""

from __future__ import annotations

import contextlib
import gc
import json
import pathlib
import sys
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import anyio
import plait
import plait_cache
import pytest
from click.testing import CliRunner
from plait._cli import cli
from plait_testing import PRICES, FakeProvider, provider_plugin

# max_tokens set: under a budget the engine caps an unset one, which changes the request
AGENT = plait.Agent("fake:priced", temperature=0, max_tokens=50)


@pytest.fixture
def db(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "replies.db"


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider(lambda request: f"answer to {request.messages[-1].content}")


def runtime(fake: FakeProvider, **cache: Any) -> plait.Runtime:
    return plait.Runtime(entry_points=False, settings={"cache": cache},
                         plugins=[plait_cache, provider_plugin(fake, prices=PRICES)])


@pytest.fixture
async def rt(fake: FakeProvider, db: pathlib.Path) -> AsyncIterator[plait.Runtime]:
    async with runtime(fake, path=str(db)) as r:
        yield r


async def test_a_repeated_request_is_answered_from_the_cache_for_free(
        rt: plait.Runtime, fake: FakeProvider) -> None:
    first = await AGENT.ask("hi", runtime=rt)
    second = await AGENT.ask("hi", runtime=rt)
    other = await AGENT.ask("bye", runtime=rt)
    assert fake.calls == 2
    assert second.text == first.text == "answer to hi"
    assert not first.cached
    assert first.usage.cost > 0
    assert second.cached
    assert second.usage.cost == 0
    assert second.usage.cache_hits == 1
    assert not other.cached


async def test_the_key_covers_model_settings_and_schema(rt: plait.Runtime,
                                                        fake: FakeProvider) -> None:
    await AGENT.ask("hi", runtime=rt)
    for changed in ({"max_tokens": 5}, {"system": "Be brief."}, {"stop": ("x",)},
                    {"seed": 1}, {"output": int}):
        fake_before = fake.calls
        # "answer to hi" is no int; the request was sent, which is the point
        with contextlib.suppress(plait.OutputParseError):
            await AGENT.ask("hi", runtime=rt, **changed)
        assert fake.calls > fake_before, changed
    await AGENT.ask("hi", runtime=rt, timeout=99)  # a timeout cannot change the answer
    assert fake.requests[-1].timeout != 99


async def test_a_hit_reserves_nothing_from_a_budget(rt: plait.Runtime,
                                                    fake: FakeProvider) -> None:
    def asking(prompt: str) -> plait.Pipeline:
        async def ask(ctx: plait.StepContext) -> plait.Reply:
            return await ctx.ask(AGENT, prompt)
        return plait.Pipeline("p", steps={"ask": plait.step(ask)},
                              config=plait.Config(budget=plait.usd("0")))

    await AGENT.ask("hi", runtime=rt)  # fill the cache outside any budget
    result = await asking("hi").run(runtime=rt)  # a $0 budget that no sent request fits
    assert result.output.cached
    assert result.usage.cost == 0
    assert result.steps["ask"].usage.cache_hits == 1
    assert json.loads(result.to_json())["steps"]["ask"]["usage"]["cache_hits"] == 1
    with pytest.raises(plait.BudgetExceeded):
        await asking("new").run(runtime=rt)
    assert fake.calls == 1


async def test_sampled_requests_are_cached_only_when_asked(fake: FakeProvider,
                                                           db: pathlib.Path) -> None:
    warm = plait.Agent("fake:priced", temperature=0.7)
    async with runtime(fake, path=str(db)) as rt:
        assert not (await warm.ask("hi", runtime=rt)).cached
        assert not (await warm.ask("hi", runtime=rt)).cached
    async with runtime(fake, path=str(db), sampled=True) as rt:
        await warm.ask("hi", runtime=rt)
        assert (await warm.ask("hi", runtime=rt)).cached
    assert fake.calls == 3


async def test_two_identical_requests_in_flight_make_one_request(db: pathlib.Path) -> None:
    slow = FakeProvider(lambda request: "slow answer", latency=0.2)
    async with runtime(slow, path=str(db)) as rt:
        replies: list[plait.Reply] = []

        async def ask() -> None:
            replies.append(await AGENT.ask("same", runtime=rt))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(ask)
                tg.start_soon(ask)
    assert slow.calls == 1
    assert sorted(r.cached for r in replies) == [False, True]
    assert {r.text for r in replies} == {"slow answer"}


async def test_when_the_first_of_two_identical_requests_fails_the_second_sends_its_own(
        db: pathlib.Path) -> None:
    flaky = FakeProvider([plait.BadRequest("no", provider="fake", model="priced"), "ok"],
                         latency=0.1)
    async with runtime(flaky, path=str(db)) as rt:
        outcomes: list[Any] = []

        async def ask() -> None:
            try:
                outcomes.append((await AGENT.ask("same", runtime=rt)).text)
            except plait.BadRequest as exc:
                outcomes.append(type(exc).__name__)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(ask)
                tg.start_soon(ask)
    assert sorted(outcomes) == ["BadRequest", "ok"]
    assert flaky.calls == 2


async def test_the_cache_is_off_without_a_path_and_path_none_beats_the_environment(
        fake: FakeProvider, db: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(plait_cache.ENV, raising=False)
    async with runtime(fake) as rt:
        await AGENT.ask("hi", runtime=rt)
        assert not (await AGENT.ask("hi", runtime=rt)).cached
    monkeypatch.setenv(plait_cache.ENV, str(db))
    async with runtime(fake, path=None) as rt:
        await AGENT.ask("hi", runtime=rt)
        assert not (await AGENT.ask("hi", runtime=rt)).cached
    assert not await anyio.Path(db).exists()
    async with runtime(fake) as rt:  # PLAIT_CACHE alone turns it on
        await AGENT.ask("hi", runtime=rt)
        assert (await AGENT.ask("hi", runtime=rt)).cached
    assert await anyio.Path(db).exists()


async def test_a_misspelled_setting_is_a_typed_error(fake: FakeProvider) -> None:
    async with runtime(fake, paht="x.db") as rt:
        with pytest.raises(plait_cache.CacheError, match=r"unknown cache setting.*paht"):
            await AGENT.ask("hi", runtime=rt)


SCRIPT = textwrap.dedent("""
    import sys, anyio, plait, plait_cache
    from plait_testing import PRICES, FakeProvider, provider_plugin
    fake = FakeProvider(lambda request: "from the other process")
    rt = plait.Runtime(entry_points=False, settings={"cache": {"path": sys.argv[1]}},
                       plugins=[plait_cache, provider_plugin(fake, prices=PRICES)])
    request = plait.ModelRequest("priced", (plait.Message("user", "hi"),), temperature=0,
                                 max_tokens=50)
    print(plait_cache.request_key("fake", request))
    agent = plait.Agent("fake:priced", temperature=0, max_tokens=50)
    reply = anyio.run(lambda: agent.ask("hi", runtime=rt))
    print(reply.text, fake.calls)
""")


async def test_the_key_is_stable_across_processes(fake: FakeProvider, db: pathlib.Path) -> None:
    env = {"PYTHONHASHSEED": "12345", "PATH": ""}
    with anyio.fail_after(60):
        done = await anyio.run_process([sys.executable, "-c", SCRIPT, str(db)], env=env)
    key, answer = done.stdout.decode().splitlines()
    assert answer == "from the other process 1"
    request = plait.ModelRequest("priced", (plait.Message("user", "hi"),), temperature=0,
                                 max_tokens=50)
    assert plait_cache.request_key("fake", request) == key
    async with runtime(fake, path=str(db)) as rt:  # this process reads what that one wrote
        reply = await AGENT.ask("hi", runtime=rt)
    assert reply.cached
    assert reply.text == "from the other process"
    assert fake.calls == 0


@pytest.fixture
def corrupt(db: pathlib.Path) -> pathlib.Path:
    db.write_bytes(b"this is not a database " * 200)
    return db


async def test_a_corrupt_cache_file_is_a_typed_error_naming_it(fake: FakeProvider,
                                                               corrupt: pathlib.Path) -> None:
    db = corrupt
    async with runtime(fake, path=str(db)) as rt:
        with pytest.raises(plait_cache.CacheCorrupt, match=str(db)) as caught:
            await AGENT.ask("hi", runtime=rt)
    assert caught.value.path == str(db)
    assert fake.calls == 0
    # nothing deleted behind your back
    assert (await anyio.Path(db).read_bytes()).startswith(b"this is not")
    result = CliRunner().invoke(cli, ["cache", "clear", "--path", str(db)])
    assert result.exit_code == 0, result.output
    assert "removed the corrupt cache file" in result.output
    assert not await anyio.Path(db).exists()


async def test_cache_stats_and_clear_commands(fake: FakeProvider, db: pathlib.Path) -> None:
    async with runtime(fake, path=str(db)) as rt:
        first = await AGENT.ask("hi", runtime=rt)
        await AGENT.ask("hi", runtime=rt)
        await AGENT.ask("hi", runtime=rt)
    del rt
    gc.collect()  # hits are written in batches, the rest when the Runtime's cache goes
    runner = CliRunner()
    stats = runner.invoke(cli, ["cache", "stats"], env={"PLAIT_CACHE": str(db)})
    assert stats.exit_code == 0, stats.output
    assert "entries  1" in stats.output
    assert "hits     2" in stats.output
    assert f"saved    ${(first.usage.cost * 2).normalize():f}" in stats.output
    cleared = runner.invoke(cli, ["cache", "clear", "--path", str(db)])
    assert "removed 1 entry" in cleared.output
    missing = runner.invoke(cli, ["cache", "stats"], env={"PLAIT_CACHE": ""})
    assert missing.exit_code == 2
    assert "PLAIT_CACHE" in missing.output


def test_plait_runs_shows_a_hit_as_a_free_cache_hit_and_an_unpriced_call_as_unknown(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cached_flow.py").write_text(textwrap.dedent("""
        import plait

        echo = plait.Agent(model="fake:echo", temperature=0)

        @plait.step
        async def ask(ctx):
            return (await ctx.ask(echo, "hi")).output

        pipe = plait.Pipeline("cached", {"ask": ask})
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PLAIT_STORE", str(tmp_path / "runs.db"))
    monkeypatch.setenv("PLAIT_CACHE", str(tmp_path / "replies.db"))
    runner = CliRunner()
    for _ in range(2):
        assert runner.invoke(cli, ["run", "cached_flow:pipe"]).exit_code == 0
        gc.collect()  # the cache writes what it holds when the Runtime goes
    listed = runner.invoke(cli, ["runs"]).output.splitlines()
    hit, sent = (line.split("  ") for line in listed[1:])
    assert [c.strip() for c in hit if c.strip()][-3:] == ["0 + 1 cached", "0", "$0"]
    assert [c.strip() for c in sent if c.strip()][-3:] == ["1", "2", "unknown"]
    runs = json.loads(runner.invoke(cli, ["runs", "--json"]).output)
    shown = runner.invoke(cli, ["runs", "show", runs[0]["run_id"]]).output.splitlines()
    assert shown[1].endswith(" s  0 calls, 1 from cache, 0/0 tokens, $0  "
                             "fake:echo: 0 calls, 1 from cache, 0/0 tokens, $0"), shown
    sent_shown = runner.invoke(cli, ["runs", "show", runs[1]["run_id"]]).output.splitlines()
    assert "1 call, 1/1 tokens, unknown  fake:echo: 1 call, 1/1 tokens, unknown" in sent_shown[1]
    assert "call fake:echo" in sent_shown[2]
