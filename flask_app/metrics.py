"""``/metrics`` of the Flask server: the series FastAPI's ``/metrics`` has for the same
things (``queues.metrics``: connections, jobs, fleet) plus the process-wide ones.

One registry per app (``init_app``), so the many apps a test process builds never
register a name twice. Nothing is counted on the request path: every value is read at
scrape time, the queues' on the core's loop (``Runtime.call``), as every route reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

from flask_app.core import Core
from flask_app.runtime import Runtime
from queues.metrics import Family, connection_metrics, exposition, job_metrics

EXTENSION = "genie_metrics"


class FlaskMetrics:
    def __init__(self, runtime: Callable[[], Runtime]) -> None:
        # No auto_describe: registering must not scrape (the runtime does not exist yet).
        self.registry = CollectorRegistry()
        self.registry.register(_RuntimeCollector(runtime))

    def render(self) -> bytes:
        return exposition(self.registry)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = FlaskMetrics(lambda: app.extensions["genie"])


def metrics_of(app: Flask) -> FlaskMetrics:
    return app.extensions[EXTENSION]


class _RuntimeCollector(Collector):
    def __init__(self, runtime: Callable[[], Runtime]) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Family]:
        rt = self._runtime()
        yield connection_metrics({"socketio": rt.connected})
        yield from rt.call(_jobs)


def _jobs(core: Core) -> list[Family]:
    return job_metrics(core.queues)
