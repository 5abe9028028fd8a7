"""``/metrics``: this app's series plus the process-wide ones (``genie_tts_*`` from
``tts.metrics``, process CPU/memory) of prometheus_client's default registry.

The app's series live in a registry of their own, so several apps in one process (the
tests) never collide, and most are read at scrape time from plain counters: the
per-frame hot path does no locking for metrics. The series Flask's ``/metrics`` has too
(connections, jobs, fleet) are built by ``queues.metrics``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from queues.metrics import connection_metrics, exposition, job_metrics

if TYPE_CHECKING:
    from fastapi_app.guards.connection_caps import ConnectionCaps
    from fastapi_app.runtime import Runtime


class AppMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.rate_limited = Counter(
            "genie_rate_limited",
            "Requests refused by a rate limit.",
            ["kind"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "genie_auth_failures",
            "Connections or requests refused for a missing, bad or expired token.",
            ["transport"],
            registry=self.registry,
        )
        self.origin_rejected = Counter(
            "genie_origin_rejected",
            "WebSocket or Socket.IO handshakes refused for their Origin.",
            registry=self.registry,
        )

    def watch_connections(self, caps: ConnectionCaps) -> None:
        """What the connection caps count right now (``fastapi_app.guards.connection_caps``)."""
        gauge = Gauge(
            "genie_connections_in_flight",
            "Connections the caps count now: HTTP requests in flight, WebSockets, long-polls.",
            registry=self.registry,
        )
        gauge.set_function(lambda: caps.open)

    def watch(self, runtime: Callable[[], Runtime | None]) -> None:
        """Read live values (connections, jobs, frames) from the runtime at scrape time."""
        self.registry.register(_RuntimeCollector(runtime))

    def render(self) -> bytes:
        return exposition(self.registry)


class _RuntimeCollector(Collector):
    def __init__(self, runtime: Callable[[], Runtime | None]) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        rt = self._runtime()
        if rt is None:
            return
        ws = len(rt.connections) if rt.connections else 0
        yield connection_metrics({"ws": ws, "socketio": rt.legacy.connected})
        if rt.connections is not None:
            yield GaugeMetricFamily(
                "genie_ws_clients_detached",
                "Disconnected /ws clients kept for resume.",
                value=len(rt.connections.clients) - len(rt.connections.live),
            )
            stats = rt.connections.stats
            yield CounterMetricFamily(
                "genie_ws_frames_sent", "Frames written to /ws sockets.", value=stats.sent
            )
            dropped = CounterMetricFamily(
                "genie_ws_frames_dropped", "Frames not delivered.", labels=["reason"]
            )
            dropped.add_metric(["closing_or_gone"], stats.dropped)
            yield dropped
            yield CounterMetricFamily(
                "genie_ws_slow_clients_closed",
                "Sockets closed 1013 because their send queue was full.",
                value=stats.slow_closed,
            )
            yield CounterMetricFamily(
                "genie_ws_heartbeat_closed",
                "Sockets closed 1011 for missing heartbeats.",
                value=rt.connections.heartbeat_closed,
            )
        yield from job_metrics(rt.queues)  # on the loop: the scrape runs there
        yield GaugeMetricFamily(
            "genie_audio_streams_open", "Audio streams being sent.", value=len(rt.streams)
        )
        yield CounterMetricFamily(
            "genie_audio_streams_cancelled",
            "Audio streams stopped because their client left.",
            value=rt.streams.cancelled_total,
        )
