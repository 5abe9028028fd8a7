"""The legacy Genie server: Flask 3 + Flask-SocketIO 5, wire-compatible with the
original Genie-in-the-Box server, running the shared ``queues/`` and ``tts/`` core on a
private asyncio loop thread.

Start it with ``python -m flask_app``; build it with ``flask_app.app.create_app``. This
package file imports nothing, so ``python -m flask_app --async-mode gevent`` can set
gevent up before Flask, sockets or threads are imported.
"""
