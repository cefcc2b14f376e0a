"""kill -9 mid-run, then resume: nothing recorded as done runs twice, and the restored
outputs are the first run's."""

from __future__ import annotations

import importlib.util
import os
import signal
import sqlite3
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import anyio
import plait
import pytest

pytestmark = pytest.mark.anyio

WORKFLOWS = textwrap.dedent('''
    import os, sys
    import anyio, plait

    def log(what):
        with open(os.environ["CRASH_LOG"], "a") as f:
            f.write(what + "\\n")

    def hang(where):
        return os.environ.get("CRASH_HANG") == where

    @plait.step
    async def s1(ctx) -> dict[str, int]:
        log("s1")
        return {"n": ctx.input("x")}

    @plait.step
    async def s2(ctx) -> dict[str, int]:
        log("s2")
        return {"n": ctx.dep("s1")["n"] + 1}

    @plait.step
    async def s3(ctx) -> int:
        log("s3")
        if hang("s3"):
            await anyio.sleep(3600)
        return ctx.dep("s2")["n"] * 10

    @plait.step
    async def s4(ctx) -> str:
        log("s4")
        return f"{ctx.dep('s1')['n']}-{ctx.dep('s3')}"

    chain = plait.Pipeline("chain", steps={"s1": s1, "s2": s2, "s3": s3, "s4": s4},
                           deps={"s2": ["s1"], "s3": ["s2"], "s4": ["s3", "s1"]})

    async def item(i: int) -> int:
        log(f"item{i}")
        if hang("fan") and i >= 12:
            await anyio.sleep(3600)
        return i * i

    @plait.step
    async def fan(ctx) -> list[int]:
        return list(await ctx.map(item, range(ctx.dep("s1")["n"] * 20), limit=4))

    @plait.step
    async def total(ctx) -> int:
        log("total")
        return sum(ctx.dep("fan"))

    fanned = plait.Pipeline("fanned", steps={"s1": s1, "fan": fan, "total": total},
                            deps={"fan": ["s1"], "total": ["fan"]})

    if __name__ == "__main__":
        pipe = {"chain": chain, "fanned": fanned}[sys.argv[1]]
        anyio.run(lambda: pipe.run({"x": 1}, run_id=sys.argv[2],
                                   runtime=plait.Runtime(entry_points=False)))
''')


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_workflows", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def count(db: Path, sql: str, *args: object) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return int(conn.execute(sql, args).fetchone()[0])
        except sqlite3.OperationalError:  # the schema is not there yet
            return 0


async def crash(tmp_path: Path, name: str, hang: str, sql: str, want: int) -> tuple[Path, Path]:
    """Run workflow ``name`` in a child process that hangs at ``hang``; once ``sql``
    counts ``want`` recorded rows, kill -9 it."""
    source = tmp_path / "workflows.py"
    source.write_text(WORKFLOWS)
    db, log = tmp_path / "runs.db", tmp_path / "calls.log"
    env = {**os.environ, "PLAIT_STORE": str(db), "CRASH_LOG": str(log), "CRASH_HANG": hang}
    child = await anyio.open_process([sys.executable, str(source), name, "run-1"], env=env,
                                     stdout=None, stderr=None)
    try:
        with anyio.fail_after(60):
            while count(db, sql, "run-1") < want:  # polling another process's file
                assert child.returncode is None, "the child ended before the crash"
                await anyio.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        with anyio.fail_after(30):
            await child.wait()
    assert child.returncode == -signal.SIGKILL
    return db, log


async def test_kill_9_in_a_chain_then_resume(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    db, log = await crash(tmp_path, "chain", "s3",
                          "SELECT count(*) FROM steps WHERE run_id = ?", 2)
    assert log.read_text().split() == ["s1", "s2", "s3"]
    runtime = plait.Runtime(entry_points=False, store=db)
    before = await runtime.store.load("run-1")  # type: ignore[union-attr]
    assert before is not None
    assert before.run.status == "running"

    monkeypatch.setenv("CRASH_LOG", str(log))
    monkeypatch.delenv("CRASH_HANG", raising=False)
    workflows = load(tmp_path / "workflows.py")
    result = await workflows.chain.resume("run-1", runtime=runtime)
    assert log.read_text().split() == ["s1", "s2", "s3", "s3", "s4"]  # s1, s2 once
    assert result.output == "1-20"
    assert result.outputs["s1"] == before.steps["s1"].output == {"n": 1}
    assert result.outputs["s2"] == before.steps["s2"].output == {"n": 2}
    after = await runtime.store.load("run-1")  # type: ignore[union-attr]
    assert after is not None
    assert (after.run.status, after.run.attempt) == ("ok", 2)


async def test_kill_9_in_a_fan_out_then_resume(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    db, log = await crash(tmp_path, "fanned", "fan",
                          "SELECT coalesce(sum(json_array_length(data)), 0) FROM items "
                          "WHERE run_id = ?", 12)
    first = log.read_text().split()
    assert sorted(first) == sorted(["s1", *(f"item{i}" for i in range(16))])
    runtime = plait.Runtime(entry_points=False, store=db)

    monkeypatch.setenv("CRASH_LOG", str(log))
    monkeypatch.delenv("CRASH_HANG", raising=False)
    workflows = load(tmp_path / "workflows.py")
    with anyio.fail_after(60):
        result = await workflows.fanned.resume("run-1", runtime=runtime)
    second = log.read_text().split()[len(first):]
    # the twelve recorded items are restored; the four that hung and the rest run
    assert sorted(second) == sorted([*(f"item{i}" for i in range(12, 20)), "total"])
    assert result.outputs["fan"] == [i * i for i in range(20)]
    assert result.output == sum(i * i for i in range(20))
