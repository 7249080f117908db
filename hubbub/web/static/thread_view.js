// The open conversation's messages: keyed rendering (an element is rebuilt only when
// what it shows changed), day separators, the scroll kept where the reader is, a roving
// focus over the messages (one Tab stop; arrow keys move between messages), and the
// action buttons' clicks handed to the app.

import { dayLabel } from "./dom.js";
import { daySeparator, messageElement } from "./message_view.js";

const NEAR_BOTTOM_PX = 80;

export class ThreadView {
  constructor({ scroller, list, older, handlers }) {
    this.scroller = scroller;
    this.list = list;
    this.older = older;
    this.handlers = handlers;
    this.conv = null;
    this.ctx = null;
    this.elements = new Map(); // key -> {el, signature}
    this.activeKey = null;
    this.pickerId = null;
    list.addEventListener("click", (event) => this.clicked(event));
    list.addEventListener("keydown", (event) => this.keyed(event));
    list.addEventListener("focusin", (event) => {
      const li = event.target.closest("li.message");
      if (li && li.dataset.key !== this.activeKey) this.activate(li.dataset.key);
    });
    older.addEventListener("click", () => this.handlers.onLoadOlder());
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && this.conv?.hasOlder && this.conv.historyLoaded) {
        this.handlers.onLoadOlder();
      }
    }, { root: scroller, rootMargin: "200px 0px 0px 0px" });
    this.observer.observe(older);
  }

  /** Show `conv`; ctx: {me, store}. */
  show(conv, ctx) {
    this.conv = conv;
    this.ctx = ctx;
    this.elements.clear();
    this.list.replaceChildren();
    this.activeKey = null;
    this.pickerId = null;
    this.render({ toBottom: true });
  }

  statusOf(message) {
    if (this.conv.kind === "direct") return message.status;
    for (const [userId, marker] of this.conv.readMarkers) {
      if (userId !== this.ctx.me.id && marker >= message.id) return "read";
    }
    return "delivered";
  }

  items() {
    const conv = this.conv;
    const me = this.ctx.me;
    const admin = conv.members?.some((m) => m.user_id === me.id && m.role === "admin");
    const stored = [...conv.messages.values()].sort((a, b) => a.id - b.id);
    const pending = [...conv.pending.values()].map((item) => ({
      key: `c:${item.clientId}`,
      message: {
        id: null, authorId: me.id, authorName: me.username, text: item.text || null,
        imageUrl: item.imageUrl, previewUrl: item.previewUrl, timestamp: item.timestamp,
        replyTo: item.replyTo, reactions: [], deleted: false, failed: item.state === "failed" ? item.reason : null,
        clientId: item.clientId,
      },
      status: item.state === "sent" ? item.status : "sending",
    }));
    const rows = [];
    let day = null;
    for (const entry of [
      ...stored.map((m) => ({ key: `m:${m.id}`, message: m, status: this.statusOf(m) })),
      ...pending,
    ]) {
      const label = dayLabel(entry.message.timestamp);
      if (label !== day) {
        day = label;
        rows.push({ key: `d:${label}`, signature: label, build: () => daySeparator(label) });
      }
      const message = entry.message;
      const replied = message.replyTo ? conv.messages.get(message.replyTo) : null;
      const picker = message.id !== null && this.pickerId === message.id;
      const ctx = {
        me, conv, status: entry.status, replied, picker, key: entry.key,
        canDelete: admin && conv.kind === "group",
      };
      const signature = JSON.stringify([message, entry.status, replied, picker, ctx.canDelete, label]);
      rows.push({ key: entry.key, signature, build: () => messageElement(message, ctx) });
    }
    return rows;
  }

  /** Bring the DOM in line with the conversation's state. */
  render({ toBottom = false } = {}) {
    if (!this.conv) return;
    const scroller = this.scroller;
    const nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
    // The first message (not a day separator, which stays first when older messages of
    // the same day come in above) anchors the scroll position.
    const anchor = this.list.querySelector("li.message");
    const firstKey = anchor?.dataset.key;
    const firstTop = anchor ? anchor.getBoundingClientRect().top : 0;
    const focus = this.focusState();
    const rows = this.items();
    const keep = new Set();
    let cursor = this.list.firstElementChild;
    for (const row of rows) {
      keep.add(row.key);
      let known = this.elements.get(row.key);
      if (!known || known.signature !== row.signature) {
        const el = row.build();
        el.dataset.key = row.key;
        if (known) {
          if (known.el === cursor) cursor = el;
          known.el.replaceWith(el);
        }
        known = { el, signature: row.signature };
        this.elements.set(row.key, known);
      }
      if (known.el !== cursor) this.list.insertBefore(known.el, cursor);
      else cursor = cursor.nextElementSibling;
    }
    for (const [key, known] of this.elements) {
      if (!keep.has(key)) {
        known.el.remove();
        this.elements.delete(key);
      }
    }
    this.older.hidden = !(this.conv.hasOlder && this.conv.historyLoaded);
    if (!this.activeKey || !this.elements.has(this.activeKey)) {
      const last = [...this.list.querySelectorAll("li.message")].pop();
      this.activeKey = last?.dataset.key ?? null;
    }
    this.applyRoving();
    this.restoreFocus(focus);
    if (toBottom || nearBottom) {
      scroller.scrollTop = scroller.scrollHeight;
    } else if (firstKey && this.elements.has(firstKey)) {
      // Older messages were put above: keep what the reader was looking at in place.
      const top = this.elements.get(firstKey).el.getBoundingClientRect().top;
      scroller.scrollTop += top - firstTop;
    }
  }

  focusState() {
    const active = document.activeElement;
    if (!active || !this.list.contains(active)) return null;
    const li = active.closest("li");
    return {
      el: active, key: li?.dataset.key,
      action: active.dataset.action, emoji: active.dataset.emoji,
    };
  }

  restoreFocus(state) {
    if (!state || document.contains(state.el)) return;
    const li = this.elements.get(state.key)?.el;
    if (!li) return;
    let target = li;
    if (state.action) {
      const emoji = state.emoji ? `[data-emoji="${CSS.escape(state.emoji)}"]` : "";
      target = li.querySelector(`[data-action="${state.action}"]${emoji}`) || li;
    }
    target.focus({ preventScroll: true });
  }

  applyRoving() {
    for (const li of this.list.querySelectorAll("li.message")) {
      const on = li.dataset.key === this.activeKey;
      li.tabIndex = on ? 0 : -1;
      for (const el of li.querySelectorAll(".actions button, .reactions button, .failure button")) {
        el.tabIndex = on ? 0 : -1;
      }
    }
  }

  activate(key) {
    this.activeKey = key;
    this.applyRoving();
  }

  messageOf(li) {
    const id = Number(li?.dataset.id);
    return id ? this.conv.messages.get(id) : null;
  }

  clicked(event) {
    const target = event.target.closest("[data-action]");
    if (!target) return;
    const li = target.closest("li.message");
    const action = target.dataset.action;
    if (action === "dismiss") {
      this.handlers.onDismiss(li.dataset.key.slice(2));
      return;
    }
    const message = this.messageOf(li);
    if (!message) return;
    if (action === "picker") {
      this.pickerId = this.pickerId === message.id ? null : message.id;
      this.render();
      this.elements.get(`m:${message.id}`)?.el.querySelector(".emoji-button")?.focus();
    } else if (action === "react" || action === "toggle-reaction") {
      const emoji = target.dataset.emoji;
      const own = message.reactions.some((r) => r.emoji === emoji && r.userIds.includes(this.ctx.me.id));
      this.pickerId = null;
      this.handlers.onReact(message, emoji, own ? "remove" : "add");
      this.render();
    } else if (action === "reply") {
      this.handlers.onReply(message);
    } else if (action === "edit") {
      this.handlers.onEdit(message);
    } else if (action === "delete") {
      this.handlers.onDelete(message);
    }
  }

  keyed(event) {
    if (event.key === "Escape" && this.pickerId !== null) {
      const key = `m:${this.pickerId}`;
      this.pickerId = null;
      this.render();
      this.elements.get(key)?.el.querySelector('[data-action="picker"]')?.focus();
      event.preventDefault();
      return;
    }
    const li = event.target;
    if (!li.matches?.("li.message")) return;
    const all = [...this.list.querySelectorAll("li.message")];
    const index = all.indexOf(li);
    let next = null;
    if (event.key === "ArrowUp") next = all[index - 1];
    else if (event.key === "ArrowDown") next = all[index + 1];
    else if (event.key === "Home") next = all[0];
    else if (event.key === "End") next = all[all.length - 1];
    else {
      const message = this.messageOf(li);
      if (!message || message.deleted) return;
      const mine = message.authorId === this.ctx.me.id;
      if (event.key === "r") this.handlers.onReply(message);
      else if (event.key === "e" && mine && message.text !== null) this.handlers.onEdit(message);
      else if (event.key === "Delete" && mine) this.handlers.onDelete(message);
      else return;
      event.preventDefault();
      return;
    }
    if (next) {
      event.preventDefault();
      this.activate(next.dataset.key);
      next.focus();
      if (event.key === "ArrowUp" && index <= 1 && this.conv.hasOlder) this.handlers.onLoadOlder();
    }
  }

  /** Focus the newest message (from the composer, for keyboard users). */
  focusLast() {
    const last = [...this.list.querySelectorAll("li.message")].pop();
    if (last) {
      this.activate(last.dataset.key);
      last.focus();
    }
  }
}
