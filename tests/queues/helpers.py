"""Shared test parts: a recorder standing in for an adapter's emit callbacks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from queues import JobQueues, JobStore
from queues.models import JobHandler


@dataclass
class Recorder:
    """Records every emit_audio / emit_event call, like a client that hears everything."""

    audio: list[tuple[str, str | None]] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)

    # ``seq``: the fleet numbers per-client frames; recorded in ``seqs``.
    seqs: list[int] = field(default_factory=list)

    async def emit_audio(self, msg: str, client_id: str | None, *, seq: int | None = None) -> None:
        self.audio.append((msg, client_id))
        if seq is not None:
            self.seqs.append(seq)

    async def emit_event(
        self, name: str, data: dict[str, Any], client_id: str | None = None, *,
        seq: int | None = None,
    ) -> None:  # fmt: skip
        self.events.append((name, data, client_id))
        if seq is not None:
            self.seqs.append(seq)

    def heard_by(self, client_id: str | None) -> list[str]:
        return [msg for msg, client in self.audio if client == client_id]

    def events_to(self, client_id: str, name: str) -> list[dict[str, Any]]:
        return [data for event, data, client in self.events if (event, client) == (name, client_id)]

    def event_names(self) -> Counter[str]:
        return Counter(name for name, _, _ in self.events)

    def values(self, name: str) -> list[int]:
        return [data["value"] for event, data, _ in self.events if event == name]


def make_queues(
    recorder: Recorder,
    handler: JobHandler,
    *,
    store: JobStore | None = None,
    consumers: int = 1,
    job_timeout: float = 10.0,
    **kwargs: Any,
) -> JobQueues:
    return JobQueues(
        handler=handler,
        emit_audio=recorder.emit_audio,
        emit_event=recorder.emit_event,
        store=store,
        consumers=consumers,
        job_timeout=job_timeout,
        **kwargs,
    )


async def echo(job: Any) -> str:
    return f"answer to {job.question}"
