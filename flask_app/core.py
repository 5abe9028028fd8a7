"""The legacy routes' work, done on the core's event loop (called through the bridge).

The shared queues and speech engine do the work; ``wire.legacy_http`` decides what each
outcome looks like; this module only strings them together for the Flask routes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Protocol

from config import Settings
from queues import JobService, build_job_queues
from tts.engine import SpeechEngine, build_speech_engine
from wire import legacy, legacy_http


class Emitter(Protocol):
    """Where the core's events go (see ``flask_app.emitter.SocketEmitter``)."""

    async def emit_audio(self, msg: str, client_id: str | None) -> None: ...

    async def emit_event(
        self, name: str, data: dict[str, Any], client_id: str | None = None
    ) -> None: ...

    def broadcast(self, name: str, data: dict[str, Any]) -> None: ...


@dataclass(eq=False)
class Core:
    settings: Settings
    queues: JobService
    speech: SpeechEngine
    emitter: Emitter

    @classmethod
    async def open(
        cls, settings: Settings, emitter: Emitter, stack: contextlib.AsyncExitStack
    ) -> Core:
        """Enter the speech engine, then the queues (so they close first)."""
        speech = await stack.enter_async_context(build_speech_engine(settings))
        queues = build_job_queues(settings, emitter.emit_audio, emitter.emit_event, server="flask")
        await stack.enter_async_context(queues)
        return cls(settings, queues, speech, emitter)

    async def push(self, raw_query: bytes) -> str:
        job = await self.queues.push_job(legacy_http.push_question(raw_query))
        return legacy_http.pushed(job)

    async def listing(self, name: str) -> dict[str, list[str]]:
        jobs = await self.queues.listing(legacy_http.checked_queue_name(name))
        return legacy.queue_listing(name, jobs)

    async def speak(self, text: str) -> tuple[bytes, str]:
        """The whole audio file for ``text`` and its media type."""
        media_type = self.speech.media_type()
        return await self.speech.synthesize(text), media_type

    async def answer(self, id_hash: str) -> tuple[bytes, str]:
        job = await self.queues.find(id_hash)
        return await self.speak(legacy_http.answer_text(job, id_hash))

    async def delete(self, id_hash: str) -> str:
        """Forget a finished job; its count, then the gong, go to every page."""
        await self.queues.delete(id_hash)
        sound = legacy.notification_sound(self.settings.notification_sound)
        self.emitter.broadcast(legacy.NOTIFICATION_SOUND_UPDATE, sound)
        return legacy_http.deleted(id_hash)

    def health(self) -> dict[str, Any]:
        queues = self.queues.health()
        return {
            "status": queues["status"],
            "jobs": self.queues.counts(),
            "queues": queues,
            "speech": self.speech.health(),
        }
