"""``RedisJobQueues``: the ``queues.JobService`` of a fleet. Every process on one Redis
shares one todo FIFO, one history and one set of counts.

Why the reliable-list pattern and not Streams: the original Genie lists todo, lets a
disconnected client's queued jobs be cancelled and puts a taken-over job back at the
*front*; a list does all three in one script, while a stream can neither delete from
the middle cheaply nor re-queue at the head. A lease is a deadline in a sorted set,
renewed while the job runs; every node reaps expired leases, so a job whose process
died (SIGKILL, OOM, host gone) is run again by another and ends in one terminal state.

Per-client frames (``audio_update``, ``queued``) are numbered by Redis per client,
kept for the resume window and sent to the node that holds the client (``route`` in
the push and finish scripts);
a client that reconnects to any node gets what it missed (``resume_client``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from fleet import link, scripts
from fleet.bus import Bus
from fleet.link import DOWN, Keys, stop_if_cancelled
from queues.admission import NO_CAPS, Admission
from queues.errors import (
    JobActiveError,
    JobNotFoundError,
    QueueBusyError,
    QueueClosedError,
    QueueUnavailableError,
)
from queues.fifo import THINKING, WAITING_MANY, WAITING_ONE
from queues.handlers import load_handler
from queues.models import Job, JobHandler, JobState, validate_question
from queues.running import CANCELLED, NOTICE, expiry_notice, run_handler, speech_for
from queues.service import (
    COUNT_EVENTS,
    cancel_all,
    close_handler,
    queue_key,
    report_crash,
)

if TYPE_CHECKING:
    from config import Settings

log = logging.getLogger(__name__)

# Count events on the wire -> the queue names of counts().
COUNTED = {event: name for name, event in COUNT_EVENTS.items()}
POLL = 0.5  # a consumer looks at todo at least this often (a wake-up can be missed)
RETRY_AFTER = 1.0
WAITING = (THINKING, WAITING_ONE, WAITING_MANY)  # the push script picks one


class EmitAudio(Protocol):
    """The adapter's ``emit_audio``; ``seq`` numbers a per-client frame (None: broadcast)."""

    async def __call__(
        self, msg: str, client_id: str | None, *, seq: int | None = None
    ) -> None: ...


class EmitEvent(Protocol):
    async def __call__(
        self,
        name: str,
        data: dict[str, Any],
        client_id: str | None = None,
        *,
        seq: int | None = None,
    ) -> None: ...


class RedisJobQueues:
    shares_sessions = True

    def __init__(
        self,
        *,
        url: str,
        prefix: str,
        handler: JobHandler,
        emit_audio: EmitAudio,
        emit_event: EmitEvent,
        consumers: int = 1,
        job_timeout: float = 30.0,
        lease: float = 10.0,
        history_limit: int = 1000,
        session_ttl: float = 90.0,
        session_frames: int = 256,
        max_attempts: int = 3,
        admission: Admission = NO_CAPS,
        max_wait: float = 0.0,
        server: str = "genie",
        socketio_channel: str | None = None,
    ) -> None:
        self.url, self.keys, self.node = url, Keys(prefix), link.node_name()
        self.server = server
        self.admission, self.max_wait = admission, max_wait
        self.socketio_channel = socketio_channel  # None: a queue without Socket.IO pages
        self.consumers, self.job_timeout, self.lease = consumers, job_timeout, lease
        self.history_limit, self.max_attempts = history_limit, max_attempts
        self.session_ttl, self.session_frames = max(1, round(session_ttl)), session_frames
        self._handler = handler
        self._emit_audio, self._emit_event = emit_audio, emit_event
        self._counts = dict.fromkeys(("todo", "running", "done", "dead"), 0)
        self._running: dict[str, Job] = {}  # jobs this node's consumers hold leases on
        self._attached: set[str] = set()  # clients this node holds (registry kept fresh)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._state = "new"
        self.redis: Any = None
        self.bus: Bus | None = None
        self.takeovers = 0  # jobs this node took back from dead consumers
        self._oldest_created = 0.0  # the oldest todo job's push time, as of the last upkeep

    @classmethod
    def from_settings(
        cls, settings: Settings, emit_audio: EmitAudio, emit_event: EmitEvent, *, server: str
    ) -> RedisJobQueues:
        assert settings.redis_url is not None
        return cls(
            url=settings.redis_url,
            prefix=settings.redis_channel,
            handler=load_handler(settings),
            emit_audio=emit_audio,
            emit_event=emit_event,
            consumers=settings.consumers,
            job_timeout=settings.job_timeout,
            lease=settings.job_lease,
            history_limit=settings.history_limit,
            session_ttl=settings.ws_resume_window + 60,
            session_frames=max(settings.ws_resume_frames, 1),
            admission=Admission.from_settings(settings),
            max_wait=settings.max_wait,
            server=server,
            socketio_channel=settings.socketio_channel,
        )

    # --- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> RedisJobQueues:
        if self._state != "new":
            raise RuntimeError("a RedisJobQueues can be entered only once")
        self.redis = link.connect(self.url)
        try:
            await link.check_reachable(self.redis, self.url)
            self._scripts = {name: self.redis.register_script(getattr(scripts, name))
                             for name in ("PUSH", "TAKE", "RENEW", "FINISH", "RECLAIM",
                                          "CANCEL", "DELETE", "RESUME", "SEND")}  # fmt: skip
            for warning in await link.announce(
                self.redis, self.keys, self.node, consumers=self.consumers,
                ttl=self._alive_ttl(), socketio_channel=self.socketio_channel,
                server=self.server,
            ):  # fmt: skip
                log.warning("%s", warning)
            await self._refresh_counts()
        except BaseException:
            await self.redis.aclose()
            raise
        self.bus = Bus(self.redis, self.keys, self.node, on_event=self._on_event,
                       on_frame=self._deliver, on_reconnect=self._caught_up)  # fmt: skip
        self._spawn(self.bus.run(), "genie-fleet-bus")
        self._spawn(self._upkeep(), "genie-fleet-upkeep")
        for index in range(self.consumers):
            self._spawn(self._consume(), f"genie-consumer-{index}")
        try:  # do not report ready before this node hears the fleet
            async with asyncio.timeout(5):
                await self.bus.connected.wait()
        except BaseException:
            await cancel_all(self._tasks)
            await self.redis.aclose()
            raise
        self._state = "open"
        log.info("fleet node %s on %s (prefix %r, %d consumer(s))", self.node,
                 link.redact(self.url), self.keys.prefix, self.consumers)  # fmt: skip
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._state = "closed"
        tasks, self._tasks = self._tasks, []
        await cancel_all(tasks)
        try:
            await self._hand_back()
        finally:
            await close_handler(self._handler)
            await self.redis.aclose()

    async def _hand_back(self) -> None:
        """A stopping node gives its running jobs back at once (to the front of todo)
        instead of leaving them to wait out their lease, and leaves the registry."""
        with contextlib.suppress(*DOWN):
            if self._running:
                keys = [self.keys.running, self.keys.owner]
                await self._scripts["RENEW"](keys=keys, args=[self.node, -1, *self._running])
                await self._reclaim()
            await self.redis.hdel(self.keys.nodes, self.node)
            await self.redis.delete(self.keys.alive(self.node))

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(report_crash)
        self._tasks.append(task)

    # --- JobService -------------------------------------------------------------------------

    async def push_job(self, question: str, client_id: str | None = None) -> Job:
        if self._state != "open":
            raise QueueClosedError()
        job = Job(question=validate_question(question), client_id=client_id)
        k = self.keys
        caps = self.admission
        keys = [k.jobs, k.todo, k.queued]
        args = [job.id_hash, json.dumps(job.to_dict()), k.events, *WAITING,
                caps.max_queued, caps.max_per_client, QueueBusyError.SPOKEN]  # fmt: skip
        if client_id is not None:
            keys += [k.client(client_id), k.client_log(client_id)]
            args += [client_id, *self._route_args()]
        ahead = await self._call("PUSH", keys, args)
        if ahead == -1:
            raise caps.refuse("total")
        if ahead == -2:
            raise caps.refuse("client")
        return job

    async def find(self, id_hash: str) -> Job | None:
        raw = await self._read(self.redis.hget(self.keys.jobs, id_hash))
        return _job(raw) if raw else None

    async def unfinished(self, ids: Iterable[str]) -> set[str]:
        wanted = list(ids)
        if not wanted:
            return set()
        raws = await self._read(self.redis.hmget(self.keys.jobs, wanted))
        return {i for i, raw in zip(wanted, raws, strict=True) if raw and not _job(raw).finished}

    async def listing(self, name: str) -> list[Job]:
        key = queue_key(name)
        k = self.keys
        if key == "running":
            ids = list(reversed(await self._read(self.redis.zrange(k.running, 0, -1))))
        elif key == "todo":
            ids = list(reversed(await self._read(self.redis.lrange(k.todo, 0, -1))))
        else:  # done and dead are kept newest first
            ids = await self._read(self.redis.lrange(getattr(k, key), 0, -1))
        if not ids:
            return []
        raws = await self._read(self.redis.hmget(k.jobs, ids))
        return [_job(raw) for raw in raws if raw]

    async def delete(self, id_hash: str) -> Job:
        k = self.keys
        raw = await self._call("DELETE", [k.jobs, k.done, k.dead], [id_hash, k.events])
        if not raw:
            raise JobNotFoundError(id_hash)
        job = _job(raw)
        if not job.finished:
            raise JobActiveError(id_hash, job.state.value)
        return job

    async def cancel_client_jobs(self, client_id: str) -> list[Job]:
        """The client's queued jobs move to dead, unless it now lives on another node."""
        self._attached.discard(client_id)
        k = self.keys
        keys = [k.jobs, k.todo, k.dead, k.client(client_id), k.queued]
        args = [client_id, self.node, CANCELLED, self.history_limit, k.events]
        try:
            raws = await self._scripts["CANCEL"](keys=keys, args=args)
        except DOWN:
            log.warning("Redis is down: client %s's queued jobs are left to run", client_id)
            return []
        return [_job(raw) for raw in raws]

    def counts(self) -> dict[str, int]:
        """The fleet's counts, as last announced on the bus."""
        return dict(self._counts)

    def running_here(self) -> int:
        return len(self._running)

    def health(self) -> dict[str, Any]:
        up = self.bus is not None and self.bus.connected.is_set()
        received = dict(self.bus.received) if self.bus is not None else {}
        status = "busy" if self.admission.full(self._counts["todo"]) else "ok"
        oldest = time.time() - self._oldest_created if self._oldest_created else 0.0
        return {"backend": "redis", "status": status if up else "degraded", "node": self.node,
                "consumers": self.consumers, "running": self.running_here(),
                "prefix": self.keys.prefix, "received": received,
                "takeovers": self.takeovers, "oldest_wait": oldest}  # fmt: skip

    async def wait_idle(self) -> None:
        """Return once the fleet's todo is empty and nothing runs anywhere."""
        k = self.keys
        while True:
            pipe = self.redis.pipeline(transaction=False)
            todo, running = await pipe.llen(k.todo).zcard(k.running).execute()
            stop_if_cancelled()
            if todo == 0 and running == 0:
                return
            await asyncio.sleep(0.05)

    # --- clients --------------------------------------------------------------------------

    async def attach_client(self, client_id: str, subject: str | None) -> None:
        """This node holds the client now: its frames are routed here."""
        self._attached.add(client_id)
        key = self.keys.client(client_id)
        mapping = {"node": self.node, "subject": subject or ""}
        with contextlib.suppress(*DOWN):
            await (
                self.redis.pipeline(transaction=False)
                .hset(key, mapping=mapping)
                .expire(key, self.session_ttl)
                .execute()
            )

    async def note_voice(self, client_id: str, voice: str | None, speed: float | None) -> None:
        """Remember the client's voice, so a node it resumes on speaks with it too."""
        fields = {"voice": voice or "", "speed": "" if speed is None else repr(speed)}
        with contextlib.suppress(*DOWN):
            await self.redis.hset(self.keys.client(client_id), mapping=fields)

    async def resume_client(
        self, client_id: str, subject: str | None, last_seq: int
    ) -> tuple[int, str | None, float | None, list[dict[str, Any]]]:
        """Take over a client's session from any node: (its seq, voice, speed, the
        numbered frames after ``last_seq``). LookupError / PermissionError when it has no
        session here or belongs to someone else."""
        k = self.keys
        keys = [k.client(client_id), k.client_log(client_id)]
        out = await self._call("RESUME", keys, [self.node, subject or "", self.session_ttl])
        if out[0] == "unknown":
            raise LookupError(client_id)
        if out[0] == "forbidden":
            raise PermissionError(client_id)
        self._attached.add(client_id)
        frames = [m for m in map(json.loads, out[4:]) if m["s"] > last_seq]
        speed = float(out[3]) if out[3] else None
        return int(out[1]), out[2] or None, speed, frames

    async def replay(self, client_id: str, frames: list[dict[str, Any]]) -> None:
        """Deliver the frames :meth:`resume_client` returned to the client, now here.

        Then read its log once more: a frame published to this node between the resume
        and the client's arrival in this process found no one to take it (the client
        skips any frame twice delivered)."""
        for message in frames:
            await self._deliver(message)
        newest = frames[-1]["s"] if frames else 0
        with contextlib.suppress(*DOWN):
            log_key = self.keys.client_log(client_id)
            for raw in await self.redis.lrange(log_key, 0, -1):
                message = json.loads(raw)
                if message["s"] > newest:
                    await self._deliver(message)

    # --- the consumer -----------------------------------------------------------------------

    async def _consume(self) -> None:
        k = self.keys
        keys = [k.jobs, k.todo, k.running, k.owner, k.queued]
        args = [self.node, self._lease_ms(), k.events]
        while True:
            self._wake.clear()
            try:
                raw = await self._scripts["TAKE"](keys=keys, args=args)
            except DOWN:
                stop_if_cancelled()
                await asyncio.sleep(POLL)  # paused until Redis is back
                continue
            stop_if_cancelled()  # a job taken now stays leased: another node runs it
            if not raw:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL):
                        await self._wake.wait()
                continue
            await self._run(_job(raw))

    async def _run(self, job: Job) -> None:
        self._running[job.id_hash] = job
        try:
            answer, error = await run_handler(self._handler, job, self.job_timeout, self.max_wait)
            if error is None:
                job.state, job.answer = JobState.DONE, answer
            else:
                job.state, job.error = JobState.DEAD, error
            job.finished_at = time.time()
            await self._notify_expired(job)
            await self._finish(job, speech_for(answer, error))
        finally:
            self._running.pop(job.id_hash, None)

    async def _finish(self, job: Job, speech: str) -> None:
        """Record the outcome and send the asker ``speech`` in one script, retrying while
        Redis is down. Refused when the lease was lost meanwhile: another node took the
        job over and answers it."""
        k = self.keys
        keys = [k.jobs, k.running, k.owner, getattr(k, job.state.value)]
        event = COUNT_EVENTS[job.state.value]
        data = json.dumps(job.to_dict())
        args = [job.id_hash, self.node, data, self.history_limit, k.events, event]
        if job.client_id is None:
            args.append(json.dumps({"a": speech}))
        else:
            keys += [k.client(job.client_id), k.client_log(job.client_id)]
            args += [json.dumps({"c": job.client_id, "a": speech}), *self._route_args()]
        while True:
            try:
                kept = await self._scripts["FINISH"](keys=keys, args=args)
                break
            except DOWN:
                stop_if_cancelled()
                await asyncio.sleep(POLL)
        if kept < 0:
            log.warning("job %s: lease lost while it ran; another node answers it", job.id_hash)

    async def _notify_expired(self, job: Job) -> None:
        """An expired job's asker gets an ``error`` frame saying so, before the spoken
        apology. Best effort: the apology itself waits for Redis, this does not."""
        notice = expiry_notice(job)
        if notice is None:
            return
        assert job.client_id is not None
        k = self.keys
        message = json.dumps({"c": job.client_id, "e": NOTICE, "d": notice})
        args = [message, *self._route_args()]
        keys = [k.client(job.client_id), k.client_log(job.client_id)]
        try:
            await self._scripts["SEND"](keys=keys, args=args)
        except DOWN:
            stop_if_cancelled()
            log.warning("job %s expired; Redis is down, its asker hears only the apology",
                        job.id_hash)  # fmt: skip

    async def _reclaim(self) -> list[str]:
        k = self.keys
        keys = [k.jobs, k.todo, k.running, k.owner, k.dead, k.queued]
        args = [self.max_attempts, self.history_limit, k.events]
        taken = await self._scripts["RECLAIM"](keys=keys, args=args)
        if taken:
            self.takeovers += len(taken)
            log.warning("took back %d job(s) whose process stopped answering: %s",
                        len(taken), ", ".join(taken))  # fmt: skip
            self._wake.set()
        return taken

    async def _upkeep(self) -> None:
        """Leases renewed, expired ones reaped, this node and its clients kept alive."""
        k = self.keys
        while True:
            await asyncio.sleep(self._upkeep_every())
            try:
                if self._running:
                    args = [self.node, self._lease_ms(), *self._running]
                    await self._scripts["RENEW"](keys=[k.running, k.owner], args=args)
                await self._reclaim()
                pipe = self.redis.pipeline(transaction=False)
                pipe.set(k.alive(self.node), "1", px=int(self._alive_ttl() * 1000))
                for client_id in self._attached:
                    pipe.expire(k.client(client_id), self.session_ttl)
                await pipe.execute()
                await self._note_oldest()
            except DOWN:
                pass  # the bus reports the outage; try again next round
            stop_if_cancelled()

    async def _note_oldest(self) -> None:
        """How long the head of todo has waited, for /metrics (as of this upkeep round)."""
        head = await self.redis.lindex(self.keys.todo, 0)
        raw = await self.redis.hget(self.keys.jobs, head) if head else None
        self._oldest_created = _job(raw).created_at if raw else 0.0

    # --- events -----------------------------------------------------------------------------

    async def _deliver(self, message: dict[str, Any]) -> None:
        """A numbered per-client frame for a client on this node."""
        try:
            if "a" in message:
                await self._emit_audio(message["a"], message["c"], seq=message["s"])
            else:
                await self._emit_event(message["e"], message["d"], message["c"], seq=message["s"])
        except Exception:
            log.exception("delivering a frame to client %s failed", message.get("c"))

    async def _on_event(self, message: dict[str, Any]) -> None:
        try:
            if "a" in message:
                await self._emit_audio(message["a"], None)
                return
            name, value = message["e"], message["v"]  # a queue count
            self._counts[COUNTED[name]] = value
            if name == "todo_update" and value > 0:
                self._wake.set()
            await self._emit_event(name, {"value": value}, None)
        except Exception:
            log.exception("delivering a fleet event failed")

    async def _caught_up(self) -> None:
        """Redis is back: current counts to every local client, consumers woken (a
        finish that waited for Redis goes through by itself)."""
        await self._refresh_counts(announce=True)
        self._wake.set()

    async def _refresh_counts(self, announce: bool = False) -> None:
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen(k.todo).zcard(k.running).llen(k.done).llen(k.dead)
        values = await pipe.execute()
        for (event, name), value in zip(COUNTED.items(), values, strict=True):
            self._counts[name] = value
            if announce:
                await self._emit_event(event, {"value": value}, None)

    # --- helpers ----------------------------------------------------------------------------

    async def _call(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return await self._read(self._scripts[script](keys=keys, args=args))

    async def _read(self, pending: Any) -> Any:
        """Await a Redis call; Redis down is QueueUnavailableError (a 503 to the asker)."""
        try:
            return await pending
        except DOWN as exc:
            raise QueueUnavailableError(f"Redis: {exc}", RETRY_AFTER) from None

    def _route_args(self) -> list[Any]:
        return [self.session_ttl, self.session_frames, self.keys.node_prefix]

    def _lease_ms(self) -> int:
        return int(self.lease * 1000)

    def _upkeep_every(self) -> float:
        return min(self.lease / 3, 5.0)  # three renewals within a lease

    def _alive_ttl(self) -> float:
        return max(self.lease, 3 * self._upkeep_every())


def _job(raw: str) -> Job:
    return Job.from_dict(json.loads(raw))
