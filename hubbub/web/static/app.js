// The web chat's entry point: wires the HTTP API, the resuming socket, the store and the
// views together. docs/webchat.md describes the whole.

import { Api, ApiError, LoggedOut, TOKENS_STORAGE_KEY, storedUserId } from "./api.js";
import { showAuth } from "./auth_view.js";
import { Composer } from "./composer.js";
import { openMemberDialog, setUpDialogs } from "./dialogs.js";
import { $, avatar, fill, lastSeen } from "./dom.js";
import { hydrateIcons } from "./icons.js";
import { renderConversations } from "./list_view.js";
import { People, wireSidebar } from "./sidebar.js";
import { ResumingSocket } from "./socket.js";
import { Store, TYPING_LASTS_MS } from "./store.js";
import { ThreadView } from "./thread_view.js";

const PAGE = 40;
const MAX_PAGE = 200; // the server's cap on a history page
const api = new Api(() => location.reload());
let app = null;

class ChatApp {
  constructor(me) {
    this.api = api;
    this.me = me;
    this.store = new Store(me);
    this.openKey = null;
    this.queue = []; // frames (not messages) to send once the stream is live again
    this.people = new People(api, me);
    this.asked = new Set(); // users whose presence this connection asked for
    this.renderPending = false;
    this.loadingOlder = false;
    this.thread = new ThreadView({
      scroller: $("#scroller"), list: $("#messages"), older: $("#older"),
      handlers: {
        onLoadOlder: () => this.loadOlder(),
        onReply: (message) => this.composer.reply(message),
        onEdit: (message) => this.composer.edit(message),
        onDelete: (message) => this.confirmDelete(message),
        onReact: (message, emoji, op) => this.transmit({ type: "react", ...this.target(message), emoji, op }),
        onDismiss: (clientId) => this.store.dropOutgoing(clientId),
      },
    });
    this.composer = new Composer({
      form: $("#composer"), textarea: $("#composer-input"), fileInput: $("#file-input"),
      bar: $("#composer-bar"), barLabel: $("#composer-bar-label"), barText: $("#composer-bar-excerpt"),
      barCancel: $("#composer-cancel"),
      handlers: {
        onSend: (text, replyTo) => this.sendMessage({ text, replyTo }),
        onEdit: (message, text) => this.transmit({ type: "edit", ...this.target(message), message: text }),
        onTyping: (state) => this.typing(state),
        onFile: (file, { caption, replyTo }) => this.sendImage(file, caption, replyTo),
        onArrowUp: () => this.editLastOwn(),
      },
    });
    this.socket = new ResumingSocket({
      api, userId: me.id,
      onFrame: (frame) => this.receive(frame),
      onState: (state) => this.connectionState(state),
      onLoggedOut: () => location.reload(),
    });
    this.store.subscribe((key) => this.scheduleRender(key));
    document.addEventListener("visibilitychange", () => this.markOpenRead());
    // Another tab of this browser logged out, or in as someone else: this tab must not
    // go on as a different user than it shows.
    window.addEventListener("storage", (event) => {
      if (event.key === TOKENS_STORAGE_KEY && storedUserId() !== me.id) location.reload();
    });
    window.addEventListener("focus", () => this.markOpenRead());
  }

  async start() {
    $("#auth").hidden = true;
    $("#chat").hidden = false;
    fill($("#me-avatar"), avatar(this.me.username));
    $("#me-name").textContent = this.me.username;
    wireSidebar(this);
    setUpDialogs(this);
    $("#add-member").addEventListener("click", () => openMemberDialog(this, this.open()));
    await this.reloadConversations();
    this.socket.start();
    // "last seen 5 min ago" and the list's times age: redraw them once a minute.
    setInterval(() => this.scheduleRender(null), 60_000);
  }

  // -- the stream --------------------------------------------------------------

  receive(frame) {
    const store = this.store;
    switch (frame.type) {
      case "message":
      case "group_message": {
        const conv = store.applyMessage(frame);
        if (conv.kind === "direct" && !store.users.has(conv.id)) this.askPresence([conv.id]);
        if (conv.key === this.openKey) this.markOpenRead();
        break;
      }
      case "ack": store.applyAck(frame); break;
      case "status": store.setStatus(frame.message_id, frame.status); break;
      case "read_receipt": store.setStatus(frame.message_id, "read"); break;
      case "group_read": store.applyGroupRead(frame); break;
      case "message_edited": store.applyEdit(frame); break;
      case "message_deleted": store.applyDelete(frame); break;
      case "reaction": store.applyReaction(frame); break;
      case "presence": store.applyPresence(frame); break;
      case "typing":
        store.applyTyping(frame);
        setTimeout(() => this.scheduleRender(null), TYPING_LASTS_MS + 50);
        break;
      case "synced": this.synced(frame); break;
      case "error":
        if (!store.applyError(frame)) this.toast(`Refused: ${frame.reason}`);
        break;
      default: break; // pong, and frame types this client does not know
    }
  }

  async synced(frame) {
    if (!frame.recovered) {
      // Lost place: what is on screen may be stale. Reload it from HTTP.
      await this.reloadConversations();
      const conv = this.open();
      if (conv) {
        conv.messages.clear();
        conv.historyLoaded = false;
        await this.loadHistory(conv);
      }
    }
    // Whatever was sent but not acked is sent again: its client_id makes that safe.
    for (const item of this.store.unacked()) this.socket.send(item.frame);
    const queued = this.queue.splice(0);
    for (const queuedFrame of queued) this.transmit(queuedFrame);
    this.asked.clear();
    this.askPresence([...this.store.conversations.values()]
      .filter((c) => c.kind === "direct").map((c) => c.id));
    this.markOpenRead();
  }

  /** Ask for the presence of users not asked about on this connection yet. */
  askPresence(userIds) {
    const fresh = userIds.filter((id) => !this.asked.has(id)).slice(0, 200);
    if (fresh.length && this.socket.send({ type: "presence", user_ids: fresh })) {
      for (const id of fresh) this.asked.add(id);
    }
  }

  transmit(frame) {
    if (!this.socket.send(frame)) this.queue.push(frame);
  }

  connectionState(state) {
    const el = $("#connection");
    el.dataset.state = state;
    el.textContent = { online: "Online", connecting: "Connecting…", offline: "Offline: messages wait" }[state];
    $("#composer-input").placeholder = state === "offline"
      ? "Offline: what you write is sent when you are back"
      : "Write a message…";
  }

  // -- conversations -------------------------------------------------------------

  async reloadConversations() {
    try {
      const page = await api.get("/conversations", { limit: 200 });
      this.store.loadConversations(page.conversations);
    } catch (error) {
      this.toast(`Could not load conversations: ${error.message}`);
    }
  }

  open() {
    return this.openKey ? this.store.conversations.get(this.openKey) : null;
  }

  async openConversation(conv) {
    this.composer.reset();
    this.openKey = conv.key;
    $("#placeholder").hidden = true;
    $("#thread-inner").hidden = false;
    $("#chat").classList.add("show-thread");
    this.thread.show(conv, { me: this.me, store: this.store });
    this.renderHeader();
    this.scheduleRender(null);
    $("#composer-input").focus();
    if (conv.kind === "group") this.loadMembers(conv);
    else this.askPresence([conv.id]);
    if (!conv.historyLoaded) await this.loadHistory(conv);
    this.markOpenRead();
  }

  closeConversation() {
    this.composer.reset();
    this.openKey = null;
    $("#chat").classList.remove("show-thread");
    this.scheduleRender(null);
    $("#conversation-list .conversation")?.focus();
  }

  historyPath(conv) {
    return conv.kind === "group" ? `/groups/${conv.id}/messages` : `/messages/${conv.id}`;
  }

  /** A page of history before `before` (the newest without). The first page holds at
   * least every unread message (up to the server's cap), so opening a conversation
   * reads all of them, not only the newest 40. */
  async loadHistory(conv, before = null) {
    const limit = before ? PAGE : Math.min(MAX_PAGE, Math.max(PAGE, conv.unread + 1));
    try {
      const page = await api.get(this.historyPath(conv), { limit, before });
      this.store.applyHistory(conv, page, limit);
    } catch (error) {
      this.toast(`Could not load messages: ${error.message}`);
    }
  }

  async loadOlder() {
    const conv = this.open();
    if (!conv || !conv.hasOlder || this.loadingOlder || !conv.messages.size) return;
    this.loadingOlder = true;
    try {
      await this.loadHistory(conv, Math.min(...conv.messages.keys()));
    } finally {
      this.loadingOlder = false;
    }
    this.markOpenRead();
  }

  async loadMembers(conv) {
    try {
      conv.members = await api.get(`/groups/${conv.id}/members`);
      for (const member of conv.members) {
        const before = conv.readMarkers.get(member.user_id) || 0;
        conv.readMarkers.set(member.user_id, Math.max(before, member.last_read_message_id || 0));
      }
      this.store.changed(conv.key);
    } catch (error) {
      this.toast(`Could not load the members: ${error.message}`);
    }
  }

  /** Read receipts, only while the conversation is open and the page is seen. */
  markOpenRead() {
    const conv = this.open();
    if (!conv || document.visibilityState !== "visible" || !this.socket.synced) return;
    for (const frame of this.store.markRead(conv)) this.socket.send(frame);
  }

  // -- sending -------------------------------------------------------------------

  target(message) {
    return message.groupId ? { message_id: message.id, group_id: message.groupId } : { message_id: message.id };
  }

  sendMessage({ text, replyTo }) {
    const conv = this.open();
    if (!conv) return;
    const item = this.store.addOutgoing(conv, { text, replyTo });
    this.socket.send(item.frame); // If not live, `synced` sends it with the other unacked.
    this.thread.render({ toBottom: true });
  }

  async sendImage(file, text, replyTo) {
    const conv = this.open();
    if (!conv) return;
    const item = this.store.addOutgoing(conv, { text, previewUrl: URL.createObjectURL(file), replyTo });
    item.state = "uploading";
    this.thread.render({ toBottom: true });
    try {
      const uploaded = await api.upload(file);
      item.frame.image_url = uploaded.url;
      item.imageUrl = uploaded.url;
      item.state = "sending";
      this.socket.send(item.frame);
    } catch (error) {
      item.state = "failed";
      item.reason = error.message;
    }
    this.store.changed(conv.key);
  }

  typing(state) {
    const conv = this.open();
    if (!conv) return;
    const where = conv.kind === "group" ? { group_id: conv.id } : { recipient_id: conv.id };
    this.socket.send({ type: "typing", ...where, state }); // Never queued: stale by then.
  }

  editLastOwn() {
    const conv = this.open();
    if (!conv) return;
    const own = [...conv.messages.values()]
      .filter((m) => m.authorId === this.me.id && !m.deleted && m.text !== null)
      .sort((a, b) => b.id - a.id)[0];
    if (own) this.composer.edit(own);
  }

  async confirmDelete(message) {
    const dialog = $("#confirm-dialog");
    const answer = await new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
      dialog.returnValue = "cancel";
      dialog.showModal();
      $("#confirm-ok").focus();
    });
    if (answer === "ok") this.transmit({ type: "delete", ...this.target(message) });
    $("#messages li.message[tabindex='0']")?.focus();
  }

  // -- rendering -----------------------------------------------------------------

  scheduleRender(key) {
    this.dirtyThread ||= key === null || key === this.openKey;
    if (this.renderPending) return;
    this.renderPending = true;
    requestAnimationFrame(() => {
      this.renderPending = false;
      renderConversations($("#conversation-list"), {
        conversations: this.store.sorted(), me: this.me, openKey: this.openKey,
        store: this.store, onOpen: (conv) => this.openConversation(conv),
      });
      const unread = [...this.store.conversations.values()]
        .reduce((sum, c) => sum + (c.key === this.openKey ? 0 : c.unread), 0);
      document.title = unread ? `(${unread}) hubbub` : "hubbub";
      if (this.dirtyThread && this.open()) {
        this.thread.render();
        this.renderHeader();
      }
      this.dirtyThread = false;
    });
  }

  renderHeader() {
    const conv = this.open();
    if (!conv) return;
    const user = conv.kind === "direct" ? this.store.users.get(conv.id) : null;
    fill($("#thread-avatar"), avatar(conv.name, { online: user?.online, group: conv.kind === "group" }));
    $("#thread-name").textContent = conv.name;
    const typers = this.store.typers(conv.key);
    const status = $("#thread-status");
    status.classList.toggle("typing", typers.length > 0);
    if (typers.length) {
      status.textContent = conv.kind === "group" ? `${typers.join(", ")} ${typers.length > 1 ? "are" : "is"} typing…` : "typing…";
    } else if (conv.kind === "group") {
      status.textContent = conv.members ? `${conv.members.length} member${conv.members.length === 1 ? "" : "s"}` : "Group";
    } else {
      status.textContent = user ? (user.online ? "online" : lastSeen(user.lastSeen)) : "";
    }
    const admin = conv.members?.some((m) => m.user_id === this.me.id && m.role === "admin");
    $("#add-member").hidden = !(conv.kind === "group" && admin);
  }

  async logout() {
    this.socket.stop();
    await api.logout();
    location.reload();
  }

  toast(text) {
    const el = $("#toast");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { el.hidden = true; }, 5000);
  }
}

async function boot() {
  hydrateIcons();
  if (!api.loggedIn) {
    showAuth(api, boot);
    return;
  }
  let me;
  try {
    me = await api.get("/users/me");
  } catch (error) {
    if (error instanceof LoggedOut || (error instanceof ApiError && error.status === 401)) {
      api.tokens = null;
      showAuth(api, boot);
    } else {
      setTimeout(boot, 3000); // The server is not reachable yet: keep the login, try again.
    }
    return;
  }
  app = new ChatApp(me);
  window.hubbub = app; // For the console (and the browser tests' diagnostics).
  await app.start();
}

boot();
