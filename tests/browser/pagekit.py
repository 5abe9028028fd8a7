"""What the browser tests share: the two servers as real processes, an init script that
records what the page plays, and small readers of the page's state.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.servers import ROOT, ProcessServer, free_port

SHOTS = ROOT / "test-results" / "browser"
SOUND = "/static/sounds/gentle-gong.mp3"
WAIT_MS = 20_000
START_TIMEOUT = 30.0

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


class FlaskProcess:
    """``python -m flask_app`` on a free loopback port, GENIE_* settings in its env."""

    def __init__(self, **settings: Any) -> None:
        self.settings = {"log_level": "warning", **settings}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__

    def __enter__(self) -> FlaskProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GENIE_")}
        for name, value in self.settings.items():
            env[f"GENIE_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
        env["PYTHONPATH"] = str(ROOT)
        cmd = [sys.executable, "-m", "flask_app", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=self._log)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.seek(0)
                err = self._log.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"flask_app exited with {self.proc.returncode}: {err}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/get_queue/todo", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("flask_app did not answer /get_queue/todo in time")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def start_server(kind: str) -> Any:
    """A fresh server of ``kind`` ("fastapi" or "flask") as a context manager."""
    if kind == "fastapi":
        return ProcessServer(notification_sound=SOUND)
    return FlaskProcess(notification_sound=SOUND)


def flask_missing() -> str | None:
    if not (ROOT / "flask_app" / "__main__.py").exists():
        return "flask_app has no __main__ yet (the legacy server is another issue's work)"
    return None


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
