"""The embedded run store: one SQLite file, shared by every process and run that uses it.

- Writes never touch the event loop: ``write`` appends rows to a queue, and one writer
  thread per store drains it in batches, each batch one transaction (the thread ends
  after a while without rows, and the next write starts another). ``flush`` waits (in
  a worker thread) until everything queued before it is committed.
- Many processes share the file: WAL journal, a busy timeout, and ``BEGIN IMMEDIATE``
  so writers take turns instead of failing; rows are upserts by their key, so a row
  written twice is kept once.
- The schema is versioned (``PRAGMA user_version``) and migrated forward in a
  transaction; the file is marked as plait's (``PRAGMA application_id``). A file that is
  corrupt, not SQLite, another program's database or from a newer plait raises
  ``StoreError`` naming it, and is never changed.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import anyio.to_thread

from ._errors import StoreError
from ._money import Usage
from ._results import ErrorInfo, StepRecord
from ._serialize import from_json, to_json
from ._store import CallRow, ItemRow, OnceRow, Row, RunRow, StepRow, StoredRun

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SQLiteStore"]

_LINGER = 0.001  # seconds the writer lets rows gather before a transaction
_IDLE = 2.0  # seconds without rows after which the writer thread ends
APPLICATION_ID = 0x706C6169  # "plai": marks the file as a plait run store

# MIGRATIONS[n] takes the schema from version n to n + 1; append, never edit.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE runs (run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, status TEXT NOT NULL,
                       started_at REAL NOT NULL, data TEXT NOT NULL);
    CREATE INDEX runs_started ON runs (started_at);
    CREATE TABLE steps (run_id TEXT NOT NULL, path TEXT NOT NULL, data TEXT NOT NULL,
                        PRIMARY KEY (run_id, path)) WITHOUT ROWID;
    CREATE TABLE items (seq INTEGER PRIMARY KEY, run_id TEXT NOT NULL, path TEXT NOT NULL,
                        data TEXT NOT NULL);
    CREATE INDEX items_run ON items (run_id, path);
    CREATE TABLE once (run_id TEXT NOT NULL, name TEXT NOT NULL, data TEXT NOT NULL,
                       PRIMARY KEY (run_id, name)) WITHOUT ROWID;
    """,
    """
    CREATE TABLE calls (run_id TEXT NOT NULL, call_id TEXT NOT NULL, at REAL NOT NULL,
                        data TEXT NOT NULL, PRIMARY KEY (run_id, call_id)) WITHOUT ROWID;
    """,
]

_UPSERT = {
    RunRow: "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?)",
    StepRow: "INSERT OR REPLACE INTO steps VALUES (?, ?, ?)",
    OnceRow: "INSERT OR REPLACE INTO once VALUES (?, ?, ?)",
    CallRow: "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?)",
}
_ITEMS = "INSERT INTO items (run_id, path, data) VALUES (?, ?, ?)"
_TABLES = ("runs", "steps", "items", "once", "calls")

# Steps and items are the rows a run writes most of (one per fan-out item): they are kept
# as compact JSON lists written by hand, not through the converter, and the items a
# batch holds for one fan-out share one table row (a later item replaces an earlier one
# with its index when read back).


def _usage(u: Usage) -> list[Any]:
    return [u.input_tokens, u.output_tokens, u.cached_tokens, u.calls, str(u.cost), u.requests,
            u.cache_hits, u.unpriced]


def _usage_back(v: list[Any]) -> Usage:
    hits, unpriced = v[6:8] if len(v) > 6 else (0, 0)  # rows written before they were kept
    return Usage(v[0], v[1], v[2], v[3], Decimal(v[4]), v[5], cache_hits=hits,
                 unpriced=unpriced)


def _error(e: ErrorInfo | None) -> list[Any] | None:
    return None if e is None else [e.type, e.message, e.requests]


def _error_back(v: list[Any] | None) -> ErrorInfo | None:
    return None if v is None else ErrorInfo(v[0], v[1], v[2])


def _record(r: StepRecord) -> list[Any]:
    return [r.step_id, r.status, r.attempts, r.started_at, r.ended_at, r.latency_s,
            _usage(r.usage), _error(r.error), r.route,
            {k: _record(c) for k, c in r.children.items()},
            {k: _usage(u) for k, u in r.models.items()}]


def _record_back(v: list[Any]) -> StepRecord:
    models = v[10] if len(v) > 10 else {}  # rows written before models were kept
    return StepRecord(v[0], v[1], v[2], v[3], v[4], v[5], _usage_back(v[6]),
                      _error_back(v[7]), v[8], {k: _record_back(c) for k, c in v[9].items()},
                      {k: _usage_back(u) for k, u in models.items()})


def _step_data(row: StepRow) -> str:
    return json.dumps([_record(row.record), row.output, row.attempt, row.plain])


def _step_back(run_id: str, path: str, data: str) -> StepRow:
    record, output, attempt, plain = json.loads(data)
    return StepRow(run_id, path, _record_back(record), output, attempt, plain)


def _item(row: ItemRow) -> list[Any]:
    return [row.index, row.total, row.value, _error(row.error), _usage(row.usage),
            row.attempt, row.plain]


def _item_back(run_id: str, path: str, v: list[Any]) -> ItemRow:
    return ItemRow(run_id, path, v[0], v[1], v[2], _error_back(v[3]), _usage_back(v[4]),
                   v[5], v[6])


def _run_data(row: RunRow) -> str:
    return json.dumps([row.pipeline, row.status, row.started_at, row.fingerprint,
                       row.structure, row.inputs, row.ended_at, _usage(row.usage),
                       _usage(row.base), _error(row.error), row.stop, row.attempt, row.target])


def _run_back(run_id: str, data: str) -> RunRow:
    v = json.loads(data)
    return RunRow(run_id, v[0], v[1], v[2], v[3], {k: tuple(d) for k, d in v[4].items()},
                  v[5], v[6], _usage_back(v[7]), _usage_back(v[8]), _error_back(v[9]), v[10],
                  v[11], v[12])


def _items_data(items: list[list[Any]]) -> str:
    try:
        return json.dumps(items)
    except (TypeError, ValueError):  # some value JSON cannot hold: leave out those items
        return json.dumps([item for item in items if _dumps_ok(item)])


def _dumps_ok(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _params(row: RunRow | StepRow | OnceRow | CallRow) -> tuple[Any, ...]:
    if isinstance(row, StepRow):
        return row.run_id, row.path, _step_data(row)
    if isinstance(row, CallRow):
        return row.run_id, row.call_id, row.at, to_json(row)
    if isinstance(row, RunRow):
        return row.run_id, row.pipeline, row.status, row.started_at, _run_data(row)
    return row.run_id, row.name, to_json(row)


class SQLiteStore:
    """A run store in the SQLite file at ``path`` (created, with its directory, on first
    use). ``busy_timeout`` is how long a write waits for another process's; ``batch`` the
    most rows one transaction writes."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0,
                 batch: int = 2000) -> None:
        self.path = os.fspath(path)
        self.location = self.path
        self._key = os.path.abspath(self.path)
        self._busy = busy_timeout
        self._batch = batch
        self._ready = False
        self._open_lock = threading.Lock()
        self._cond = threading.Condition()
        self._queue: collections.deque[Row] = collections.deque()
        self._queued = 0  # rows ever queued
        self._written = 0  # rows ever committed (or given up on, see _failure)
        self._failure: StoreError | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self._flushing = 0  # flushes waiting: the writer then commits at once

    def __repr__(self) -> str:
        return f"<plait.SQLiteStore {self.path!r}>"

    # -- opening ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self._busy, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(self.path, f"cannot open: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(self.path, f"not a SQLite database, or a corrupt one ({exc}); "
                             "move it away or set PLAIT_STORE to another file") from exc
        return conn

    def _open_sync(self) -> None:
        with self._open_lock:
            if self._ready:
                return
            directory = os.path.dirname(os.path.abspath(self.path))
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as exc:
                raise StoreError(self.path, f"cannot create its directory: {exc}") from exc
            conn = self._connect()
            try:
                self._migrate(conn)
            finally:
                conn.close()
            self._ready = True
            _CHECKED.add(self._key)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")  # one process migrates; the others then see it
            try:
                app = conn.execute("PRAGMA application_id").fetchone()[0]
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                tables = [r[0] for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")]
                if app != APPLICATION_ID and (app or version or tables):
                    raise StoreError(self.path, "not a plait run store (another program's "
                                     f"database: tables {', '.join(tables) or 'none'}); "
                                     "set PLAIT_STORE to another file")
                if version > len(MIGRATIONS):
                    raise StoreError(self.path, f"schema version {version} was written by a "
                                     f"newer plait (this one knows up to {len(MIGRATIONS)}); "
                                     "upgrade plait")
                for script in MIGRATIONS[version:]:
                    for statement in script.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise StoreError(self.path, f"not a SQLite database, or a corrupt one ({exc}); "
                             "move it away or set PLAIT_STORE to another file") from exc

    async def open(self) -> None:
        if not self._ready:
            if self._key in _CHECKED:  # another store of this process checked the file
                self._ready = True
                return
            await anyio.to_thread.run_sync(self._open_sync)

    # -- writing ------------------------------------------------------------------------

    def write(self, rows: Sequence[Row]) -> None:
        if not rows:
            return
        with self._cond:
            idle = not self._queue
            self._queue.extend(rows)
            self._queued += len(rows)
            if self._thread is None:
                self._start_writer()
            elif idle:  # the writer waits only on an empty queue
                self._cond.notify()

    def _start_writer(self) -> None:
        thread = threading.Thread(target=self._writer, name=f"plait-store {self.path}",
                                  daemon=True)
        self._thread = thread
        _LIVE.add(self)
        thread.start()

    def _writer(self) -> None:
        conn: sqlite3.Connection | None = None
        while True:
            with self._cond:
                if not self._queue and not self._closing:
                    self._cond.wait(_IDLE)
                if not self._queue:  # closing, or idle: the next write starts a new writer
                    self._thread = None
                    break
                if not (self._flushing or self._closing or len(self._queue) >= self._batch):
                    # let rows gather, so one transaction writes many (a flush cuts it short)
                    self._cond.wait(_LINGER)
                batch = [self._queue.popleft()
                         for _ in range(min(self._batch, len(self._queue)))]
            try:
                if conn is None:
                    self._open_sync()
                    conn = self._connect()
                self._commit(conn, batch)
            except Exception as exc:  # kept, and raised by the next flush
                failure = exc if isinstance(exc, StoreError) else StoreError(
                    self.path, f"could not write {len(batch)} rows: "
                    f"{type(exc).__name__}: {exc}")
                with self._cond:
                    self._failure = self._failure or failure
            with self._cond:
                self._written += len(batch)
                self._cond.notify_all()
        if conn is not None:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[Row]) -> None:
        groups: dict[str, list[tuple[Any, ...]]] = {}
        fanouts: dict[tuple[str, str], list[Any]] = {}
        for row in batch:  # one statement per kind; order inside a kind is kept
            try:
                if isinstance(row, ItemRow):
                    fanouts.setdefault((row.run_id, row.path), []).append(_item(row))
                else:
                    groups.setdefault(_UPSERT[type(row)], []).append(_params(row))
            except (TypeError, ValueError):  # a value JSON cannot hold: that row only is
                continue  # left out (a step without its row runs again on resume)
        if fanouts:
            groups[_ITEMS] = [(run_id, path, _items_data(items))
                              for (run_id, path), items in fanouts.items()]
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in groups.items():
                conn.executemany(sql, params)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _wait_written(self, target: int) -> None:
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._written < target:
                    self._cond.wait()
            finally:
                self._flushing -= 1
            failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    async def flush(self) -> None:
        with self._cond:
            target = self._queued
            done = self._written >= target and self._failure is None
        if not done:
            await anyio.to_thread.run_sync(self._wait_written, target)

    def close_sync(self) -> None:
        """Write what is queued and stop the writer (also run at interpreter exit)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._cond:
            self._closing = False

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.close_sync)

    # -- reading ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        self._open_sync()
        conn = self._connect()
        try:
            yield conn
        except sqlite3.DatabaseError as exc:
            raise StoreError(self.path, f"cannot read: {exc}") from exc
        finally:
            conn.close()

    def _load_sync(self, run_id: str) -> StoredRun | None:
        with self._read() as conn:
            run = conn.execute("SELECT run_id, data FROM runs WHERE run_id = ?",
                               (run_id,)).fetchone()
            if run is None:
                return None
            steps = {path: _step_back(run_id, path, data) for path, data in conn.execute(
                "SELECT path, data FROM steps WHERE run_id = ?", (run_id,))}
            items: dict[str, dict[int, ItemRow]] = {}
            for path, data in conn.execute("SELECT path, data FROM items WHERE run_id = ? "
                                           "ORDER BY seq", (run_id,)):
                found = items.setdefault(path, {})
                for v in json.loads(data):
                    found[v[0]] = _item_back(run_id, path, v)
            items = {path: dict(sorted(rows.items())) for path, rows in items.items()}
            once = {row.name: row.value for row in (
                from_json(data, OnceRow) for (data,) in conn.execute(
                    "SELECT data FROM once WHERE run_id = ?", (run_id,)))}
            calls = tuple(from_json(data, CallRow) for (data,) in conn.execute(
                "SELECT data FROM calls WHERE run_id = ? ORDER BY at", (run_id,)))
            return StoredRun(_run_back(*run), steps, items, once, calls)

    async def load(self, run_id: str) -> StoredRun | None:
        return await anyio.to_thread.run_sync(self._load_sync, run_id)

    def _runs_sync(self, status: str | None, pipeline: str | None, since: float | None,
                   limit: int | None) -> list[RunRow]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("status", status), ("pipeline", pipeline)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("started_at >= ?")
            params.append(since)
        sql = ("SELECT run_id, data FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY started_at DESC" + (f" LIMIT {int(limit)}" if limit else ""))
        with self._read() as conn:
            return [_run_back(run_id, data) for run_id, data in conn.execute(sql, params)]

    async def runs(self, *, status: str | None = None, pipeline: str | None = None,
                   since: float | None = None, limit: int | None = None) -> list[RunRow]:
        return await anyio.to_thread.run_sync(self._runs_sync, status, pipeline, since, limit)

    def _delete_sync(self, run_ids: Sequence[str]) -> int:
        with self._read() as conn:
            conn.execute("BEGIN IMMEDIATE")
            removed = 0
            for run_id in run_ids:
                for table in _TABLES:
                    cur = conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
                    if table == "runs":
                        removed += cur.rowcount
            conn.execute("COMMIT")
            return removed

    async def delete(self, run_ids: Sequence[str]) -> int:
        await self.flush()  # a run still being written is deleted whole
        return await anyio.to_thread.run_sync(self._delete_sync, list(run_ids))

    def _older_sync(self, before: float) -> list[str]:
        with self._read() as conn:
            return [r[0] for r in conn.execute(
                "SELECT run_id FROM runs WHERE started_at < ?", (before,))]

    async def prune(self, before: float) -> int:
        old = await anyio.to_thread.run_sync(self._older_sync, before)
        return await self.delete(old) if old else 0


_LIVE: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()
# Files this process has checked and migrated: a new Runtime on one opens it without a
# thread hop (a run's start stays on the loop).
_CHECKED: set[str] = set()


@atexit.register
def _flush_at_exit() -> None:  # a process that ends normally writes what it queued
    for store in list(_LIVE):
        store.close_sync()
