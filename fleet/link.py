"""One process's link to the fleet's Redis: connecting, the start-up checks, the node
registry and the key names.

A node announces itself in ``P:nodes`` (kit version, wire format, consumers, server kind,
Socket.IO channel) and keeps ``P:alive:<node>`` fresh. A process that sees a peer with
another version or wire format on the same prefix warns loudly at start, since their
messages would be misread; one whose Socket.IO channel differs from a peer's refuses to
start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

KIT_VERSION = "1.1"
# Bump when the messages on the channels or the key layout change.
WIRE_FORMAT = "genie-fleet/2"
# Errors meaning "Redis is not there right now" (as opposed to a bug in a command).
DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


def stop_if_cancelled() -> None:
    """Re-raise a cancellation that redis-py swallowed.

    redis-py's asyncio client (8.1) often lets a command that was cancelled mid-flight
    return, or fail, as if nothing had happened (measured: 3 in 4 cancellations of a
    task looping on ``EVALSHA``). A loop around Redis calls would then run on after its
    task was told to stop, and a shutdown would wait for it forever. Every such loop
    calls this after each Redis call: the cancellation is still on record in
    ``Task.cancelling()``.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class FleetConfigError(RuntimeError):
    """Redis is configured but cannot be used: the process refuses to start."""


class Keys:
    """Every Redis key and channel name of one environment (see ``fleet.scripts``)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.jobs, self.todo, self.running = f"{prefix}:jobs", f"{prefix}:todo", f"{prefix}:running"
        self.owner, self.done, self.dead = f"{prefix}:owner", f"{prefix}:done", f"{prefix}:dead"
        self.queued = f"{prefix}:queued"
        self.events, self.nodes = f"{prefix}:events", f"{prefix}:nodes"
        self.node_prefix = f"{prefix}:node:"  # + node name: that node's per-client frames

    def client(self, client_id: str) -> str:
        return f"{self.prefix}:c:{client_id}"

    def client_log(self, client_id: str) -> str:
        return f"{self.prefix}:c:{client_id}:log"

    def alive(self, node: str) -> str:
        return f"{self.prefix}:alive:{node}"


def node_name() -> str:
    """Unique per process and readable in ``redis-cli``: host, pid and a random tail."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def connect(url: str) -> aioredis.Redis:
    """A pooled client that fails fast while Redis is down (no long hidden retries:
    callers answer 503 and try again) and notices a dead connection within seconds."""
    return aioredis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=1.0,
        socket_timeout=5.0,
        health_check_interval=5,
        retry=Retry(ConstantBackoff(0.05), 1),
        retry_on_error=[RedisConnectionError],
    )


async def check_reachable(client: aioredis.Redis, url: str) -> None:
    """Refuse to start, saying why, when the configured Redis does not answer."""
    where = redact(url)
    try:
        await client.ping()
        version = (await client.info("server")).get("redis_version", "0")
    except DOWN as exc:
        raise FleetConfigError(
            f"GENIE_REDIS_URL={where} is set but Redis does not answer ({exc}). Start Redis, "
            "fix the URL, or unset GENIE_REDIS_URL to run as a single process."
        ) from exc
    except RedisError as exc:
        raise FleetConfigError(f"Redis at {where} refused the connection: {exc}") from exc
    if int(str(version).split(".")[0]) < 7:
        raise FleetConfigError(f"Redis at {where} is {version}; the fleet needs Redis 7 or newer")


async def announce(
    client: aioredis.Redis,
    keys: Keys,
    node: str,
    *,
    consumers: int,
    ttl: float,
    socketio_channel: str | None,
    server: str,
) -> list[str]:
    """Register this node and return warnings about peers that speak another format.

    Refuses (``FleetConfigError``) when a live peer's Socket.IO channel differs: the two
    servers' legacy pages would each hear only their own server, with no error anywhere.
    """
    me = {"version": KIT_VERSION, "wire": WIRE_FORMAT, "consumers": consumers,
          "started": time.time(), "socketio": socketio_channel, "server": server}  # fmt: skip
    peers = await client.hgetall(keys.nodes)
    alive = await _alive(client, keys, list(peers))
    warnings = []
    for peer, raw in peers.items():
        if peer not in alive:
            continue
        try:
            info = json.loads(raw)
        except ValueError:
            info = {}
        theirs = info.get("socketio")
        if None not in (theirs, socketio_channel) and theirs != socketio_channel:
            raise FleetConfigError(
                f"Socket.IO channel mismatch on prefix {keys.prefix!r}: this {server} server "
                f"uses {socketio_channel!r}, peer {peer} ({info.get('server', '?')}) uses "
                f"{theirs!r}. A legacy page would only hear its own server. Give every "
                "server the same GENIE_SOCKETIO_CHANNEL (or leave it unset everywhere)."
            )
        if info.get("wire") != WIRE_FORMAT or info.get("version") != KIT_VERSION:
            warnings.append(
                f"peer {peer} on prefix {keys.prefix!r} runs kit {info.get('version')} with "
                f"wire {info.get('wire')}; this node runs {KIT_VERSION} with {WIRE_FORMAT}. "
                "Their messages may be misread: give each version its own GENIE_REDIS_CHANNEL."
            )
    for peer in set(peers) - alive:
        await client.hdel(keys.nodes, peer)  # gone without a goodbye (killed)
    await client.hset(keys.nodes, node, json.dumps(me))
    await client.set(keys.alive(node), "1", px=int(ttl * 1000))
    return warnings


async def live_nodes(client: aioredis.Redis, keys: Keys) -> list[str]:
    return sorted(await _alive(client, keys, list(await client.hkeys(keys.nodes))))


async def _alive(client: aioredis.Redis, keys: Keys, nodes: list[str]) -> set[str]:
    if not nodes:
        return set()
    flags = await client.mget([keys.alive(n) for n in nodes])
    return {n for n, flag in zip(nodes, flags, strict=True) if flag}


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://***@{tail}"
