"""The gevent yardstick: a bare Flask-SocketIO server on gevent with the bench trigger.

    python -m bench.flask_floor --port P

Issue 4 sets the Socket.IO target as "no worse than Flask-SocketIO on gevent". This is
that server doing nothing but broadcast, so ``python -m bench.ws_broadcast --app
flask-gevent --targets sio-broadcast`` measures it with the same load generator, the
same scheduled-time latency and the same CPU accounting, on the same machine and in
the same session as the FastAPI figures. ``POST /_bench/broadcast?rate=&count=&t0=``
emits ``bench_update {sched, i}`` to every client at ``t0 + i / rate``.
"""

from gevent import monkey

monkey.patch_all()  # before anything imports socket or threading

import argparse  # noqa: E402
import time  # noqa: E402

from flask import Flask, request  # noqa: E402
from flask_socketio import SocketIO  # noqa: E402


def build() -> tuple[Flask, SocketIO]:
    app = Flask(__name__)
    sio = SocketIO(app, async_mode="gevent", logger=False, engineio_logger=False)

    def run(rate: float, count: int, t0: float) -> None:
        for i in range(count):
            sched = t0 + i / rate
            delay = sched - time.time()
            if delay > 0:
                sio.sleep(delay)
            sio.emit("bench_update", {"sched": sched, "i": i})

    @app.post("/_bench/broadcast")
    def start_broadcasts() -> dict[str, int]:
        rate = float(request.args["rate"])
        count = min(int(request.args["count"]), 1_000_000)
        sio.start_background_task(run, rate, count, float(request.args["t0"]))
        return {"scheduled": count}

    return app, sio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app, sio = build()
    sio.run(app, host="127.0.0.1", port=args.port, log_output=False)


if __name__ == "__main__":
    main()
