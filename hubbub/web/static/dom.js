// Small DOM helpers. Every piece of user text goes in through textContent (h() children
// and the `text` attribute), never through innerHTML: user data cannot become markup.

/** h("li", {class: "x", onclick: fn, "aria-label": "..."}, child, "text", ...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** Replace every child of `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "long", day: "numeric", month: "long",
});
const shortDay = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });

export function clock(iso) {
  return iso ? timeFormat.format(new Date(iso)) : "";
}

function startOfDay(date) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
}

/** "Today", "Yesterday" or "Tuesday, 24 November": the heading of a day's messages. */
export function dayLabel(iso) {
  const date = new Date(iso);
  const days = Math.round((startOfDay(new Date()) - startOfDay(date)) / 86400000);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  return dayFormat.format(date);
}

/** A conversation list's time: the clock today, else the day. */
export function listTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return startOfDay(date) === startOfDay(new Date()) ? clock(iso) : shortDay.format(date);
}

/** "last seen 5 min ago" style text for an offline user. */
export function lastSeen(iso) {
  if (!iso) return "offline";
  const minutes = Math.round((Date.now() - new Date(iso).getTime()) / 60000);
  if (minutes < 1) return "last seen just now";
  if (minutes < 60) return `last seen ${minutes} min ago`;
  if (minutes < 24 * 60) return `last seen at ${clock(iso)}`;
  return `last seen ${shortDay.format(new Date(iso))}`;
}

const PALETTE = ["#5b8def", "#e0795b", "#4fb39a", "#b07ad8", "#d9a13f", "#5aa8c9", "#d96b94"];

/** A round avatar with the name's initial, its colour fixed by the name. */
export function avatar(name, { online = false, group = false } = {}) {
  let hash = 0;
  for (const ch of name || "?") hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  const initial = group ? "#" : (Array.from(name || "?")[0] || "?").toUpperCase();
  const el = h("span", { class: "avatar", "aria-hidden": "true", text: initial });
  el.style.setProperty("--avatar", PALETTE[hash % PALETTE.length]);
  if (online) el.appendChild(h("span", { class: "presence-dot" }));
  return el;
}
