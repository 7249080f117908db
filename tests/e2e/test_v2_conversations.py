"""v2 ``GET /conversations`` (docs/contract.md, "Conversations"): the items and their
fields, the order, paging, unread counts, the limits and the refusals.

Each list is read right after the event that proves the change was committed (an ack, a
read receipt, a ``group_read`` or ``message_deleted`` frame): the contract has the count
follow at once.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any

from hubbub.client import Account, ChatClient, HubbubHTTP
from hubbub.node import Node
from tests.helpers.chat import Frame, attached
from tests.helpers.stream import (
    all_conversations,
    conversation,
    conversations,
    create_group,
    direct_messages,
    event,
    group_history,
    request,
)
from tests.helpers.users import UserMaker

DIRECT_FIELDS = {
    "kind",
    "user_id",
    "name",
    "last_message",
    "unread_count",
    "last_read_message_id",
    "last_activity",
}
GROUP_FIELDS = (DIRECT_FIELDS - {"user_id"}) | {"group_id"}


def when(text: str) -> datetime:
    stamp = datetime.fromisoformat(text)
    assert stamp.tzinfo is not None, f"{text!r} has no timezone"
    return stamp


def ident(item: Frame) -> tuple[str, int]:
    return (item["kind"], item["user_id"] if item["kind"] == "direct" else item["group_id"])


async def idents(http: HubbubHTTP, viewer: Account) -> list[tuple[str, int]]:
    return [ident(item) for item in await all_conversations(http, viewer)]


async def item_of(http: HubbubHTTP, viewer: Account, **which: int) -> Frame:
    found = await conversation(http, viewer, **which)
    assert found is not None, f"{viewer.username} has no conversation {which}"
    return found


async def unread(http: HubbubHTTP, viewer: Account, **which: int) -> tuple[int, Any]:
    found = await item_of(http, viewer, **which)
    return found["unread_count"], found["last_read_message_id"]


async def connected(stack: AsyncExitStack, node: Node, *accounts: Account) -> list[ChatClient]:
    chats = []
    for account in accounts:
        chat = await stack.enter_async_context(ChatClient.connect(node.url, account.access_token))
        chats.append(await attached(chat))
    return chats


def but_status(message: dict[str, Any]) -> dict[str, Any]:
    """A direct message object without its ``status``, which a delivery mark committing
    between two reads changes."""
    assert message["status"] in ("pending", "delivered", "read"), message
    return {key: value for key, value in message.items() if key != "status"}


async def test_direct_and_group_items_carry_every_field(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    group_id = await create_group(http, carol, "club", alice)
    async with AsyncExitStack() as stack:
        alice_chat, bob_chat, carol_chat = await connected(stack, node, alice, bob, carol)
        assert (await alice_chat.send_direct(bob.id, "hi bob", "a1"))["type"] == "ack"
        assert (await bob_chat.send_direct(alice.id, "hi alice", "b1"))["type"] == "ack"
        assert (await carol_chat.send_group(group_id, "welcome", "c1"))["type"] == "ack"

    listed = await conversations(http, alice)
    assert set(listed) >= {"conversations", "next"}
    assert listed["next"] is None
    items = listed["conversations"]
    assert [ident(item) for item in items] == [("group", group_id), ("direct", bob.id)]
    group, direct = items

    assert set(direct) >= DIRECT_FIELDS and "group_id" not in direct, direct
    history = await direct_messages(http, alice, bob.id)
    assert direct["kind"] == "direct"
    assert (direct["user_id"], direct["name"]) == (bob.id, bob.username)
    # Its delivery mark may commit between the two reads: status aside, the same.
    assert but_status(direct["last_message"]) == but_status(history[-1])
    assert direct["last_message"]["message"] == "hi alice"
    assert {"edited_at", "deleted", "reply_to", "reactions"} <= set(direct["last_message"])
    assert (direct["unread_count"], direct["last_read_message_id"]) == (1, None)
    assert when(direct["last_activity"]) == when(history[-1]["timestamp"])

    assert set(group) >= GROUP_FIELDS and "user_id" not in group, group
    posted = await group_history(http, alice, group_id)
    assert group["kind"] == "group"
    assert (group["group_id"], group["name"]) == (group_id, "club")
    assert group["last_message"] == posted[-1]
    assert group["last_message"]["message"] == "welcome"
    assert (group["unread_count"], group["last_read_message_id"]) == (1, None)
    assert when(group["last_activity"]) == when(posted[-1]["timestamp"])

    # Bob sees the same conversation from his side; Carol, who is in no direct one, one item.
    bob_side = (await conversations(http, bob))["conversations"]
    assert [ident(item) for item in bob_side] == [("direct", alice.id)]
    assert bob_side[0]["name"] == alice.username
    newest = (await direct_messages(http, bob, alice.id))[-1]
    assert but_status(bob_side[0]["last_message"]) == but_status(newest)
    assert bob_side[0]["unread_count"] == 1  # Alice's "hi bob"; his own reply never counts
    assert [ident(item) for item in (await conversations(http, carol))["conversations"]] == [
        ("group", group_id)
    ]


async def test_newest_activity_first_and_a_group_without_messages_by_when_one_joined(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    assert (await conversations(http, alice)) == {"conversations": [], "next": None}
    async with AsyncExitStack() as stack:
        (alice_chat, bob_chat) = await connected(stack, node, alice, bob)
        await alice_chat.send_direct(bob.id, "to bob", "1")
        await alice_chat.send_direct(carol.id, "to carol", "2")
        assert await idents(http, alice) == [("direct", carol.id), ("direct", bob.id)]

        # Bob makes a group and adds Alice: it has no message, it sorts by her joining.
        group_id = await create_group(http, bob, "quiet", alice)
        assert await idents(http, alice) == [
            ("group", group_id),
            ("direct", carol.id),
            ("direct", bob.id),
        ]
        empty = await item_of(http, alice, group_id=group_id)
        assert (empty["last_message"], empty["unread_count"], empty["last_read_message_id"]) == (
            None,
            0,
            None,
        )
        carol_item = await item_of(http, alice, user_id=carol.id)
        assert when(empty["last_activity"]) >= when(carol_item["last_activity"])

        await bob_chat.send_direct(alice.id, "back to you", "3")
        assert await idents(http, alice) == [
            ("direct", bob.id),
            ("group", group_id),
            ("direct", carol.id),
        ]
        await bob_chat.send_group(group_id, "now it speaks", "4")
        assert await idents(http, alice) == [
            ("group", group_id),
            ("direct", bob.id),
            ("direct", carol.id),
        ]
        # A message in someone else's conversation changes nothing here.
        await bob_chat.send_direct(carol.id, "not alice's", "5")
        assert (await idents(http, alice))[0] == ("group", group_id)


async def test_pages_are_stable_without_duplicates_or_gaps(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice = await make_user("alice")
    others = [await make_user(f"peer{n}") for n in range(5)]
    async with AsyncExitStack() as stack:
        (alice_chat,) = await connected(stack, node, alice)
        # Seven conversations, directs and groups interleaved, each newer than the last.
        expected: list[tuple[str, int]] = []
        for n, other in enumerate(others[:4]):
            await alice_chat.send_direct(other.id, f"hello {n}", f"d{n}")
            expected.append(("direct", other.id))
            if n < 3:
                group_id = await create_group(http, alice, f"group {n}")
                if n == 1:
                    await alice_chat.send_group(group_id, "spoken", "g")
                expected.append(("group", group_id))
        expected.reverse()
        assert await idents(http, alice) == expected

        seen: list[tuple[str, int]] = []
        page = await conversations(http, alice, limit=3)
        assert len(page["conversations"]) == 3 and page["next"] is not None
        seen += [ident(item) for item in page["conversations"]]

        # Activity after the first page: its newest conversation gets a message and a new
        # one starts. Both sort before the page boundary, so the next pages are unchanged.
        assert expected[0] == ("direct", others[3].id)
        await alice_chat.send_direct(others[3].id, "again", "again")
        await alice_chat.send_direct(others[4].id, "newcomer", "new")
        pages = 1
        while page["next"] is not None:
            page = await conversations(http, alice, limit=3, before=page["next"])
            assert len(page["conversations"]) <= 3
            seen += [ident(item) for item in page["conversations"]]
            pages += 1
            assert pages <= 4, "more pages than conversations"
        assert seen == expected, "a page repeated or skipped a conversation"

        # Paging the whole list again now gives the new order, each once.
        assert await idents(http, alice) == [("direct", others[4].id), expected[0], *expected[1:]]


async def test_unread_counts_follow_messages_and_reads_at_once(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    async with AsyncExitStack() as stack:
        alice_chat, bob_chat = await connected(stack, node, alice, bob)
        ids = [
            (await bob_chat.send_direct(alice.id, f"m{n}", f"m{n}"))["message_id"] for n in range(3)
        ]
        assert await unread(http, alice, user_id=bob.id) == (3, None)
        assert await unread(http, bob, user_id=alice.id) == (0, None)  # own: never unread

        for left, message_id in zip((2, 1, 0), ids, strict=True):
            await alice_chat.send({"type": "read", "message_id": message_id})
            receipt = await event(bob_chat, "read_receipt", message_id)
            assert receipt["reader_id"] == alice.id
            assert await unread(http, alice, user_id=bob.id) == (left, message_id)
        assert await unread(http, bob, user_id=alice.id) == (0, None)

        await alice_chat.send_direct(bob.id, "your turn", "a")
        assert (await unread(http, bob, user_id=alice.id))[0] == 1
        assert (await unread(http, alice, user_id=bob.id))[0] == 0

        # A deleted message never counts.
        oops = await bob_chat.send_direct(alice.id, "oops", "oops")
        assert (await unread(http, alice, user_id=bob.id))[0] == 1
        deleted = await request(bob_chat, {"type": "delete", "message_id": oops["message_id"]}, "d")
        assert deleted["type"] == "message_deleted"
        await event(alice_chat, "message_deleted", oops["message_id"])
        assert (await unread(http, alice, user_id=bob.id))[0] == 0


async def test_group_unread_counts_follow_group_read_and_skip_own_and_deleted(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    group_id = await create_group(http, carol, "team", alice, bob)
    async with AsyncExitStack() as stack:
        alice_chat, bob_chat, carol_chat = await connected(stack, node, alice, bob, carol)
        c1 = (await carol_chat.send_group(group_id, "c1", "c1"))["message_id"]
        c2 = (await carol_chat.send_group(group_id, "c2", "c2"))["message_id"]
        b1 = (await bob_chat.send_group(group_id, "b1", "b1"))["message_id"]
        a1 = (await alice_chat.send_group(group_id, "a1", "a1"))["message_id"]
        assert c1 < c2 < b1 < a1
        assert await unread(http, alice, group_id=group_id) == (3, None)
        assert await unread(http, bob, group_id=group_id) == (3, None)
        assert await unread(http, carol, group_id=group_id) == (2, None)

        async def group_read(chat: ChatClient, reader: Account, message_id: int) -> int:
            await chat.send({"type": "group_read", "group_id": group_id, "message_id": message_id})
            told = await carol_chat.receive_where(
                lambda f: f["type"] == "group_read" and f["user_id"] == reader.id, timeout=10
            )
            return told["message_id"]

        assert await group_read(alice_chat, alice, c2) == c2
        assert await unread(http, alice, group_id=group_id) == (1, c2)  # b1; a1 is her own
        assert await group_read(alice_chat, alice, b1) == b1
        assert await unread(http, alice, group_id=group_id) == (0, b1)
        assert await group_read(alice_chat, alice, c1) == b1  # never backwards
        assert await unread(http, alice, group_id=group_id) == (0, b1)
        assert await unread(http, bob, group_id=group_id) == (3, None)

        # A deleted message never counts: Carol deletes c1, unread by Bob.
        frame = {"type": "delete", "group_id": group_id, "message_id": c1}
        assert (await request(carol_chat, frame, "del"))["type"] == "message_deleted"
        await event(bob_chat, "message_deleted", c1)
        assert await unread(http, bob, group_id=group_id) == (2, None)
        assert await unread(http, alice, group_id=group_id) == (0, b1)


async def test_the_limit_is_capped_at_200_and_defaults_to_50(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice = await make_user("alice")
    made = [await create_group(http, alice, f"g{n}") for n in range(201)]
    first = await conversations(http, alice)
    assert len(first["conversations"]) == 50 and first["next"] is not None
    for limit in (200, 201, 1000):
        capped = await conversations(http, alice, limit=limit)
        assert len(capped["conversations"]) == 200, limit
        assert capped["next"] is not None
    listed = await idents(http, alice)
    assert listed == [("group", group_id) for group_id in reversed(made)]


BAD_BEFORE = ["garbage", "1.x.2", "ff.d.0", "-1.d.1", "1.d", "z" * 65, "a\x00b", "%", "1.d.1.1"]


async def test_a_bad_before_is_422_with_a_detail(http: HubbubHTTP, make_user: UserMaker) -> None:
    alice = await make_user("alice")
    for before in BAD_BEFORE:
        response = await http.get("/conversations", alice.access_token, before=before)
        assert response.status_code == 422, (before, response.status_code, response.text)
        detail = response.json()["detail"]
        assert isinstance(detail, str) and detail, before


async def test_without_a_valid_token_it_is_401(http: HubbubHTTP, make_user: UserMaker) -> None:
    alice = await make_user("alice")
    assert (await http.get("/conversations")).status_code == 401
    assert (await http.get("/conversations", "not-a-token")).status_code == 401
    assert (await http.get("/conversations", alice.refresh_token)).status_code == 401
