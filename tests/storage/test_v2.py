"""The v2 storage contract (rich messages, the stream, conversations), on every backend."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from hubbub.storage import (
    InvalidData,
    NewDirectMessage,
    NewGroupMessage,
    Storage,
    User,
)
from hubbub.storage.records import ConversationKey, Reaction, StreamEvent

NUL = "a\x00b"
TOO_BIG = 2**70


async def users(storage: Storage, *names: str) -> list[User]:
    return [await storage.create_user(n, f"{n}@example.org", "h") for n in names]


def dm(author: User, recipient: User, body: str, client_id: str | None = None, reply_to=None):
    return NewDirectMessage(author.id, recipient.id, body, None, client_id, reply_to)


def gm(group_id: int, author: User, body: str, client_id: str | None = None, reply_to=None):
    return NewGroupMessage(group_id, author.id, body, None, client_id, reply_to)


async def send(storage: Storage, *messages: NewDirectMessage):
    return [s.message for s in await storage.store_direct_messages(list(messages))]


async def post(storage: Storage, *messages: NewGroupMessage):
    return [s.message for s in await storage.store_group_messages(list(messages))]


async def everything(storage: Storage) -> list[StreamEvent]:
    return await storage.stream_after(0, 10_000)


async def conversation(storage: Storage, user: User, kind: str, peer_id: int):
    for c in await storage.conversations(user.id, None, 1000):
        if (c.kind, c.peer_id) == (kind, peer_id):
            return c
    return None


async def unread(storage: Storage, user: User, kind: str, peer_id: int) -> int | None:
    found = await conversation(storage, user, kind, peer_id)
    return None if found is None else found.unread_count


# -- the stream's head -----------------------------------------------------------------


async def test_a_new_stream_is_empty_with_an_epoch_of_its_own(storage: Storage) -> None:
    state = await storage.stream_state()
    assert re.fullmatch(r"[0-9a-z]{1,32}", state.epoch)
    assert (state.head, state.swept_through) == (0, 0)
    assert await everything(storage) == []
    assert (await storage.stream_state()).epoch == state.epoch


# -- messages and their events -----------------------------------------------------------


async def test_stored_messages_take_consecutive_positions_in_id_order(storage: Storage) -> None:
    alice, bob = await users(storage, "alice", "bob")
    group = await storage.create_group("g", alice.id)
    first = await send(storage, dm(alice, bob, "1"), dm(bob, alice, "2"), dm(alice, bob, "3"))
    grouped = await post(storage, gm(group.id, alice, "all"))
    assert [m.state.position for m in first] == [1, 2, 3]
    assert grouped[0].state.position == 4
    assert (await storage.stream_state()).head == 4
    events = await everything(storage)
    assert [(e.position, e.kind, e.message_id) for e in events] == [
        (1, "message", first[0].id),
        (2, "message", first[1].id),
        (3, "message", first[2].id),
        (4, "group_message", grouped[0].id),
    ]
    assert events[0].user_ids == (alice.id, bob.id)
    assert events[1].user_ids == (bob.id, alice.id)
    assert events[0].actor_id == alice.id
    assert events[0].direct == first[0]
    assert (events[3].group_id, events[3].user_ids, events[3].group) == (group.id, (), grouped[0])
    assert all(e.data == {} and e.created_at is not None for e in events)
    assert await storage.direct_message(first[1].id) == first[1]


async def test_a_duplicate_appends_nothing(storage: Storage) -> None:
    alice, bob = await users(storage, "alice", "bob")
    group = await storage.create_group("g", alice.id)
    [original] = await send(storage, dm(alice, bob, "hi", "c1"))
    again = await storage.store_direct_messages(
        [dm(alice, bob, "hi", "c1"), dm(alice, bob, "new"), dm(alice, bob, "new?", "c1")]
    )
    assert [s.created for s in again] == [False, True, False]
    assert again[0].message == original
    assert again[1].message.state.position == 2
    [grouped] = await post(storage, gm(group.id, alice, "x", "g1"))
    [resent] = await storage.store_group_messages([gm(group.id, alice, "x", "g1")])
    assert not resent.created and resent.message == grouped
    assert [e.position for e in await everything(storage)] == [1, 2, 3]
    assert await unread(storage, bob, "direct", alice.id) == 2


async def test_reply_to_is_stored_and_must_name_a_message(storage: Storage) -> None:
    alice, bob = await users(storage, "alice", "bob")
    group = await storage.create_group("g", alice.id)
    [question] = await send(storage, dm(alice, bob, "?"))
    [answer] = await send(storage, dm(bob, alice, "!", reply_to=question.id))
    assert answer.state.reply_to == question.id
    assert (await storage.direct_message(answer.id)).state.reply_to == question.id
    [topic] = await post(storage, gm(group.id, alice, "topic"))
    [reply] = await post(storage, gm(group.id, alice, "re", reply_to=topic.id))
    assert (await storage.group_history(group.id, None, 10))[1].state.reply_to == topic.id
    assert reply.state.reply_to == topic.id
    with pytest.raises(InvalidData):
        await send(storage, dm(bob, alice, "?", reply_to=answer.id + 1000))
    assert (await storage.stream_state()).head == 4


# -- conversations and their counters ------------------------------------------------------


async def test_direct_conversations_exist_for_both_users_with_unread_for_the_recipient(
    storage: Storage,
) -> None:
    alice, bob, carol = await users(storage, "alice", "bob", "carol")
    messages = await send(
        storage,
        dm(alice, bob, "1"),
        dm(alice, bob, "2"),
        dm(bob, alice, "3"),
        dm(carol, carol, "me"),
    )
    [bobs] = await storage.conversations(bob.id, None, 10)
    assert (bobs.kind, bobs.peer_id, bobs.name) == ("direct", alice.id, "alice")
    assert (bobs.unread_count, bobs.last_read_message_id) == (2, None)
    assert bobs.last_message == messages[2]
    assert bobs.last_activity == messages[2].created_at
    assert bobs.key == ConversationKey(messages[2].state.position, "direct", alice.id)
    assert await unread(storage, alice, "direct", bob.id) == 1
    [own] = await storage.conversations(carol.id, None, 10)
    assert (own.peer_id, own.name, own.unread_count) == (carol.id, "carol", 0)


async def test_reading_a_direct_message(storage: Storage) -> None:
    alice, bob, carol = await users(storage, "alice", "bob", "carol")
    first, second = await send(storage, dm(alice, bob, "1"), dm(alice, bob, "2"))
    assert await storage.read_direct(first.id, alice.id) is None  # the author
    assert await storage.read_direct(first.id, carol.id) is None
    assert await storage.read_direct(TOO_BIG, bob.id) is None
    assert (await storage.stream_state()).head == 2
    event = await storage.read_direct(second.id, bob.id)
    assert event is not None
    assert (event.kind, event.position, event.user_ids) == ("read_receipt", 3, (alice.id,))
    assert (event.message_id, event.actor_id, event.data) == (
        second.id,
        bob.id,
        {"author_id": alice.id},
    )
    assert event.created_at is not None
    assert (await storage.direct_message(second.id)).status == "read"
    found = await conversation(storage, bob, "direct", alice.id)
    assert (found.unread_count, found.last_read_message_id) == (1, second.id)
    # Already read: the receipt again, the count stays; the marker never goes back.
    again = await storage.read_direct(second.id, bob.id)
    assert again is not None and again.position == 4
    await storage.read_direct(first.id, bob.id)
    found = await conversation(storage, bob, "direct", alice.id)
    assert (found.unread_count, found.last_read_message_id) == (0, second.id)
    await storage.read_direct(first.id, bob.id)
    assert await unread(storage, bob, "direct", alice.id) == 0
    assert (await everything(storage))[2] == event


async def test_v1_mark_read_keeps_the_counters(storage: Storage) -> None:
    alice, bob = await users(storage, "alice", "bob")
    first, _ = await send(storage, dm(alice, bob, "1"), dm(alice, bob, "2"))
    read = await storage.mark_read(first.id)
    assert read is not None and read.status == "read"
    await storage.mark_read(first.id)
    found = await conversation(storage, bob, "direct", alice.id)
    assert (found.unread_count, found.last_read_message_id) == (1, first.id)
    assert (await storage.stream_state()).head == 2  # v1: no event


async def test_group_unread_counts_follow_messages_reads_and_joins(storage: Storage) -> None:
    alice, bob, carol = await users(storage, "alice", "bob", "carol")
    group = await storage.create_group("g", alice.id)
    await storage.add_member(group.id, bob.id)
    a1, a2, b1 = await post(
        storage, gm(group.id, alice, "a1"), gm(group.id, alice, "a2"), gm(group.id, bob, "b1")
    )
    assert await unread(storage, alice, "group", group.id) == 1
    assert await unread(storage, bob, "group", group.id) == 2
    await storage.add_member(group.id, carol.id)  # joins having read everything
    assert await unread(storage, carol, "group", group.id) == 0
    [b2] = await post(storage, gm(group.id, bob, "b2"))
    assert await unread(storage, carol, "group", group.id) == 1
    assert await unread(storage, bob, "group", group.id) == 2

    assert await storage.read_group(group.id, 9_999, b2.id) is None
    event = await storage.read_group(group.id, bob.id, a1.id)
    assert event is not None
    assert (event.kind, event.group_id, event.actor_id, event.data) == (
        "group_read",
        group.id,
        bob.id,
        {"message_id": a1.id},
    )
    found = await conversation(storage, bob, "group", group.id)
    assert (found.unread_count, found.last_read_message_id) == (1, a1.id)
    behind = await storage.read_group(group.id, bob.id, 0)  # never backwards
    assert behind is not None and behind.data == {"message_id": a1.id}
    await storage.read_group(group.id, alice.id, TOO_BIG)
    found = await conversation(storage, alice, "group", group.id)
    assert (found.unread_count, found.last_read_message_id) == (0, b2.id)
    # v1's advance keeps the count too.
    assert await storage.advance_group_read(group.id, bob.id, a2.id) == a2.id
    assert await unread(storage, bob, "group", group.id) == 0
    assert b1.id < b2.id


async def test_conversations_come_newest_first_and_page_stably(storage: Storage) -> None:
    me, *others = await users(storage, "me", "o1", "o2", "o3")
    await send(storage, dm(others[0], me, "1"))
    g1 = await storage.create_group("g1", me.id)  # no messages: sorts by the join
    await send(storage, dm(me, others[1], "2"))
    g2 = await storage.create_group("g2", others[2].id)
    await storage.add_member(g2.id, me.id)
    await post(storage, gm(g2.id, others[2], "3"))
    await send(storage, dm(others[2], me, "4"))
    listed = await storage.conversations(me.id, None, 10)
    assert [(c.kind, c.peer_id) for c in listed] == [
        ("direct", others[2].id),
        ("group", g2.id),
        ("direct", others[1].id),
        ("group", g1.id),
        ("direct", others[0].id),
    ]
    g1_entry = listed[3]
    assert g1_entry.last_message is None
    assert g1_entry.last_activity == (await storage.member(g1.id, me.id)).joined_at
    assert (g1_entry.name, g1_entry.unread_count, g1_entry.last_read_message_id) == ("g1", 0, None)
    # The join of g1 saw head 1, the position of the message of o1: a tie on position,
    # broken by kind, then peer.
    assert g1_entry.key.position == listed[4].key.position
    pages, before = [], None
    while page := await storage.conversations(me.id, before, 2):
        pages.append(page)
        before = page[-1].key
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [c for p in pages for c in p] == listed
    assert await storage.conversations(me.id, listed[-1].key, 10) == []
    assert await storage.conversations(me.id, None, 0) == []
    assert await storage.conversations(TOO_BIG, None, 10) == []


async def test_a_tie_on_position_is_broken_by_kind_then_peer(storage: Storage) -> None:
    alice, bob, carol = await users(storage, "alice", "bob", "carol")
    groups = [await storage.create_group(f"g{n}", alice.id) for n in range(3)]  # all at head 0
    listed = await storage.conversations(alice.id, None, 10)
    assert [c.peer_id for c in listed] == [g.id for g in reversed(groups)]
    assert {c.key.position for c in listed} == {0}
    assert await storage.conversations(alice.id, listed[0].key, 10) == listed[1:]
    # A direct key at the same position sorts after every group there.
    after_direct = ConversationKey(0, "direct", bob.id)
    assert await storage.conversations(alice.id, after_direct, 10) == []
    assert carol.id > 0


# -- edits, deletion, reactions --------------------------------------------------------------


async def test_only_the_author_edits_and_the_edit_shows_everywhere(storage: Storage) -> None:
    alice, bob = await users(storage, "alice", "bob")
    group = await storage.create_group("g", alice.id)
    await storage.add_member(group.id, bob.id)
    [sent] = await send(storage, NewDirectMessage(alice.id, bob.id, "helo", "/media/x.png"))
    assert await storage.edit_message("direct", sent.id, None, bob.id, "hacked") is None
    assert await storage.edit_message("direct", TOO_BIG, None, alice.id, "x") is None
    event = await storage.edit_message("direct", sent.id, None, alice.id, "hello")
    assert event is not None
    edited = await storage.direct_message(sent.id)
    assert (edited.body, edited.image_url) == ("hello", "/media/x.png")
    assert edited.state.edited_at is not None and edited.state.edited_at >= sent.created_at
    assert (event.kind, event.user_ids, event.message_id, event.actor_id) == (
        "message_edited",
        (alice.id, bob.id),
        sent.id,
        alice.id,
    )
    assert event.data == {"message": "hello", "edited_at": edited.state.edited_at.isoformat()}
    # A replay shows the message as it is now.
    [message_event, edit_event] = await everything(storage)
    assert message_event.direct == edited
    assert edit_event == event
    [posted] = await post(storage, gm(group.id, bob, "grp"))
    assert await storage.edit_message("group", posted.id, group.id, alice.id, "x") is None
    assert await storage.edit_message("group", posted.id, group.id + 1, bob.id, "x") is None
    assert await storage.edit_message("group", posted.id, None, bob.id, "x") is None
    grouped = await storage.edit_message("group", posted.id, group.id, bob.id, "group!")
    assert grouped is not None and grouped.group_id == group.id
    assert (await storage.group_history(group.id, None, 1))[0].body == "group!"
    with pytest.raises(InvalidData):
        await storage.edit_message("direct", sent.id, None, alice.id, NUL)
    assert (await storage.direct_message(sent.id)).body == "hello"


async def test_a_deleted_message_is_a_tombstone_everywhere(storage: Storage) -> None:
    alice, bob = await users(storage, "alice", "bob")
    [sent] = await send(storage, NewDirectMessage(alice.id, bob.id, "oops", "/media/x.png", "c1"))
    await storage.react("direct", sent.id, None, bob.id, "👍", True)
    assert await unread(storage, bob, "direct", alice.id) == 1
    assert await storage.delete_message("direct", sent.id, None, bob.id) is None
    event = await storage.delete_message("direct", sent.id, None, alice.id)
    assert event is not None
    assert (event.kind, event.user_ids, event.actor_id, event.data) == (
        "message_deleted",
        (alice.id, bob.id),
        alice.id,
        {},
    )
    gone = await storage.direct_message(sent.id)
    assert (gone.id, gone.author_id, gone.created_at) == (sent.id, alice.id, sent.created_at)
    assert (gone.body, gone.image_url, gone.state.deleted, gone.state.reactions) == (
        None,
        None,
        True,
        (),
    )
    assert await storage.direct_history(alice.id, bob.id, None, 10) == [gone]
    assert await storage.pending_direct_messages(bob.id, 10) == [gone]
    assert await storage.direct_by_client_id(alice.id, "c1") == gone
    [resent] = await storage.store_direct_messages([dm(alice, bob, "oops", "c1")])
    assert resent.message == gone
    assert (await everything(storage))[0].direct == gone
    found = await conversation(storage, bob, "direct", alice.id)
    assert (found.last_message, found.unread_count) == (gone, 0)
    # Nothing more can be done to it.
    assert await storage.delete_message("direct", sent.id, None, alice.id) is None
    assert await storage.edit_message("direct", sent.id, None, alice.id, "again") is None
    assert await storage.react("direct", sent.id, None, bob.id, "👍", True) is None
    assert await storage.read_direct(sent.id, bob.id) is None
    await storage.mark_read(sent.id)  # v1: no second decrement
    assert await unread(storage, bob, "direct", alice.id) == 0


async def test_deleting_takes_the_text_out_of_earlier_edits(storage: Storage) -> None:
    alice, bob = await users(storage, "alice", "bob")
    group = await storage.create_group("g", alice.id)
    await storage.add_member(group.id, bob.id)
    [sent] = await send(storage, dm(alice, bob, "first"))
    [kept] = await send(storage, dm(alice, bob, "stays"))
    [posted] = await post(storage, gm(group.id, bob, "grp"))
    edits = [
        await storage.edit_message("direct", sent.id, None, alice.id, "secret"),
        await storage.edit_message("direct", kept.id, None, alice.id, "still here"),
        await storage.edit_message("group", posted.id, group.id, bob.id, "group secret"),
    ]
    assert all(edit is not None for edit in edits)
    assert await storage.delete_message("direct", sent.id, None, alice.id) is not None
    # An admin deletes another member's group message.
    assert await storage.delete_message("group", posted.id, group.id, alice.id) is not None
    replayed = {
        (e.message_id, e.group_id): e.data
        for e in await everything(storage)
        if e.kind == "message_edited"
    }
    assert edits[0] is not None and edits[1] is not None and edits[2] is not None
    assert replayed == {
        (sent.id, None): {"edited_at": edits[0].data["edited_at"]},
        (kept.id, None): edits[1].data,
        (posted.id, group.id): {"edited_at": edits[2].data["edited_at"]},
    }


async def test_deleting_a_read_direct_message_leaves_the_count(storage: Storage) -> None:
    alice, bob = await users(storage, "alice", "bob")
    first, second = await send(storage, dm(alice, bob, "1"), dm(alice, bob, "2"))
    await storage.read_direct(first.id, bob.id)
    await storage.delete_message("direct", first.id, None, alice.id)
    assert await unread(storage, bob, "direct", alice.id) == 1
    [own] = await send(storage, dm(bob, alice, "mine"))
    await storage.delete_message("direct", own.id, None, bob.id)
    assert await unread(storage, bob, "direct", alice.id) == 1
    assert await unread(storage, alice, "direct", bob.id) == 0
    assert second.id > first.id


async def test_group_deletion_by_the_author_or_an_admin(storage: Storage) -> None:
    admin, bob, carol = await users(storage, "admin", "bob", "carol")
    group = await storage.create_group("g", admin.id)
    await storage.add_member(group.id, bob.id)
    await storage.add_member(group.id, carol.id)
    b1, b2, b3 = await post(
        storage, gm(group.id, bob, "1"), gm(group.id, bob, "2"), gm(group.id, bob, "3")
    )
    await storage.read_group(group.id, carol.id, b2.id)
    assert (
        await unread(storage, admin, "group", group.id),
        await unread(storage, carol, "group", group.id),
    ) == (3, 1)
    assert await storage.delete_message("group", b1.id, group.id, carol.id) is None
    assert await storage.delete_message("group", b1.id, group.id + 1, bob.id) is None
    by_admin = await storage.delete_message("group", b1.id, group.id, admin.id)
    assert by_admin is not None
    assert (by_admin.group_id, by_admin.actor_id, by_admin.user_ids) == (group.id, admin.id, ())
    # Unread only for the admin (carol had read it; bob wrote it).
    assert await unread(storage, admin, "group", group.id) == 2
    assert await unread(storage, carol, "group", group.id) == 1
    assert await unread(storage, bob, "group", group.id) == 0
    assert await storage.delete_message("group", b3.id, group.id, bob.id) is not None
    assert await unread(storage, carol, "group", group.id) == 0
    history = await storage.group_history(group.id, None, 10)
    assert [(m.body, m.state.deleted) for m in history] == [
        (None, True),
        ("2", False),
        (None, True),
    ]
    # A read after deletions counts only what is left and not deleted.
    await storage.read_group(group.id, admin.id, b1.id)
    assert await unread(storage, admin, "group", group.id) == 1
    found = await conversation(storage, admin, "group", group.id)
    assert found.last_message == history[2]


async def test_reactions_are_sets_of_participants(storage: Storage) -> None:
    alice, bob, carol = await users(storage, "alice", "bob", "carol")
    [sent] = await send(storage, dm(alice, bob, "hi"))
    assert await storage.react("direct", sent.id, None, carol.id, "👍", True) is None
    first = await storage.react("direct", sent.id, None, bob.id, "👍", True)
    assert first is not None
    assert (first.kind, first.user_ids, first.actor_id, first.data) == (
        "reaction",
        (alice.id, bob.id),
        bob.id,
        {"emoji": "👍", "op": "add"},
    )
    twice = await storage.react("direct", sent.id, None, bob.id, "👍", True)
    assert twice is not None and twice.position == first.position + 1
    await storage.react("direct", sent.id, None, alice.id, "👍", True)
    await storage.react("direct", sent.id, None, alice.id, "🎉", True)
    await storage.react("direct", sent.id, None, alice.id, "a", True)
    removed = await storage.react("direct", sent.id, None, alice.id, "a", False)
    assert removed is not None and removed.data == {"emoji": "a", "op": "remove"}
    nothing = await storage.react("direct", sent.id, None, bob.id, "a", False)
    assert nothing is not None
    # By emoji in code point order (U+1F389 before U+1F44D), user ids ascending.
    expected = (Reaction("🎉", (alice.id,)), Reaction("👍", (alice.id, bob.id)))
    message = await storage.direct_message(sent.id)
    assert message.state.reactions == expected
    assert (await storage.direct_history(bob.id, alice.id, None, 5))[0] == message
    assert (await everything(storage))[0].direct == message
    assert (await conversation(storage, alice, "direct", bob.id)).last_message == message
    with pytest.raises(InvalidData):
        await storage.react("direct", sent.id, None, bob.id, NUL, True)


async def test_group_reactions_are_for_members(storage: Storage) -> None:
    alice, bob, carol = await users(storage, "alice", "bob", "carol")
    group = await storage.create_group("g", alice.id)
    await storage.add_member(group.id, bob.id)
    [posted] = await post(storage, gm(group.id, alice, "hi", "k"))
    assert await storage.react("group", posted.id, group.id, carol.id, "x", True) is None
    assert await storage.react("group", posted.id, group.id + 1, bob.id, "x", True) is None
    event = await storage.react("group", posted.id, group.id, bob.id, "x", True)
    assert event is not None and (event.group_id, event.user_ids) == (group.id, ())
    message = (await storage.group_history(group.id, None, 1))[0]
    assert message.state.reactions == (Reaction("x", (bob.id,)),)
    assert await storage.group_messages_after(group.id, 0, 5) == [message]
    assert await storage.group_by_client_id(alice.id, "k") == message
    [again] = await storage.store_group_messages([gm(group.id, alice, "hi", "k")])
    assert again.message == message
    assert (await conversation(storage, bob, "group", group.id)).last_message == message


# -- delivery ------------------------------------------------------------------------------


async def test_deliver_pending_appends_a_status_for_each_that_changed(storage: Storage) -> None:
    alice, bob, carol = await users(storage, "alice", "bob", "carol")
    m1, m2, m3, m4 = await send(
        storage, dm(alice, bob, "1"), dm(carol, bob, "2"), dm(alice, bob, "3"), dm(alice, bob, "4")
    )
    await storage.read_direct(m3.id, bob.id)
    head = (await storage.stream_state()).head
    events = await storage.deliver_pending([m4.id, m3.id, m2.id, m1.id, TOO_BIG])
    assert [(e.kind, e.message_id, e.user_ids, e.data) for e in events] == [
        ("status", m1.id, (alice.id,), {"status": "delivered"}),
        ("status", m2.id, (carol.id,), {"status": "delivered"}),
        ("status", m4.id, (alice.id,), {"status": "delivered"}),
    ]
    assert [e.position for e in events] == [head + 1, head + 2, head + 3]
    assert all(e.actor_id is None for e in events)
    assert (await storage.direct_message(m3.id)).status == "read"
    assert await storage.deliver_pending([m1.id]) == []
    assert await storage.deliver_pending([]) == []
    assert (await everything(storage))[-3:] == events


# -- reading the stream ----------------------------------------------------------------------


async def test_stream_for_user_is_the_users_audience(storage: Storage) -> None:
    alice, bob, carol = await users(storage, "alice", "bob", "carol")
    group = await storage.create_group("g", alice.id)
    await send(storage, dm(alice, bob, "ab"))  # 1
    await post(storage, gm(group.id, alice, "before carol"))  # 2
    await storage.add_member(group.id, carol.id)  # joined at 2
    await post(storage, gm(group.id, carol, "carol's"))  # 3
    await send(storage, dm(carol, carol, "self"))  # 4
    [to_carol] = await send(storage, dm(bob, carol, "bc"))  # 5
    await storage.read_direct(to_carol.id, carol.id)  # 6: bob's receipt

    def positions(events):
        return [e.position for e in events]

    assert positions(await storage.stream_for_user(alice.id, 0, None, 100)) == [1, 2, 3]
    assert positions(await storage.stream_for_user(bob.id, 0, None, 100)) == [1, 5, 6]
    assert positions(await storage.stream_for_user(carol.id, 0, None, 100)) == [3, 4, 5]
    assert positions(await storage.stream_for_user(carol.id, 3, 4, 100)) == [4]
    assert positions(await storage.stream_for_user(carol.id, 0, None, 2)) == [3, 4]
    assert await storage.stream_for_user(carol.id, 5, None, 100) == []
    assert await storage.stream_for_user(TOO_BIG, 0, None, 100) == []
    assert positions(await storage.stream_for_user(alice.id, -TOO_BIG, TOO_BIG, TOO_BIG)) == [
        1,
        2,
        3,
    ]
    [self_message] = [e for e in await storage.stream_for_user(carol.id, 3, 4, 1)]
    assert self_message.user_ids == (carol.id,)
    # A member who left sees none of the group's events.
    await storage.remove_member(group.id, carol.id)
    assert positions(await storage.stream_for_user(carol.id, 0, None, 100)) == [4, 5]
    every = await everything(storage)
    assert await storage.stream_for_user(alice.id, 0, None, 100) == every[:3]


async def test_stream_after_pages_every_audience_in_order(storage: Storage) -> None:
    alice, bob = await users(storage, "alice", "bob")
    group = await storage.create_group("g", alice.id)
    for n in range(5):
        await send(storage, dm(alice, bob, f"d{n}"))
        await post(storage, gm(group.id, alice, f"g{n}"))
    every = await storage.stream_after(0, 100)
    assert [e.position for e in every] == list(range(1, 11))
    assert await storage.stream_after(3, 4) == every[3:7]
    assert await storage.stream_after(10, 4) == []
    assert await storage.stream_after(0, 0) == []
    assert await storage.stream_after(-TOO_BIG, TOO_BIG) == every


async def test_sweeping_removes_the_oldest_and_moves_swept_through(storage: Storage) -> None:
    alice, bob = await users(storage, "alice", "bob")
    for n in range(5):
        await send(storage, dm(alice, bob, str(n)))
    past = datetime.now(UTC) - timedelta(days=1)
    assert await storage.sweep_stream(past, 10) == 0
    assert (await storage.stream_state()).swept_through == 0
    future = datetime.now(UTC) + timedelta(days=1)
    assert await storage.sweep_stream(future, 2) == 2
    state = await storage.stream_state()
    assert (state.head, state.swept_through) == (5, 2)
    assert [e.position for e in await everything(storage)] == [3, 4, 5]
    assert await storage.sweep_stream(future, 0) == 0
    assert await storage.sweep_stream(future, 10) == 3
    state = await storage.stream_state()
    assert (state.head, state.swept_through) == (5, 5)
    assert await everything(storage) == []
    # The messages stay.
    assert len(await storage.direct_history(alice.id, bob.id, None, 10)) == 5
    [later] = await send(storage, dm(alice, bob, "later"))
    assert later.state.position == 6


async def test_ids_that_cannot_exist_find_nothing_in_v2(storage: Storage) -> None:
    (alice,) = await users(storage, "alice")
    assert await storage.edit_message("group", 1, TOO_BIG, alice.id, "x") is None
    assert await storage.delete_message("direct", TOO_BIG, None, alice.id) is None
    assert await storage.react("direct", 1, None, TOO_BIG, "x", True) is None
    assert await storage.read_group(TOO_BIG, alice.id, 1) is None
    assert await storage.read_direct(1, TOO_BIG) is None
    assert await storage.deliver_pending([TOO_BIG, -TOO_BIG]) == []
    assert (await storage.stream_state()).head == 0


# -- migrating a v1 database ---------------------------------------------------------------


async def test_migration_0003_backfills_conversations_and_counters(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hubbub.storage import migrate, open_storage, postgres, sqlite

    def v1_only(backend: str):
        return [m for m in migrate.load_migrations(backend) if m.version <= 2]

    async with open_storage(database_url) as storage:
        module = sqlite if storage.backend == "sqlite" else postgres
        monkeypatch.setattr(module, "load_migrations", v1_only)
        assert await storage.migrate() == 2
        now = storage._stored_time(datetime.now(UTC))  # type: ignore[attr-defined]
        run = storage._rows  # type: ignore[attr-defined]

        async def v1_user(name: str) -> User:
            # In SQL: create_user reads columns of later migrations (users.external_id).
            [(user_id,)] = await run(
                "INSERT INTO users (username, email, password_hash, created_at)"
                " VALUES ($1, $2, 'h', $3) RETURNING id",
                name,
                f"{name}@example.org",
                now,
            )
            return User(user_id, name, f"{name}@example.org", "h", datetime.now(UTC), None)

        alice, bob, carol = [await v1_user(name) for name in ("alice", "bob", "carol")]

        async def direct(author: User, recipient: User, status: str) -> int:
            rows = await run(
                "INSERT INTO direct_messages (author_id, recipient_id, body, status, created_at)"
                " VALUES ($1, $2, 'v1', $3, $4) RETURNING id",
                author.id,
                recipient.id,
                status,
                now,
            )
            return rows[0][0]

        m1 = await direct(alice, bob, "read")
        await direct(alice, bob, "delivered")
        m3 = await direct(bob, alice, "pending")
        await direct(carol, carol, "pending")
        [(group_id,)] = await run(
            "INSERT INTO groups (name, created_by, created_at) VALUES ('g', $1, $2) RETURNING id",
            alice.id,
            now,
        )

        async def grouped(author: User) -> int:
            rows = await run(
                "INSERT INTO group_messages (group_id, author_id, body, created_at)"
                " VALUES ($1, $2, 'v1', $3) RETURNING id",
                group_id,
                author.id,
                now,
            )
            return rows[0][0]

        g1, _, g3 = [await grouped(a) for a in (alice, bob, alice)]
        for member, last_read in ((alice, 0), (bob, g1)):
            await run(
                "INSERT INTO group_members (group_id, user_id, role, last_read_message_id,"
                " joined_at) VALUES ($1, $2, 'member', $3, $4)",
                group_id,
                member.id,
                last_read,
                now,
            )
        monkeypatch.undo()
        assert await storage.migrate() == len(migrate.load_migrations(storage.backend))

        state = await storage.stream_state()
        assert re.fullmatch(r"[0-9a-z]{1,32}", state.epoch) and state.head == 0
        bobs = await conversation(storage, bob, "direct", alice.id)
        assert (bobs.unread_count, bobs.last_read_message_id) == (1, m1)
        assert bobs.last_message == await storage.direct_message(m3)
        assert bobs.last_message.state.position == 0
        alices = await conversation(storage, alice, "direct", bob.id)
        assert (alices.unread_count, alices.last_read_message_id) == (1, None)
        [own] = await storage.conversations(carol.id, None, 10)
        assert (own.peer_id, own.unread_count) == (carol.id, 0)
        alices_group = await conversation(storage, alice, "group", group_id)
        assert alices_group.unread_count == 1
        assert alices_group.last_message.id == g3
        assert await unread(storage, bob, "group", group_id) == 1
        # Old rows all sort at position 0, ties broken by kind then peer.
        assert [c.key for c in await storage.conversations(alice.id, None, 10)] == [
            ConversationKey(0, "group", group_id),
            ConversationKey(0, "direct", bob.id),
        ]
        [new] = await send(storage, dm(bob, alice, "v2"))
        assert new.state.position == 1
        assert await unread(storage, alice, "direct", bob.id) == 2
