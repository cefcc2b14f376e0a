"""The cache file: one SQLite table of responses, read and written with stdlib sqlite3.

Why sqlite3 and not diskcache: the same speed for this job (see docs/plugins/cache.md
for the numbers), no dependency, and entries stored as JSON rather than pickles, so a
cache file shared between machines or users can be read without running its contents.

WAL journaling with ``synchronous=NORMAL`` keeps a write to a few tens of microseconds
(no fsync per entry; a power cut can lose the last entries, never corrupt the file),
so lookups and writes run inline on the event loop instead of a worker thread, which
would cost more than the query. Several processes may share one file.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import attrs
import plait

from ._errors import CacheCorrupt, CacheError

__all__ = ["HIT_BATCH", "SCHEMA_VERSION", "CacheStats", "Store", "clear"]

SCHEMA_VERSION = 1
HIT_BATCH = 64  # hits counted in memory before the totals are written
_SCHEMA = ("""
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    response TEXT NOT NULL,  -- JSON: text, parsed, finish_reason, model
    cost TEXT NOT NULL,      -- what the request cost when it was sent, exact USD
    created REAL NOT NULL
)""", """
CREATE TABLE IF NOT EXISTS totals (  -- one row: what the hits saved, over the file's life
    id INTEGER PRIMARY KEY CHECK (id = 1),
    hits INTEGER NOT NULL,
    saved TEXT NOT NULL
)""", "INSERT OR IGNORE INTO totals VALUES (1, 0, '0')")


@attrs.define
class _Pending:
    """Hits not yet written to the totals."""

    hits: int = 0
    saved: Decimal = Decimal(0)


@attrs.frozen
class CacheStats:
    """What ``plait cache stats`` shows."""

    path: str
    entries: int
    hits: int  # answers given from the cache, over the file's life
    saved: Decimal  # what those answers cost when they were first sent
    size_bytes: int


class Store:
    """One cache file, opened on first use; safe to share between tasks and threads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        # Hits are counted in memory and written HIT_BATCH at a time (a write per hit
        # doubled the cost of a hit); what is left is written on close or at exit.
        self._pending = _Pending()
        self._open: list[sqlite3.Connection] = []  # the connection, for the finalizer
        weakref.finalize(self, _write_hits, self._open, self._pending)

    def get(self, key: str) -> plait.ModelResponse | None:
        with self._lock, self._guard():
            conn = self._connect()
            row = conn.execute("SELECT response, cost FROM replies WHERE key = ?",
                               (key,)).fetchone()
            if row is None:
                return None
            self._pending.hits += 1
            self._pending.saved += Decimal(row[1])
            if self._pending.hits >= HIT_BATCH:
                _write_hits(self._open, self._pending)
        try:
            data = json.loads(row[0])
            return plait.ModelResponse(data["text"], finish_reason=data["finish_reason"],
                                       parsed=data["parsed"], model=data["model"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CacheCorrupt(self.path, f"entry {key[:12]} is unreadable: {exc}") from exc

    def put(self, key: str, provider: str, model: str, response: plait.ModelResponse,
            cost: Decimal) -> None:
        """Record a response; one whose ``parsed`` value is not JSON is not recorded."""
        try:
            value = json.dumps({"text": response.text, "parsed": response.parsed,
                                "finish_reason": response.finish_reason,
                                "model": response.model}, ensure_ascii=False)
        except (TypeError, ValueError):
            return
        with self._lock, self._guard():
            self._connect().execute(
                "INSERT OR REPLACE INTO replies (key, provider, model, response, cost, "
                "created) VALUES (?, ?, ?, ?, ?, ?)",
                (key, provider, model, value, str(cost), time.time()))

    def stats(self) -> CacheStats:
        with self._lock, self._guard():
            conn = self._connect()
            _write_hits(self._open, self._pending)
            (entries,) = conn.execute("SELECT COUNT(*) FROM replies").fetchone()
            hits, saved = conn.execute("SELECT hits, saved FROM totals").fetchone()
        size = sum(p.stat().st_size for p in _files(self.path) if p.exists())
        return CacheStats(str(self.path), entries, hits, Decimal(saved), size)

    def close(self) -> None:
        with self._lock, self._guard():
            if self._conn is not None:
                _write_hits(self._open, self._pending)
                self._conn.close()
                self._conn = None
                self._open.clear()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=10)
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, SCHEMA_VERSION):
                    raise CacheCorrupt(self.path, f"schema version {version}, expected "
                                                  f"{SCHEMA_VERSION}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                columns = {r[1] for r in conn.execute("PRAGMA table_info(replies)")}
                if not {"key", "response", "cost"} <= columns:
                    raise CacheCorrupt(self.path, "its replies table is not a plait cache's")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            self._open.append(conn)
        return self._conn

    def clear(self) -> int:
        """Remove every entry; returns how many there were."""
        with self._lock, self._guard():
            conn = self._connect()
            removed: int = conn.execute("DELETE FROM replies").rowcount
            conn.execute("UPDATE totals SET hits = 0, saved = '0'")
            self._pending.hits, self._pending.saved = 0, Decimal(0)
            conn.execute("VACUUM")
        return removed

    def _guard(self) -> contextlib.AbstractContextManager[None]:
        return _translated(self.path)


@contextlib.contextmanager
def _translated(path: Path) -> Iterator[None]:
    """sqlite3's errors as the cache's: a damaged file is ``CacheCorrupt``, a file that
    cannot be opened or written (permissions, a full disk, locked too long) ``CacheError``."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise CacheError(f"cannot use the plait cache file {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise CacheCorrupt(path, str(exc)) from exc


def clear(path: str | os.PathLike[str]) -> int | None:
    """Empty the cache at ``path``: the number of entries removed (0 for no file), or
    ``None`` when the file was corrupt and was deleted instead."""
    store = Store(path)
    if not store.path.exists():
        return 0
    try:
        return store.clear()
    except CacheCorrupt:
        store.close()
        for file in _files(store.path):
            file.unlink(missing_ok=True)
        return None
    finally:
        store.close()


def _write_hits(conns: list[sqlite3.Connection], pending: _Pending) -> None:
    if conns and pending.hits:
        conn = conns[0]
        conn.execute("BEGIN IMMEDIATE")  # read and add under the write lock, one commit
        try:
            (saved,) = conn.execute("SELECT saved FROM totals").fetchone()
            conn.execute("UPDATE totals SET hits = hits + ?, saved = ?",
                         (pending.hits, str(Decimal(saved) + pending.saved)))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    pending.hits, pending.saved = 0, Decimal(0)


def _files(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
