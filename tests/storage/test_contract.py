"""The ``Storage`` contract, run against every backend (the ``storage`` fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest
import trio

from hubbub.storage import (
    Conflict,
    InvalidData,
    NewDirectMessage,
    NewGroupMessage,
    Storage,
    User,
    open_storage,
)
from hubbub.storage.migrate import load_migrations

NUL = "a\x00b"
TOO_BIG = 2**70  # no row of either database can have this id


async def make_users(storage: Storage, *names: str) -> list[User]:
    return [await storage.create_user(name, f"{name}@example.org", "hash") for name in names]


def dm(author: User, recipient: User, body: str, client_id: str | None = None):
    return NewDirectMessage(author.id, recipient.id, body, None, client_id)


def is_utc(when: datetime) -> bool:
    return when.tzinfo is not None and when.utcoffset() == timedelta(0)


# -- lifecycle ---------------------------------------------------------------


async def test_migrate_is_idempotent(storage: Storage) -> None:
    latest = len(load_migrations(storage.backend))
    assert await storage.schema_version() == latest
    assert await storage.migrate() == latest
    assert await storage.migrate() == latest


async def test_an_empty_database_is_version_zero_until_migrated(database_url: str) -> None:
    async with open_storage(database_url) as storage:
        assert await storage.schema_version() == 0
        assert await storage.migrate() == len(load_migrations(storage.backend))


async def test_concurrent_migrations_take_turns(database_url: str) -> None:
    versions = []

    async def migrate() -> None:
        async with open_storage(database_url) as storage:
            versions.append(await storage.migrate())

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(migrate)
    async with open_storage(database_url) as storage:
        expected = len(load_migrations(storage.backend))
        assert versions == [expected] * 3
        await make_users(storage, "alice")  # the schema is whole


async def test_ping(storage: Storage) -> None:
    await storage.ping()


# -- users -------------------------------------------------------------------


async def test_create_user_and_look_it_up(storage: Storage) -> None:
    alice = await storage.create_user("Alice", "Alice@Example.org", "argon2-hash")
    assert (alice.username, alice.email, alice.password_hash) == (
        "Alice",
        "Alice@Example.org",
        "argon2-hash",
    )
    assert is_utc(alice.created_at)
    assert alice.last_seen is None
    assert await storage.user_by_id(alice.id) == alice
    assert await storage.user_by_username("aLICE") == alice
    assert await storage.user_by_id(alice.id + 1000) is None
    assert await storage.user_by_username("bob") is None


async def test_username_and_email_are_unique_case_insensitively(storage: Storage) -> None:
    await storage.create_user("alice", "alice@example.org", "h")
    with pytest.raises(Conflict) as taken:
        await storage.create_user("ALICE", "other@example.org", "h")
    assert taken.value.field == "username"
    with pytest.raises(Conflict) as taken:
        await storage.create_user("bob", "Alice@EXAMPLE.org", "h")
    assert taken.value.field == "email"
    assert [u.username for u in await storage.list_users()] == ["alice"]


async def test_list_users_and_usernames(storage: Storage) -> None:
    alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
    assert [(u.id, u.username) for u in await storage.list_users()] == [
        (alice.id, "alice"),
        (bob.id, "bob"),
        (carol.id, "carol"),
    ]
    assert await storage.usernames([carol.id, alice.id, 999_999]) == {
        carol.id: "carol",
        alice.id: "alice",
    }
    assert await storage.usernames([]) == {}


async def test_last_seen_round_trips_exactly_as_utc(storage: Storage) -> None:
    (alice,) = await make_users(storage, "alice")
    when = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=timezone(timedelta(hours=2)))
    await storage.set_last_seen(alice.id, when)
    seen = (await storage.user_by_id(alice.id)).last_seen
    assert seen == when
    assert is_utc(seen)


# -- direct messages ---------------------------------------------------------


async def test_stored_messages_are_pending_with_growing_ids(storage: Storage) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    first = await storage.store_direct_messages([dm(alice, bob, "one"), dm(bob, alice, "two")])
    second = await storage.store_direct_messages([dm(alice, bob, "three", "c3")])
    stored = [s.message for s in first + second]
    assert all(s.created for s in first + second)
    assert [m.body for m in stored] == ["one", "two", "three"]
    assert [m.id for m in stored] == sorted({m.id for m in stored})
    assert {m.status for m in stored} == {"pending"}
    assert stored[2].client_id == "c3"
    assert all(is_utc(m.created_at) for m in stored)
    assert await storage.direct_message(stored[1].id) == stored[1]
    assert await storage.direct_message(stored[2].id + 1000) is None


async def test_a_resent_client_id_answers_the_first_message(storage: Storage) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    [original] = await storage.store_direct_messages([dm(alice, bob, "hi", "c1")])
    [resent] = await storage.store_direct_messages([dm(alice, bob, "hi (resent)", "c1")])
    assert not resent.created
    assert resent.message == original.message
    assert len(await storage.direct_history(alice.id, bob.id, None, 10)) == 1


async def test_messages_are_found_by_author_and_client_id(storage: Storage) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    [direct] = await storage.store_direct_messages([dm(alice, bob, "hi", "c1")])
    group = await storage.create_group("g", alice.id)
    [grouped] = await storage.store_group_messages([gm(group.id, alice, "all", "c1")])
    assert await storage.direct_by_client_id(alice.id, "c1") == direct.message
    assert await storage.group_by_client_id(alice.id, "c1") == grouped.message
    assert await storage.direct_by_client_id(bob.id, "c1") is None
    assert await storage.group_by_client_id(alice.id, "c2") is None


async def test_a_repeat_inside_one_batch_answers_its_first_occurrence(storage: Storage) -> None:
    alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
    stored = await storage.store_direct_messages(
        [dm(alice, bob, "a", "k"), dm(alice, carol, "b"), dm(alice, bob, "a again", "k")]
    )
    assert [s.created for s in stored] == [True, True, False]
    assert stored[2].message == stored[0].message
    assert stored[2].message.body == "a"


async def test_client_ids_are_per_author_and_none_never_repeats(storage: Storage) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    stored = await storage.store_direct_messages(
        [
            dm(alice, bob, "x"),
            dm(alice, bob, "x"),
            dm(alice, bob, "k", "k"),
            dm(bob, alice, "k", "k"),
        ]
    )
    stored += await storage.store_direct_messages([dm(alice, bob, "x")])
    assert all(s.created for s in stored)
    assert len({s.message.id for s in stored}) == 5


async def test_delivered_ids_piggyback_on_a_batch(storage: Storage) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    earlier = await storage.store_direct_messages([dm(alice, bob, "1"), dm(alice, bob, "2")])
    old = [s.message for s in earlier]
    await storage.mark_read(old[1].id)
    stored = await storage.store_direct_messages(
        [dm(bob, alice, "3")], delivered_ids=[old[0].id, old[1].id]
    )
    assert stored[0].message.status == "pending"
    assert (await storage.direct_message(old[0].id)).status == "delivered"
    assert (await storage.direct_message(old[1].id)).status == "read"  # never downgraded


async def test_a_resend_shows_the_status_its_own_batch_set(storage: Storage) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    [first] = await storage.store_direct_messages([dm(alice, bob, "1", "c1")])
    [again] = await storage.store_direct_messages(
        [dm(alice, bob, "1", "c1")], delivered_ids=[first.message.id]
    )
    assert not again.created
    assert again.message.status == "delivered"


async def test_an_empty_batch_still_marks_delivered(storage: Storage) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    [stored] = await storage.store_direct_messages([dm(alice, bob, "1")])
    assert await storage.store_direct_messages([], delivered_ids=[stored.message.id]) == []
    assert (await storage.direct_message(stored.message.id)).status == "delivered"


async def test_a_batch_to_an_unknown_user_stores_nothing(storage: Storage) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    [kept] = await storage.store_direct_messages([dm(alice, bob, "before")])
    ghost = User(bob.id + 1000, "ghost", "g@example.org", "h", bob.created_at, None)
    with pytest.raises(InvalidData):
        await storage.store_direct_messages(
            [dm(alice, bob, "lost"), dm(alice, ghost, "refused")], delivered_ids=[kept.message.id]
        )
    history = await storage.direct_history(alice.id, bob.id, None, 10)
    assert [(m.body, m.status) for m in history] == [("before", "pending")]


async def test_mark_delivered_and_mark_read(storage: Storage) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    a, b, c = (
        s.message for s in await storage.store_direct_messages([dm(alice, bob, x) for x in "abc"])
    )
    read = await storage.mark_read(b.id)
    assert read is not None
    assert (read.id, read.status, read.body) == (b.id, "read", "b")
    await storage.mark_delivered([a.id, b.id])
    await storage.mark_delivered([])
    statuses = [(await storage.direct_message(m.id)).status for m in (a, b, c)]
    assert statuses == ["delivered", "read", "pending"]
    assert await storage.mark_read(c.id + 1000) is None


async def test_pending_messages_oldest_first_up_to_limit(storage: Storage) -> None:
    alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
    to_bob = []
    for n in range(5):
        [s] = await storage.store_direct_messages([dm(alice, bob, f"b{n}")])
        to_bob.append(s.message)
    await storage.store_direct_messages([dm(alice, carol, "c"), dm(bob, alice, "to alice")])
    await storage.mark_delivered([to_bob[0].id])
    await storage.mark_read(to_bob[2].id)
    pending = await storage.pending_direct_messages(bob.id, 2)
    assert [m.body for m in pending] == ["b1", "b3"]
    pending = await storage.pending_direct_messages(bob.id, 10)
    assert [m.body for m in pending] == ["b1", "b3", "b4"]
    assert await storage.pending_direct_messages(bob.id, 0) == []


async def test_history_pages_backwards_over_both_directions(storage: Storage) -> None:
    alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
    conversation = []
    for n in range(7):
        author, recipient = (alice, bob) if n % 2 else (bob, alice)
        stored = await storage.store_direct_messages(
            [dm(author, recipient, f"m{n}"), dm(alice, carol, "elsewhere")]
        )
        conversation.append(stored[0].message)
    newest = await storage.direct_history(alice.id, bob.id, None, 3)
    assert newest == conversation[4:]
    assert await storage.direct_history(bob.id, alice.id, None, 3) == newest
    older = await storage.direct_history(alice.id, bob.id, newest[0].id, 3)
    assert older == conversation[1:4]
    oldest = await storage.direct_history(alice.id, bob.id, older[0].id, 3)
    assert oldest == conversation[:1]
    assert await storage.direct_history(alice.id, bob.id, oldest[0].id, 3) == []
    assert await storage.direct_history(alice.id, bob.id, None, 100) == conversation


async def test_conversation_partners_either_way(storage: Storage) -> None:
    alice, bob, carol, dave = await make_users(storage, "alice", "bob", "carol", "dave")
    pairs = [(alice, bob), (carol, alice), (alice, bob), (bob, dave), (alice, alice)]
    await storage.store_direct_messages([dm(a, r, "hi") for a, r in pairs])
    assert await storage.conversation_partners(alice.id) == {bob.id, carol.id}
    assert await storage.conversation_partners(bob.id) == {alice.id, dave.id}
    assert await storage.conversation_partners(9_999) == set()


async def test_concurrent_batches_store_everything(storage: Storage) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    results = []

    async def send(n: int) -> None:
        batch = [dm(alice, bob, f"{n}-{i}", f"{n}-{i}") for i in range(10)]
        results.extend(await storage.store_direct_messages(batch))

    async with trio.open_nursery() as nursery:
        for n in range(8):
            nursery.start_soon(send, n)
    assert len(results) == 80
    assert all(s.created for s in results)
    assert len({s.message.id for s in results}) == 80


# -- groups ------------------------------------------------------------------


def gm(group_id: int, author: User, body: str, client_id: str | None = None):
    return NewGroupMessage(group_id, author.id, body, None, client_id)


async def test_the_creator_of_a_group_is_its_admin(storage: Storage) -> None:
    (alice,) = await make_users(storage, "alice")
    group = await storage.create_group("friends", alice.id)
    assert (group.name, group.created_by) == ("friends", alice.id)
    assert is_utc(group.created_at)
    assert await storage.group(group.id) == group
    assert await storage.group(group.id + 1000) is None
    [admin] = await storage.group_members(group.id)
    assert (admin.user_id, admin.username, admin.role) == (alice.id, "alice", "admin")
    assert admin.last_read_message_id == 0
    assert is_utc(admin.joined_at)
    assert await storage.member(group.id, alice.id) == admin
    assert await storage.groups_of(alice.id) == [group]


async def test_add_remove_and_change_role(storage: Storage) -> None:
    alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
    group = await storage.create_group("g", alice.id)
    await storage.add_member(group.id, carol.id)
    await storage.add_member(group.id, bob.id, "admin")
    with pytest.raises(Conflict) as again:
        await storage.add_member(group.id, bob.id)
    assert again.value.field == "member"
    members = await storage.group_members(group.id)
    assert [(m.username, m.role) for m in members] == [
        ("alice", "admin"),
        ("bob", "admin"),
        ("carol", "member"),
    ]
    assert await storage.set_member_role(group.id, bob.id, "member")
    assert (await storage.member(group.id, bob.id)).role == "member"
    assert not await storage.set_member_role(group.id, 9_999, "admin")
    assert await storage.remove_member(group.id, bob.id)
    assert not await storage.remove_member(group.id, bob.id)
    assert await storage.member(group.id, bob.id) is None
    assert await storage.groups_of(bob.id) == []


async def test_a_new_member_has_read_everything_before_joining(storage: Storage) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    group = await storage.create_group("g", alice.id)
    other = await storage.create_group("other", alice.id)
    stored = await storage.store_group_messages(
        [gm(group.id, alice, "1"), gm(group.id, alice, "2")]
    )
    await storage.store_group_messages([gm(other.id, alice, "elsewhere")])
    await storage.add_member(group.id, bob.id)
    assert (await storage.member(group.id, bob.id)).last_read_message_id == stored[1].message.id


async def test_groups_of_and_co_members(storage: Storage) -> None:
    alice, bob, carol, dave = await make_users(storage, "alice", "bob", "carol", "dave")
    first = await storage.create_group("first", alice.id)
    second = await storage.create_group("second", carol.id)
    await storage.create_group("dave's", dave.id)
    await storage.add_member(first.id, bob.id)
    await storage.add_member(second.id, alice.id)
    assert await storage.groups_of(alice.id) == [first, second]
    assert await storage.co_members(alice.id) == {bob.id, carol.id}
    assert await storage.co_members(bob.id) == {alice.id}
    assert await storage.co_members(dave.id) == set()


async def test_group_messages_are_idempotent_per_author(storage: Storage) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    group = await storage.create_group("g", alice.id)
    await storage.add_member(group.id, bob.id)
    first = await storage.store_group_messages(
        [gm(group.id, alice, "a", "k"), gm(group.id, bob, "b", "k"), gm(group.id, alice, "a2", "k")]
    )
    assert [s.created for s in first] == [True, True, False]
    assert first[2].message == first[0].message
    [resent] = await storage.store_group_messages([gm(group.id, alice, "a3", "k")])
    assert not resent.created
    assert resent.message == first[0].message
    m = first[0].message
    assert (m.group_id, m.author_id, m.body, m.client_id) == (group.id, alice.id, "a", "k")
    assert is_utc(m.created_at)
    assert await storage.store_group_messages([]) == []


async def test_group_history_pages_backwards(storage: Storage) -> None:
    (alice,) = await make_users(storage, "alice")
    group = await storage.create_group("g", alice.id)
    other = await storage.create_group("other", alice.id)
    messages = []
    for n in range(6):
        stored = await storage.store_group_messages(
            [gm(group.id, alice, f"m{n}"), gm(other.id, alice, "elsewhere")]
        )
        messages.append(stored[0].message)
    assert await storage.group_history(group.id, None, 4) == messages[2:]
    assert await storage.group_history(group.id, messages[2].id, 4) == messages[:2]
    assert await storage.group_history(group.id, messages[0].id, 4) == []
    assert await storage.group_history(group.id, None, 0) == []


async def test_group_messages_after_pages_forwards_from_the_oldest(storage: Storage) -> None:
    (alice,) = await make_users(storage, "alice")
    group = await storage.create_group("g", alice.id)
    other = await storage.create_group("other", alice.id)
    assert await storage.group_messages_after(group.id, 0, 10) == []
    messages = []
    for n in range(6):
        stored = await storage.store_group_messages(
            [gm(other.id, alice, "elsewhere"), gm(group.id, alice, f"m{n}")]
        )
        messages.append(stored[1].message)
    assert await storage.group_messages_after(group.id, 0, 2) == messages[:2]
    assert await storage.group_messages_after(group.id, messages[1].id, 2) == messages[2:4]
    assert await storage.group_messages_after(group.id, messages[3].id, 10) == messages[4:]
    assert await storage.group_messages_after(group.id, messages[5].id, 10) == []
    assert await storage.group_messages_after(group.id, 0, 0) == []
    assert await storage.group_messages_after(group.id + 1000, 0, 10) == []


async def test_advance_group_read(storage: Storage) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    group = await storage.create_group("g", alice.id)
    stored = await storage.store_group_messages([gm(group.id, alice, str(n)) for n in range(3)])
    ids = [s.message.id for s in stored]
    assert await storage.advance_group_read(group.id, alice.id, ids[1]) == ids[1]
    assert await storage.advance_group_read(group.id, alice.id, ids[0]) == ids[1]  # not back
    assert await storage.advance_group_read(group.id, alice.id, ids[2] + 1000) == ids[2]
    assert (await storage.member(group.id, alice.id)).last_read_message_id == ids[2]
    assert await storage.advance_group_read(group.id, bob.id, ids[2]) is None


async def test_timestamps_use_utc_now(storage: Storage) -> None:
    before = datetime.now(UTC)
    (alice,) = await make_users(storage, "alice")
    after = datetime.now(UTC)
    # Generous slack: the database's clock is the machine's, but not read at the same instant.
    assert before - timedelta(seconds=5) <= alice.created_at <= after + timedelta(seconds=5)


# -- data the database cannot hold ----------------------------------------------


@pytest.mark.parametrize(
    ("username", "email"),
    [(NUL, "nul@example.org"), ("nul", NUL), ("lone\ud800", "s@example.org")],
)
async def test_a_user_with_text_that_cannot_be_stored_is_invalid(
    storage: Storage, username: str, email: str
) -> None:
    with pytest.raises(InvalidData):
        await storage.create_user(username, email, "hash")
    assert await storage.list_users() == []


async def test_a_group_name_with_nul_is_invalid(storage: Storage) -> None:
    (alice,) = await make_users(storage, "alice")
    with pytest.raises(InvalidData):
        await storage.create_group(NUL, alice.id)
    assert await storage.groups_of(alice.id) == []


@pytest.mark.parametrize("field", ["body", "image_url", "client_id"])
async def test_a_batch_with_one_unstorable_message_writes_nothing(
    storage: Storage, field: str
) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    group = await storage.create_group("g", alice.id)
    [earlier] = await storage.store_direct_messages([dm(alice, bob, "earlier")])
    good = dm(alice, bob, "good", "c-good")
    bad = attrs.evolve(dm(alice, bob, "bad", "c-bad"), **{field: NUL})
    with pytest.raises(InvalidData):
        await storage.store_direct_messages([good, bad], delivered_ids=[earlier.message.id])
    assert await storage.direct_history(alice.id, bob.id, None, 10) == [earlier.message]
    grouped = [gm(group.id, alice, "good"), attrs.evolve(gm(group.id, alice, "x"), **{field: NUL})]
    with pytest.raises(InvalidData):
        await storage.store_group_messages(grouped)
    assert await storage.group_history(group.id, None, 10) == []
    # What the storage writer does on InvalidData: the members one by one.
    [stored] = await storage.store_direct_messages([good])
    assert stored.created
    with pytest.raises(InvalidData):
        await storage.store_direct_messages([bad])


async def test_writes_naming_ids_that_cannot_exist_are_invalid(storage: Storage) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    group = await storage.create_group("g", alice.id)
    with pytest.raises(InvalidData):
        await storage.store_direct_messages([NewDirectMessage(alice.id, TOO_BIG, "x", None)])
    with pytest.raises(InvalidData):
        await storage.store_group_messages([NewGroupMessage(TOO_BIG, alice.id, "x", None)])
    with pytest.raises(InvalidData):
        await storage.create_group("g2", TOO_BIG)
    with pytest.raises(InvalidData):
        await storage.add_member(group.id, TOO_BIG)
    with pytest.raises(InvalidData):
        await storage.add_member(group.id + 1000, bob.id)
    with pytest.raises(InvalidData):
        await storage.add_member(group.id, bob.id, NUL)  # type: ignore[arg-type]
    with pytest.raises(InvalidData):
        await storage.set_member_role(group.id, alice.id, "owner")  # type: ignore[arg-type]
    assert [m.user_id for m in await storage.group_members(group.id)] == [alice.id]


async def test_lookups_of_ids_and_text_that_cannot_exist_find_nothing(storage: Storage) -> None:
    alice, bob = await make_users(storage, "alice", "bob")
    group = await storage.create_group("g", alice.id)
    [sent] = await storage.store_direct_messages([dm(alice, bob, "hi", "c1")])
    [posted] = await storage.store_group_messages([gm(group.id, alice, "all", "c1")])
    assert await storage.user_by_id(TOO_BIG) is None
    assert await storage.user_by_username(NUL) is None
    assert await storage.usernames([alice.id, TOO_BIG, -TOO_BIG]) == {alice.id: "alice"}
    assert await storage.direct_message(TOO_BIG) is None
    assert await storage.direct_by_client_id(TOO_BIG, "c1") is None
    assert await storage.direct_by_client_id(alice.id, NUL) is None
    assert await storage.group_by_client_id(alice.id, NUL) is None
    assert await storage.mark_read(TOO_BIG) is None
    assert await storage.pending_direct_messages(TOO_BIG, 10) == []
    assert await storage.direct_history(alice.id, TOO_BIG, None, 10) == []
    assert await storage.conversation_partners(TOO_BIG) == set()
    assert await storage.group(TOO_BIG) is None
    assert await storage.group_members(TOO_BIG) == []
    assert await storage.member(group.id, TOO_BIG) is None
    assert await storage.groups_of(TOO_BIG) == []
    assert await storage.co_members(TOO_BIG) == set()
    assert await storage.group_history(TOO_BIG, None, 10) == []
    assert await storage.group_messages_after(TOO_BIG, 0, 10) == []
    assert await storage.advance_group_read(TOO_BIG, alice.id, 1) is None
    assert not await storage.remove_member(group.id, TOO_BIG)
    assert not await storage.set_member_role(TOO_BIG, alice.id, "admin")
    await storage.set_last_seen(TOO_BIG, datetime.now(UTC))
    await storage.mark_delivered([TOO_BIG])
    # Bounds past the range are the range's end.
    assert await storage.direct_history(alice.id, bob.id, TOO_BIG, TOO_BIG) == [sent.message]
    assert await storage.direct_history(alice.id, bob.id, -TOO_BIG, 10) == []
    assert await storage.pending_direct_messages(bob.id, TOO_BIG) == [sent.message]
    assert await storage.group_history(group.id, TOO_BIG, TOO_BIG) == [posted.message]
    assert await storage.group_messages_after(group.id, -TOO_BIG, TOO_BIG) == [posted.message]
    assert await storage.group_messages_after(group.id, TOO_BIG, 10) == []
    assert await storage.advance_group_read(group.id, alice.id, TOO_BIG) == posted.message.id
    assert await storage.advance_group_read(group.id, alice.id, -TOO_BIG) == posted.message.id
