"""Prometheus metrics of the speech engine (default registry; served by ``/metrics``).

Module-level on purpose: prometheus_client registers each name once per process, and
every engine of the process adds to the same series.
"""

from __future__ import annotations

from prometheus_client import Counter, Enum, Gauge, Histogram

FIRST_BYTE_SECONDS = Histogram(
    "genie_tts_first_byte_seconds",
    "Seconds from asking a provider for speech to its first audio byte.",
    ["provider"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
FAILURES = Counter(
    "genie_tts_failures",
    "Speech provider failures (each one hands over to the next provider when it can).",
    ["provider"],
)
CACHE_HITS = Counter("genie_tts_cache_hits", "Speech requests answered from the audio cache.")
CACHE_MISSES = Counter("genie_tts_cache_misses", "Speech requests the audio cache did not hold.")
PROVIDER_STATE = Enum(
    "genie_tts_provider_state",
    "Circuit breaker of each speech provider: up, cooling_down (taken out) or probing.",
    ["provider"],
    states=["up", "cooling_down", "probing"],
)
PROVIDER_IN_FLIGHT = Gauge(
    "genie_tts_provider_in_flight", "Speech streams open per provider.", ["provider"]
)
