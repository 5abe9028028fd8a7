"""What the browser tests share: the servers as real processes (``tests.flask_app.launch``,
the parity suite's launcher), an init script that records what the page plays, and small
readers of the page's state.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from config import Settings
from tests.flask_app.launch import ServerProcess, server_of
from tests.servers import ROOT, ThreadServer

SHOTS = ROOT / "test-results" / "browser"
SOUND = "/static/sounds/gentle-gong.mp3"
WAIT_MS = 20_000

# Wraps HTMLMediaElement.play (used by <audio> and by new Audio()) to record every URL
# the page plays, and when each element ends or fails; watches the count badges.
RECORDER = """
(() => {
  const media = (window.__media = []);
  const note = (kind, el) =>
    media.push({ kind, url: el.src, player: el.id || "", code: el.error ? el.error.code : null });
  // Capture phase on window: runs before the page's own listeners on the element, so an
  // "ended" is logged with the URL that ended, before the page starts the next one.
  for (const kind of ["ended", "error"]) {
    window.addEventListener(kind, (event) => {
      if (event.target instanceof HTMLMediaElement) note(kind, event.target);
    }, true);
  }
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function (...args) {
    note("play", this);
    if (!this.isConnected && !this.__recorded) {
      // new Audio(url) is not in the document: its events never reach window.
      this.__recorded = true;
      this.addEventListener("ended", () => note("ended", this));
      this.addEventListener("error", () => note("error", this));
    }
    return play.apply(this, args);
  };
  const counts = (window.__counts = []);
  document.addEventListener("DOMContentLoaded", () => {
    new MutationObserver((changes) => {
      for (const change of changes) {
        const el = change.target.nodeType === 1 ? change.target : change.target.parentElement;
        if (el && el.classList.contains("count")) counts.push(`${el.id}=${el.textContent}`);
      }
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
})();
"""


def start_server(kind: str) -> ServerProcess:
    """A fresh server process: "fastapi", "flask-threading" or "flask-gevent"."""
    return server_of(kind, settings={"notification_sound": SOUND})


def fastapi(**rollout_fields: Any) -> ThreadServer:
    """An in-process FastAPI server (real uvicorn, free loopback port) with rollout settings."""
    settings = Settings(
        _env_file=None, host="127.0.0.1", port=0, log_level="warning", **rollout_fields
    )
    return ThreadServer(settings)


# --- reading the page ---------------------------------------------------------------------


def media_log(page: Any) -> list[dict[str, Any]]:
    return page.evaluate("window.__media")


def played(page: Any, player: str | None = None) -> list[str]:
    return [
        entry["url"]
        for entry in media_log(page)
        if entry["kind"] == "play" and (player is None or entry["player"] == player)
    ]


def spoken_text(url: str) -> str | None:
    """The text an audio URL speaks (``msg`` on /api/get-audio, ``tts_text`` on legacy)."""
    query = parse_qs(urlsplit(url).query)
    values = query.get("msg") or query.get("tts_text")
    return values[0] if values else None


def fetch(url: str) -> httpx.Response:
    return httpx.get(url, timeout=30.0)


def screenshot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def decision_counts(base: str) -> Counter[tuple[str, str]]:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    counts: Counter[tuple[str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "genie_rollout_decisions_total":
                counts[(sample.labels["transport"], sample.labels["reason"])] += int(sample.value)
    return counts
