// genie-page.js: the Genie queue page. Asks the server which transport to use
// (GET /api/client-config), connects a GenieClient and keeps the page in step with it.
// If the page's server is swapped for one without /ws, it switches to Socket.IO.

import { GenieClient } from "./genie-client.js";

const QUEUES = ["todo", "run", "done", "dead"];
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(window.location.search);
const token = params.get("token");

// --- transport decision ----------------------------------------------------------------

async function fetchConfig() {
  const query = params.has("transport") ? `?transport=${encodeURIComponent(params.get("transport"))}` : "";
  const res = await fetch(`/api/client-config${query}`, { cache: "no-store", credentials: "same-origin" });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return await res.json();
}

async function clientConfig() {
  try {
    return await fetchConfig();
  } catch (err) {
    // A server without the route (e.g. the original Genie) still speaks Socket.IO.
    return { transport: "socketio", reason: "config_unavailable", detail: String(err.message || err) };
  }
}

const transportName = (transport) => (transport === "ws" ? "native /ws" : "Socket.IO");

function showDecision(config) {
  $("rollout-transport").textContent = transportName(config.transport);
  $("rollout-transport").dataset.transport = config.transport;
  $("rollout-reason").textContent = config.reason;
  $("rollout-reason").dataset.reason = config.reason;
  $("rollout-detail").textContent = config.detail ? `(${config.detail})` : "";
}

// --- connection state --------------------------------------------------------------------

function showState(info) {
  const badge = $("conn-state");
  badge.dataset.state = info.state;
  const attempt = info.state === "reconnecting" && info.attempt ? ` (try ${info.attempt})` : "";
  badge.textContent = `${info.state}${attempt}`;
  badge.title = info.error ? `last error: ${info.error}` : "connection state";
  const name = info.transport === "ws" ? "native WebSocket" : "Socket.IO";
  const via = info.via && info.via !== "/ws" ? ` · ${info.via}` : "";
  const seq = info.transport === "ws" && info.lastSeq ? ` · seq ${info.lastSeq}` : "";
  $("transport").textContent = `${name}${via}${seq}`;
  $("transport").dataset.transport = info.transport;
}

function log(text) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  const list = $("log");
  list.prepend(item);
  while (list.children.length > 50) list.lastChild.remove();
}

// --- audio: one answer after another, never the same URL twice in the queue ---------------

class AnswerPlayer {
  constructor(element) {
    this.element = element;
    this.queue = [];
    this.current = null;
    this.played = [];
    element.addEventListener("ended", () => this._next());
    element.addEventListener("error", () => {
      log(`could not play ${this.current}`);
      this._next();
    });
  }

  enqueue(url) {
    if (url === this.current || this.queue.includes(url)) return false;
    this.queue.push(url);
    this._show();
    if (this.current === null) this._next();
    return true;
  }

  _next() {
    this.current = this.queue.shift() ?? null;
    this._show();
    if (this.current === null) return;
    this.played.push(this.current);
    this.element.src = withToken(this.current);
    this.element.play().catch((err) => {
      log(`play() refused: ${err.message}`);
      this._next();
    });
  }

  _show() {
    $("now-playing").textContent = this.current ? describeAudio(this.current) : "nothing";
    $("audio-queue").textContent = String(this.queue.length);
  }
}

function describeAudio(url) {
  const parsed = new URL(url, window.location.origin);
  const text = parsed.searchParams.get("msg") ?? parsed.searchParams.get("tts_text");
  if (text !== null) return `“${text.length > 80 ? `${text.slice(0, 80)}…` : text}”`;
  return parsed.pathname.startsWith("/get-answer/") ? "a replayed answer" : parsed.pathname;
}

function withToken(url) {
  // Media elements cannot send headers: with auth on, the token rides in the query.
  if (!token) return url;
  return `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
}

// --- queue lists -------------------------------------------------------------------------

// The server sends <li> strings (user text escaped). They are parsed in an inert
// document and rebuilt from text, so a server that forgot to escape cannot inject HTML.
function parseItem(html) {
  const doc = new DOMParser().parseFromString(`<ul>${html}</ul>`, "text/html");
  const li = doc.querySelector("li");
  if (!li) return null;
  const label = li.querySelector(".play") || li;
  return { id: li.id, text: label.textContent.trim() };
}

function renderList(name, items) {
  const list = $(`${name}-list`);
  list.replaceChildren(
    ...items.map(({ id, text }) => {
      const li = document.createElement("li");
      li.dataset.id = id;
      const span = document.createElement("span");
      span.className = "text";
      span.textContent = text;
      li.append(span);
      if (name === "done") {
        const actions = document.createElement("div");
        actions.className = "actions";
        actions.append(button("play", "▶ Replay", id), button("delete", "✕ Delete", id));
        li.append(actions);
      }
      return li;
    }),
  );
}

function button(kind, label, id) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = kind;
  b.dataset.id = id;
  b.textContent = label;
  return b;
}

class Lists {
  constructor(genie) {
    this.genie = genie; // its client changes when the server moves
    this.busy = new Map(); // name -> promise of the fetch in flight
    this.again = new Set(); // names that changed while their fetch was in flight
  }

  refresh(name) {
    if (this.busy.has(name)) {
      this.again.add(name);
      return this.busy.get(name);
    }
    const run = this._load(name).finally(() => {
      this.busy.delete(name);
      if (this.again.delete(name)) this.refresh(name);
    });
    this.busy.set(name, run);
    return run;
  }

  async _load(name) {
    try {
      const res = await this.genie.client.fetch(`/get_queue/${name}`);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const data = await res.json();
      const items = (data[`${name}_jobs`] || []).map(parseItem).filter(Boolean);
      renderList(name, items);
      $(`${name}-count`).textContent = String(items.length);
    } catch (err) {
      log(`could not list ${name}: ${err.message}`);
    }
  }
}

// --- wiring ------------------------------------------------------------------------------

// The page's parts outlive a client: a server move replaces genie.client and genie.config.
function wire(client, genie) {
  const { player, lists } = genie;
  let lastState = null;
  client.on("state", (info) => {
    showState(info);
    // Nothing announces the queues on (re)connect: read them whenever the link opens.
    if (info.state === "open" && lastState !== "open") QUEUES.forEach((name) => lists.refresh(name));
    lastState = info.state;
  });
  client.on("time_update", (data) => {
    $("clock").textContent = data.date;
    $("clock").dataset.source = data.source || "server";
  });
  for (const name of QUEUES) {
    client.on(`${name}_update`, (data) => {
      $(`${name}-count`).textContent = String(data.value);
      lists.refresh(name);
    });
  }
  client.on("audio_update", (data) => {
    if (player.enqueue(data.audioURL)) log(`answer audio ${describeAudio(data.audioURL)}`);
  });
  client.on("notification_sound_update", (data) => {
    log("notification sound");
    new Audio(withToken(data.soundFile)).play().catch((err) => log(`sound refused: ${err.message}`));
  });
  client.on("resumed", (data) => {
    log(data.failed ? `new session (${data.failed})` : `resumed (${data.replayed} frames replayed)`);
    QUEUES.forEach((name) => lists.refresh(name));
  });
}

function wireForm(genie) {
  const input = $("question");
  $("ask").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    $("push-status").textContent = "sending…";
    try {
      const { id_hash: id } = await genie.client.push(text);
      $("push-status").textContent = `queued ${id ?? ""}`.trim();
      log(`asked: ${text}`);
    } catch (err) {
      $("push-status").textContent = `not queued: ${err.message}`;
      input.value = text;
    }
  });
}

function wireDone(genie) {
  $("done-list").addEventListener("click", async (event) => {
    const target = event.target.closest("button");
    if (!target) return;
    const id = target.dataset.id;
    if (target.classList.contains("play")) {
      genie.player.enqueue(`/get-answer/${encodeURIComponent(id)}`);
    } else if (target.classList.contains("delete")) {
      target.disabled = true;
      try {
        await genie.client.deleteJob(id);
        log(`deleted ${id}`);
      } catch (err) {
        log(`could not delete ${id}: ${err.message}`);
        target.disabled = false;
      }
    }
  });
}

// --- following a server move ---------------------------------------------------------------

// Behind a sticky proxy, the next request may land on another kind of server. Socket.IO
// works on both, but /ws only on FastAPI, and to the page a server without /ws looks like
// a server that is down (failedOpens, see genie-client.js). So after a few failed opens
// in a row the page asks again: "socketio" means the server moved; no answer means it is
// down (the client keeps retrying, and the next failure asks again).
const MOVE_CHECK_AFTER = 2; // /ws sockets in a row that closed before the server's first frame

function followMoves(client, genie) {
  let asked = 0; // the failedOpens last asked about: one question per failed socket
  client.on("state", async (info) => {
    const failed = info.failedOpens || 0;
    if (failed < MOVE_CHECK_AFTER) asked = 0; // the link worked in between: a new streak
    if (failed < MOVE_CHECK_AFTER || failed === asked) return;
    asked = failed;
    let config;
    try {
      config = await fetchConfig();
    } catch {
      return;
    }
    if (client !== genie.client || config.transport === client.transport) return;
    log(`server moved: now ${transportName(config.transport)}`);
    client.close();
    connect(genie, config);
  });
}

function connect(genie, config) {
  showDecision(config);
  const client = new GenieClient({
    transport: config.transport,
    token,
    notificationSound: config.notification_sound,
    wsPath: config.ws_path || "/ws",
    socketioPath: config.socketio_path || "/socket.io/",
  });
  Object.assign(genie, { client, config });
  wire(client, genie);
  if (client.transport === "ws") followMoves(client, genie); // Socket.IO works on both servers
  client.connect();
}

async function main() {
  const config = await clientConfig();
  const genie = (window.genie = { client: null, config: null, player: new AnswerPlayer($("player")) });
  genie.lists = new Lists(genie);
  wireForm(genie);
  wireDone(genie);
  connect(genie, config);
  window.addEventListener("pagehide", () => genie.client.close());
}

main();
