"""The server side of the broadcast bench: the real app (or a bare floor) plus a trigger.

    python -m bench.serve --port P [--app real|minimal] [--sio-manager broadcast|emit-only|default]
                          [--loop uvloop|asyncio]

``real`` is exactly what ``python -m fastapi_app`` serves (``create_app`` +
``GenieServer`` + ``uvicorn_config``, settings from ``GENIE_*``), with one bench-only
route added: ``POST /_bench/broadcast?rate=&count=&t0=`` starts a task that emits event
``bench_update {sched, i}`` at the scheduled wall-clock times ``t0 + i / rate`` through
the app's one emit path (``Hub.emit_event``: every ``/ws`` client and every Socket.IO
client). The payload carries the *scheduled* time, so a server that falls behind shows
it as latency instead of hiding it.

``minimal`` is the floor the issue measured: a bare FastAPI ``/ws`` that encodes each
event once and sends it to each socket in turn, and a python-socketio AsyncServer.

``--sio-manager default`` swaps python-socketio's own AsyncManager back in and
``emit-only`` the BroadcastManager without its lean Engine.IO poll, to compare.

``--sio-manager redis`` (with ``--redis-url``) runs the app as a fleet node: its
Socket.IO manager is the kit's ``RedisBroadcastManager``; ``redis-default`` swaps in
python-socketio's stock ``AsyncRedisManager``. Their broadcasts arrive from Redis, as
another node's emits do: the bench route publishes each one on the Socket.IO channel
(one PUBLISH, counted in this server's CPU) and the manager's listener delivers it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from fastapi_app.sockets.sio_manager import BroadcastManager

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


def install_bench_routes(api: FastAPI, emit: Callable[[], Emit]) -> None:
    tasks: set[asyncio.Task[None]] = set()

    async def run(rate: float, count: int, t0: float) -> None:
        send = emit()
        for i in range(count):
            sched = t0 + i / rate
            delay = sched - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await send("bench_update", {"sched": sched, "i": i})

    snapshots: list[tracemalloc.Snapshot] = []

    @api.post("/_bench/tracemalloc", include_in_schema=False)
    async def memory_diff(top: int = 25) -> dict[str, list[str]]:
        """First call: baseline; later calls: what was allocated since, by source line
        (only when the server runs with PYTHONTRACEMALLOC=1)."""
        if not tracemalloc.is_tracing():
            return {"lines": ["start the server with PYTHONTRACEMALLOC=1"]}
        snapshot = tracemalloc.take_snapshot()
        if not snapshots:
            snapshots.append(snapshot)
            return {"lines": ["baseline taken"]}
        stats = snapshot.compare_to(snapshots[0], "lineno")[:top]
        return {"lines": [str(stat) for stat in stats]}

    @api.post("/_bench/broadcast", include_in_schema=False)
    async def start_broadcasts(rate: float, count: int, t0: float) -> dict[str, int]:
        task = asyncio.create_task(run(rate, min(count, 1_000_000), t0))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return {"scheduled": count}


MANAGERS = ("broadcast", "emit-only", "default", "redis", "redis-default")


def make_manager(
    name: str, redis_url: str | None = None, channel: str = ""
) -> socketio.AsyncManager:
    """``broadcast``: the kit's BroadcastManager; ``emit-only``: the same without its lean
    Engine.IO poll; ``default``: python-socketio's stock AsyncManager;
    ``redis-default``: python-socketio's stock AsyncRedisManager."""
    if name == "default":
        return socketio.AsyncManager()
    if name == "redis-default":
        return socketio.AsyncRedisManager(redis_url, channel=channel)
    return BroadcastManager(lean_poll=name == "broadcast")


def use_manager(sio: socketio.AsyncServer, name: str, redis_url: str | None, channel: str) -> None:
    """Swap the server's client manager (before any client connects)."""
    manager = make_manager(name, redis_url, channel)
    manager.set_server(sio)
    sio.manager = manager


# --- the real app ---------------------------------------------------------------------


def real_server(port: int, sio_manager: str, redis_url: str | None = None) -> uvicorn.Server:
    from config import Settings
    from fastapi_app.main import create_app
    from fastapi_app.server import GenieServer, uvicorn_config

    fleet = sio_manager.startswith("redis")
    if fleet and not redis_url:
        raise SystemExit("--sio-manager redis and redis-default need --redis-url")
    settings = Settings(host="127.0.0.1", port=port, redis_url=redis_url if fleet else None,
                        redis_channel=f"bench{port}")  # fmt: skip
    app = create_app(settings)
    if sio_manager not in ("broadcast", "redis"):
        use_manager(app.legacy.sio, sio_manager, redis_url, settings.socketio_channel)
    if fleet:
        assert redis_url is not None
        install_bench_routes(app.api, lambda: redis_publisher(redis_url, settings.socketio_channel))
        return GenieServer(uvicorn_config(app, settings, access_log=False), app)

    def emit() -> Emit:
        # The app's one emit path, as the queues call it (queue-count events go to
        # every client of both transports).
        runtime = app.runtime
        if runtime is None or not hasattr(runtime, "hub"):
            raise RuntimeError("bench hook: app.runtime.hub.emit_event is not available")
        return runtime.hub.emit_event

    install_bench_routes(app.api, emit)
    return GenieServer(uvicorn_config(app, settings, access_log=False), app)


def redis_publisher(redis_url: str, channel: str) -> Emit:
    """Publish an emit on the Socket.IO channel exactly as python-socketio's manager on
    another node would (its message format), for this node's listener to deliver."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)

    async def emit(name: str, data: dict[str, Any]) -> None:
        message = {"method": "emit", "event": name, "data": [data], "binary": False,
                   "namespace": "/", "room": None, "skip_sid": None, "callback": None,
                   "host_id": "bench"}  # fmt: skip
        await client.publish(channel, json.dumps(message))

    return emit


# --- the floor ------------------------------------------------------------------------


def minimal_server(port: int, sio_manager: str) -> uvicorn.Server:
    api = FastAPI()
    sockets: set[WebSocket] = set()
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=make_manager(sio_manager))

    @api.websocket("/ws")
    async def ws_endpoint(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(json.dumps({"type": "connection_established", "client_id": "x"}))
        sockets.add(ws)
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            sockets.discard(ws)

    async def broadcast(name: str, data: dict[str, Any]) -> None:
        text = json.dumps({"type": name, **data}, separators=(",", ":"))
        for ws in list(sockets):
            try:
                await ws.send_text(text)
            except (WebSocketDisconnect, RuntimeError, OSError):
                sockets.discard(ws)
        await sio.emit(name, data)

    install_bench_routes(api, lambda: broadcast)
    app = socketio.ASGIApp(sio, other_asgi_app=api)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        log_level="warning",
        access_log=False,
    )
    return uvicorn.Server(config)


GC_MODES = ("default", "off", "freeze", "tuned")


def tune_gc(mode: str) -> None:
    """Garbage-collector experiments. ``freeze``: move what start-up allocated (modules,
    classes, the app: ~100k objects, a ~60-100 ms full collection here) into the
    permanent generation, so no collection walks it again. ``tuned``: that, and collect
    the young generation every 50,000 allocations instead of 700, so a broadcast's
    short-lived futures and handles die before a collection promotes them."""
    if mode == "off":
        gc.disable()
    elif mode in ("freeze", "tuned"):
        gc.collect()
        gc.freeze()
        if mode == "tuned":
            gc.set_threshold(50_000, 20, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app", choices=["real", "minimal"], default="real")
    parser.add_argument("--sio-manager", choices=MANAGERS, default="broadcast")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--gc", choices=GC_MODES, default="default")
    parser.add_argument("--redis-url", help="for --sio-manager redis and redis-default")
    args = parser.parse_args()
    tune_gc(args.gc)
    if args.app == "real":
        server = real_server(args.port, args.sio_manager, args.redis_url)
    else:
        server = minimal_server(args.port, args.sio_manager)
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(server.serve())
    else:
        asyncio.run(server.serve())


if __name__ == "__main__":
    main()
