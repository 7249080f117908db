// Chat connections (the `ws` package), made ready as bench/harness/ready.py does: a
// connection is ready once it has answered our `ping` with a `pong`. The server handles a
// connection's frames in order and only after its offline catch-up, so a `pong` means the
// catch-up is over and the session is registered for live traffic. `settle` then waits
// until no frame has arrived for a while (presence frames of the crowd's connects), so
// the measured span starts on a quiet line.

import WebSocket from 'ws';

const PING = '{"type":"ping"}';

/** The `type` of a JSON text frame, without failing on garbage. */
export function typeOf(data) {
  try {
    return String(JSON.parse(data.toString()).type);
  } catch {
    return '(not JSON)';
  }
}

/**
 * One client connection. `handler(data, conn)` gets every text frame (a Buffer); the
 * scenario replaces it once the connection is ready. `send` batches: frames sent in one
 * turn of the event loop leave in one write (as the Python harness flushes once per poll),
 * so neither tool pays a syscall per frame where the other does not.
 */
export class Conn {
  constructor(url, key) {
    this.key = key;
    this.closed = null; // why it ended, once it has
    this.corked = false;
    this.handler = () => {};
    this.ws = new WebSocket(url, {
      perMessageDeflate: false, // the Python harness offers no compression either
      skipUTF8Validation: true,
      handshakeTimeout: 60_000,
    });
    this.ws.on('message', (data) => this.handler(data, this));
  }

  get isOpen() {
    return this.closed === null && this.ws.readyState === WebSocket.OPEN;
  }

  send(text) {
    if (!this.isOpen) return;
    if (!this.corked && this.ws._socket) {
      // ws keeps its net.Socket as _socket (stable since ws 1.x); cork until the next
      // check phase of the loop, then every frame queued meanwhile goes in one writev.
      this.ws._socket.cork();
      this.corked = true;
      corked.push(this);
      if (corked.length === 1) setImmediate(uncorkAll);
    }
    this.ws.send(text);
  }
}

let corked = [];
function uncorkAll() {
  const batch = corked;
  corked = [];
  for (const conn of batch) {
    conn.corked = false;
    conn.ws._socket?.uncork();
  }
}

function count(counter, key, by = 1) {
  counter[key] = (counter[key] ?? 0) + by;
}

/** Wire one connection's readiness: resolves 'ready' on its pong, or a failure reason. */
function whenReady(conn, early) {
  return new Promise((resolve) => {
    let waiting = true;
    const fail = (reason) => {
      if (!waiting) return; // closes after the pong are the run's business (watchCloses)
      waiting = false;
      conn.closed ??= reason;
      resolve(conn.closed);
    };
    conn.handler = (data) => {
      const kind = typeOf(data);
      if (kind === 'pong' && waiting) {
        waiting = false;
        resolve('ready');
      } else count(early, kind);
    };
    conn.ws.on('open', () => conn.ws.send(PING));
    conn.ws.on('unexpected-response', (_req, res) => {
      fail(`handshake refused: HTTP ${res.statusCode}`);
      conn.ws.terminate();
    });
    conn.ws.on('error', (error) => fail(`connect failed: ${error.code ?? error.message}`));
    conn.ws.on('close', (code) => fail(`server closed ${code}`));
  });
}

/**
 * Connect to each `{url, key}`, at most `batch` handshakes in flight, and wait for each
 * one's pong; never longer than `timeout` seconds in all. Returns `{conns, failures,
 * early}`: the ready connections (in target order), failure reasons counted, and the
 * frames received before the pong (catch-up, presence) counted by type. Never rejects.
 */
export async function openReady(targets, { timeout, batch = 100 }) {
  const deadline = Date.now() + timeout * 1000;
  const failures = {};
  const early = {};
  const ready = new Array(targets.length).fill(null);
  let next = 0;
  async function lane() {
    while (next < targets.length) {
      const index = next++;
      const conn = new Conn(targets[index].url, targets[index].key);
      let timer;
      const late = new Promise((resolve) => {
        timer = setTimeout(resolve, Math.max(0, deadline - Date.now()), 'not ready before the timeout');
      });
      const outcome = await Promise.race([whenReady(conn, early), late]);
      clearTimeout(timer);
      if (outcome === 'ready') ready[index] = conn;
      else {
        count(failures, outcome);
        conn.closed ??= outcome;
        conn.ws.terminate();
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(batch, targets.length) }, lane));
  for (const conn of ready) {
    if (conn) conn.handler = (data) => count(early, typeOf(data));
  }
  return { conns: ready.filter(Boolean), failures, early };
}

/**
 * Keep the ready `conns` idle until no frame has arrived on any of them for `quiet`
 * seconds (at most `timeout` s); frames meanwhile are counted by type into `early`.
 */
export function settle(conns, quiet, timeout, early) {
  return new Promise((resolve) => {
    if (quiet <= 0) return resolve();
    const started = Date.now();
    let last = Date.now();
    for (const conn of conns) {
      conn.handler = (data) => {
        last = Date.now();
        count(early, typeOf(data));
      };
    }
    const timer = setInterval(() => {
      const t = Date.now();
      if (t - last >= quiet * 1000 || t - started >= timeout * 1000) {
        clearInterval(timer);
        resolve();
      }
    }, 20);
  });
}

/** Close every connection politely, waiting at most `timeout` s, then drop the rest. */
export async function closeAll(conns, timeout = 2) {
  const open = conns.filter((c) => c.ws.readyState === WebSocket.OPEN || c.ws.readyState === WebSocket.CONNECTING);
  const closed = open.map((c) => new Promise((resolve) => c.ws.once('close', resolve)));
  for (const c of open) c.ws.close(1000);
  let timer;
  await Promise.race([Promise.all(closed), new Promise((r) => (timer = setTimeout(r, timeout * 1000)))]);
  clearTimeout(timer);
  for (const c of conns) c.ws.terminate();
}

/** Watch the ready `conns` for closes during the run: `onClose(conn, reason)`. */
export function watchCloses(conns, onClose) {
  for (const conn of conns) {
    conn.ws.on('close', (code) => {
      if (conn.closed === null) {
        conn.closed = `server closed ${code}`;
        onClose(conn, conn.closed);
      }
    });
  }
}
