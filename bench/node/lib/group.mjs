// The group fan-out scenario, as bench/group.py: one group of K members, all online
// with one connection each; members 0 .. S-1 also send, each keeping `window` messages
// unacked. A delivery (receipt) is one member's receipt of one message, the sender's
// own copy included (the contract sends `group_message` to every member, the sender
// included), so a message acked by the server is expected K times.
//
// Message `seq` of sender `s` has the text `<nonce>:<s>:<seq>:<sent at>:<filler>` and the
// client_id `<nonce>-<s>-<seq>`, the same shape and size as bench/harness/group_load.py
// writes (here the send time is also kept in memory, which is what latency is taken from).

import { readInt } from './direct.mjs';
import { Load, Sender } from './loop.mjs';
import { now } from './procstat.mjs';

const FILLER = 'see you at the standup in ten minutes';

export class GroupLoad extends Load {
  /** `conns`: the ready members' connections; `conn.key` is the member index 0..K-1. */
  constructor(plan, groupId, conns, senders) {
    const members = conns.map((conn) => ({
      index: conn.key,
      conn,
      sender: conn.key < senders ? new Sender(conn.key, conn, plan.messages) : null,
      received: new Uint8Array(senders * plan.messages),
    }));
    super(
      plan,
      members.filter((m) => m.sender).map((m) => m.sender),
    );
    this.members = members;
    this.groupId = groupId;
    this.total = senders * plan.messages;
    this.sentAt = new Float64Array(this.total);
    this.receipts = new Uint32Array(this.total);
    this.marker = Buffer.from(`"message":"${plan.nonce}:`);
    this.deliveries = 0;
    this.duplicates = 0;
    this.stale = 0;
    for (const m of members) m.conn.handler = (data) => this.onFrame(m, data);
  }

  message(sender, seq, at) {
    const { nonce, messages } = this.plan;
    const index = sender.index;
    this.sentAt[index * messages + seq] = at;
    return (
      `{"type":"group_message","group_id":${this.groupId},"message":"${nonce}:${index}:${seq}:` +
      `${at.toFixed(6)}:${FILLER}","client_id":"${nonce}-${index}-${seq}"}`
    );
  }

  onFrame(member, data) {
    const t = now();
    const at = data.indexOf(this.marker);
    if (at >= 0) {
      const [sender, pos] = readInt(data, at + this.marker.length);
      const [seq] = readInt(data, pos + 1);
      const msg = sender * this.plan.messages + seq;
      if (msg >= this.total || seq >= this.plan.messages) {
        this.stale += 1;
      } else if (member.received[msg]) {
        this.duplicates += 1;
      } else {
        member.received[msg] = 1;
        this.receipts[msg] += 1;
        this.latencies.push(t - this.sentAt[msg]);
        this.deliveries += 1;
        this.lastReceive = t;
      }
    } else {
      this.onOtherFrame(member.sender, data, t, 'group_message');
    }
    this.check(t);
  }

  /** Every member has every message, or nothing arrived for the drain timeout after the
   * sending ended (a refused message never comes). */
  done(t) {
    if (this.deliveries >= this.members.length * this.total) return true;
    return t - Math.max(this.sendingEnded, this.lastReceive) >= this.plan.drainTimeout;
  }

  counted() {
    let missing = 0;
    const K = this.members.length;
    const { messages } = this.plan;
    for (const s of this.senders) {
      for (let seq = 0; seq < messages; seq++) {
        if (s.acked[seq]) missing += Math.max(0, K - this.receipts[s.index * messages + seq]);
      }
    }
    const shared = this.shared();
    return {
      sent: shared.sent,
      acked: shared.acked,
      'expected deliveries (acked x members)': shared.acked * K,
      deliveries: this.deliveries,
      'missing deliveries': missing,
      'duplicate deliveries': this.duplicates,
      'stale group messages': this.stale,
      'other frames': this.other,
      errors: shared.errors,
      'connections closed': shared.closed,
    };
  }
}
