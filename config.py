"""The one configuration object shared by both servers, the benches and the tests.

Values come, highest first, from CLI flags (entry points only), ``GENIE_*`` environment
variables, a ``.env`` file, then the defaults below. The defaults run fully offline:
espeak-ng speech, in-memory queues, SQLite only where a path is given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ROOT = Path(__file__).resolve().parent
STATIC_DIR = ROOT / "static"

Stage = Literal["skeletal", "mvp", "full"]
OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer",
    "verse", "marin", "cedar",
)  # fmt: skip
AudioFormatName = Literal["mp3", "wav", "pcm"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GENIE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        cli_kebab_case=True,
        cli_implicit_flags=True,
    )

    # --- server ---------------------------------------------------------------------
    stage: Stage = Field("full", description="FastAPI stage: skeletal, mvp or full.")
    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8000, ge=0, le=65535, description="Port to bind (0 = any free port).")
    workers: int = Field(1, ge=1, description="uvicorn worker processes.")
    forwarded_allow_ips: str = Field(
        "127.0.0.1,::1",
        description="Proxies whose X-Forwarded-For names the client (comma-separated "
        "addresses or networks, '*' for any). The per-address connection cap and the "
        "per-address limits see the forwarded client only behind one of these.",
    )
    log_level: str = Field("info", description="Python logging level name.")

    # --- speech -------------------------------------------------------------------------
    tts_providers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["espeak"],
        description="Provider chain, first to last: espeak, sample, elevenlabs, openai. "
        "'openai@URL' adds one more OpenAI-compatible server (e.g. a second Kokoro); "
        "adjacent instances of one kind are balanced by GENIE_TTS_POLICY.",
    )
    tts_policy: Literal["fallback", "round_robin", "least_busy"] = Field(
        "fallback",
        description="How adjacent instances of one provider kind share requests: fallback "
        "(first healthy one), round_robin or least_busy (fewest open streams).",
    )
    tts_first_byte_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a provider has for its first audio byte before the next one "
        "in the chain is asked instead.",
    )
    tts_breaker_failures: int = Field(
        3, ge=1, description="Failures in a row that take a speech provider out for a cool-down."
    )
    tts_breaker_cooldown: float = Field(
        30.0,
        gt=0,
        description="Seconds a failing speech provider is left out before one request "
        "probes it again.",
    )
    tts_voice: str | None = Field(None, description="Default voice (provider specific).")
    tts_lang: str = Field("en", description="Default language code.")
    tts_speed: float = Field(1.0, ge=0.25, le=4.0, description="Default speaking speed.")
    tts_format: AudioFormatName = Field("mp3", description="Default audio format.")
    tts_max_chars: int = Field(5000, ge=1, description="Longest text accepted for speech.")
    tts_mp3_bitrate: int = Field(48, description="MP3 bit rate in kbit/s.")
    tts_cache_entries: int = Field(256, ge=0, description="In-memory audio cache size (0 = off).")
    tts_cache_dir: Path | None = Field(None, description="Optional on-disk audio cache folder.")

    elevenlabs_api_key: SecretStr | None = Field(None, description="ElevenLabs API key.")
    elevenlabs_base_url: str = Field("https://api.elevenlabs.io", description="ElevenLabs API.")
    elevenlabs_voice_id: str = Field("21m00Tcm4TlvDq8ikWAM", description="ElevenLabs voice id.")
    elevenlabs_model_id: str = Field("eleven_flash_v2_5", description="ElevenLabs model id.")
    elevenlabs_timeout: float = Field(10.0, gt=0, description="ElevenLabs request timeout (s).")

    openai_tts_base_url: str = Field(
        "http://127.0.0.1:8880/v1",
        description="OpenAI-compatible speech server (Kokoro-FastAPI's default; OpenAI: "
        "https://api.openai.com/v1).",
    )
    openai_tts_api_key: SecretStr | None = Field(
        None, description="Key for the OpenAI-compatible speech server (local ones need none)."
    )
    openai_tts_model: str = Field("kokoro", description="Speech model (OpenAI: gpt-4o-mini-tts).")
    openai_tts_voice: str = Field("af_heart", description="Default voice (OpenAI: e.g. alloy).")
    openai_tts_voices: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(OPENAI_VOICES),
        description="Voices offered when the server lists none (OpenAI's own names).",
    )
    openai_tts_timeout: float = Field(
        30.0, gt=0, description="Seconds a speech server may stall a request or a stream."
    )

    # --- queues -------------------------------------------------------------------------
    job_handler: str = Field(
        "offline",
        description="Job handler: 'offline', 'openai' or an import path 'module:callable'.",
    )
    job_timeout: float = Field(30.0, gt=0, description="Seconds a job may run before it is dead.")
    consumers: int = Field(
        1,
        ge=0,
        description="Jobs this process answers at once. 0: a web-only process that serves "
        "clients and queues questions for other processes (needs GENIE_REDIS_URL).",
    )
    store: str = Field("memory", description="Job store: 'memory' or 'sqlite:///path/to.db'.")
    store_busy_timeout: float = Field(
        5.0,
        ge=0,
        description="Seconds a write waits for a SQLite store locked by another process; "
        "then the push is refused (HTTP 503 + Retry-After, /ws error 'unavailable').",
    )
    max_queued: int = Field(
        500,
        ge=0,
        description="Questions waiting at most (the fleet's, with Redis); past it a question "
        "is refused at once (HTTP 503 + Retry-After, /ws error 'busy'). 0: no cap.",
    )
    max_queued_per_client: int = Field(
        3,
        ge=0,
        description="Questions one /ws client may have waiting; past it its next question is "
        "refused (error 'busy'). 0: no cap.",
    )
    max_wait: float = Field(
        60.0,
        ge=0,
        description="Seconds a question may wait before it is no longer worth answering: it "
        "goes to dead as 'expired' and its asker is told. 0: no limit.",
    )
    history_limit: int = Field(
        1000,
        ge=1,
        description="Newest done and newest dead jobs kept (each); older ones are forgotten "
        "and their answers answer 404.",
    )

    # --- fleet: many processes on one Redis -----------------------------------------------
    redis_url: str | None = Field(
        None,
        description="Redis shared by every process of the fleet, e.g. redis://127.0.0.1:6379/0. "
        "Set: jobs, history, counts and per-client frames live there (GENIE_STORE is "
        "ignored). Unset: everything stays in this process.",
    )
    redis_channel: str = Field(
        "genie",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Prefix of every Redis key and channel: one per environment.",
    )
    socketio_channel: str = Field(
        "",
        pattern=r"^[A-Za-z0-9_.-]{0,64}$",
        description="Socket.IO message-queue channel shared by every server, Flask and "
        "FastAPI alike (default: '<GENIE_REDIS_CHANNEL>-socketio'). Set it only to keep an "
        "existing Flask-SocketIO channel such as 'flask-socketio'; every server must agree.",
    )

    job_lease: float = Field(
        10.0,
        ge=0.5,
        description="Seconds a running job survives its process's silence before another "
        "process takes it over and runs it again (fleet only; renewed while it runs).",
    )
    openai_base_url: str = Field("http://127.0.0.1:11434/v1", description="Chat endpoint.")
    openai_api_key: SecretStr | None = Field(None, description="Chat endpoint key.")
    openai_model: str = Field("llama3.2", description="Chat model name.")

    # --- native /ws connections (FastAPI) -------------------------------------------------
    ws_heartbeat_interval: float = Field(
        30.0, gt=0, description="Seconds between the server's {'type':'ping'} frames (full)."
    )
    ws_heartbeat_timeout: float = Field(
        60.0, gt=0, description="Close a /ws client silent this long with 1011 (full)."
    )
    ws_send_queue_size: int = Field(
        256,
        ge=1,
        description="Frames waiting per /ws client; a client whose queue is full is slow and "
        "is closed with 1013 so it never delays the others.",
    )
    ws_resume_window: float = Field(
        30.0,
        ge=0,
        description="Seconds a disconnected /ws client's state and frames are kept for "
        "'resume'. When it expires the client's queued jobs and audio streams are "
        "cancelled (0 = cancel at once, no resume).",
    )
    ws_resume_frames: int = Field(
        256, ge=0, description="Most recent frames kept per /ws client for replay on resume."
    )
    ws_max_frame_bytes: int = Field(
        64 * 1024, ge=1024, description="Largest incoming WebSocket message; larger: close 1009."
    )
    ws_per_message_deflate: bool = Field(
        False,
        description="permessage-deflate on WebSockets. Off: for small JSON frames it triples "
        "memory per client and CPU per delivery.",
    )
    direct_frames: bool = Field(
        True,
        description="Write WebSocket text frames straight to uvicorn's transport when it "
        "is safe (falls back to ASGI otherwise; off by itself when the installed uvicorn "
        "or python-engineio lack what it reads).",
    )
    ws_auth_timeout: float = Field(
        10.0, gt=0, description="Seconds a /ws client has to send its {'type':'auth'} frame."
    )
    ws_close_timeout: float = Field(
        5.0, gt=0, description="Seconds to wait for a socket's close handshake on shutdown."
    )
    clock_interval: float = Field(
        1.0, gt=0, description="Seconds between Socket.IO time_update broadcasts."
    )
    sio_ping_interval: float = Field(25.0, gt=0, description="Engine.IO ping interval (s).")
    sio_ping_timeout: float = Field(20.0, gt=0, description="Engine.IO ping timeout (s).")
    notification_sound: str = Field(
        "/static/sounds/gentle-gong.mp3", description="URL sent in notification_sound_update."
    )

    # --- security (full stage) --------------------------------------------------------------
    jwt_secret: SecretStr | None = Field(
        None, description="HMAC secret for JWTs. Unset: auth off (dev). Set: every API needs one."
    )
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = Field(
        "HS256",
        description="JWT algorithm; the only one accepted (a token's own header never picks it).",
    )
    jwt_leeway: float = Field(10.0, ge=0, description="Clock skew allowed on exp/nbf/iat (s).")
    jwt_previous_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="Secrets still accepted for verification during a key rollover (JSON "
        "list); new tokens are signed with GENIE_JWT_SECRET only. Remove one to revoke it.",
    )
    jwt_audience: str | None = Field(
        None, description="Required 'aud' claim of every JWT. Unset: 'aud' is not checked."
    )
    jwt_issuer: str | None = Field(
        None, description="Required 'iss' claim of every JWT. Unset: 'iss' is not checked."
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to open /ws and Socket.IO (JSON list). Empty: same "
        "origin and loopback pages only. '*' allows any.",
    )
    rate_limit_queries: float = Field(
        60.0, ge=0, description="Questions per minute per client (/ws query, /push); 0 = off."
    )
    rate_limit_queries_burst: int = Field(10, ge=1, description="Questions allowed at once.")
    rate_limit_audio: float = Field(
        240.0, ge=0, description="Audio requests per minute per client; 0 = off."
    )
    rate_limit_audio_burst: int = Field(20, ge=1, description="Audio requests allowed at once.")

    # --- floods: connections, slow clients, synthesis (FastAPI) -------------------------------
    max_connections: int = Field(
        4096,
        ge=0,
        description="Connections open at once (HTTP requests in flight, WebSockets, "
        "Engine.IO long-polls); past it: HTTP 503 + Retry-After, WebSocket close 1013. "
        "0: no cap.",
    )
    max_connections_per_ip: int = Field(
        256,
        ge=0,
        description="Connections open at once per client address (the peer's, or the "
        "X-Forwarded-For of a proxy uvicorn trusts: FORWARDED_ALLOW_IPS, default "
        "loopback); past it: 503 / close 1013. 0: no cap.",
    )
    header_timeout: float = Field(
        10.0,
        ge=0,
        description="Seconds a client has to send a request's line and headers (from "
        "connecting, or from its first byte on a kept-alive connection); then 408 and "
        "closed. 0: no limit.",
    )
    body_timeout: float = Field(
        30.0,
        ge=0,
        description="Seconds a client has to send a request's whole body once its headers "
        "are in; then the connection is closed. 0: no limit.",
    )
    max_syntheses: int = Field(
        16,
        ge=0,
        description="Speech requests synthesized at once in this process; past it: HTTP "
        "503 + Retry-After, /ws/tts error 'busy'. 0: no cap.",
    )
    max_syntheses_per_client: int = Field(
        4,
        ge=0,
        description="Speech requests synthesized at once per client (JWT subject, else "
        "address); past it: HTTP 429 + Retry-After, /ws/tts error 'busy'. 0: no cap.",
    )
    rate_limit_speech: float = Field(
        60.0,
        ge=0,
        description="Synthesis requests per minute per client on /v1/audio/speech, "
        "/api/v1/tts, each /ws/tts request and scene generation; 0 = off.",
    )
    rate_limit_speech_burst: int = Field(10, ge=1, description="Synthesis requests at once.")
    rate_limit_login: float = Field(
        10.0, ge=0, description="Login attempts per minute per address (POST /login); 0 = off."
    )
    rate_limit_login_burst: int = Field(5, ge=1, description="Login attempts allowed at once.")
    login_users: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Users of the login page, 'name:hash' entries separated by commas (hash "
        "from 'python -m fastapi_app.auth.passwords NAME'). Set, with GENIE_JWT_SECRET: /genie "
        "asks for a login and the session cookie authenticates the page.",
    )
    login_session_ttl: float = Field(
        28_800.0, gt=0, description="Seconds a login session cookie stays valid (8 h)."
    )
    login_cookie_secure: bool = Field(
        False,
        description="Always mark the session cookie Secure (TLS ends at a proxy). It is "
        "Secure anyway when the request arrives over https.",
    )

    # --- lifecycle ----------------------------------------------------------------------------
    shutdown_timeout: float = Field(
        10.0, gt=0, description="Seconds a graceful shutdown waits for open connections."
    )
    shutdown_job_grace: float = Field(
        0.0,
        ge=0,
        description="Seconds a shutdown lets running jobs finish. Jobs still running or "
        "queued after it stay in the store (sqlite) and resume on the next start.",
    )
    metrics_enabled: bool = Field(
        True, description="Serve /metrics (FastAPI: full stage; Flask: always)."
    )

    # --- staged rollout of the native /ws transport (browser client) ------------------------
    rollout_ws_percent: float = Field(
        0.0, ge=0, le=100, description="Share of browsers sent to native /ws (sticky, cookie)."
    )
    rollout_kill_switch: bool = Field(
        False, description="Force every browser onto Socket.IO, even over ?transport=ws."
    )
    rollout_cookie_name: str = Field("genie_rollout_bucket", description="Rollout cookie name.")
    rollout_cookie_max_age: int = Field(
        31_536_000, ge=1, description="Seconds the rollout cookie lives."
    )

    # --- scene sessions (seeds 000-002) -------------------------------------------------------
    scenes_db: str | None = Field(
        None, description="SQLite file for scenes and their audio chunks (unset: in memory)."
    )
    scene_session_ttl: float = Field(
        300.0, gt=0, description="Seconds an idle scene session lives before it expires."
    )
    scene_synth_slots: int = Field(2, ge=1, description="Scene chunks synthesized at once.")

    @field_validator("tts_providers", "openai_tts_voices", "login_users", mode="before")
    @classmethod
    def _split_chain(cls, value: object) -> object:
        # Accept "elevenlabs,espeak" as well as a JSON list (NoDecode: the env value
        # arrives as the raw string either way).
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _default_socketio_channel(self) -> Settings:
        # One setting names both: derived from the fleet's prefix unless set.
        if not self.socketio_channel:
            self.socketio_channel = f"{self.redis_channel}-socketio"
        return self
