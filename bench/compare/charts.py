"""PNG charts (matplotlib, headless): latency CDF, throughput and memory vs clients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt

from bench.compare.servers import TARGET_NAMES


def latency_cdf(latency: dict[int, dict[str, Any]], at: int, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in TARGET_NAMES:
        samples = sorted((latency.get(at, {}).get(name) or {}).get("broadcast_samples_ms", []))
        if samples:
            ys = [(i + 1) / len(samples) for i in range(len(samples))]
            ax.plot(samples, ys, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("broadcast latency from scheduled push (ms, log)")
    ax.set_ylabel("fraction of deliveries")
    ax.set_title(f"Latency CDF, {at} clients")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _by_clients(
    latency: dict[int, dict[str, Any]], key: str, name: str
) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for clients in sorted(latency):
        result = latency[clients].get(name) or {}
        if key in result:
            xs.append(clients)
            ys.append(result[key])
    return xs, ys


def throughput(latency: dict[int, dict[str, Any]], capacity: dict[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in TARGET_NAMES:
        xs, ys = _by_clients(latency, "deliveries_per_s", name)
        line = ax.plot(xs, ys, marker="o", label=f"{name} (fixed push rate)")
        sat = (capacity.get(name) or {}).get("deliveries_per_s")
        clients = (capacity.get(name) or {}).get("clients")
        if sat and clients:
            ax.scatter([clients], [sat], marker="*", s=120, color=line[0].get_color())
    ax.set_xlabel("connected clients")
    ax.set_ylabel("deliveries / s (stars: saturation run)")
    ax.set_title("Throughput vs clients")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def memory(ceiling: dict[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in TARGET_NAMES:
        points = (ceiling.get(name) or {}).get("points", [])
        if points:
            ax.plot(
                [p["clients"] for p in points],
                [p["rss_mb"] for p in points],
                marker="o",
                label=name,
            )
    ax.set_xlabel("idle connected clients")
    ax.set_ylabel("server RSS (MB)")
    ax.set_title("Memory vs clients")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
