"""The Prometheus series both servers export from the same state, built in one place so
FastAPI's and Flask's ``/metrics`` keep one set of names, labels and help texts.

Framework-free: each app registers its own collector (in a registry per app) and calls
:func:`job_metrics` where its queues live, i.e. on their event loop (Flask reaches it
through its core bridge). :func:`exposition` adds prometheus_client's default registry:
process CPU/memory and ``genie_tts_*`` (``tts.metrics``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

if TYPE_CHECKING:
    from queues.service import JobService

# The classic text format: what every Prometheus scraper reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Family = GaugeMetricFamily | CounterMetricFamily

# Process-wide (default registry): counted where it happens, in this process.
QUESTIONS_REFUSED = Counter(
    "genie_questions_refused",
    "Questions refused at once because too much was queued (reason: total, client).",
    ["reason"],
)
JOB_WAIT_SECONDS = Histogram(
    "genie_job_wait_seconds",
    "Time questions waited in todo before a consumer of this process took them.",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)


def exposition(registry: CollectorRegistry) -> bytes:
    """An app's own series, then the process-wide ones."""
    return generate_latest(registry) + generate_latest(REGISTRY)


def connection_metrics(open_by_transport: Mapping[str, int]) -> GaugeMetricFamily:
    """``genie_connections{transport}``: "ws" and/or "socketio", whichever the app has."""
    conns = GaugeMetricFamily("genie_connections", "Open client connections.", labels=["transport"])
    for transport, count in open_by_transport.items():
        conns.add_metric([transport], count)
    return conns


def job_metrics(queues: JobService) -> list[Family]:
    """Jobs, queue depth and (on Redis) the fleet link. A list, not a generator: it must
    be read on the queues' loop, not wherever the scrape happens to iterate it."""
    counts = queues.counts()
    health = queues.health()
    jobs = GaugeMetricFamily(
        "genie_jobs", "Jobs by state (the fleet's, on Redis).", labels=["state"]
    )
    for state, size in counts.items():
        jobs.add_metric([state], size)
    families: list[Family] = [
        jobs,
        GaugeMetricFamily(
            "genie_queue_depth", "Jobs waiting in todo.", value=counts.get("todo", 0)
        ),
        GaugeMetricFamily(
            "genie_jobs_running_here", "Jobs this process is running.", value=health["running"]
        ),
        GaugeMetricFamily(
            "genie_queue_oldest_seconds",
            "How long the oldest waiting question has waited (0: none waits).",
            value=health["oldest_wait"],
        ),
    ]
    if health["backend"] == "redis":
        families += _fleet_metrics(health)
    return families


def _fleet_metrics(health: Mapping[str, Any]) -> list[Family]:
    received = CounterMetricFamily(
        "genie_fleet_messages_received",
        "Redis messages this process received: broadcast events, and frames for its clients.",
        labels=["kind"],
    )
    for kind, count in health["received"].items():
        received.add_metric([kind], count)
    return [
        GaugeMetricFamily(
            "genie_fleet_up", "1 while this process hears the fleet's Redis.",
            value=0 if health["status"] == "degraded" else 1,
        ),
        received,
        CounterMetricFamily(
            "genie_fleet_takeovers",
            "Running jobs this process took back from processes that stopped answering.",
            value=health["takeovers"],
        ),
    ]  # fmt: skip
