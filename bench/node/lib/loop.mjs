// The closed loop both load scenarios share (as bench/harness/load_loop.py, without its
// --rate mode): each sender keeps at most `window` messages unacked and sends a new one
// as soon as one is answered (by an ack or an error). A scenario subclass says what a
// message is (`message`) and what received frames mean (`onFrame`), when the run is over
// (`done`) and what it reports.

import { now } from './procstat.mjs';

export class Sender {
  constructor(index, conn, messages) {
    this.index = index;
    this.conn = conn;
    this.acked = new Uint8Array(messages);
    this.nextSeq = 0;
    this.inflight = 0;
    this.resolved = 0; // sends answered by an ack or an error
  }
}

export class Load {
  /** `plan`: {nonce, window, messages, runTimeout, drainTimeout}. */
  constructor(plan, senders) {
    this.plan = plan;
    this.senders = senders;
    this.counts = { sent: 0, answered: 0, acked: 0, acked_delivered: 0, duplicate_acks: 0 };
    this.errors = {};
    this.closed = {};
    this.other = {};
    this.latencies = [];
    this.lastReceive = 0;
    this.sending = true;
    this.unresolved = plan.messages * senders.length;
    this.startAt = 0;
    this.sendingEnded = null;
    this.finished = null; // resolves the promise of run()
  }

  // -- hooks ------------------------------------------------------------------

  /** The text frame of `sender`'s message `seq`, sent at `at` (s). */
  message(_sender, _seq, _at) {
    throw new Error('not implemented');
  }

  /** Whether to stop receiving, the sending having ended. */
  done(_t) {
    throw new Error('not implemented');
  }

  // -- sending and answers ----------------------------------------------------

  send(sender, at) {
    const seq = sender.nextSeq++;
    sender.inflight += 1;
    this.counts.sent += 1;
    sender.conn.send(this.message(sender, seq, at));
  }

  resolve(sender, t) {
    this.unresolved -= 1;
    this.counts.answered += 1;
    sender.inflight -= 1;
    sender.resolved += 1;
    if (this.sending && sender.nextSeq < this.plan.messages) this.send(sender, t);
  }

  /** An ack frame (parsed) on `sender`'s connection. */
  onAck(sender, frame, t) {
    const clientId = String(frame.client_id);
    if (sender === null || !clientId.startsWith(this.plan.nonce)) {
      this.count(this.other, 'ack of another run');
      return;
    }
    const seq = Number(clientId.slice(clientId.lastIndexOf('-') + 1));
    if (sender.acked[seq]) {
      this.counts.duplicate_acks += 1;
      return;
    }
    sender.acked[seq] = 1;
    this.counts.acked += 1;
    if (frame.status === 'delivered') this.counts.acked_delivered += 1;
    this.resolve(sender, t);
  }

  /** An error frame; it answers a send of ours if it carries one of our client_ids. */
  onError(sender, frame, t) {
    this.count(this.errors, String(frame.reason));
    if (sender !== null && String(frame.client_id ?? '').startsWith(this.plan.nonce)) this.resolve(sender, t);
  }

  /** A connection closed mid-run: nothing more will be answered on it. */
  onClosed(sender, reason) {
    if (this.finished === null) return; // the run is over: our own closing, not the server's
    this.count(this.closed, reason);
    if (sender !== null) {
      this.unresolved -= this.plan.messages - sender.resolved;
      this.counts.answered += sender.inflight;
      sender.resolved = this.plan.messages;
      sender.nextSeq = this.plan.messages;
    }
    this.check();
  }

  /** A frame other than the scenario's own deliveries: an ack or error answers a send
   * of `sender` (if it sends), a late `messageType` frame is stale, the rest is counted. */
  onOtherFrame(sender, data, t, messageType) {
    let frame;
    try {
      frame = JSON.parse(data.toString());
    } catch {
      this.count(this.other, '(not JSON)');
      return;
    }
    const kind = frame.type;
    if (kind === 'ack' && sender) this.onAck(sender, frame, t);
    else if (kind === 'error') this.onError(sender, frame, t);
    else if (kind === messageType) this.stale += 1;
    else this.count(this.other, String(kind));
  }

  count(counter, key, by = 1) {
    counter[key] = (counter[key] ?? 0) + by;
  }

  // -- running ----------------------------------------------------------------

  /** Stop sending once everything is answered (or the run timed out); finish once `done`. */
  check(t = now()) {
    if (this.finished === null) return;
    if (this.sendingEnded === null && (this.unresolved <= 0 || t >= this.startAt + this.plan.runTimeout)) {
      this.sending = false;
      this.sendingEnded = t;
    }
    if (this.sendingEnded !== null && this.done(t)) {
      const finish = this.finished;
      this.finished = null;
      clearInterval(this.ticker);
      finish(this.unresolved <= 0);
    }
  }

  /**
   * Send every sender's first window, then run until `done`. Resolves true if every send
   * was answered, false if the run timeout struck first.
   */
  run() {
    return new Promise((resolve) => {
      this.finished = resolve;
      this.startAt = now();
      const first = Math.min(this.plan.window, this.plan.messages);
      for (const sender of this.senders) {
        for (let i = 0; i < first; i++) this.send(sender, this.startAt);
      }
      // Frames call check() as they come; the ticker covers the timeouts when none do.
      this.ticker = setInterval(() => this.check(), 50);
      if (this.senders.length === 0) this.check();
    });
  }

  /** The figures every load reports, in print order. */
  shared() {
    const c = this.counts;
    const errors = { ...this.errors };
    if (c.duplicate_acks) errors['duplicate acks'] = c.duplicate_acks;
    return { sent: c.sent, acked: c.acked, errors, closed: { ...this.closed } };
  }
}
