"""The webhook outbox (migration 0005) on every backend: which writes enqueue which
events, in their own transaction; the undelivered scan; the lease; retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hubbub.storage import Conflict, InvalidData, NewDirectMessage, Storage
from hubbub.storage.webhook_store import OutboxEvent, Webhooks
from tests.storage.test_v2 import dm, gm, post, send, users

HOUR = timedelta(hours=1)


def hooks(storage: Storage) -> Webhooks:
    assert isinstance(storage, Webhooks)
    return storage


async def due(storage: Storage, at: datetime | None = None) -> list[OutboxEvent]:
    return await hooks(storage).due_webhooks(at or datetime.now(UTC) + HOUR, 1000)


def kinds(events: list[OutboxEvent]) -> list[tuple[Any, ...]]:
    return [(e.type, e.message_kind, e.message_id, e.group_id, e.user_id) for e in events]


async def mute(storage: Storage, user_id: int, other_id: int, until: datetime | None) -> None:
    """A direct mute row, as the mute endpoint writes it (migration 0004)."""
    stored = None if until is None else storage._stored_time(until)  # type: ignore[attr-defined]
    await storage._rows(  # type: ignore[attr-defined]
        "INSERT INTO conversation_mutes (user_id, kind, conversation_id, muted_until)"
        " VALUES ($1, 'direct', $2, $3)",
        user_id,
        other_id,
        stored,
    )


async def scan(storage: Storage, *, pending_before: datetime | None = None) -> int:
    now = datetime.now(UTC)
    _, found = await hooks(storage).scan_undelivered(
        pending_before or now + HOUR, now - HOUR, 200, now
    )
    return found


async def test_without_webhooks_no_write_enqueues_anything(storage: Storage) -> None:
    ada, bob = await users(storage, "ada", "bob")
    [message] = await send(storage, dm(ada, bob, "hi"))
    group = await storage.create_group("crew", ada.id)
    await storage.add_member(group.id, bob.id)
    await post(storage, gm(group.id, bob, "hello"))
    await storage.edit_message("direct", message.id, None, ada.id, "hi!")
    await storage.delete_message("direct", message.id, None, ada.id)
    assert await storage.remove_member(group.id, bob.id)
    await hooks(storage).user_online(ada.id, datetime.now(UTC))
    await hooks(storage).user_offline(ada.id, datetime.now(UTC))
    assert await due(storage) == []
    assert (await storage.user_by_id(ada.id)).last_seen is not None  # type: ignore[union-attr]


async def test_each_write_enqueues_its_event(storage: Storage) -> None:
    await hooks(storage).enable_webhooks()
    ada, bob = await users(storage, "ada", "bob")
    [direct] = await send(storage, dm(ada, bob, "hi", "c1"))
    await send(storage, dm(ada, bob, "hi", "c1"))  # a resend stores nothing, reports nothing
    group = await storage.create_group("crew", ada.id)
    await storage.add_member(group.id, bob.id)
    with pytest.raises(Conflict):
        await storage.add_member(group.id, bob.id)
    [grouped] = await post(storage, gm(group.id, bob, "hello"))
    await storage.edit_message("group", grouped.id, group.id, bob.id, "hello!")
    await storage.delete_message("direct", direct.id, None, ada.id)
    assert await storage.delete_message("direct", direct.id, None, ada.id) is None
    assert await storage.remove_member(group.id, bob.id)
    assert not await storage.remove_member(group.id, bob.id)
    now = datetime.now(UTC)
    await hooks(storage).user_online(bob.id, now)
    await hooks(storage).user_offline(bob.id, now)

    events = await due(storage)
    assert kinds(events) == [
        ("message.created", "direct", direct.id, None, None),
        ("group.member_added", None, None, group.id, ada.id),
        ("group.member_added", None, None, group.id, bob.id),
        ("message.created", "group", grouped.id, group.id, None),
        ("message.edited", "group", grouped.id, group.id, None),
        ("message.deleted", "direct", direct.id, None, None),
        ("group.member_removed", None, None, group.id, bob.id),
        ("user.online", None, None, None, bob.id),
        ("user.offline", None, None, None, bob.id),
    ]
    assert events[5].facts == {"deleted_by": ada.id}
    assert len({e.event_id for e in events}) == len(events)
    assert all(e.attempts == 0 for e in events)
    assert await hooks(storage).webhook_backlog() == len(events)
    assert (await storage.user_by_id(bob.id)).last_seen is not None  # type: ignore[union-attr]


async def test_a_refused_batch_enqueues_nothing(storage: Storage) -> None:
    await hooks(storage).enable_webhooks()
    [ada] = await users(storage, "ada")
    with pytest.raises(InvalidData):
        await storage.store_direct_messages([NewDirectMessage(ada.id, 10**6, "hi", None)])
    assert await due(storage) == []


async def test_undelivered_scan_reports_pending_unmuted_messages_once(storage: Storage) -> None:
    await hooks(storage).enable_webhooks()
    ada, bob, cy, dee, eve = await users(storage, "ada", "bob", "cy", "dee", "eve")
    await mute(storage, cy.id, ada.id, None)  # for ever
    await mute(storage, dee.id, ada.id, datetime.now(UTC) - HOUR)  # lapsed
    await mute(storage, eve.id, ada.id, datetime.now(UTC) + HOUR)  # still muted
    await mute(storage, bob.id, cy.id, None)  # another conversation of bob's
    pending, delivered, _to_cy, to_dee, _to_eve, _to_self = await send(
        storage,
        dm(ada, bob, "pending"),
        dm(ada, bob, "delivered"),
        dm(ada, cy, "muted"),
        dm(ada, dee, "mute lapsed"),
        dm(ada, eve, "mute ahead"),
        dm(ada, ada, "note to self"),
    )
    await storage.mark_delivered([delivered.id])
    created = {e.seq for e in await due(storage)}

    # Too young yet: nothing, and the scan stays where it was.
    assert await scan(storage, pending_before=datetime.now(UTC) - HOUR) == 0
    assert await scan(storage) == 2
    assert await scan(storage) == 0  # once only
    undelivered = [e for e in await due(storage) if e.seq not in created]
    assert kinds(undelivered) == [
        ("message.undelivered", "direct", pending.id, None, None),
        ("message.undelivered", "direct", to_dee.id, None, None),
    ]
    # A later message is looked at by the next scan; the event ids are the messages' own.
    [later] = await send(storage, dm(bob, ada, "later"))
    assert await scan(storage) == 1
    assert (await due(storage))[-1].message_id == later.id
    assert len({e.event_id for e in await due(storage)}) == len(await due(storage))


async def test_undelivered_scan_starts_at_the_head_when_webhooks_start(storage: Storage) -> None:
    ada, bob = await users(storage, "ada", "bob")
    await send(storage, dm(ada, bob, "before webhooks"))
    await hooks(storage).enable_webhooks()
    assert await scan(storage) == 0
    [after] = await send(storage, dm(ada, bob, "after"))
    assert await scan(storage) == 1
    assert [e.message_id for e in await due(storage) if e.type == "message.undelivered"] == [
        after.id
    ]


async def test_one_lease_holder_until_it_lapses_or_is_released(storage: Storage) -> None:
    store = hooks(storage)
    now = datetime.now(UTC)
    assert await store.take_webhook_lease("a", now, 10)
    assert not await store.take_webhook_lease("b", now, 10)
    assert await store.take_webhook_lease("a", now + timedelta(seconds=5), 10)  # renewed
    assert not await store.take_webhook_lease("b", now + timedelta(seconds=14), 10)
    assert await store.take_webhook_lease("b", now + timedelta(seconds=16), 10)  # lapsed
    assert not await store.take_webhook_lease("a", now + timedelta(seconds=17), 10)
    await store.release_webhook_lease("a")  # not a's: changes nothing
    assert not await store.take_webhook_lease("a", now + timedelta(seconds=17), 10)
    await store.release_webhook_lease("b")
    assert await store.take_webhook_lease("a", now + timedelta(seconds=17), 10)


async def test_delivery_outcomes(storage: Storage) -> None:
    store = hooks(storage)
    await store.enable_webhooks()
    ada, bob = await users(storage, "ada", "bob")
    await send(storage, dm(ada, bob, "one"), dm(ada, bob, "two"), dm(ada, bob, "three"))
    now = datetime.now(UTC) + timedelta(seconds=1)
    first, second, third = await due(storage, now)
    await store.webhook_delivered(first.seq, now)
    await store.webhook_failed(second.seq, "HTTP 500", now + HOUR, now)
    await store.webhook_failed(third.seq, "timeout", None, now)  # given up
    assert await due(storage, now) == []
    [again] = await due(storage, now + 2 * HOUR)
    assert (again.seq, again.attempts) == (second.seq, 1)
    assert await store.webhook_backlog() == 1
    # Finished events are swept by age; the pending one stays.
    assert await store.sweep_webhooks(now - HOUR, 100) == 0
    assert await store.sweep_webhooks(now + HOUR, 100) == 2
    assert await store.webhook_backlog() == 1
