"""Workload sizes for a full run and for ``--quick`` (CI smoke: under two minutes)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    latency_clients: tuple[int, ...]
    latency_rate: float  # pushes per second
    latency_pushes: int
    capacity_clients: int
    capacity_rate: float  # above what any target sustains: saturation
    capacity_pushes: int
    ceiling_step: int
    ceiling_cap: int
    ceiling_budget_s: float
    ceiling_ms: float  # /health slower than this: the server is past its ceiling
    audio_levels: tuple[int, ...]
    audio_rounds: int
    audio_chars: int
    mix_users: int
    mix_seconds: float
    mix_gap: tuple[float, float]  # think time between questions, seconds


FULL = Plan(
    latency_clients=(50, 200, 1000, 2000),
    latency_rate=5.0,
    latency_pushes=40,
    capacity_clients=200,
    capacity_rate=200.0,
    capacity_pushes=600,
    ceiling_step=500,
    ceiling_cap=4000,
    ceiling_budget_s=90.0,
    ceiling_ms=1000.0,
    audio_levels=(1, 10, 50),
    audio_rounds=3,
    audio_chars=100,
    mix_users=50,
    mix_seconds=30.0,
    mix_gap=(2.0, 5.0),
)

QUICK = Plan(
    latency_clients=(50,),
    latency_rate=5.0,
    latency_pushes=8,
    capacity_clients=50,
    capacity_rate=50.0,
    capacity_pushes=60,
    ceiling_step=100,
    ceiling_cap=200,
    ceiling_budget_s=20.0,
    ceiling_ms=1000.0,
    audio_levels=(1, 10),
    audio_rounds=1,
    audio_chars=100,
    mix_users=5,
    mix_seconds=4.0,
    mix_gap=(1.0, 2.0),
)
