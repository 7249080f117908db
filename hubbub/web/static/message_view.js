// One message as a list item: its bubble, reply quote, image, reactions, ticks and the
// actions toolbar. Pure: it builds elements from data and never touches the network.
// Buttons carry data-action (and data-emoji); the thread view handles their clicks.

import { clock, h } from "./dom.js";
import { icon } from "./icons.js";

export const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "😢"];
const SVG = "http://www.w3.org/2000/svg";

function tickIcon(double) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", double ? "0 0 18 14" : "0 0 16 14");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", double ? "M1 7.5l3.5 3.5L12.5 2.5M8.5 11L17 2.5" : "M2 7.5l3.5 3.5L14 2.5");
  svg.appendChild(path);
  return svg;
}

const TICKS = {
  sending: ["Sending", null],
  pending: ["Sent", false],
  delivered: ["Delivered", true],
  read: ["Read", true],
};

function ticks(state) {
  const [label, double] = TICKS[state] || TICKS.pending;
  const el = h("span", { class: `ticks ${state}`, role: "img", "aria-label": label, title: label });
  if (double === null) el.appendChild(h("span", { class: "clock", "aria-hidden": "true" }));
  else el.appendChild(tickIcon(double));
  return el;
}

/** The excerpt a reply shows of the message it answers. */
export function excerpt(message) {
  if (!message) return "an earlier message";
  if (message.deleted) return "a deleted message";
  if (message.text) return message.text.length > 90 ? message.text.slice(0, 90) + "…" : message.text;
  return message.imageUrl ? "Photo" : "";
}

// The server only accepts its own upload URLs; the page shows nothing else either.
const MEDIA_URL = /^\/media\/[A-Za-z0-9._-]+$/;

function imageSource(message) {
  if (message.imageUrl && MEDIA_URL.test(message.imageUrl)) return message.imageUrl;
  if (message.previewUrl?.startsWith("blob:")) return message.previewUrl;
  return null;
}

function button(action, label, glyph, extra = {}) {
  return h("button", {
    type: "button", class: "icon-button", "data-action": action, "aria-label": label,
    title: label, ...extra,
  }, glyph);
}

/**
 * The element of a stored message (`message`) or an outgoing one (`pending`).
 * ctx: {me, conv, status (the tick state), replied (the message answered, if loaded),
 * active (the roving focus is here), picker (the reaction picker is open)}.
 */
export function messageElement(message, ctx) {
  const mine = message.authorId === ctx.me.id;
  const deleted = message.deleted;
  const tab = ctx.active ? "0" : "-1";
  const author = mine ? "You" : message.authorName;
  const summary = deleted ? "deleted message" : (message.text || (message.imageUrl ? "photo" : ""));
  const li = h("li", {
    class: `message ${mine ? "mine" : "theirs"}${deleted ? " deleted" : ""}${message.failed ? " failed" : ""}`,
    tabindex: tab,
    "data-key": ctx.key,
    "data-id": message.id ?? null,
    "aria-label": `${author}, ${clock(message.timestamp)}: ${summary}`,
  });
  const bubble = h("div", { class: "bubble" });
  if (!mine && ctx.conv.kind === "group") {
    bubble.appendChild(h("div", { class: "author", text: message.authorName }));
  }
  if (message.replyTo && !deleted) {
    const who = ctx.replied ? (ctx.replied.authorId === ctx.me.id ? "You" : ctx.replied.authorName) : "";
    bubble.appendChild(h("div", { class: "quote" },
      who ? h("span", { class: "quote-author", text: who }) : null,
      h("span", { class: "quote-text", text: excerpt(ctx.replied) })));
  }
  if (deleted) {
    bubble.appendChild(h("div", { class: "text tombstone", text: "This message was deleted" }));
  } else {
    const src = imageSource(message);
    if (src) {
      bubble.appendChild(h("img", {
        class: "photo", src, alt: `Photo from ${author}`, loading: "lazy", decoding: "async",
      }));
    }
    if (message.text) bubble.appendChild(h("div", { class: "text", text: message.text }));
  }
  const meta = h("div", { class: "meta" });
  if (message.editedAt && !deleted) meta.appendChild(h("span", { class: "edited", text: "edited" }));
  meta.appendChild(h("time", { datetime: message.timestamp, text: clock(message.timestamp) }));
  if (mine && !deleted && ctx.status) meta.appendChild(ticks(ctx.status));
  bubble.appendChild(meta);
  li.appendChild(bubble);

  if (message.failed) {
    li.appendChild(h("div", { class: "failure" },
      h("span", { text: `Not sent: ${message.failed}` }),
      h("button", { type: "button", class: "link", "data-action": "dismiss", tabindex: tab, text: "Dismiss" })));
  }

  if (!deleted && message.reactions?.length) {
    const row = h("div", { class: "reactions" });
    for (const reaction of message.reactions) {
      const own = reaction.userIds.includes(ctx.me.id);
      row.appendChild(h("button", {
        type: "button", class: `chip${own ? " own" : ""}`, "data-action": "toggle-reaction",
        "data-emoji": reaction.emoji, "aria-pressed": own ? "true" : "false", tabindex: tab,
        "aria-label": `${reaction.emoji} ${reaction.userIds.length}${own ? ", yours" : ""}`,
      }, h("span", { class: "emoji", text: reaction.emoji }), h("span", { text: String(reaction.userIds.length) })));
    }
    li.appendChild(row);
  }

  if (message.id && !deleted) {
    const actions = h("div", { class: "actions", role: "toolbar", "aria-label": "Message actions" },
      button("reply", "Reply", icon("reply"), { tabindex: tab }),
      button("picker", "React", icon("smile"), { tabindex: tab, "aria-expanded": ctx.picker ? "true" : "false" }));
    if (mine) {
      if (message.text !== null) actions.appendChild(button("edit", "Edit", icon("edit"), { tabindex: tab }));
      actions.appendChild(button("delete", "Delete", icon("trash"), { tabindex: tab }));
    } else if (ctx.canDelete) {
      actions.appendChild(button("delete", "Delete", icon("trash"), { tabindex: tab }));
    }
    li.appendChild(actions);
    if (ctx.picker) {
      const picker = h("div", { class: "picker", role: "group", "aria-label": "Pick a reaction" });
      for (const emoji of QUICK_REACTIONS) {
        picker.appendChild(h("button", {
          type: "button", class: "emoji-button", "data-action": "react", "data-emoji": emoji,
          "aria-label": `React ${emoji}`, text: emoji,
        }));
      }
      li.appendChild(picker);
    }
  }
  return li;
}

export function daySeparator(label) {
  return h("li", { class: "day", role: "separator", "aria-label": label }, h("span", { text: label }));
}
