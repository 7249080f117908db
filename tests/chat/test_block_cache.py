"""The per-node block relations (``engine/chat/blocks.py``) over a real storage."""

from __future__ import annotations

from hubbub.engine.chat.blocks import BlockCache
from hubbub.storage import Storage, User

#: Stands for the UserActor that loads an entry.
OWNER = object()


async def users(storage: Storage, *names: str) -> list[User]:
    return [await storage.create_user(n, f"{n}@example.org", "h") for n in names]


async def test_relations_of_a_live_user_come_from_memory_until_refreshed(
    storage: Storage,
) -> None:
    ann, bob, cid = await users(storage, "ann", "bob", "cid")
    await storage.block(ann.id, bob.id)
    cache = BlockCache(storage)
    await cache.load(bob.id, OWNER)
    assert await cache.refuses(bob.id, ann.id) is True  # Ann blocks Bob
    assert cache.hides(bob.id, ann.id) is True
    assert cache.hides(bob.id, cid.id) is False

    # A change in storage is not seen until the relations are read again.
    await storage.unblock(ann.id, bob.id)
    await storage.block(bob.id, cid.id)
    assert await cache.refuses(bob.id, ann.id) is True
    await cache.refresh(bob.id)
    assert await cache.refuses(bob.id, ann.id) is False
    # Bob blocks Cid: Bob may still write to Cid, but neither sees the other's presence.
    assert await cache.refuses(bob.id, cid.id) is False
    assert cache.hides(bob.id, cid.id) is True
    assert await cache.hidden_from(bob.id) == {cid.id}


async def test_users_not_live_here_are_read_from_storage_and_never_kept(
    storage: Storage,
) -> None:
    ann, bob = await users(storage, "ann", "bob")
    await storage.block(ann.id, bob.id)
    cache = BlockCache(storage)
    # Not loaded: the answers come from storage, and nothing is remembered.
    assert await cache.refuses(bob.id, ann.id) is True
    assert await cache.refuses(ann.id, bob.id) is False
    assert await cache.hidden_from(ann.id) == {bob.id}
    assert cache.hides(ann.id, bob.id) is False
    await cache.refresh(ann.id)  # not kept here: no read, nothing kept
    assert cache.hides(ann.id, bob.id) is False

    await cache.load(ann.id, OWNER)
    assert cache.hides(ann.id, bob.id) is True
    cache.forget(ann.id, object())  # not the one that loaded it: kept
    assert cache.hides(ann.id, bob.id) is True
    cache.forget(ann.id, OWNER)
    await cache.refresh(ann.id)  # forgotten: refreshing does not bring it back
    assert cache.hides(ann.id, bob.id) is False
