"""``python -m fastapi_app [--host H] [--port P] [--stage S] [--workers N] [--any-setting]``

Every ``config.Settings`` field is a flag (kebab case) and a ``GENIE_*`` variable.
With ``--workers`` > 1 uvicorn starts that many processes. With ``--redis-url`` they
are one Genie (one queue, history and counts); without it each has its own queues.
Socket.IO long-polling needs sticky sessions, which workers sharing a port cannot give
(see migration_docs/scaling-out.md).
"""

from __future__ import annotations

import json
import logging
import os
import sys

import uvicorn
from pydantic import SecretStr

from config import Settings
from fastapi_app.main import create_app
from fastapi_app.server import GenieServer, uvicorn_config


def main(argv: list[str] | None = None) -> None:
    settings = Settings(_cli_parse_args=sys.argv[1:] if argv is None else argv,
                        _cli_prog_name="python -m fastapi_app")  # fmt: skip
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    if settings.workers > 1:
        if not settings.redis_url:
            logging.getLogger(__name__).warning(
                "--workers %d without --redis-url: %d separate Genies, each with its own "
                "queues; set GENIE_REDIS_URL to share one",
                settings.workers,
                settings.workers,
            )
        # Worker processes build their own app from the environment: hand the settings
        # over as GENIE_* variables.
        os.environ.update(_as_env(settings))
        uvicorn.run(
            "fastapi_app.main:app_from_env",
            factory=True,
            workers=settings.workers,
            **_run_options(settings),
        )
        return
    app = create_app(settings)
    server = GenieServer(uvicorn_config(app, settings), app)
    server.run()  # uvicorn's loop factory: uvloop when installed


def _run_options(settings: Settings) -> dict[str, object]:
    config = uvicorn_config("fastapi_app.main:app_from_env", settings)
    keys = ("host", "port", "ws", "ws_max_size", "ws_per_message_deflate", "http",
            "timeout_graceful_shutdown", "log_level", "lifespan", "server_header",
            "proxy_headers", "forwarded_allow_ips")  # fmt: skip
    return {key: getattr(config, key) for key in keys}


def _as_env(settings: Settings) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        value = _revealed(getattr(settings, name), value)  # the dump masks secrets
        env[f"GENIE_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def _revealed(raw: object, dumped: object) -> object:
    if isinstance(raw, SecretStr):
        return raw.get_secret_value()
    if isinstance(raw, list) and any(isinstance(item, SecretStr) for item in raw):
        return [_revealed(item, item) for item in raw]
    return dumped


if __name__ == "__main__":
    main()
