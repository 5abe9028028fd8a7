"""Everything a running app holds, built and torn down by the lifespan.

``Runtime.start`` enters the services on an ``AsyncExitStack`` in dependency order
(speech engine, audio streams, job queues, background tasks) so they unwind in reverse:
background tasks are cancelled and gathered first, the speech engine closes last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from config import Settings
from fastapi_app.auth.access import Access
from fastapi_app.features import Features
from fastapi_app.metrics import AppMetrics
from fastapi_app.sockets.client import Client
from fastapi_app.sockets.connections import ConnectionManager, ManagerOptions
from fastapi_app.sockets.hub import Hub
from fastapi_app.sockets.socketio_compat import LegacySocketIO
from fastapi_app.streams import AudioStreams
from queues import JobService, build_job_queues
from tts.admission import SynthesisCaps
from tts.engine import SpeechEngine, build_speech_engine

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Runtime:
    settings: Settings
    features: Features
    access: Access
    legacy: LegacySocketIO
    metrics: AppMetrics | None
    connections: ConnectionManager | None
    hub: Hub
    streams: AudioStreams
    queues: JobService = field(init=False)
    speech: SpeechEngine | None = field(init=False, default=None)
    synthesis: SynthesisCaps = field(init=False, default_factory=SynthesisCaps)
    _tasks: set[asyncio.Task[None]] = field(init=False, default_factory=set)
    _drained: bool = field(init=False, default=False)

    @classmethod
    def assemble(
        cls, settings: Settings, features: Features, access: Access, legacy: LegacySocketIO,
        metrics: AppMetrics | None,
    ) -> Runtime:  # fmt: skip
        connections = None
        if features.native_ws:
            connections = ConnectionManager(_manager_options(settings, features))
        hub = Hub(
            connections=connections,
            legacy_io=legacy,
            link_streams=features.cancel_on_disconnect,
            log_audio=features.stage == "skeletal",
        )
        rt = cls(settings, features, access, legacy, metrics, connections, hub, AudioStreams())
        rt.synthesis = SynthesisCaps.from_settings(settings)
        if connections is not None and features.cancel_on_disconnect:
            connections.set_on_gone(rt.client_gone)
        return rt

    async def start(self, stack: contextlib.AsyncExitStack) -> None:
        if self.features.synthesize:
            self.speech = await stack.enter_async_context(build_speech_engine(self.settings))
        stack.push_async_callback(self.streams.aclose)
        stack.push_async_callback(self.access.aclose)  # a shared limiter's Redis pool
        queues = build_job_queues(
            self.settings, self.hub.emit_audio, self.hub.emit_event, server="fastapi"
        )
        self.queues = await stack.enter_async_context(queues)
        stack.push_async_callback(self._stop_tasks)
        self.spawn(self.legacy.run_clock(self.settings.clock_interval), "genie-clock")
        if self.connections is not None and self.connections.tick_interval() is not None:
            self.spawn(self.connections.run_upkeep(), "genie-ws-upkeep")
        if self.metrics is not None:
            self.metrics.watch(lambda: self)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    async def drain(self) -> None:
        """First step of a shutdown: close every socket (1012), keep every job."""
        if self._drained:
            return
        self._drained = True
        if self.connections is not None:
            await self.connections.drain()
        try:
            await self.legacy.close()
        except Exception:
            log.exception("closing Socket.IO clients failed")

    async def finish_running_jobs(self) -> None:
        """Give running jobs ``shutdown_job_grace`` seconds; the rest resume next start."""
        grace = self.settings.shutdown_job_grace
        queues = self.queues
        if grace <= 0 or not queues.running_here():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                # Polled: the queues offer no "running is empty" event (only wait_idle,
                # which also waits for todo to drain).
                while queues.running_here():  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

    async def client_gone(self, client: Client) -> None:
        """A /ws client left for good: cancel its queued jobs and its audio streams."""
        streams = self.streams.cancel_client(client.id)
        jobs = await self.queues.cancel_client_jobs(client.id)
        if jobs or streams:
            log.info(
                "client %s gone: %d job(s), %d stream(s) cancelled", client.id, len(jobs), streams
            )

    async def _stop_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.critical("background task %s died", task.get_name(), exc_info=task.exception())


def _manager_options(settings: Settings, features: Features) -> ManagerOptions:
    return ManagerOptions(
        queue_size=settings.ws_send_queue_size,
        history=settings.ws_resume_frames if features.sequence else 0,
        fleet=bool(settings.redis_url),
        resume_window=settings.ws_resume_window if features.sequence else 0.0,
        heartbeat_interval=settings.ws_heartbeat_interval if features.heartbeat else None,
        heartbeat_timeout=settings.ws_heartbeat_timeout,
        close_timeout=settings.ws_close_timeout,
    )
