"""This node's ears on the fleet: one Redis subscription to the broadcast channel
(queue counts, audio for every page) and to this node's own channel (frames for the
clients it holds). Nothing else on the node subscribes, so a node's Redis traffic grows
with its own clients, not with the fleet's.

When Redis goes away the subscription is re-made every ``RETRY`` seconds (not the 1-60 s
back-off python-socketio's manager uses), and ``on_reconnect`` lets the queues catch up
(fresh counts to its clients, a wake-up for the consumers).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from fleet.link import DOWN, Keys, stop_if_cancelled

log = logging.getLogger(__name__)

RETRY = 0.1  # seconds between attempts to subscribe again while Redis is down
Handler = Callable[[dict[str, Any]], Awaitable[None]]


class Bus:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        node: str,
        *,
        on_event: Handler,
        on_frame: Handler,
        on_reconnect: Callable[[], Awaitable[None]],
    ) -> None:
        self._redis = redis
        self._channels = (keys.events, keys.node_prefix + node)
        self._on_event, self._on_frame = on_event, on_frame
        self._on_reconnect = on_reconnect
        self.connected = asyncio.Event()
        self.received = {"events": 0, "frames": 0}  # messages, for metrics and the bench
        self.reconnects = 0

    async def run(self) -> None:
        first = True
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*self._channels)
                self.connected.set()
                if not first:
                    self.reconnects += 1
                    log.warning("Redis is back: resubscribed to %s", ", ".join(self._channels))
                    await self._on_reconnect()
                first = False
                await self._listen(pubsub)
            except DOWN as exc:
                stop_if_cancelled()
                if self.connected.is_set():
                    log.error("lost Redis (%s); retrying every %g s", exc, RETRY)
                self.connected.clear()
                await asyncio.sleep(RETRY)
            finally:
                await _close_quietly(pubsub)

    async def _listen(self, pubsub: Any) -> None:
        events_channel = self._channels[0]
        while True:
            # A bounded wait, so the health check (a PING) also runs on a quiet channel.
            message = await pubsub.get_message(timeout=1.0)
            stop_if_cancelled()
            if message is None or message.get("type") != "message":
                continue
            try:
                payload = json.loads(message["data"])
            except (TypeError, ValueError):
                log.warning("ignored a message that is not JSON on %s", message["channel"])
                continue
            if message["channel"] == events_channel:
                self.received["events"] += 1
                await self._on_event(payload)
            else:
                self.received["frames"] += 1
                await self._on_frame(payload)


async def _close_quietly(pubsub: Any) -> None:
    try:
        await pubsub.aclose()
    except Exception:  # a connection that is already gone
        log.debug("closing a dead subscription", exc_info=True)
