// The "New group" and "Add people" dialogs (native <dialog>: focus is kept inside and
// Escape closes them).

import { $ } from "./dom.js";
import { renderPeople } from "./list_view.js";

export function setUpDialogs(app) {
  for (const button of document.querySelectorAll("dialog [data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }
  const groupDialog = $("#group-dialog");
  const error = $("#group-error");
  $("#new-group").addEventListener("click", () => {
    $("#group-name").value = "";
    error.hidden = true;
    groupDialog.showModal();
    $("#group-name").focus();
  });
  $("#group-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("#group-name").value.trim();
    if (!name) return;
    try {
      const created = await app.api.post("/groups/create-group", { name });
      groupDialog.close();
      const conv = app.store.conversation("group", created.group_id, name);
      conv.lastActivity = new Date().toISOString();
      conv.historyLoaded = true;
      conv.hasOlder = false;
      await app.openConversation(conv);
      openMemberDialog(app, conv);
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    }
  });
  const search = $("#member-search");
  search.addEventListener("input", () => showCandidates(app));
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      $("#member-results button")?.click();
    }
  });
}

let memberConv = null;

export function openMemberDialog(app, conv) {
  memberConv = conv;
  $("#member-search").value = "";
  $("#member-note").textContent = "";
  $("#member-results").replaceChildren();
  $("#member-dialog").showModal();
  $("#member-search").focus();
}

async function showCandidates(app) {
  const conv = memberConv;
  const query = $("#member-search").value;
  const members = new Set((conv.members || []).map((m) => m.user_id));
  const found = (await app.people.search(query).catch(() => [])).filter((u) => !members.has(u.id));
  if ($("#member-search").value !== query) return;
  if (!query.trim()) {
    $("#member-results").replaceChildren();
    return;
  }
  renderPeople($("#member-results"), {
    users: found, store: app.store, actionLabel: "Add",
    onPick: async (user) => {
      // Cleared at once, not after the call: what the user types meanwhile is kept.
      $("#member-search").value = "";
      $("#member-results").replaceChildren();
      $("#member-search").focus();
      $("#member-note").textContent = `Adding ${user.username}…`;
      try {
        await app.api.post(`/groups/${conv.id}/add-member`, { user_id: user.id });
        await app.loadMembers(conv);
        $("#member-note").textContent = `${user.username} was added.`;
      } catch (failure) {
        $("#member-note").textContent = `${user.username} was not added: ${failure.message}`;
      }
    },
  });
}
