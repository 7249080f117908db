// Ping-pong: one pair, one message in flight. User 0 sends a direct message to user 1;
// once user 1 has received it and user 0 has its ack, user 1 sends one back, and so on.
// Latency is send to receipt (and send to ack) of each message: the server's latency
// under no load. With `frame: 'ping'`, user 0 alone sends `{"type":"ping"}` and waits for
// the `pong`: the round trip through the server's WebSocket handling, without storage.

import { readInt } from './direct.mjs';
import { now } from './procstat.mjs';

const FILLER = 'see you at the standup in ten minutes';

export class PingPong {
  /** `a`, `b`: ready Conns of users with ids `aId`, `bId`. */
  constructor(plan, a, aId, b, bId) {
    this.plan = plan; // {nonce, iterations, warmup, frame, runTimeout}
    this.ends = [
      { conn: a, peerId: bId },
      { conn: b, peerId: aId },
    ];
    this.marker = Buffer.from(`"message":"${plan.nonce}:pp:`);
    this.receipt = [];
    this.ack = [];
    this.errors = {};
    this.other = {};
    this.i = -1;
    this.sentAt = 0;
    this.gotReceipt = false;
    this.gotAck = false;
    a.handler = (data) => this.onFrame(0, data);
    b.handler = (data) => this.onFrame(1, data);
  }

  get total() {
    return this.plan.warmup + this.plan.iterations;
  }

  next() {
    this.i += 1;
    if (this.i >= this.total || now() > this.deadline) return this.finish(this.i >= this.total);
    this.gotReceipt = false;
    this.gotAck = false;
    const { nonce } = this.plan;
    this.sentAt = now();
    if (this.plan.frame === 'ping') {
      this.ends[0].conn.send('{"type":"ping"}');
      return;
    }
    const from = this.ends[this.i % 2];
    from.conn.send(
      `{"type":"message","recipient_id":${from.peerId},"message":"${nonce}:pp:${this.i}:${FILLER}",` +
        `"client_id":"${nonce}-pp-${this.i}"}`,
    );
  }

  record(list, t) {
    if (this.i >= this.plan.warmup) list.push(t - this.sentAt);
  }

  onFrame(end, data) {
    const t = now();
    const at = data.indexOf(this.marker);
    if (at >= 0) {
      const [i] = readInt(data, at + this.marker.length);
      // The copy to the recipient, not the echo to the sender's own connection.
      if (i === this.i && end !== this.i % 2 && !this.gotReceipt) {
        this.gotReceipt = true;
        this.record(this.receipt, t);
      }
    } else {
      const frame = JSON.parse(data.toString());
      if (frame.type === 'pong' && this.plan.frame === 'ping') {
        this.gotReceipt = this.gotAck = true;
        this.record(this.receipt, t);
      } else if (frame.type === 'ack' && String(frame.client_id) === `${this.plan.nonce}-pp-${this.i}`) {
        this.gotAck = true;
        this.record(this.ack, t);
      } else if (frame.type === 'error') {
        this.errors[frame.reason] = (this.errors[frame.reason] ?? 0) + 1;
        this.gotReceipt = this.gotAck = true; // refused: go on rather than wait forever
      } else {
        this.other[frame.type] = (this.other[frame.type] ?? 0) + 1;
      }
    }
    if (this.gotReceipt && this.gotAck && this.done === null) this.next();
  }

  /** Resolves true once every iteration is done, false if the run timeout struck. */
  run() {
    this.done = null;
    return new Promise((resolve) => {
      this.finish = (complete) => {
        this.done = complete;
        clearInterval(this.ticker);
        resolve(complete);
      };
      this.deadline = now() + this.plan.runTimeout;
      this.ticker = setInterval(() => {
        if (now() > this.deadline && this.done === null) this.finish(false);
      }, 100);
      this.next();
    });
  }
}
