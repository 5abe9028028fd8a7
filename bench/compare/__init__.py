"""Side-by-side comparison of the Flask and FastAPI servers (issue 7).

    python -m bench.compare [--quick] [--out DIR]

Four targets, each a fresh server process per workload on its own loopback port,
pinned to core 0 while this process (the load generator) runs on core 1:

- ``flask-threading``: ``python -m flask_app --async-mode threading`` (as Genie ran it);
- ``flask-gevent``: ``python -m flask_app --async-mode gevent``;
- ``fastapi-sio``: ``python -m fastapi_app --stage full``, legacy Socket.IO clients;
- ``fastapi-ws``: the same server, native ``/ws`` clients.

All share ``config.Settings`` (same speech engine, same offline job handler); the load
generator speaks the wire protocols directly through ``bench.rawws``.
"""
