// The sidebar's conversation list and the people search results. Pure rendering: the
// app passes data and callbacks.

import { avatar, h, fill, listTime } from "./dom.js";
import { excerpt } from "./message_view.js";

function preview(conv, me, typers) {
  if (typers.length) return h("span", { class: "typing-text", text: typers.length > 1 ? "several people are typing…" : `${conv.kind === "group" ? typers[0] + " is " : ""}typing…` });
  const message = conv.lastMessage;
  if (!message) return h("span", { class: "muted", text: conv.kind === "group" ? "No messages yet" : "Say hello" });
  let who = "";
  if (message.authorId === me.id) who = "You: ";
  else if (conv.kind === "group") who = `${message.authorName}: `;
  return h("span", { text: who + (message.deleted ? "Message deleted" : excerpt(message)) });
}

/** Fill `ul` with `conversations`; `openKey` is marked current. */
export function renderConversations(ul, { conversations, me, openKey, store, onOpen }) {
  const items = conversations.map((conv) => {
    const online = conv.kind === "direct" && store.users.get(conv.id)?.online;
    const unread = conv.unread > 0 && conv.key !== openKey;
    const label = `${conv.name}${conv.kind === "group" ? " (group)" : ""}${online ? ", online" : ""}${unread ? `, ${conv.unread} unread` : ""}`;
    return h("li", {},
      h("button", {
        type: "button",
        class: `conversation${conv.key === openKey ? " current" : ""}${unread ? " unread" : ""}`,
        "aria-current": conv.key === openKey ? "true" : null,
        "aria-label": label,
        "data-key": conv.key,
        onclick: () => onOpen(conv),
      },
      avatar(conv.name, { online, group: conv.kind === "group" }),
      h("span", { class: "conversation-body" },
        h("span", { class: "conversation-top" },
          h("span", { class: "conversation-name", text: conv.name }),
          h("time", { class: "conversation-time", text: listTime(conv.lastActivity) })),
        h("span", { class: "conversation-bottom" },
          h("span", { class: "conversation-preview" }, preview(conv, me, store.typers(conv.key))),
          unread ? h("span", { class: "badge", "aria-hidden": "true", text: conv.unread > 99 ? "99+" : String(conv.unread) }) : null))));
  });
  if (!items.length) {
    items.push(h("li", { class: "empty" },
      h("p", { text: "No conversations yet." }),
      h("p", { class: "muted", text: "Find someone above, or start a group." })));
  }
  fill(ul, ...items);
}

/** People search results: `users` ({id, username}), each a button. */
export function renderPeople(ul, { users, store, onPick, actionLabel = "Message" }) {
  fill(ul, ...users.map((user) => {
    const online = store.users.get(user.id)?.online;
    return h("li", {},
      h("button", {
        type: "button", class: "person", "data-user-id": user.id,
        "aria-label": `${actionLabel} ${user.username}`, onclick: () => onPick(user),
      },
      avatar(user.username, { online }),
      h("span", { class: "person-name", text: user.username }),
      h("span", { class: "person-action", "aria-hidden": "true", text: actionLabel })));
  }));
  if (!users.length) fill(ul, h("li", { class: "empty muted", text: "Nobody by that name." }));
}
