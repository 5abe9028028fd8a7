"""Audio URLs sent to clients, and where a browser finds the Genie page. Text is always
percent-encoded (the original Genie put it in the URL raw, so '&', '#' or '?' in an
answer broke the link)."""

from __future__ import annotations

from urllib.parse import quote, urlencode

AUDIO_PATH = "/api/get-audio"
LEGACY_AUDIO_PATH = "/get_tts_audio"
ANSWER_PATH = "/get-answer"
PAGE_PATH = "/genie"


def audio_url(
    msg: str,
    *,
    voice: str | None = None,
    speed: float | None = None,
    fmt: str | None = None,
    client_id: str | None = None,
) -> str:
    """``/api/get-audio?msg=<quoted>`` plus voice/speed/format/client_id when set.

    ``client_id`` ties the stream to a ``/ws`` client so its disconnect can stop it.
    """
    url = f"{AUDIO_PATH}?msg={quote(msg, safe='')}"
    extra: dict[str, str] = {}
    if voice:
        extra["voice"] = voice
    if speed is not None:
        extra["speed"] = f"{speed:g}"
    if fmt:
        extra["format"] = fmt
    if client_id:
        extra["client_id"] = client_id
    return f"{url}&{urlencode(extra)}" if extra else url


def legacy_audio_url(msg: str) -> str:
    """``/get_tts_audio?tts_text=<quoted>``: what the original Flask server sent."""
    return f"{LEGACY_AUDIO_PATH}?tts_text={quote(msg, safe='')}"


def answer_url(id_hash: str) -> str:
    return f"{ANSWER_PATH}/{quote(id_hash, safe='')}"


def page_url(query: str = "") -> str:
    """Where ``/`` sends a browser: the Genie page, with the query as it came
    (``/?transport=ws`` -> ``/genie?transport=ws``)."""
    return f"{PAGE_PATH}?{query}" if query else PAGE_PATH
