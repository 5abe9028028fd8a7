"""The one configuration object shared by both servers, the benches and the tests.

Values come, highest first, from CLI flags (entry points only), ``GENIE_*`` environment
variables, a ``.env`` file, then the defaults below. The defaults run fully offline:
espeak-ng speech, in-memory queues, SQLite only where a path is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ROOT = Path(__file__).resolve().parent
STATIC_DIR = ROOT / "static"

Stage = Literal["skeletal", "mvp", "full"]
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
    log_level: str = Field("info", description="Python logging level name.")

    # --- speech -------------------------------------------------------------------------
    tts_providers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["espeak"],
        description="Provider fallback chain, first to last (espeak, sample, elevenlabs).",
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

    # --- queues -------------------------------------------------------------------------
    job_handler: str = Field(
        "offline",
        description="Job handler: 'offline', 'openai' or an import path 'module:callable'.",
    )
    job_timeout: float = Field(30.0, gt=0, description="Seconds a job may run before it is dead.")
    consumers: int = Field(1, ge=1, description="Jobs answered at once.")
    store: str = Field("memory", description="Job store: 'memory' or 'sqlite:///path/to.db'.")
    openai_base_url: str = Field("http://127.0.0.1:11434/v1", description="Chat endpoint.")
    openai_api_key: SecretStr | None = Field(None, description="Chat endpoint key.")
    openai_model: str = Field("llama3.2", description="Chat model name.")

    @field_validator("tts_providers", mode="before")
    @classmethod
    def _split_chain(cls, value: object) -> object:
        # Accept "elevenlabs,espeak" as well as a JSON list.
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
