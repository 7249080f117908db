// The client's state: conversations, their messages, users' presence, typing, and the
// messages on their way out. Every update is idempotent (a message is kept by its id, an
// event sets a value rather than toggling one), so a frame seen twice, or history and a
// replay that overlap, leave the same state. Pure data: no DOM, no network.

export const TYPING_LASTS_MS = 6000;

export function keyOf(kind, id) {
  return `${kind === "group" ? "g" : "d"}:${id}`;
}

function messageOf(frame) {
  return {
    id: frame.message_id,
    authorId: frame.author_id,
    authorName: frame.author_name || "",
    groupId: frame.group_id ?? null,
    recipientId: frame.recipient_id ?? null,
    text: frame.message ?? null,
    imageUrl: frame.image_url ?? null,
    timestamp: frame.timestamp,
    status: frame.status || "delivered",
    editedAt: frame.edited_at ?? null,
    deleted: Boolean(frame.deleted),
    replyTo: frame.reply_to ?? null,
    reactions: (frame.reactions || []).map((r) => ({ emoji: r.emoji, userIds: [...r.user_ids] })),
  };
}

const STATUS_RANK = { pending: 0, delivered: 1, read: 2 };

export class Store {
  constructor(me) {
    this.me = me; // {id, username}
    this.conversations = new Map();
    this.users = new Map(); // id -> {id, username, online, lastSeen}
    this.typing = new Map(); // conversation key -> Map(user id -> {username, until})
    this.directIndex = new Map(); // direct message id -> conversation key
    this.outgoing = new Map(); // client_id -> conversation key
    this.listeners = new Set();
    this.clientSeq = 0;
  }

  subscribe(fn) {
    this.listeners.add(fn);
  }

  changed(key = null) {
    for (const fn of this.listeners) fn(key);
  }

  conversation(kind, id, name = "") {
    const key = keyOf(kind, id);
    let conv = this.conversations.get(key);
    if (!conv) {
      conv = {
        key, kind, id, name,
        unread: 0,
        lastMessage: null,
        lastActivity: null,
        newestId: 0, // the newest message id accounted for in `unread`
        messages: new Map(),
        pending: new Map(), // client_id -> an outgoing message not yet echoed
        historyLoaded: false,
        hasOlder: true,
        readMarkers: new Map(), // group: user id -> last read message id
        members: null,
      };
      this.conversations.set(key, conv);
    }
    if (name && !conv.name) conv.name = name;
    return conv;
  }

  /** The conversation list from GET /conversations: the baseline for unread counts. */
  loadConversations(items) {
    for (const item of items) {
      const kind = item.kind;
      const conv = this.conversation(kind, kind === "group" ? item.group_id : item.user_id);
      conv.name = item.name;
      conv.unread = item.unread_count;
      conv.lastActivity = item.last_activity;
      if (item.last_message) {
        const message = this.remember(conv, item.last_message);
        conv.lastMessage = message;
        conv.newestId = Math.max(conv.newestId, message.id);
      }
    }
    this.changed();
  }

  remember(conv, frame) {
    const message = messageOf(frame);
    const known = conv.messages.get(message.id);
    // A status never goes back (a replayed "delivered" after a "read").
    if (known && STATUS_RANK[known.status] > STATUS_RANK[message.status]) {
      message.status = known.status;
    }
    conv.messages.set(message.id, message);
    if (conv.kind === "direct") this.directIndex.set(message.id, conv.key);
    if (!conv.lastMessage || conv.lastMessage.id <= message.id) conv.lastMessage = message;
    return message;
  }

  /** A live, replayed or caught-up `message` / `group_message`. */
  applyMessage(frame) {
    let conv;
    if (frame.type === "group_message") {
      conv = this.conversation("group", frame.group_id, frame.group_name);
    } else {
      const mine = frame.author_id === this.me.id;
      const other = mine ? frame.recipient_id : frame.author_id;
      conv = this.conversation("direct", other, mine ? frame.recipient_name : frame.author_name);
    }
    const message = this.remember(conv, frame);
    if (frame.client_id && conv.pending.delete(frame.client_id)) this.outgoing.delete(frame.client_id);
    // Ids grow within a conversation: one at or below newestId is already counted.
    if (message.id > conv.newestId) {
      conv.newestId = message.id;
      conv.lastActivity = message.timestamp;
      if (message.authorId !== this.me.id && !message.deleted) conv.unread += 1;
    }
    this.stopTyping(conv.key, message.authorId);
    this.changed(conv.key);
    return conv;
  }

  /** History pages, oldest first. */
  applyHistory(conv, frames, pageSize) {
    for (const frame of frames) this.remember(conv, frame);
    conv.hasOlder = frames.length >= pageSize;
    conv.historyLoaded = true;
    this.changed(conv.key);
  }

  findMessage(frame) {
    const key = frame.group_id ? keyOf("group", frame.group_id) : this.directIndex.get(frame.message_id);
    const conv = key && this.conversations.get(key);
    const message = conv && conv.messages.get(frame.message_id);
    return message ? { conv, message } : null;
  }

  applyEdit(frame) {
    const found = this.findMessage(frame);
    if (!found) return;
    found.message.text = frame.message;
    found.message.editedAt = frame.edited_at;
    if (frame.message === null) found.message.deleted = true;
    this.changed(found.conv.key);
  }

  applyDelete(frame) {
    const found = this.findMessage(frame);
    if (!found) return;
    Object.assign(found.message, { deleted: true, text: null, imageUrl: null, reactions: [] });
    const conv = found.conv;
    const message = found.message;
    // A deleted message never counts as unread (the server's rule); uncount it locally too.
    const unread = conv.kind === "direct"
      ? message.status !== "read"
      : message.id > (conv.readMarkers.get(this.me.id) || 0);
    if (message.authorId !== this.me.id && unread && conv.unread > 0) conv.unread -= 1;
    this.changed(conv.key);
  }

  applyReaction(frame) {
    const found = this.findMessage(frame);
    if (!found) return;
    const reactions = found.message.reactions;
    let entry = reactions.find((r) => r.emoji === frame.emoji);
    if (frame.op === "remove") {
      if (entry) entry.userIds = entry.userIds.filter((id) => id !== frame.user_id);
      found.message.reactions = reactions.filter((r) => r.userIds.length > 0);
    } else {
      if (!entry) {
        entry = { emoji: frame.emoji, userIds: [] };
        reactions.push(entry);
      }
      if (!entry.userIds.includes(frame.user_id)) entry.userIds.push(frame.user_id);
    }
    this.changed(found.conv.key);
  }

  setStatus(messageId, status) {
    const key = this.directIndex.get(messageId);
    const message = key && this.conversations.get(key).messages.get(messageId);
    if (message && STATUS_RANK[status] > STATUS_RANK[message.status]) {
      message.status = status;
      this.changed(key);
    }
  }

  applyGroupRead(frame) {
    const conv = this.conversations.get(keyOf("group", frame.group_id));
    if (!conv) return; // A group not in the list yet: its members load with it.
    const before = conv.readMarkers.get(frame.user_id) || 0;
    conv.readMarkers.set(frame.user_id, Math.max(before, frame.message_id));
    if (frame.user_id === this.me.id && frame.message_id >= conv.newestId) conv.unread = 0;
    this.changed(conv.key);
  }

  applyPresence(frame) {
    this.users.set(frame.user_id, {
      id: frame.user_id,
      username: frame.username,
      online: frame.presence_status === "online",
      lastSeen: frame.last_seen_iso,
    });
    this.changed();
  }

  applyTyping(frame) {
    const key = frame.group_id ? keyOf("group", frame.group_id) : keyOf("direct", frame.user_id);
    if (frame.state === "stop") {
      this.stopTyping(key, frame.user_id);
    } else {
      if (!this.typing.has(key)) this.typing.set(key, new Map());
      const until = Date.now() + TYPING_LASTS_MS;
      this.typing.get(key).set(frame.user_id, { username: frame.username, until });
    }
    this.changed(key);
  }

  stopTyping(key, userId) {
    this.typing.get(key)?.delete(userId);
  }

  /** Names of those typing in `key` now; expired entries are dropped. */
  typers(key) {
    const now = Date.now();
    const entries = this.typing.get(key);
    if (!entries) return [];
    for (const [id, entry] of entries) if (entry.until <= now) entries.delete(id);
    return [...entries.values()].map((e) => e.username);
  }

  /** A message the user sends: shown at once, kept until its echo arrives. */
  addOutgoing(conv, { text, imageUrl, previewUrl, replyTo }) {
    const clientId = `web-${this.me.id}-${Date.now().toString(36)}-${(this.clientSeq++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const frame = conv.kind === "group"
      ? { type: "group_message", group_id: conv.id }
      : { type: "message", recipient_id: conv.id };
    if (text) frame.message = text;
    if (imageUrl) frame.image_url = imageUrl;
    if (replyTo) frame.reply_to = replyTo;
    frame.client_id = clientId;
    const item = {
      clientId, frame, text, imageUrl, previewUrl, replyTo,
      state: "sending", messageId: null, reason: null, timestamp: new Date().toISOString(),
    };
    conv.pending.set(clientId, item);
    this.outgoing.set(clientId, conv.key);
    this.changed(conv.key);
    return item;
  }

  outgoingItem(clientId) {
    const key = this.outgoing.get(clientId);
    const conv = key && this.conversations.get(key);
    const item = conv && conv.pending.get(clientId);
    return item ? { conv, item } : null;
  }

  applyAck(frame) {
    const found = frame.client_id && this.outgoingItem(frame.client_id);
    if (!found) return;
    const { conv, item } = found;
    const message = conv.messages.get(frame.message_id);
    if (message) {
      conv.pending.delete(item.clientId);
      this.outgoing.delete(item.clientId);
    } else {
      item.state = "sent";
      item.messageId = frame.message_id;
      item.status = frame.status;
    }
    this.changed(conv.key);
  }

  /** Refused: true if the refusal was for an outgoing message (shown on it). */
  applyError(frame) {
    const found = frame.client_id && this.outgoingItem(frame.client_id);
    if (!found) return false;
    found.item.state = "failed";
    found.item.reason = frame.reason;
    this.changed(found.conv.key);
    return true;
  }

  /** Outgoing messages still waiting for an ack (to resend after a reconnect). */
  unacked() {
    const items = [];
    for (const conv of this.conversations.values()) {
      for (const item of conv.pending.values()) if (item.state === "sending") items.push(item);
    }
    return items;
  }

  dropOutgoing(clientId) {
    const found = this.outgoingItem(clientId);
    if (!found) return;
    found.conv.pending.delete(clientId);
    this.outgoing.delete(clientId);
    this.changed(found.conv.key);
  }

  /** Mark the conversation read locally; returns what to tell the server. */
  markRead(conv) {
    const frames = [];
    if (conv.kind === "direct") {
      for (const message of conv.messages.values()) {
        if (message.authorId !== this.me.id && message.status !== "read" && !message.deleted) {
          message.status = "read";
          frames.push({ type: "read", message_id: message.id });
        }
      }
    } else {
      const newest = Math.max(0, ...[...conv.messages.values()].map((m) => m.id));
      if (newest > (conv.readMarkers.get(this.me.id) || 0)) {
        conv.readMarkers.set(this.me.id, newest);
        frames.push({ type: "group_read", group_id: conv.id, message_id: newest });
      }
    }
    if (conv.unread !== 0 || frames.length) {
      conv.unread = 0;
      this.changed(conv.key);
    }
    return frames;
  }

  /** Conversations, most recent activity first. */
  sorted() {
    return [...this.conversations.values()].sort((a, b) => {
      const ta = a.lastActivity ? Date.parse(a.lastActivity) : 0;
      const tb = b.lastActivity ? Date.parse(b.lastActivity) : 0;
      return tb - ta;
    });
  }
}
