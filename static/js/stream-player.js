// Seed 004's stream player: WS /ws/tts, playback while the MP3 still arrives.
// MSE (MediaSource + SourceBuffer "audio/mpeg", sequence mode) where the browser has it;
// otherwise the frames are collected and played as one blob on "complete".
// window.__player records what happened, for tests and for debugging in the console.

const $ = (id) => document.getElementById(id);
const MAX_CHARS = 5000;
const RETRY_MS = [500, 1000, 2000, 4000, 8000];
const PING_MS = 30000;

const state = (window.__player = {
  mode: null, connected: false, requests: 0, frames: 0, bytes: 0,
  framesAtPlaying: null, framesAtComplete: null, playingAt: null, completeAt: null,
  errors: [],
});

let ws = null;
let retries = 0;
let busy = false;
let stream = null; // the request being received: {chunks, source, buffer, queue, done}

function mseAvailable() {
  return typeof window.MediaSource !== "undefined" && MediaSource.isTypeSupported("audio/mpeg");
}

function status(text, kind = "info") {
  const el = $("status");
  el.textContent = text;
  el.dataset.kind = kind;
}

function setBusy(value) {
  busy = value;
  document.body.dataset.busy = String(value);
  $("speak").disabled = value || !state.connected;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${scheme}://${location.host}/ws/tts`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => {
    retries = 0;
    state.connected = true;
    setBusy(false);
    status("Connected. Type something and press Speak.", "info");
  };
  ws.onclose = () => {
    state.connected = false;
    setBusy(false);
    const wait = RETRY_MS[Math.min(retries, RETRY_MS.length - 1)];
    retries += 1;
    status(`Disconnected; reconnecting in ${wait / 1000} s…`, "error");
    setTimeout(connect, wait);
  };
  ws.onmessage = (event) => {
    if (typeof event.data === "string") onStatus(JSON.parse(event.data));
    else onAudio(event.data);
  };
}

function onStatus(msg) {
  switch (msg.status) {
    case "generating":
      status(msg.message, "info");
      startStream();
      break;
    case "ready":
      status("Audio ready, streaming…", "info");
      break;
    case "complete":
      state.framesAtComplete = state.frames;
      state.completeAt = performance.now();
      finishStream();
      setBusy(false);
      status("All audio received.", "success");
      break;
    case "cancelled":
    case "error":
      state.errors.push(msg.error || msg.message);
      status(`Error: ${msg.error || msg.message}`, "error");
      stream = null;
      setBusy(false);
      break;
    default: // pong and anything newer
  }
}

function startStream() {
  const player = $("player");
  stream = { chunks: [], queue: [], buffer: null, source: null, done: false };
  state.frames = 0;
  state.bytes = 0;
  state.framesAtPlaying = null;
  state.playingAt = null;
  state.mode = mseAvailable() ? "mse" : "blob";
  if (state.mode !== "mse") return;
  const current = stream;
  current.source = new MediaSource();
  player.src = URL.createObjectURL(current.source);
  current.source.addEventListener("sourceopen", () => {
    current.buffer = current.source.addSourceBuffer("audio/mpeg");
    current.buffer.mode = "sequence";
    current.buffer.addEventListener("updateend", () => pump(current));
    pump(current);
  }, { once: true });
}

function onAudio(data) {
  if (!stream) return;
  state.frames += 1;
  state.bytes += data.byteLength;
  if (state.mode === "mse") {
    stream.queue.push(data);
    pump(stream);
  } else {
    stream.chunks.push(data);
  }
}

function pump(current) {
  const buffer = current.buffer;
  if (!buffer || buffer.updating) return;
  if (current.queue.length) {
    buffer.appendBuffer(current.queue.shift());
    if (!current.started) {
      current.started = true;
      play();
    }
  } else if (current.done && current.source.readyState === "open") {
    current.source.endOfStream();
  }
}

function finishStream() {
  if (!stream) return;
  stream.done = true;
  if (state.mode === "mse") {
    pump(stream);
    return;
  }
  const blob = new Blob(stream.chunks, { type: "audio/mpeg" });
  $("player").src = URL.createObjectURL(blob);
  play();
}

function play() {
  $("player").play().catch((err) => {
    state.errors.push(String(err));
    status("Press play: the browser blocked autoplay.", "error");
  });
}

function speak() {
  const text = $("text").value.trim();
  if (!text || text.length > MAX_CHARS) {
    status(`Enter 1 to ${MAX_CHARS} characters.`, "error");
    return;
  }
  if (!ws || ws.readyState !== WebSocket.OPEN || busy) return;
  setBusy(true);
  state.requests += 1;
  ws.send(JSON.stringify({ text, lang: $("lang").value }));
}

document.addEventListener("DOMContentLoaded", () => {
  const player = $("player");
  player.addEventListener("playing", () => {
    if (state.playingAt === null) {
      state.playingAt = performance.now();
      state.framesAtPlaying = state.frames;
      status("Playing…", "success");
    }
  });
  $("speak").addEventListener("click", speak);
  $("text").addEventListener("input", () => {
    $("count").textContent = `${$("text").value.length} / ${MAX_CHARS}`;
  });
  $("text").dispatchEvent(new Event("input"));
  setInterval(() => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ ping: true }));
  }, PING_MS);
  connect();
});
