// The chat socket: one WebSocket at a time, reopened after every drop with
// `since=<the last cursor received>`, so the server replays exactly what was missed
// (docs/protocol.md, "The stream and resuming it"). The cursor lives in localStorage,
// per user, so a reload or a new tab resumes too. A first connection on a device asks
// `since=start`, which is no cursor: the protocol's "lost place", i.e. the v1 catch-up
// (pending messages become delivered) and then `synced` with the current cursor.

import { LoggedOut } from "./api.js";

const PING_EVERY_MS = 20_000;
const PONG_WITHIN_MS = 8_000;
const BACKOFF_MS = [300, 1000, 2000, 4000, 8000, 15000];
const FIRST_CONTACT = "start";

export class ResumingSocket {
  /**
   * onFrame(frame) is called for every frame, in order; the cursor of a stream frame is
   * stored only after onFrame returned. onState(state) gets "connecting", "online",
   * "offline".
   */
  constructor({ api, userId, onFrame, onState, onLoggedOut }) {
    this.api = api;
    this.cursorKey = `hubbub.cursor.${userId}`;
    this.onFrame = onFrame;
    this.onState = onState;
    this.onLoggedOut = onLoggedOut;
    this.ws = null;
    this.synced = false;
    this.stopped = true;
    this.attempt = 0;
    this.opened = 0; // sockets opened so far (for diagnostics and tests)
    this.generation = 0;
    this.forceRefresh = false;
    this.retryTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.wake = () => this.reconnectNow();
    this.sleep = () => {
      this.detach();
      this.retryLater();
    };
    this.check = () => {
      if (document.visibilityState === "visible") this.probe();
    };
    // Back from the back/forward cache, or a frozen tab resumed: the socket is gone or
    // stale, whatever its readyState says.
    this.restored = (event) => {
      if (event.type === "resume" || event.persisted) this.reconnectNow();
    };
  }

  get cursor() {
    return localStorage.getItem(this.cursorKey);
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", this.wake);
    window.addEventListener("offline", this.sleep);
    document.addEventListener("visibilitychange", this.check);
    window.addEventListener("pageshow", this.restored);
    document.addEventListener("resume", this.restored);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.wake);
    window.removeEventListener("offline", this.sleep);
    document.removeEventListener("visibilitychange", this.check);
    window.removeEventListener("pageshow", this.restored);
    document.removeEventListener("resume", this.restored);
    clearTimeout(this.retryTimer);
    this.detach(1000);
  }

  /** Send now if the stream is live (true), else false: the caller keeps it for later. */
  send(frame) {
    if (!this.synced || this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  async connect() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    // A connect that is overtaken while it waits for a token (another connect, a detach)
    // gives up: there is never more than one socket.
    const generation = ++this.generation;
    this.onState("connecting");
    let token;
    try {
      token = await this.api.accessToken({ force: this.forceRefresh });
      this.forceRefresh = false;
    } catch (error) {
      if (error instanceof LoggedOut) {
        this.stop();
        this.onLoggedOut();
        return;
      }
      this.retryLater(); // The network is down, or the server: try again.
      return;
    }
    if (this.stopped || generation !== this.generation) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = new URLSearchParams({ since: this.cursor || FIRST_CONTACT });
    // The token goes as the offered subprotocol (the server echoes it), not in the URL:
    // URLs end up in proxies' access logs.
    const ws = new WebSocket(`${scheme}://${location.host}/ws/chat?${query}`, [token]);
    this.ws = ws;
    this.synced = false;
    ws.onmessage = (event) => this.receive(ws, event);
    ws.onclose = (event) => this.closed(ws, event);
    ws.onopen = () => {
      this.opened += 1;
      this.keepalive(ws);
    };
  }

  receive(ws, event) {
    if (ws !== this.ws) {
      ws.close(4000); // A socket that was replaced: never keep two open.
      return;
    }
    clearTimeout(this.pongTimer);
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame.type === "synced") {
      this.synced = true;
      this.attempt = 0;
    }
    this.onFrame(frame);
    if (typeof frame.cursor === "string") localStorage.setItem(this.cursorKey, frame.cursor);
    if (frame.type === "synced") this.onState("online");
  }

  closed(ws, event) {
    if (ws !== this.ws) return;
    this.detach();
    if (this.stopped) return;
    // 1008: the token was refused or expired; get a fresh one before trying again.
    if (event.code === 1008) this.forceRefresh = true;
    this.retryLater();
  }

  keepalive(ws) {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (ws === this.ws) this.probe();
    }, PING_EVERY_MS);
  }

  /** Ping; a socket that does not answer within PONG_WITHIN_MS is dead (a closed lid,
   * a changed network) even if the browser has not noticed yet: replace it. */
  probe() {
    const ws = this.ws;
    if (!ws) {
      if (!this.stopped) this.reconnectNow();
      return;
    }
    if (ws.readyState !== WebSocket.OPEN) return;
    clearTimeout(this.pongTimer);
    ws.send(JSON.stringify({ type: "ping" }));
    this.pongTimer = setTimeout(() => {
      if (ws === this.ws) this.reconnectNow();
    }, PONG_WITHIN_MS);
  }

  reconnectNow() {
    if (this.stopped) return;
    this.detach();
    this.attempt = 0;
    this.connect();
  }

  /** Forget the current socket (its late events are ignored) and close it. */
  detach(code = 4000) {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.generation += 1;
    const ws = this.ws;
    this.ws = null;
    this.synced = false;
    if (ws && ws.readyState <= WebSocket.OPEN) {
      try {
        ws.close(code);
      } catch {
        // Already closing.
      }
    }
  }

  retryLater() {
    this.onState(navigator.onLine === false ? "offline" : "connecting");
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), base * (0.75 + Math.random() / 2));
  }
}
