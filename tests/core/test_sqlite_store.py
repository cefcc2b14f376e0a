"""The embedded SQLite run store: the RunStoreContract, and the file's safety."""

from __future__ import annotations

import json
import sqlite3
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import anyio
import attrs
import plait
import pytest
from plait import _sqlite_store
from plait._sqlite_store import _CHECKED, APPLICATION_ID, MIGRATIONS, _params
from plait_testing.contracts import RunStoreContract

pytestmark = pytest.mark.anyio


class TestSQLiteStore(RunStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path):  # type: ignore[no-untyped-def]
        store = plait.SQLiteStore(tmp_path / "sub" / "runs.db")
        yield store
        await store.aclose()


async def test_a_file_that_is_not_sqlite_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    path.write_bytes(b"this is my thesis, not a database" * 100)
    with pytest.raises(plait.StoreError, match=str(path)) as info:
        await plait.SQLiteStore(path).open()
    assert "corrupt" in str(info.value)
    assert path.read_bytes() == b"this is my thesis, not a database" * 100


async def test_another_programs_database_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
        conn.execute("INSERT INTO customers VALUES (7)")
    with pytest.raises(plait.StoreError, match=r"not a plait run store.*customers"):
        await plait.SQLiteStore(path).open()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT id FROM customers").fetchall() == [(7,)]
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["customers"]


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    await plait.SQLiteStore(path).open()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    _CHECKED.clear()  # as in a new process, which has not checked the file yet
    with pytest.raises(plait.StoreError, match="newer plait"):
        await plait.SQLiteStore(path).open()


async def test_an_older_schema_is_migrated_keeping_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with sqlite3.connect(path) as conn:  # a file as the first version of the schema left it
        conn.executescript(MIGRATIONS[0])
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 1")
        conn.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?)",
                     _params(plait.RunRow("old", "p", "ok", 5.0)))
    _CHECKED.clear()
    store = plait.SQLiteStore(path)
    await store.open()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 2
    got = await store.load("old")
    assert got is not None
    assert got.run == plait.RunRow("old", "p", "ok", 5.0)
    assert got.calls == ()  # the table the second version added is there


async def test_schema_is_versioned_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = plait.SQLiteStore(path)
    await store.open()
    await store.open()  # again: nothing to migrate
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_write_failure_surfaces_at_flush(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = plait.SQLiteStore(path)
    await store.open()
    path.unlink()
    (tmp_path / "runs.db").mkdir()  # the file is gone and cannot come back
    store.write([plait.RunRow("r", "p", "running", 1.0)])
    with anyio.fail_after(30), pytest.raises(plait.StoreError, match=str(path)):
        await store.flush()
    await store.aclose()


WRITER = textwrap.dedent("""
    import sys, anyio, plait

    async def square(i: int) -> int:
        await anyio.sleep(0)
        return i * i

    @plait.step
    async def fan(ctx) -> list[int]:
        return list(await ctx.map(square, range(40), limit=8))

    pipe = plait.Pipeline("fanned", steps={"fan": fan})

    async def main(path, n):
        runtime = plait.Runtime(entry_points=False, store=path)
        async with anyio.create_task_group() as tg:  # five concurrent runs per process
            for r in range(5):
                tg.start_soon(lambda r=r: pipe.run({"n": n}, runtime=runtime,
                                                   run_id=f"p{n}-r{r}"))
        await runtime.aclose()

    anyio.run(main, sys.argv[1], int(sys.argv[2]))
""")


async def test_eight_processes_share_one_file_without_losing_a_row(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.db")
    failed: list[str] = []

    async def write(n: int) -> None:
        done = await anyio.run_process([sys.executable, "-c", WRITER, path, str(n)], check=False)
        if done.returncode:
            failed.append(f"writer {n} exited {done.returncode}: {done.stderr.decode()[-2000:]}")

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            for n in range(8):
                tg.start_soon(write, n)
    assert not failed, "\n".join(failed)
    store = plait.SQLiteStore(path)
    runs = await store.runs()
    assert len(runs) == 40
    assert {r.status for r in runs} == {"ok"}
    for n in range(8):
        for r in range(5):
            got = await store.load(f"p{n}-r{r}")
            assert got is not None
            assert got.run.inputs == {"n": n}
            assert got.steps["fan"].output == [i * i for i in range(40)]
            assert [row.value for row in got.items["fan"].values()] == [
                i * i for i in range(40)]


async def test_an_idle_writer_ends_and_the_next_write_starts_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sqlite_store, "_IDLE", 0.01)
    store = plait.SQLiteStore(tmp_path / "runs.db")
    store.write([plait.RunRow("a", "p", "ok", 1.0)])
    await store.flush()
    writer = store._thread
    assert writer is not None
    await anyio.to_thread.run_sync(writer.join, 10)  # no rows for a while: it ends
    assert not writer.is_alive()
    assert store._thread is None
    store.write([plait.RunRow("b", "p", "ok", 2.0)])
    assert store._thread is not None
    await store.flush()
    assert [r.run_id for r in await store.runs()] == ["b", "a"]
    await store.aclose()


def test_a_step_record_is_kept_whole() -> None:
    """Steps are written as compact lists by hand, not through the converter: a field
    added to StepRecord or Usage and not to those lists would be lost on a resume."""
    usage = plait.Usage(1, 2, 3, 4, Decimal("0.5"), 6, cache_hits=7, unpriced=8)
    child = plait.StepRecord("c", "ok", 1, usage=usage)
    record = plait.StepRecord("s", "failed", 2, 1.0, 2.0, 1.0, usage,
                              plait.ErrorInfo("E", "m", 3), "route", {"c": child},
                              {"fake:m": usage})
    for field in attrs.fields(plait.StepRecord):
        assert getattr(record, field.name) != field.default, field.name  # all set
    kept = json.loads(json.dumps(_sqlite_store._record(record)))
    assert _sqlite_store._record_back(kept) == record
