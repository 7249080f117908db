"""Blocks and mutes in storage (``storage/blocks.py``), on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hubbub.storage import BlockRelations, InvalidData, Mute, Storage, User, UserRef

TOO_BIG = 2**70


async def users(storage: Storage, *names: str) -> list[User]:
    return [await storage.create_user(n, f"{n}@example.org", "h") for n in names]


async def test_block_unblock_and_the_relations_both_ways(storage: Storage) -> None:
    ann, bob, cid = await users(storage, "ann", "bob", "cid")
    assert await storage.block(ann.id, bob.id) is True
    assert await storage.block(ann.id, bob.id) is False  # twice keeps one
    assert await storage.block(cid.id, ann.id) is True
    assert await storage.block(ann.id, cid.id) is True

    assert await storage.blocked_users(ann.id) == [UserRef(bob.id, "bob"), UserRef(cid.id, "cid")]
    assert await storage.blocked_users(bob.id) == []
    assert await storage.is_blocked(ann.id, bob.id) is True
    assert await storage.is_blocked(bob.id, ann.id) is False
    assert await storage.block_relations(ann.id) == BlockRelations(
        blocks=frozenset({bob.id, cid.id}), blocked_by=frozenset({cid.id})
    )
    assert await storage.block_relations(bob.id) == BlockRelations(blocked_by=frozenset({ann.id}))
    assert (await storage.block_relations(ann.id)).either == {bob.id, cid.id}

    assert await storage.unblock(ann.id, bob.id) is True
    assert await storage.unblock(ann.id, bob.id) is False
    assert await storage.is_blocked(ann.id, bob.id) is False
    assert await storage.block_relations(bob.id) == BlockRelations()


async def test_blocks_refuse_unknown_users_and_impossible_ids(storage: Storage) -> None:
    (ann,) = await users(storage, "ann")
    with pytest.raises(InvalidData):
        await storage.block(ann.id, 10**9)
    with pytest.raises(InvalidData):
        await storage.block(ann.id, TOO_BIG)
    assert await storage.unblock(ann.id, TOO_BIG) is False
    assert await storage.is_blocked(TOO_BIG, ann.id) is False
    assert await storage.blocked_users(TOO_BIG) == []
    assert await storage.block_relations(TOO_BIG) == BlockRelations()


async def test_mutes_in_force_replace_and_unmute(storage: Storage) -> None:
    ann, bob = await users(storage, "ann", "bob")
    now = datetime.now(UTC).replace(microsecond=0)
    later = now + timedelta(hours=1)
    group = await storage.create_group("g", ann.id)

    # A direct conversation may be muted before its first message.
    await storage.mute(ann.id, "direct", bob.id, None)
    await storage.mute(ann.id, "group", group.id, later)
    assert await storage.mutes(ann.id, now) == [
        Mute("direct", bob.id, None),
        Mute("group", group.id, later),
    ]
    assert await storage.is_muted(ann.id, "group", group.id, now) is True
    # Past its end a mute is no longer in force.
    assert await storage.mutes(ann.id, later) == [Mute("direct", bob.id, None)]
    assert await storage.is_muted(ann.id, "group", group.id, later) is False
    assert await storage.mutes(bob.id, now) == []

    # Muting again replaces the end.
    await storage.mute(ann.id, "direct", bob.id, later)
    assert await storage.mutes(ann.id, now) == [
        Mute("direct", bob.id, later),
        Mute("group", group.id, later),
    ]
    assert await storage.unmute(ann.id, "direct", bob.id) is True
    assert await storage.unmute(ann.id, "direct", bob.id) is False
    assert await storage.is_muted(ann.id, "direct", bob.id, now) is False
    assert await storage.mutes(ann.id, now) == [Mute("group", group.id, later)]


async def test_mutes_refuse_unknown_users_and_impossible_ids(storage: Storage) -> None:
    (ann,) = await users(storage, "ann")
    now = datetime.now(UTC)
    with pytest.raises(InvalidData):
        await storage.mute(10**9, "direct", ann.id, None)
    with pytest.raises(InvalidData):
        await storage.mute(ann.id, "direct", TOO_BIG, None)
    assert await storage.unmute(ann.id, "group", TOO_BIG) is False
    assert await storage.is_muted(TOO_BIG, "direct", ann.id, now) is False
    assert await storage.mutes(TOO_BIG, now) == []
