"""The page's state logic (``store.js``), run in Chromium: every update is idempotent,
so overlapping history, replay and live frames leave one copy and the right counts."""

from __future__ import annotations

import os

import pytest

try:
    from playwright.sync_api import Browser
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("playwright is not installed (pip install -e '.[test]')", allow_module_level=True)

SCENARIO = """
async () => {
  const { Store } = await import("/web/store.js");
  const store = new Store({ id: 1, username: "me" });
  const message = (id, text, extra = {}) => ({
    type: "message", message_id: id, author_id: 2, author_name: "bo", recipient_id: 1,
    recipient_name: "me", message: text, image_url: null,
    timestamp: "2026-01-01T00:00:00+00:00", status: "delivered", edited_at: null,
    deleted: false, reply_to: null, reactions: [], ...extra,
  });
  const { type, ...asHistory } = message(5, "hi");
  store.loadConversations([{
    kind: "direct", user_id: 2, name: "bo", unread_count: 1, last_message: asHistory,
    last_activity: "2026-01-01T00:00:00+00:00", last_read_message_id: null,
  }]);
  const conv = store.conversations.get("d:2");
  const out = {};
  // A replay of the message the list already counted, then a new one seen twice.
  store.applyMessage(message(5, "hi"));
  store.applyMessage(message(6, "again"));
  store.applyMessage(message(6, "again"));
  out.unread = conv.unread;
  out.ids = [...conv.messages.keys()].sort();
  // Reactions are set members.
  const react = (op, user) => ({ type: "reaction", message_id: 6, user_id: user, emoji: "👍", op });
  store.applyReaction(react("add", 1));
  store.applyReaction(react("add", 1));
  store.applyReaction(react("add", 2));
  out.reacted = structuredClone(conv.messages.get(6).reactions);
  store.applyReaction(react("remove", 1));
  store.applyReaction(react("remove", 2));
  out.unreacted = conv.messages.get(6).reactions;
  // A status never goes back, even when an older frame is replayed after a newer one.
  const sent = store.applyMessage({ ...message(7, "mine"), author_id: 1, author_name: "me",
                                    recipient_id: 2, recipient_name: "bo", status: "pending" });
  store.setStatus(7, "read");
  store.setStatus(7, "delivered");
  store.applyMessage({ ...message(7, "mine"), author_id: 1, recipient_id: 2, status: "delivered" });
  out.status = conv.messages.get(7).status;
  // An outgoing message: the ack before the echo, then the echo replaces it (one copy).
  const item = store.addOutgoing(conv, { text: "hello" });
  store.applyAck({ type: "ack", message_id: 8, status: "delivered", client_id: item.clientId });
  out.pendingAfterAck = conv.pending.size;
  store.applyMessage({ ...message(8, "hello"), author_id: 1, recipient_id: 2,
                       client_id: item.clientId });
  out.pendingAfterEcho = conv.pending.size;
  // A deleted unread message stops counting; its content is gone.
  store.applyMessage(message(9, "oops"));
  const before = conv.unread;
  store.applyDelete({ type: "message_deleted", message_id: 9, deleted_by: 2 });
  out.unreadDrop = before - conv.unread;
  out.deletedText = conv.messages.get(9).text;
  // Reading sends one `read` per unread message from the other side, once.
  out.reads = store.markRead(conv).map((f) => f.message_id);
  out.readsAgain = store.markRead(conv).length;
  out.unreadAfterRead = conv.unread;
  return out;
}
"""


def test_updates_are_idempotent(browser: Browser, node_url: str) -> None:
    page = browser.new_page(base_url=node_url)
    page.goto("/")
    result = page.evaluate(SCENARIO)
    page.close()
    assert result["unread"] == 2  # 5 (counted by the list) and 6 (new), each once
    assert result["ids"] == [5, 6]
    assert result["reacted"] == [{"emoji": "👍", "userIds": [1, 2]}]
    assert result["unreacted"] == []
    assert result["status"] == "read"
    assert result["pendingAfterAck"] == 1
    assert result["pendingAfterEcho"] == 0
    assert result["unreadDrop"] == 1
    assert result["deletedText"] is None
    assert result["reads"] == [5, 6]
    assert result["readsAgain"] == 0
    assert result["unreadAfterRead"] == 0
