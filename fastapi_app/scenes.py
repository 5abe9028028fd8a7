"""Scenes (ordered text chunks) and their speech: SQLite store, fair scheduler, sessions.

- :class:`SceneStore`: scenes and every synthesized chunk in SQLite (``scenes_db``
  setting, default in memory), so a chunk is synthesized once and replayed from there
  by any flow: the old REST chunk route, a new session, a reconnect.
- :class:`FairScheduler`: ``slots`` chunks synthesize at once; the next slot goes to the
  waiting session that has been served the fewest chunks, so a new session's first
  chunk waits for at most the chunks already synthesizing, never for another scene.
- :class:`SessionManager`: seeds 000-002's sessions. Generation starts when the session
  is created; sockets attach, detach and re-attach (resume) while it runs. A session
  nobody is attached to expires ``ttl`` seconds after its last activity.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import itertools
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiosqlite
import miniaudio

from tts.engine import SpeechEngine
from tts.errors import TTSError

DEMO_TITLE = "Demo scene"
DEMO_CHUNKS = [
    "Once upon a time, a small genie lived inside a brass lamp on a dusty shelf.",
    "Every morning it polished the lamp from the inside and waited for a question.",
    "One day a girl picked up the lamp, rubbed it twice, and asked for a story.",
    "So the genie began to speak, one chunk at a time, and she listened to every word.",
]
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS scenes (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "title TEXT, chunks TEXT NOT NULL, created_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS scene_audio (scene_id INTEGER NOT NULL, chunk INTEGER NOT "
    "NULL, voice_key TEXT NOT NULL, audio BLOB NOT NULL, duration REAL NOT NULL, "
    "PRIMARY KEY (scene_id, chunk, voice_key))",
)


class SceneNotFoundError(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Scene:
    id: int
    title: str | None
    chunks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChunkAudio:
    number: int  # 1-based, as in the seeds
    audio: bytes
    duration: float


@dataclass(frozen=True, slots=True)
class Voice:
    """How a scene is spoken; part of the key of every stored chunk."""

    voice: str | None = None
    lang: str = "en"
    speed: float = 1.0

    def key(self, text: str) -> str:
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return f"mp3|{self.voice}|{self.lang}|{self.speed:g}|{digest}"


def mp3_duration(data: bytes) -> float:
    try:
        return float(miniaudio.mp3_get_info(data).duration)
    except miniaudio.DecodeError:
        return 0.0


class SceneStore:
    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            for statement in _SCHEMA:
                await db.execute(statement)
        except BaseException:
            await db.close()
            raise
        self._db = db
        if not await self._conn.execute_fetchall("SELECT id FROM scenes LIMIT 1"):
            await self.create(DEMO_TITLE, DEMO_CHUNKS)

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    async def create(self, title: str | None, chunks: list[str]) -> int:
        sql = "INSERT INTO scenes (title, chunks, created_at) VALUES (?, ?, ?)"
        cursor = await self._conn.execute(sql, (title, json.dumps(chunks), time.time()))
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    async def get(self, scene_id: int) -> Scene:
        sql = "SELECT id, title, chunks FROM scenes WHERE id = ?"
        rows = list(await self._conn.execute_fetchall(sql, (scene_id,)))
        if not rows:
            raise SceneNotFoundError(f"scene {scene_id} not found")
        row = rows[0]
        return Scene(int(row[0]), row[1], tuple(json.loads(row[2])))

    async def audio(self, scene_id: int, number: int, key: str) -> ChunkAudio | None:
        sql = (
            "SELECT audio, duration FROM scene_audio "
            "WHERE scene_id = ? AND chunk = ? AND voice_key = ?"
        )
        rows = list(await self._conn.execute_fetchall(sql, (scene_id, number, key)))
        return ChunkAudio(number, bytes(rows[0][0]), float(rows[0][1])) if rows else None

    async def save_audio(self, scene_id: int, key: str, chunk: ChunkAudio) -> None:
        sql = "INSERT OR REPLACE INTO scene_audio VALUES (?, ?, ?, ?, ?)"
        await self._conn.execute(sql, (scene_id, chunk.number, key, chunk.audio, chunk.duration))

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("SceneStore is not open")
        return self._db


class FairScheduler:
    """At most ``slots`` holders; the next slot goes to the least-served waiting key."""

    def __init__(self, slots: int = 2) -> None:
        self._free = max(1, slots)
        self._served: Counter[str] = Counter()
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    @contextlib.asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        await self._acquire(key)
        try:
            yield
        finally:
            self._release()

    def forget(self, key: str) -> None:
        self._served.pop(key, None)

    async def _acquire(self, key: str) -> None:
        if self._free > 0 and not self._heap:
            self._free -= 1
            self._served[key] += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (self._served[key], next(self._seq), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # the slot arrived with the cancel: pass it on
            raise
        self._served[key] += 1

    def _release(self) -> None:
        while self._heap:
            _, _, future = heapq.heappop(self._heap)
            if not future.done():
                future.set_result(None)
                return
        self._free += 1


@dataclass(eq=False)
class SceneSession:
    id: str
    scene: Scene
    subject: str | None
    voice: Voice
    chunks: list[ChunkAudio] = field(default_factory=list)
    state: str = "generating"  # generating | complete | stopped | error
    error: str | None = None
    error_chunk: int | None = None
    attached: int = 0
    touched: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def total(self) -> int:
        return len(self.scene.chunks)

    @property
    def duration(self) -> float:
        return sum(chunk.duration for chunk in self.chunks)

    def changed(self) -> asyncio.Event:
        """The event set at the next change (take it BEFORE looking at the state)."""
        return self._changed

    def notify(self) -> None:
        self.touched = time.monotonic()
        event, self._changed = self._changed, asyncio.Event()
        event.set()


class SessionManager:
    def __init__(
        self, store: SceneStore, engine: SpeechEngine, *, ttl: float = 300.0, slots: int = 2
    ) -> None:
        self.store, self.engine, self.ttl = store, engine, ttl
        self.scheduler = FairScheduler(slots)
        self.sessions: dict[str, SceneSession] = {}
        self.default_voice = Voice()  # what the old REST chunk route serves

    async def create(
        self, scene_id: int, subject: str | None = None, voice: Voice | None = None
    ) -> SceneSession:
        scene = await self.store.get(scene_id)
        session = SceneSession(uuid.uuid4().hex, scene, subject, voice or self.default_voice)
        self.sessions[session.id] = session
        session.task = asyncio.create_task(self._generate(session), name=f"scene-{session.id}")
        return session

    def get(self, session_id: str) -> SceneSession | None:
        self.expire()
        return self.sessions.get(session_id)

    def stop(self, session: SceneSession) -> None:
        if session.state == "generating" and session.task is not None:
            session.task.cancel()

    def expire(self) -> None:
        now = time.monotonic()
        for session in list(self.sessions.values()):
            if session.attached == 0 and now - session.touched > self.ttl:
                self.stop(session)
                del self.sessions[session.id]

    async def run_sweeper(self, interval: float = 5.0) -> None:
        while True:
            await asyncio.sleep(min(interval, max(self.ttl / 2, 0.05)))
            self.expire()

    async def generate_all(self, scene_id: int, voice: Voice | None = None) -> list[ChunkAudio]:
        """The old flow: every chunk (stored or synthesized now), in order."""
        scene = await self.store.get(scene_id)
        key = f"rest-{uuid.uuid4().hex}"
        try:
            return [
                await self.chunk(scene, n, voice or self.default_voice, key)
                for n in range(1, len(scene.chunks) + 1)
            ]
        finally:
            self.scheduler.forget(key)

    async def chunk(self, scene: Scene, number: int, voice: Voice, fair_key: str) -> ChunkAudio:
        text = scene.chunks[number - 1]
        key = voice.key(text)
        stored = await self.store.audio(scene.id, number, key)
        if stored is not None:
            return stored
        async with self.scheduler.turn(fair_key):
            audio = await self.engine.synthesize(
                text, voice=voice.voice, lang=voice.lang, speed=voice.speed, fmt="mp3"
            )
        chunk = ChunkAudio(number, audio, mp3_duration(audio))
        await self.store.save_audio(scene.id, key, chunk)
        return chunk

    async def aclose(self) -> None:
        tasks = [s.task for s in self.sessions.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.sessions.clear()

    async def _generate(self, session: SceneSession) -> None:
        try:
            for number in range(1, session.total + 1):
                try:
                    chunk = await self.chunk(session.scene, number, session.voice, session.id)
                except TTSError as exc:
                    session.state, session.error, session.error_chunk = "error", str(exc), number
                    return
                session.chunks.append(chunk)
                session.notify()
            session.state = "complete"
        except asyncio.CancelledError:
            session.state = "stopped"
            raise
        finally:
            self.scheduler.forget(session.id)
            session.notify()
