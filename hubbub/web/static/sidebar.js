// The sidebar's controls: the people search (a direct conversation with whoever is
// picked), the back button of the phone layout, log out, and Escape back to the list.

import { $ } from "./dom.js";
import { renderPeople } from "./list_view.js";

const DIRECTORY_TTL_MS = 30_000;
const MAX_RESULTS = 20;

/** Everyone but me, from GET /users/all, re-read at most every 30 s (new sign-ups). */
export class People {
  constructor(api, me) {
    this.api = api;
    this.me = me;
    this.cached = null;
    this.fetchedAt = 0;
  }

  async all() {
    if (!this.cached || Date.now() - this.fetchedAt > DIRECTORY_TTL_MS) {
      const users = await this.api.get("/users/all");
      this.cached = users.filter((u) => u.id !== this.me.id);
      this.fetchedAt = Date.now();
    }
    return this.cached;
  }

  /** Users whose name contains `query` (case-insensitive); none for an empty query. */
  async search(query) {
    const needle = query.trim().toLowerCase();
    if (!needle) return [];
    const people = await this.all();
    return people.filter((u) => u.username.toLowerCase().includes(needle)).slice(0, MAX_RESULTS);
  }
}

export function wireSidebar(app) {
  const input = $("#people-search");
  const results = $("#people-results");
  const pick = (user) => {
    input.value = "";
    results.hidden = true;
    app.openConversation(app.store.conversation("direct", user.id, user.username));
  };
  input.addEventListener("input", async () => {
    const query = input.value;
    if (!query.trim()) {
      results.hidden = true;
      return;
    }
    const found = await app.people.search(query).catch(() => []);
    if (input.value !== query) return;
    results.hidden = false;
    renderPeople(results, { users: found, store: app.store, onPick: pick });
  });
  input.addEventListener("keydown", async (event) => {
    if (event.key === "Escape") {
      input.value = "";
      results.hidden = true;
    } else if (event.key === "Enter") {
      event.preventDefault();
      const [first] = await app.people.search(input.value).catch(() => []);
      if (first) pick(first);
    }
  });
  $("#back").addEventListener("click", () => app.closeConversation());
  $("#logout").addEventListener("click", () => app.logout());
  document.addEventListener("keydown", (event) => {
    // On a phone, Escape leaves the conversation (unless it cancels something else).
    const narrow = window.matchMedia("(max-width: 760px)").matches;
    if (event.key === "Escape" && narrow && app.openKey && !app.composer.mode
        && !document.querySelector("dialog[open]") && event.target.id !== "people-search") {
      app.closeConversation();
    }
  });
}
