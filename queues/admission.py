"""Admission control: refuse a question at once, rather than queue work that cannot be
answered in time. Both backends apply the same caps (the fleet's inside its push script,
so they hold for every process together)."""

from __future__ import annotations

from dataclasses import dataclass

from config import Settings
from queues.errors import QueueBusyError
from queues.metrics import QUESTIONS_REFUSED

# Seconds a refused asker is told to wait: about what a few answers take.
RETRY_AFTER = 2.0


@dataclass(frozen=True, slots=True)
class Admission:
    max_queued: int = 0  # questions waiting in all; 0: no cap
    max_per_client: int = 0  # questions one client may have waiting; 0: no cap

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission:
        return cls(settings.max_queued, settings.max_queued_per_client)

    def check(self, queued: int, queued_for_client: int) -> None:
        """Raise QueueBusyError when one more question would pass a cap."""
        if self.max_queued and queued >= self.max_queued:
            raise self.refuse("total")
        if self.max_per_client and queued_for_client >= self.max_per_client:
            raise self.refuse("client")

    def refuse(self, reason: str) -> QueueBusyError:
        """The error for a refusal by cap ``reason`` ("total", "client"), counted."""
        QUESTIONS_REFUSED.labels(reason).inc()
        limit = self.max_queued if reason == "total" else self.max_per_client
        return QueueBusyError(reason, limit, RETRY_AFTER)

    def full(self, queued: int) -> bool:
        """The total cap is reached: ``/health`` says busy."""
        return bool(self.max_queued) and queued >= self.max_queued


NO_CAPS = Admission()
