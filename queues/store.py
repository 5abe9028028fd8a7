"""Where jobs are persisted: in memory (default, nothing survives) or one SQLite table.

Every state transition is saved (an upsert keyed by id_hash), so after a crash the file
holds each job's last state; ``JobQueues`` resumes the ones left todo or running.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import aiosqlite

from queues.errors import StoreConfigError, StoreUnavailableError
from queues.models import Job

_COLUMNS = (
    "id_hash",
    "question",
    "client_id",
    "state",
    "created_at",
    "started_at",
    "finished_at",
    "answer",
    "error",
    "attempts",
)

# ``seq`` keeps insertion order: an upsert leaves it untouched, so load() returns jobs in
# the order they were pushed, whatever state they reached.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id_hash TEXT NOT NULL UNIQUE,
    question TEXT NOT NULL,
    client_id TEXT,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    answer TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
)
"""

_UPSERT = (
    f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
    "ON CONFLICT(id_hash) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c != "id_hash")
)


@runtime_checkable
class JobStore(Protocol):
    async def open(self) -> None: ...

    async def save(self, job: Job) -> None: ...

    async def delete(self, id_hash: str) -> None: ...

    async def load(self) -> list[Job]: ...

    async def close(self) -> None: ...


class MemoryStore:
    """The default: the queues themselves are the only copy, so there is nothing to do."""

    async def open(self) -> None:
        return None

    async def save(self, job: Job) -> None:
        return None

    async def delete(self, id_hash: str) -> None:
        return None

    async def load(self) -> list[Job]:
        return []

    async def close(self) -> None:
        return None


class SqliteStore:
    """One ``jobs`` table in WAL mode, autocommit: each save is its own transaction.

    A write the file refuses (locked past ``busy_timeout`` s, disk full) raises
    ``StoreUnavailableError``: the transaction left the file as it was.
    """

    def __init__(self, path: str | Path, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        if self._db is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against a killed process (not a power cut) and much faster.
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute(f"PRAGMA busy_timeout={round(self.busy_timeout * 1000)}")
            await db.execute(_SCHEMA)
        except BaseException:
            await db.close()
            raise
        self._db = db

    async def save(self, job: Job) -> None:
        row = job.to_dict()
        with _refused_writes():
            await self._conn.execute(_UPSERT, [row[c] for c in _COLUMNS])

    async def delete(self, id_hash: str) -> None:
        with _refused_writes():
            await self._conn.execute("DELETE FROM jobs WHERE id_hash = ?", (id_hash,))

    async def load(self) -> list[Job]:
        sql = f"SELECT {', '.join(_COLUMNS)} FROM jobs ORDER BY seq"
        rows = await self._conn.execute_fetchall(sql)
        return [_job_from_row(row) for row in rows]

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError(f"SqliteStore({str(self.path)!r}) is not open; await open()")
        return self._db


@contextlib.contextmanager
def _refused_writes() -> Iterator[None]:
    """SQLite's refusals (SQLITE_BUSY, SQLITE_FULL, I/O errors) -> StoreUnavailableError."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise StoreUnavailableError(str(exc)) from exc


def _job_from_row(row: Iterable[object]) -> Job:
    return Job.from_dict(dict(zip(_COLUMNS, row, strict=True)))


def open_store(url: str, busy_timeout: float = 5.0) -> JobStore:
    """A store (not yet opened) for ``memory`` or ``sqlite:///relative/or/absolute.db``.

    As with SQLAlchemy URLs, ``sqlite:///jobs.db`` is relative to the working directory
    and ``sqlite:////var/lib/genie/jobs.db`` is absolute.
    """
    text = url.strip()
    if text.lower() in ("", "memory", "memory://"):
        return MemoryStore()
    prefix = "sqlite:///"
    if text.lower().startswith(prefix) and len(text) > len(prefix):
        return SqliteStore(Path(text[len(prefix) :]), busy_timeout)
    raise StoreConfigError(
        f"unknown job store {url!r}; use 'memory' or 'sqlite:///path/to/jobs.db'"
    )
