// The message composer: Enter sends (Shift+Enter is a new line), Escape cancels a reply
// or an edit, typing is announced (renewed every 3 s while the user types, `stop` after a
// pause or on send), and the attach button picks an image to upload.

import { excerpt } from "./message_view.js";

const TYPING_RENEW_MS = 3000;
const TYPING_IDLE_MS = 4000;
const MAX_HEIGHT_PX = 160;

export class Composer {
  constructor({ form, textarea, fileInput, bar, barLabel, barText, barCancel, handlers }) {
    Object.assign(this, { form, textarea, fileInput, bar, barLabel, barText, barCancel, handlers });
    this.mode = null; // {kind: "reply" | "edit", message}
    this.typingSince = 0;
    this.idleTimer = null;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    textarea.addEventListener("keydown", (event) => this.keyed(event));
    textarea.addEventListener("input", () => this.typed());
    textarea.addEventListener("blur", () => this.stopTyping());
    barCancel.addEventListener("click", () => {
      this.cancel();
      textarea.focus();
    });
    fileInput.addEventListener("change", () => {
      const file = fileInput.files?.[0];
      fileInput.value = "";
      if (file) this.handlers.onFile(file, { caption: this.takeCaption(), replyTo: this.takeReply() });
    });
  }

  keyed(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.submit();
    } else if (event.key === "Escape" && this.mode) {
      event.preventDefault();
      this.cancel();
    } else if (event.key === "ArrowUp" && !this.textarea.value && !this.mode) {
      event.preventDefault();
      this.handlers.onArrowUp();
    }
  }

  typed() {
    this.grow();
    if (this.mode?.kind === "edit") return;
    const now = Date.now();
    if (!this.textarea.value.trim()) {
      this.stopTyping();
      return;
    }
    if (now - this.typingSince >= TYPING_RENEW_MS) {
      this.typingSince = now;
      this.handlers.onTyping("start");
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.idleTimer);
    if (this.typingSince) {
      this.typingSince = 0;
      this.handlers.onTyping("stop");
    }
  }

  grow() {
    this.textarea.style.height = "auto";
    this.textarea.style.height = `${Math.min(this.textarea.scrollHeight, MAX_HEIGHT_PX)}px`;
  }

  submit() {
    const text = this.textarea.value;
    if (!text.trim()) return;
    this.stopTyping();
    if (this.mode?.kind === "edit") {
      this.handlers.onEdit(this.mode.message, text.trim());
      this.cancel();
      return;
    }
    this.handlers.onSend(text.trim(), this.takeReply());
    this.textarea.value = "";
    this.grow();
  }

  /** The text typed so far, to go with an image (and clear the box); none while editing. */
  takeCaption() {
    if (this.mode?.kind === "edit") return "";
    this.stopTyping();
    const text = this.textarea.value.trim();
    this.textarea.value = "";
    this.grow();
    return text;
  }

  /** The message being replied to (and leave reply mode), or null. */
  takeReply() {
    if (this.mode?.kind !== "reply") return null;
    const id = this.mode.message.id;
    this.setMode(null);
    return id;
  }

  reply(message) {
    this.setMode({ kind: "reply", message });
    this.textarea.focus();
  }

  edit(message) {
    this.stopTyping();
    this.setMode({ kind: "edit", message });
    this.textarea.value = message.text || "";
    this.grow();
    this.textarea.focus();
    this.textarea.setSelectionRange(this.textarea.value.length, this.textarea.value.length);
  }

  cancel() {
    if (this.mode?.kind === "edit") {
      this.textarea.value = "";
      this.grow();
    }
    this.setMode(null);
  }

  setMode(mode) {
    this.mode = mode;
    this.bar.hidden = !mode;
    this.form.classList.toggle("editing", mode?.kind === "edit");
    if (mode) {
      const who = mode.message.authorName;
      this.barLabel.textContent = mode.kind === "edit" ? "Editing message" : `Replying to ${who}`;
      this.barText.textContent = excerpt(mode.message);
    }
  }

  /** A new conversation: clear everything. */
  reset() {
    this.stopTyping();
    this.setMode(null);
    this.textarea.value = "";
    this.grow();
  }
}
