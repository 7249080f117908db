// The direct-message scenario, as bench/direct.py: P pairs of users (user 2i and user
// 2i+1), each connected once; user 2i sends to user 2i+1 keeping `window` messages
// unacked (with `bothWays`, user 2i+1 also sends to user 2i: 2P streams on the same
// 2P connections). Latency runs from a message's send to its receipt by the recipient,
// on one clock (both ends live in this process).
//
// Message `seq` of stream `s` has the text `<nonce>:<s>:<seq>:<filler>` and the
// client_id `<nonce>-<s>-<seq>`: the nonce keeps runs apart when users are reused (a
// stale offline message is not mistaken for a new one, and the server does not
// deduplicate a new message against an old client_id). Receiving is the hot path: a
// frame carrying `"message":"<nonce>:` is read with byte searches, unparsed; only the
// rare other frames (acks, errors, presence) go through JSON.parse.

import { Load, Sender } from './loop.mjs';
import { now } from './procstat.mjs';

export const FILLER = 'see you at the standup in ten minutes';

/** The unsigned decimal integer in `buf` at `pos`: [value, index after it]. */
export function readInt(buf, pos) {
  let value = 0;
  let c;
  while ((c = buf[pos]) >= 48 && c <= 57) {
    value = value * 10 + (c - 48);
    pos += 1;
  }
  return [value, pos];
}

class Stream extends Sender {
  constructor(index, from, to, recipientId, messages) {
    super(index, from, messages);
    this.to = to;
    this.recipientId = recipientId;
    this.sentAt = new Float64Array(messages);
    this.received = new Uint8Array(messages);
  }
}

export class DirectLoad extends Load {
  /** `pairs`: [{sender: Conn, receiver: Conn, senderId, receiverId}], all ready. */
  constructor(plan, pairs, bothWays) {
    const streams = [];
    for (const p of pairs) {
      streams.push(new Stream(streams.length, p.sender, p.receiver, p.receiverId, plan.messages));
      if (bothWays) streams.push(new Stream(streams.length, p.receiver, p.sender, p.senderId, plan.messages));
    }
    super(plan, streams);
    this.marker = Buffer.from(`"message":"${plan.nonce}:`);
    this.head = `{"type":"message","recipient_id":`;
    this.tail = `:${FILLER}","client_id":"${plan.nonce}-`;
    this.delivered = 0;
    this.duplicates = 0;
    this.stale = 0;
    this.echoes = 0;
    const senderOf = new Map(streams.map((s) => [s.conn, s]));
    for (const p of pairs) {
      for (const conn of [p.sender, p.receiver]) {
        const sender = senderOf.get(conn) ?? null;
        conn.handler = (data) => this.onFrame(sender, conn, data);
      }
    }
  }

  message(stream, seq, at) {
    stream.sentAt[seq] = at;
    const { nonce } = this.plan;
    return `${this.head}${stream.recipientId},"message":"${nonce}:${stream.index}:${seq}${this.tail}${stream.index}-${seq}"}`;
  }

  onFrame(sender, conn, data) {
    const t = now();
    const at = data.indexOf(this.marker);
    if (at >= 0) {
      const [index, pos] = readInt(data, at + this.marker.length);
      const [seq] = readInt(data, pos + 1);
      const stream = this.senders[index];
      if (stream === undefined || seq >= this.plan.messages) {
        this.stale += 1;
      } else if (stream.to !== conn) {
        this.echoes += 1; // the server's echo of our own message to the sender's connections
      } else if (stream.received[seq]) {
        this.duplicates += 1;
      } else {
        stream.received[seq] = 1;
        this.delivered += 1;
        this.latencies.push(t - stream.sentAt[seq]);
        this.lastReceive = t;
      }
    } else {
      this.onOtherFrame(sender, data, t, 'message');
    }
    this.check(t);
  }

  /** Every send answered and every acked message received, or the drain timeout. */
  done(t) {
    const settled = this.counts.answered >= this.counts.sent && this.delivered >= this.counts.acked;
    return settled || t >= this.sendingEnded + this.plan.drainTimeout;
  }

  /** The counted figures, in print order (names as bench/direct.py prints them). */
  counted() {
    let lost = 0;
    for (const s of this.senders) for (let i = 0; i < s.acked.length; i++) if (s.acked[i] && !s.received[i]) lost += 1;
    const shared = this.shared();
    return {
      sent: shared.sent,
      acked: shared.acked,
      'acked as delivered': this.counts.acked_delivered,
      delivered: this.delivered,
      lost,
      duplicates: this.duplicates,
      'stale frames': this.stale,
      'echoes to the sender': this.echoes,
      'other frames': this.other,
      errors: shared.errors,
      'connections closed': shared.closed,
    };
  }
}
