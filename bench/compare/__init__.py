"""Side-by-side comparison of the Flask and FastAPI servers.

    python -m bench.compare [--quick] [--out DIR]

Four targets, each a fresh server process on its own loopback port (one per workload
and target; ``--quick``: one per target), pinned to core 0 with ``taskset`` while this
process (the load generator) runs on core 1. Servers run in their own process group
and are stopped on exit, failure, Ctrl-C, SIGTERM or SIGHUP (``servers.LIVE``):

- ``flask-threading``: ``python -m flask_app --async-mode threading`` (as Genie ran it);
- ``flask-gevent``: ``python -m flask_app --async-mode gevent``;
- ``fastapi-sio``: ``python -m fastapi_app --stage full``, legacy Socket.IO clients;
- ``fastapi-ws``: the same server, native ``/ws`` clients.

All share ``config.Settings`` (same speech engine, same offline job handler); the load
generator speaks the wire protocols directly through ``bench.rawws``.

Modules: ``plan`` (sizes), ``servers`` (targets, process groups), ``traffic`` (latency
and capacity), ``ceiling`` (idle connections, RSS), ``audio``, ``mix``, ``run``
(orchestration), ``report``/``targets``/``charts``/``output`` (the output folder).
Results are in ``migration_docs/results.md``.
"""
