"""The fleet: many server processes (both servers, any host) sharing one Genie through
Redis. Framework-free; the adapters only wire it in (``GENIE_REDIS_URL``)."""

from __future__ import annotations

from fleet.jobs import RedisJobQueues
from fleet.link import FleetConfigError

__all__ = ["FleetConfigError", "RedisJobQueues"]
