"""Webhooks end to end (docs/integrations.md), on both backends: a node POSTs every event
to a real receiver that checks signatures; retries after errors and timeouts; the
undelivered hook only for messages still pending and not muted; /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import pytest

from hubbub.client import Account, ChatClient, HubbubHTTP
from hubbub.node import Node
from tests.helpers.chat import attached
from tests.helpers.polling import poll_until
from tests.helpers.stream import create_group
from tests.helpers.users import register
from tests.helpers.webhooks import (
    ACCEPT_ALL,
    SECRET,
    Behaviour,
    Event,
    WebhookReceiver,
    always,
    open_receiver,
)

#: Short intervals, so that a test waits seconds, not minutes.
FAST = {
    "webhook_secret": SECRET,
    "webhook_undelivered_after": "1",
    "webhook_timeout": "1",
    "webhook_lease": "2",
}


@asynccontextmanager
async def hooked_node(
    node_factory: Callable[..., Any], behaviour: Behaviour = ACCEPT_ALL, **overrides: str
) -> AsyncIterator[tuple[Node, WebhookReceiver, HubbubHTTP]]:
    async with (
        open_receiver(SECRET, behaviour) as receiver,
        node_factory(webhook_url=receiver.url, **{**FAST, **overrides}) as node,
        HubbubHTTP(node.url) as http,
    ):
        yield node, receiver, http


async def outbox(node: Node, where: str = "true") -> list[tuple[Any, ...]]:
    """``(type, message_id, state, attempts)`` of the outbox rows (in enqueue order)."""
    rows = await node.storage._rows(  # type: ignore[attr-defined]
        f"SELECT type, message_id, state, attempts FROM webhook_outbox WHERE {where} ORDER BY seq"
    )
    return [tuple(row) for row in rows]


async def mute(node: Node, user: Account, other: Account) -> None:
    """``user`` mutes their direct conversation with ``other`` for ever (a row as the
    mute endpoint writes it, migration 0004)."""
    await node.storage._rows(  # type: ignore[attr-defined]
        "INSERT INTO conversation_mutes (user_id, kind, conversation_id, muted_until)"
        " VALUES ($1, 'direct', $2, NULL)",
        user.id,
        other.id,
    )


def about_message(message_id: int, *, group: bool = False) -> Callable[[Event], bool]:
    """Whether an event is about that direct (or group) message: the two kinds have ids of
    their own."""
    return lambda event: (
        event["data"].get("message_id") == message_id and ("group_id" in event["data"]) == group
    )


async def test_every_event_is_posted_signed(node_factory: Callable[..., Any]) -> None:
    async with hooked_node(node_factory) as (node, receiver, http):
        alice, bob = await register(http, "alice"), await register(http, "bob")
        async with ChatClient.connect(node.url, alice.access_token) as chat:
            await attached(chat)
            online = await receiver.wait_event("user.online")
            assert online["data"] == {"user_id": alice.id}

            direct = await chat.send_direct(bob.id, "hello bob", "d1")
            group_id = await create_group(http, alice, "crew", bob)
            grouped = await chat.send_group(group_id, "hello crew", "g1")
            await chat.edit(direct["message_id"], "hello, bob", "e1")
            await chat.delete(grouped["message_id"], "x1", group_id=group_id)
            removed = await http.http.delete(
                f"/groups/{group_id}/members/{bob.id}",
                headers={"Authorization": f"Bearer {alice.access_token}"},
            )
            assert removed.status_code == 200
        offline = await receiver.wait_event("user.offline")
        assert offline["data"] == {"user_id": alice.id}

        created = await receiver.wait_event("message.created", about_message(direct["message_id"]))
        assert created["data"]["author_id"] == alice.id
        assert created["data"]["recipient_id"] == bob.id
        assert "group_id" not in created["data"]
        group_created = await receiver.wait_event(
            "message.created", about_message(grouped["message_id"], group=True)
        )
        assert group_created["data"]["group_id"] == group_id
        assert group_created["data"]["group_name"] == "crew"
        edited = await receiver.wait_event("message.edited", about_message(direct["message_id"]))
        assert edited["data"]["message"] == "hello, bob"
        assert edited["data"]["edited_at"] is not None
        deleted = await receiver.wait_event(
            "message.deleted", about_message(grouped["message_id"], group=True)
        )
        assert deleted["data"]["deleted"] is True
        assert deleted["data"]["message"] is None  # a tombstone's content is never sent
        assert deleted["data"]["deleted_by"] == alice.id
        # bob never connected: the direct message is still pending after a second.
        undelivered = await receiver.wait_event(
            "message.undelivered", about_message(direct["message_id"])
        )
        assert undelivered["data"]["status"] == "pending"
        await receiver.wait_for(
            lambda: (
                {(e["data"]["user_id"]) for e in receiver.accepted("group.member_added")}
                == {alice.id, bob.id}
            ),
            "group.member_added for the creator and the member",
        )
        assert {e["data"]["group_id"] for e in receiver.accepted("group.member_added")} == {
            group_id
        }
        removed_event = await receiver.wait_event("group.member_removed")
        assert removed_event["data"] == {"group_id": group_id, "user_id": bob.id}

        for delivery in receiver.deliveries:
            assert delivery.signed, delivery
            assert delivery.headers["content-type"] == "application/json"
            event = delivery.event
            assert set(event) == {"id", "type", "created_at", "data"}
            assert datetime.fromisoformat(event["created_at"]).tzinfo is not None
        assert len(receiver.arrivals()) == len(receiver.deliveries)  # none sent twice
        # Every event is marked delivered once its 2xx came back.
        await poll_until(
            lambda: _all_delivered(node), what="every outbox row delivered", timeout=10
        )
        text = (await http.get("/metrics")).text
        assert 'hubbub_webhook_attempts_total{outcome="delivered"}' in text
        assert "hubbub_webhook_outbox_depth" in text


async def _all_delivered(node: Node) -> bool:
    rows = await outbox(node)
    return bool(rows) and all(state == "delivered" for _, _, state, _ in rows)


async def test_a_wrong_secret_is_refused_by_the_receiver(node_factory: Callable[..., Any]) -> None:
    """The receiver's check is real: a node signing with another secret is refused (and
    retried), never accepted."""
    async with hooked_node(node_factory, webhook_secret="not the receiver's secret") as (
        node,
        receiver,
        http,
    ):
        alice = await register(http, "alice")
        async with ChatClient.connect(node.url, alice.access_token) as chat:
            await attached(chat)
        await receiver.wait_for(lambda: len(receiver.deliveries) >= 2, "two refused POSTs")
        assert receiver.accepted() == []
        assert all(d.status == 401 for d in receiver.deliveries)


async def test_retries_after_errors_and_a_timeout(node_factory: Callable[..., Any]) -> None:
    def flaky(event: Event, nth: int) -> int | None:
        # 500, then no answer at all (the 1 s timeout), then 200.
        return {1: 500, 2: None}.get(nth, 200)

    async with hooked_node(node_factory, flaky) as (node, receiver, http):
        alice, bob = await register(http, "alice"), await register(http, "bob")
        async with ChatClient.connect(node.url, alice.access_token) as chat:
            await attached(chat)
            ack = await chat.send_direct(bob.id, "retry me", "r1")
        event = await receiver.wait_event("message.created", about_message(ack["message_id"]))
        assert receiver.arrivals()[event["id"]] == 3
        statuses = [d.status for d in receiver.deliveries if d.event["id"] == event["id"]]
        assert statuses == [500, None, 200]
        await poll_until(
            lambda: _state_of(node, ack["message_id"], "message.created", ("delivered", 3)),
            what="the event marked delivered after 3 attempts",
            timeout=10,
        )
        text = (await http.get("/metrics")).text
        assert _metric(text, 'hubbub_webhook_attempts_total{outcome="rejected"}') >= 1
        assert _metric(text, 'hubbub_webhook_attempts_total{outcome="timeout"}') >= 1
        assert _metric(text, "hubbub_webhook_failures_total") >= 2


async def _state_of(node: Node, message_id: int, type: str, expected: tuple[str, int]) -> bool:
    rows = await outbox(node)
    return [(state, tries) for t, m, state, tries in rows if (t, m) == (type, message_id)] == [
        expected
    ]


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


async def test_an_event_is_given_up_only_after_the_horizon(
    node_factory: Callable[..., Any],
) -> None:
    async with hooked_node(node_factory, always(503), webhook_retry_horizon="2") as (
        node,
        receiver,
        http,
    ):
        alice = await register(http, "alice")
        async with ChatClient.connect(node.url, alice.access_token) as chat:
            await attached(chat)
        await poll_until(
            lambda: _given_up(node), what="user.online given up", timeout=20, interval=0.2
        )
        online = [d for d in receiver.deliveries if d.event["type"] == "user.online"]
        assert len(online) >= 2  # tried, retried, then given up
        assert all(d.status == 503 for d in online)
        assert _metric((await http.get("/metrics")).text, "hubbub_webhook_given_up_total") >= 1


async def _given_up(node: Node) -> bool:
    return [state for _, _, state, _ in await outbox(node, "type = 'user.online'")] == ["failed"]


async def test_undelivered_only_for_pending_unmuted_messages(
    node_factory: Callable[..., Any],
) -> None:
    # Two seconds: a message read live is marked delivered well before.
    async with hooked_node(node_factory, webhook_undelivered_after="2") as (node, receiver, http):
        alice, bob, carol, dave = [
            await register(http, name) for name in ("alice", "bob", "carol", "dave")
        ]
        await mute(node, carol, alice)
        async with (
            ChatClient.connect(node.url, alice.access_token) as alice_chat,
            ChatClient.connect(node.url, bob.access_token) as bob_chat,
        ):
            await attached(alice_chat)
            await attached(bob_chat)
            to_bob = await alice_chat.send_direct(bob.id, "you are here", "b1")
            assert to_bob["status"] == "delivered"
            to_carol = await alice_chat.send_direct(carol.id, "you muted me", "c1")
            to_dave = await alice_chat.send_direct(dave.id, "you are away", "d1")
            event = await receiver.wait_event(
                "message.undelivered", about_message(to_dave["message_id"])
            )
        assert event["data"]["recipient_id"] == dave.id
        assert event["data"]["message"] == "you are away"
        # The scan goes in commit order: by dave's, bob's and carol's were judged too.
        undelivered = await outbox(node, "type = 'message.undelivered'")
        assert [message_id for _, message_id, _, _ in undelivered] == [to_dave["message_id"]]
        assert to_carol["status"] == "pending"


async def test_no_webhook_outbox_rows_without_webhooks(node: Node, http: HubbubHTTP) -> None:
    alice, bob = await register(http, "alice"), await register(http, "bob")
    async with ChatClient.connect(node.url, alice.access_token) as chat:
        await attached(chat)
        await chat.send_direct(bob.id, "hi", "n1")
        await create_group(http, alice, "crew", bob)
    assert await outbox(node) == []
    assert "webhook-sender" not in str(node.root.snapshot())


@pytest.mark.parametrize("secret", [None, "short"])
async def test_a_webhook_url_needs_a_usable_secret(tmp_path: Any, secret: str | None) -> None:
    from hubbub.config import ConfigError, load_settings

    environ = {"HUBBUB_DATA_DIR": str(tmp_path), "HUBBUB_WEBHOOK_URL": "http://127.0.0.1:9/h"}
    if secret is not None:
        environ["HUBBUB_WEBHOOK_SECRET"] = secret
    with pytest.raises(ConfigError, match="HUBBUB_WEBHOOK_SECRET"):
        load_settings(environ=environ, prepare_data_dir=False)


async def test_a_dead_receiver_does_not_hold_chat_up(node_factory: Callable[..., Any]) -> None:
    """The receiver takes every POST and never answers, and the sender waits a minute for
    each: messages are acked all the same (the sender is not on the write path), and
    their events wait in the outbox."""
    async with hooked_node(
        node_factory, lambda event, nth: None, webhook_timeout="60", direct_rate_limit="1000"
    ) as (
        node,
        receiver,
        http,
    ):
        alice, bob = await register(http, "alice"), await register(http, "bob")
        async with ChatClient.connect(node.url, alice.access_token) as chat:
            await attached(chat)
            await receiver.wait_for(lambda: bool(receiver.deliveries), "a POST held")
            for n in range(30):
                ack = await chat.send_direct(bob.id, f"m{n}", f"m{n}")
                assert ack["type"] == "ack"
        assert receiver.accepted() == []
        pending = await outbox(node, "type = 'message.created' AND state = 'pending'")
        assert len(pending) == 30
