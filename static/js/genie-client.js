// genie-client.js: one client interface over Genie's two transports.
//
//   const client = new GenieClient({ transport: "ws" | "socketio" });
//   client.on("audio_update", (data) => ...);   // returns an unsubscribe function
//   client.on("state", (info) => ...);          // connection state changes
//   client.connect();
//   await client.push("what time is it");       // -> { id_hash }
//   await client.deleteJob(idHash);
//   client.close();
//
// Both transports deliver the same page events with the legacy payloads:
//   time_update {date}, todo_update|run_update|done_update|dead_update {value},
//   audio_update {audioURL}, notification_sound_update {soundFile}
// plus "state" ({state, transport, via, attempt, failedOpens, clientId, lastSeq, error}),
// "queued" ({id_hash}) and "resumed" ({client_id, replayed, complete[, failed]}) on /ws
// ("failed" holds the server's error code when the old session could not be resumed and
// the client carries on as a new one). failedOpens (/ws) counts the sockets in a row that
// closed before the server's first frame: so ends /ws on a server without it (refused, or
// accepted and closed at once, as Flask under gevent does), and on a server that is down;
// a browser never says which.
//
// Socket.IO (legacy; both servers): the vendored socket.io client, questions by
// GET /push?question=. It reconnects by itself.
// Native /ws (FastAPI): JSON frames, questions as {"type":"query","text":...}. It
// reconnects with backoff and, when the server numbers its frames (full stage), sends
// {"type":"resume","client_id","last_seq"} first, so missed frames are replayed.
// The /ws protocol has no clock and no notification sound: time_update comes from the
// browser's clock (source: "browser") and a delete made through this client announces
// the notification sound itself (source: "client").

export const PAGE_EVENTS = [
  "time_update",
  "todo_update",
  "run_update",
  "done_update",
  "dead_update",
  "audio_update",
  "notification_sound_update",
];
const QUEUE_EVENTS = ["todo_update", "run_update", "done_update", "dead_update"];
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 5000];
const AUTH_FAILED = 1008;

export function clockText(now = new Date()) {
  const pad = (n) => String(n).padStart(2, "0");
  const day = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
  return `${day} @ ${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
}

export class GenieClient {
  constructor(options = {}) {
    this.transport = options.transport === "ws" ? "ws" : "socketio";
    this.base = options.base || window.location.origin;
    this.token = options.token || null;
    this.notificationSound = options.notificationSound || null;
    this.wsPath = options.wsPath || "/ws";
    this.socketioPath = options.socketioPath || "/socket.io/";
    this._handlers = new Map();
    this.info = { state: "idle", transport: this.transport, via: null, attempt: 0, failedOpens: 0 };
    this._impl = this.transport === "ws" ? new NativeWs(this) : new SocketIo(this);
  }

  get state() {
    return this.info.state;
  }

  on(event, fn) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(fn);
    return () => this._handlers.get(event).delete(fn);
  }

  connect() {
    this._impl.connect();
    return this;
  }

  close() {
    this._impl.close();
  }

  push(question) {
    const text = String(question ?? "").trim();
    if (!text) return Promise.reject(new Error("the question is empty"));
    return this._impl.push(text);
  }

  async deleteJob(idHash) {
    const res = await this.fetch(`/delete-snapshot/${encodeURIComponent(idHash)}`);
    const body = await res.text();
    if (!res.ok) throw new Error(errorText(res.status, body));
    if (this.transport === "ws" && this.notificationSound) {
      this._emit("notification_sound_update", {
        soundFile: this.notificationSound,
        source: "client",
      });
    }
    return body;
  }

  fetch(path, init = {}) {
    const headers = new Headers(init.headers || {});
    if (this.token) headers.set("Authorization", `Bearer ${this.token}`);
    return window.fetch(this.base + path, { ...init, headers, cache: "no-store" });
  }

  _emit(event, data) {
    for (const fn of this._handlers.get(event) || []) {
      try {
        fn(data);
      } catch (err) {
        console.error(`genie-client: a ${event} handler failed`, err);
      }
    }
  }

  _setState(changes) {
    Object.assign(this.info, changes);
    this._emit("state", { ...this.info });
  }
}

function errorText(status, body) {
  try {
    const data = JSON.parse(body);
    return `${status}: ${data.message || data.detail || body}`;
  } catch {
    return `${status}: ${body}`;
  }
}

// --- Socket.IO -------------------------------------------------------------------------

class SocketIo {
  constructor(client) {
    this.client = client;
    this.socket = null;
  }

  connect() {
    const client = this.client;
    if (typeof window.io !== "function") throw new Error("socket.io client not loaded");
    const socket = (this.socket = window.io(client.base, {
      path: client.socketioPath,
      reconnectionDelay: 250,
      reconnectionDelayMax: 5000,
      auth: client.token ? { token: client.token } : undefined,
    }));
    client._setState({ state: "connecting", via: "polling" });
    for (const name of PAGE_EVENTS) socket.on(name, (data) => client._emit(name, data));
    socket.on("connect", () => {
      const engine = socket.io.engine;
      client._setState({ state: "open", via: engine.transport.name, attempt: 0, error: null });
      engine.once("upgrade", () => client._setState({ via: engine.transport.name }));
    });
    socket.on("disconnect", (reason) => {
      const closed = reason === "io client disconnect" || !socket.active;
      client._setState({ state: closed ? "closed" : "reconnecting", error: reason });
    });
    socket.on("connect_error", (err) => {
      client._setState({ state: socket.active ? "reconnecting" : "closed", error: err.message });
    });
    socket.io.on("reconnect_attempt", (n) => client._setState({ state: "reconnecting", attempt: n }));
  }

  close() {
    if (this.socket) this.socket.disconnect();
    this.client._setState({ state: "closed" });
  }

  async push(text) {
    // The original page sent the text unencoded; encoded is what both servers parse best.
    const res = await this.client.fetch(`/push?question=${encodeURIComponent(text)}`);
    const body = await res.text();
    if (!res.ok) throw new Error(errorText(res.status, body));
    const match = /\[([^\]]+)\]/.exec(body);
    return { id_hash: match ? match[1] : null, message: body };
  }
}

// --- native /ws ------------------------------------------------------------------------

class NativeWs {
  constructor(client) {
    this.client = client;
    this.ws = null;
    this.clientId = null; // the session to resume
    this.lastSeq = 0;
    this.numbered = false; // the server sends seq: it can resume
    this.resuming = false;
    this.tempId = null; // this socket's own session, kept in case resuming fails
    this.heartbeat = false; // the server has pinged us (full stage)
    this.outbox = []; // frames waiting for an open socket
    this.waiters = []; // push() promises waiting for queued/error, oldest first
    this.stopped = true;
    this.attempt = 0;
    this.heard = false; // the current socket has had a frame from the server
    this.failedOpens = 0;
    this.timers = {};
  }

  connect() {
    this.stopped = false;
    this._open();
    // The protocol has no clock event: tick the page's clock from the browser's own.
    this.timers.clock = setInterval(() => {
      this.client._emit("time_update", { date: clockText(), source: "browser" });
    }, 1000);
  }

  close() {
    this.stopped = true;
    clearInterval(this.timers.clock);
    clearTimeout(this.timers.retry);
    clearTimeout(this.timers.watchdog);
    if (this.ws) this.ws.close(1000, "client closed");
    this._failWaiters("the client was closed");
    this.client._setState({ state: "closed" });
  }

  push(text) {
    return new Promise((resolve, reject) => {
      this.outbox.push({ frame: { type: "query", text }, resolve, reject });
      this._flush();
    });
  }

  _open() {
    const client = this.client;
    const url = client.base.replace(/^http/, "ws") + client.wsPath;
    const ws = (this.ws = new WebSocket(url));
    this.heard = false;
    client._setState({ state: this.attempt ? "reconnecting" : "connecting", via: "/ws" });
    ws.onopen = () => this._onOpen(ws);
    ws.onmessage = (event) => this._onMessage(event.data);
    ws.onclose = (event) => this._onClose(ws, event);
  }

  _onOpen(ws) {
    if (this.client.token) ws.send(JSON.stringify({ type: "auth", token: this.client.token }));
    this.resuming = this.numbered && this.clientId !== null;
    if (this.resuming) {
      // Before any query: the server refuses to resume a socket that already asked.
      ws.send(JSON.stringify({ type: "resume", client_id: this.clientId, last_seq: this.lastSeq }));
    }
    this.attempt = 0;
    this.client._setState({ state: "open", attempt: 0, error: null });
    this._flush();
  }

  _onMessage(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (!this.heard) {
      this.heard = true;
      this.failedOpens = this.client.info.failedOpens = 0;
    }
    this._armWatchdog();
    if (typeof frame.seq === "number") this._countSeq(frame.seq);
    const client = this.client;
    switch (frame.type) {
      case "connection_established":
        if (this.resuming) this.tempId = frame.client_id;
        else this._adopt(frame.client_id, 0);
        break;
      case "resumed":
        // A control frame repeats its session's latest seq: after the replay, the newest.
        this.resuming = false;
        this._adopt(frame.client_id, frame.seq ?? this.lastSeq);
        client._emit("resumed", frame);
        this._flush();
        break;
      case "queued":
        this._settle((w) => w.resolve({ id_hash: frame.id_hash }));
        client._emit("queued", frame);
        break;
      case "ping":
        this._send({ type: "pong" });
        this.heartbeat = true;
        break;
      case "error":
        this._onError(frame);
        break;
      default:
        if (frame.type === "audio_update" || QUEUE_EVENTS.includes(frame.type)) {
          const { type, seq, ...data } = frame;
          client._emit(type, data);
        }
    }
  }

  _countSeq(seq) {
    this.numbered = true;
    // While resuming, frames are numbered by either session (this socket's new one, or
    // the old one's replay): the resumed/error frame settles which numbering wins.
    if (!this.resuming) {
      this.lastSeq = Math.max(this.lastSeq, seq);
      this.client.info.lastSeq = this.lastSeq;
    }
  }

  _adopt(clientId, lastSeq) {
    this.clientId = clientId;
    this.lastSeq = lastSeq;
    this.client._setState({ clientId, lastSeq });
  }

  _onError(frame) {
    if (String(frame.code).startsWith("resume_")) {
      // The old session is gone (window expired, server restarted): carry on as new.
      this.resuming = false;
      this._adopt(this.tempId, frame.seq ?? 0);
      const failed = frame.code;
      this.client._emit("resumed", { client_id: this.tempId, replayed: 0, complete: false, failed });
      this._flush();
      return;
    }
    const err = new Error(`${frame.code}: ${frame.message}`);
    if (!this._settle((w) => w.reject(err))) this.client._setState({ error: err.message });
  }

  _settle(fn) {
    const waiter = this.waiters.shift();
    if (waiter) fn(waiter);
    return Boolean(waiter);
  }

  _flush() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.resuming) return;
    while (this.outbox.length) {
      const item = this.outbox.shift();
      this.ws.send(JSON.stringify(item.frame));
      this.waiters.push(item);
    }
  }

  _send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  _armWatchdog() {
    // Only once the server has shown it pings (full stage): silence then means a dead link.
    if (!this.heartbeat) return;
    clearTimeout(this.timers.watchdog);
    this.timers.watchdog = setTimeout(() => this.ws && this.ws.close(4000, "no heartbeat"), 75000);
  }

  _onClose(ws, event) {
    if (ws !== this.ws) return;
    clearTimeout(this.timers.watchdog);
    // Sent but unanswered: the server may or may not have queued them.
    this._failWaiters("the connection closed before the server answered");
    if (this.stopped || event.code === AUTH_FAILED) {
      this.client._setState({ state: "closed", error: event.reason || null });
      return;
    }
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    if (!this.heard) this.failedOpens += 1;
    const { attempt, failedOpens } = this;
    this.client._setState({ state: "reconnecting", attempt, failedOpens, error: event.reason || null });
    this.timers.retry = setTimeout(() => this._open(), delay * (0.5 + Math.random() / 2));
  }

  _failWaiters(message) {
    const waiters = this.waiters.splice(0);
    for (const w of waiters) w.reject(new Error(message));
  }
}
