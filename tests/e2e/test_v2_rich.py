"""v2 rich messages (docs/contract.md, "Rich messages"): replies, edits, deletes and
reactions, on direct and group messages, over real WebSockets and HTTP.

Every answer goes to every connection of every participant; the sending connection's copy
carries its client_id; history and ``GET /conversations`` show the change by the time any
participant receives it. Refusals change nothing (checked in history, and by a marker
message that arrives with no event before it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any

import attrs
import orjson
import pytest

from hubbub.client import Account, ChatClient, HubbubHTTP
from hubbub.node import Node
from tests.helpers.chat import Frame, attached, frames_until
from tests.helpers.images import encoded_image
from tests.helpers.stream import (
    V2_MESSAGE_FIELDS,
    by_id,
    conversation,
    create_group,
    direct_messages,
    event,
    group_history,
    position,
    request,
)
from tests.helpers.users import UserMaker

UNKNOWN = 10**9


@attrs.define
class Pair:
    """Alice and Bob, two devices each, and Carol, a stranger to their conversation."""

    alice: Account
    bob: Account
    carol: Account
    alice_phone: ChatClient
    alice_laptop: ChatClient
    bob_phone: ChatClient
    bob_laptop: ChatClient
    carol_chat: ChatClient

    def devices_of(self, account: Account) -> set[ChatClient]:
        if account == self.alice:
            return {self.alice_phone, self.alice_laptop}
        if account == self.bob:
            return {self.bob_phone, self.bob_laptop}
        return {self.carol_chat}

    @property
    def everyone(self) -> dict[str, ChatClient]:
        return {
            "alice's phone (the sender)": self.alice_phone,
            "alice's laptop": self.alice_laptop,
            "bob's phone": self.bob_phone,
            "bob's laptop": self.bob_laptop,
        }


@attrs.define
class Crew:
    """A group: Ada (its creator, the admin), Bo (two devices) and Cy; Out is not a member."""

    group_id: int
    ada: Account
    bo: Account
    cy: Account
    out: Account
    ada_chat: ChatClient
    bo_phone: ChatClient
    bo_laptop: ChatClient
    cy_chat: ChatClient
    out_chat: ChatClient

    def devices_of(self, account: Account) -> set[ChatClient]:
        chats = {
            self.ada.id: {self.ada_chat},
            self.bo.id: {self.bo_phone, self.bo_laptop},
            self.cy.id: {self.cy_chat},
        }
        return chats.get(account.id, {self.out_chat})

    @property
    def members(self) -> dict[str, ChatClient]:
        return {
            "ada": self.ada_chat,
            "bo's phone": self.bo_phone,
            "bo's laptop": self.bo_laptop,
            "cy": self.cy_chat,
        }


async def _open(stack: AsyncExitStack, node: Node, account: Account) -> ChatClient:
    chat = await stack.enter_async_context(ChatClient.connect(node.url, account.access_token))
    return await attached(chat)


@pytest.fixture
async def pair(node: Node, make_user: UserMaker) -> AsyncIterator[Pair]:
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    async with AsyncExitStack() as stack:
        chats = [await _open(stack, node, a) for a in (alice, alice, bob, bob, carol)]
        yield Pair(alice, bob, carol, *chats)


@pytest.fixture
async def crew(node: Node, http: HubbubHTTP, make_user: UserMaker) -> AsyncIterator[Crew]:
    ada, bo, cy, out = [await make_user(name) for name in ("ada", "bo", "cy", "out")]
    group_id = await create_group(http, ada, "crew", bo, cy)
    async with AsyncExitStack() as stack:
        chats = [await _open(stack, node, a) for a in (ada, bo, bo, cy, out)]
        yield Crew(group_id, ada, bo, cy, out, *chats)


def without_client_id(frame: Frame) -> Frame:
    return {name: value for name, value in frame.items() if name != "client_id"}


def when(text: str) -> datetime:
    stamp = datetime.fromisoformat(text)
    assert stamp.tzinfo is not None, f"{text!r} has no timezone"
    return stamp


def reactions(message: Frame) -> dict[str, list[int]]:
    """A message's reactions as {emoji: sorted user ids}; each emoji listed once."""
    emojis = [entry["emoji"] for entry in message["reactions"]]
    assert len(emojis) == len(set(emojis)), message["reactions"]
    return {entry["emoji"]: sorted(entry["user_ids"]) for entry in message["reactions"]}


async def everyone_gets(
    chats: dict[str, ChatClient],
    sender: ChatClient,
    answer: Frame,
    senders: set[ChatClient],
    *already: ChatClient,
) -> None:
    """Every connection in ``chats`` but ``sender`` and ``already`` (whose copies were read)
    gets ``answer``: the same event; the copies on the sending user's connections
    (``senders``) carry the request's client_id, the others' none."""
    assert "client_id" in answer, answer
    for name, chat in chats.items():
        if chat is sender or chat in already:
            continue
        copy = await event(chat, answer["type"], answer["message_id"])
        expected = answer if chat in senders else without_client_id(answer)
        assert copy == expected, name


async def nothing_came_before(chat: ChatClient, marker: str, *types: str) -> None:
    """Read ``chat`` up to the message (direct or group) with text ``marker``: none of
    ``types`` came before it."""
    seen = await frames_until(
        chat, lambda f: f["type"] in ("message", "group_message") and f.get("message") == marker
    )
    unexpected = [frame for frame in seen if frame["type"] in types]
    assert unexpected == [], unexpected


async def direct_marker(pair: Pair, text: str = "marker") -> None:
    """Alice sends ``text`` to Bob (read up to it with ``nothing_came_before``)."""
    assert (await pair.alice_phone.send_direct(pair.bob.id, text, f"marker-{text}"))[
        "type"
    ] == "ack"


# -- messages carry the v2 fields; reply_to ---------------------------------------------


async def test_live_frames_and_history_carry_the_v2_fields(pair: Pair, http: HubbubHTTP) -> None:
    ack = await pair.alice_phone.send_direct(pair.bob.id, "plain", "p1")
    for name, chat in pair.everyone.items():
        frame = await event(chat, "message", ack["message_id"])
        assert set(frame) >= V2_MESSAGE_FIELDS, name
        assert (frame["edited_at"], frame["deleted"], frame["reply_to"], frame["reactions"]) == (
            None,
            False,
            None,
            [],
        ), name
    stored = by_id(await direct_messages(http, pair.bob, pair.alice.id))[ack["message_id"]]
    assert (stored["edited_at"], stored["deleted"], stored["reply_to"], stored["reactions"]) == (
        None,
        False,
        None,
        [],
    )


async def test_a_direct_reply_names_its_message_everywhere(pair: Pair, http: HubbubHTTP) -> None:
    original = await pair.alice_phone.send_direct(pair.bob.id, "question?", "q")
    await pair.bob_phone.send(
        {
            "type": "message",
            "recipient_id": pair.alice.id,
            "message": "answer!",
            "reply_to": original["message_id"],
            "client_id": "a",
        }
    )
    ack = await pair.bob_phone.receive_answer("a")
    assert ack["type"] == "ack", ack
    for name, chat in pair.everyone.items():
        frame = await event(chat, "message", ack["message_id"])
        assert frame["reply_to"] == original["message_id"], name
    for viewer, other in ((pair.alice, pair.bob), (pair.bob, pair.alice)):
        stored = by_id(await direct_messages(http, viewer, other.id))[ack["message_id"]]
        assert stored["reply_to"] == original["message_id"]


async def test_a_group_reply_names_its_message_everywhere(crew: Crew, http: HubbubHTTP) -> None:
    original = await crew.ada_chat.send_group(crew.group_id, "who is in?", "q")
    reply = {
        "type": "group_message",
        "group_id": crew.group_id,
        "message": "me",
        "reply_to": original["message_id"],
    }
    ack = await crew.cy_chat.send_and_answer(reply, "r")
    assert ack["type"] == "ack", ack
    for name, chat in crew.members.items():
        frame = await event(chat, "group_message", ack["message_id"])
        assert frame["reply_to"] == original["message_id"], name
    stored = by_id(await group_history(http, crew.bo, crew.group_id))[ack["message_id"]]
    assert stored["reply_to"] == original["message_id"]


async def test_a_direct_reply_outside_the_conversation_is_refused(
    pair: Pair, crew: Crew, http: HubbubHTTP
) -> None:
    mine = await pair.alice_phone.send_direct(pair.bob.id, "ours", "ours")
    elsewhere = await pair.alice_phone.send_direct(pair.carol.id, "to carol", "elsewhere")
    in_group = await crew.ada_chat.send_group(crew.group_id, "group message", "g")
    ours = {m["message_id"] for m in await direct_messages(http, pair.alice, pair.bob.id)}
    assert mine["message_id"] in ours
    for n, target in enumerate((elsewhere["message_id"], in_group["message_id"], UNKNOWN)):
        if target in ours:
            continue  # a group id that happens to be one of this conversation's: not outside
        frame = {"type": "message", "recipient_id": pair.alice.id, "message": "re"}
        refused = await pair.bob_phone.send_and_answer({**frame, "reply_to": target}, f"bad-{n}")
        assert refused == {"type": "error", "reason": "invalid reply_to", "client_id": f"bad-{n}"}
    history = await direct_messages(http, pair.alice, pair.bob.id)
    assert [m["message"] for m in history] == ["ours"]


async def test_a_group_reply_outside_the_group_is_refused(
    crew: Crew, node: Node, http: HubbubHTTP
) -> None:
    other_group = await create_group(http, crew.ada, "other", crew.bo)
    await crew.ada_chat.send_group(crew.group_id, "here", "here")
    there = await crew.ada_chat.send_group(other_group, "there", "there")
    direct = await crew.ada_chat.send_direct(crew.bo.id, "direct", "direct")
    ours = {m["message_id"] for m in await group_history(http, crew.ada, crew.group_id)}
    for n, target in enumerate((there["message_id"], direct["message_id"], UNKNOWN)):
        if target in ours:
            continue  # a direct id that happens to be one of this group's: not outside
        frame = {"type": "group_message", "group_id": crew.group_id, "message": "re"}
        refused = await crew.bo_phone.send_and_answer({**frame, "reply_to": target}, f"bad-{n}")
        assert refused == {"type": "error", "reason": "invalid reply_to", "client_id": f"bad-{n}"}
    history = await group_history(http, crew.ada, crew.group_id)
    assert [m["message"] for m in history] == ["here"]


# -- edit ------------------------------------------------------------------------------


async def test_a_direct_edit_reaches_every_connection_and_history_shows_it(
    pair: Pair, http: HubbubHTTP
) -> None:
    ack = await pair.alice_phone.send_direct(pair.bob.id, "first draft", "m")
    message_id = ack["message_id"]
    before = by_id(await direct_messages(http, pair.alice, pair.bob.id))[message_id]
    edit = {"type": "edit", "message_id": message_id, "message": "final text"}
    edited = await request(pair.alice_phone, edit, "e")
    assert edited == {
        "type": "message_edited",
        "message_id": message_id,
        "author_id": pair.alice.id,
        "message": "final text",
        "edited_at": edited["edited_at"],
        "cursor": edited["cursor"],
        "client_id": "e",
    }
    position(edited["cursor"])
    assert when(edited["edited_at"]) >= when(before["timestamp"])

    # By the time Bob has it, history and the conversation list show it.
    copy = await event(pair.bob_phone, "message_edited", message_id)
    assert copy == without_client_id(edited)
    for viewer, other in ((pair.bob, pair.alice), (pair.alice, pair.bob)):
        stored = by_id(await direct_messages(http, viewer, other.id))[message_id]
        assert stored["message"] == "final text"
        assert when(stored["edited_at"]) == when(edited["edited_at"])
        assert (stored["author_id"], stored["timestamp"]) == (pair.alice.id, before["timestamp"])
        item = await conversation(http, viewer, user_id=other.id)
        assert item is not None
        assert item["last_message"]["message"] == "final text"
        assert item["last_message"]["edited_at"] is not None
    await everyone_gets(
        pair.everyone, pair.alice_phone, edited, pair.devices_of(pair.alice), pair.bob_phone
    )


async def test_a_group_edit_reaches_every_member_and_history_shows_it(
    crew: Crew, http: HubbubHTTP
) -> None:
    ack = await crew.bo_phone.send_group(crew.group_id, "typo hree", "m")
    message_id = ack["message_id"]
    edit = {"type": "edit", "group_id": crew.group_id, "message_id": message_id, "message": "here"}
    edited = await request(crew.bo_phone, edit, "e")
    assert edited == {
        "type": "message_edited",
        "message_id": message_id,
        "group_id": crew.group_id,
        "author_id": crew.bo.id,
        "message": "here",
        "edited_at": edited["edited_at"],
        "cursor": edited["cursor"],
        "client_id": "e",
    }
    await event(crew.cy_chat, "message_edited", message_id)
    stored = by_id(await group_history(http, crew.cy, crew.group_id))[message_id]
    assert (stored["message"], when(stored["edited_at"])) == ("here", when(edited["edited_at"]))
    item = await conversation(http, crew.cy, group_id=crew.group_id)
    assert item is not None and item["last_message"]["message"] == "here"
    await everyone_gets(crew.members, crew.bo_phone, edited, crew.devices_of(crew.bo), crew.cy_chat)


async def test_only_the_author_may_edit_and_that_is_checked_before_the_text_rules(
    pair: Pair, http: HubbubHTTP
) -> None:
    ack = await pair.alice_phone.send_direct(pair.bob.id, "mine", "m")
    message_id = ack["message_id"]
    cases: list[tuple[ChatClient, Any, str]] = [
        (pair.bob_phone, "hijacked", "not allowed"),
        (pair.bob_phone, "", "not allowed"),
        (pair.bob_phone, "x" * 5000, "not allowed"),
        (pair.carol_chat, "", "not allowed"),
        (pair.carol_chat, "   ", "not allowed"),
        (pair.carol_chat, "stranger", "not allowed"),
        (pair.alice_phone, "", "empty message"),
        (pair.alice_phone, " \t\n ", "empty message"),
        (pair.alice_phone, "x" * 4001, "message too long"),
    ]
    for n, (chat, text, reason) in enumerate(cases):
        edit = {"type": "edit", "message_id": message_id, "message": text}
        refused = await request(chat, edit, f"e{n}")
        assert refused == {"type": "error", "reason": reason, "client_id": f"e{n}"}, (n, text[:9])
    unknown = await request(
        pair.alice_phone, {"type": "edit", "message_id": UNKNOWN, "message": "x"}, "u"
    )
    assert unknown["reason"] == "not allowed"
    # A direct message named as a group one is not that group's.
    group_id = await create_group(http, pair.alice, "solo")
    wrong = {"type": "edit", "group_id": group_id, "message_id": message_id, "message": "x"}
    assert (await request(pair.alice_phone, wrong, "w"))["reason"] == "not allowed"

    await direct_marker(pair)
    await nothing_came_before(pair.bob_phone, "marker", "message_edited")
    stored = by_id(await direct_messages(http, pair.bob, pair.alice.id))[message_id]
    assert (stored["message"], stored["edited_at"]) == ("mine", None)


async def test_in_a_group_only_the_author_may_edit_not_even_the_admin(
    crew: Crew, http: HubbubHTTP
) -> None:
    ack = await crew.cy_chat.send_group(crew.group_id, "cy's words", "m")
    for n, chat in enumerate((crew.ada_chat, crew.bo_phone, crew.out_chat)):
        edit = {
            "type": "edit",
            "group_id": crew.group_id,
            "message_id": ack["message_id"],
            "message": "",
        }
        refused = await request(chat, edit, f"e{n}")
        assert refused == {"type": "error", "reason": "not allowed", "client_id": f"e{n}"}
    stored = by_id(await group_history(http, crew.ada, crew.group_id))[ack["message_id"]]
    assert (stored["message"], stored["edited_at"]) == ("cy's words", None)


# -- delete ----------------------------------------------------------------------------


async def test_a_direct_delete_by_the_author_leaves_a_tombstone(
    pair: Pair, http: HubbubHTTP
) -> None:
    uploaded = await http.post(
        "/upload/image",
        pair.alice.access_token,
        files={"file": ("regrettable.png", encoded_image("PNG"), "image/png")},
    )
    assert uploaded.status_code == 200, uploaded.text
    image_url = uploaded.json()["url"]
    frame = {
        "type": "message",
        "recipient_id": pair.bob.id,
        "message": "regrettable",
        "image_url": image_url,
    }
    ack = await pair.alice_phone.send_and_answer(frame, "m")
    assert ack["type"] == "ack", ack
    message_id = ack["message_id"]
    before = by_id(await direct_messages(http, pair.alice, pair.bob.id))[message_id]
    assert before["image_url"] == image_url
    deleted = await request(pair.alice_phone, {"type": "delete", "message_id": message_id}, "d")
    assert deleted == {
        "type": "message_deleted",
        "message_id": message_id,
        "deleted_by": pair.alice.id,
        "cursor": deleted["cursor"],
        "client_id": "d",
    }
    position(deleted["cursor"])
    await event(pair.bob_phone, "message_deleted", message_id)
    for viewer, other in ((pair.bob, pair.alice), (pair.alice, pair.bob)):
        history = await direct_messages(http, viewer, other.id)
        tombstone = by_id(history)[message_id]
        assert tombstone["message"] is None and tombstone["image_url"] is None
        assert tombstone["deleted"] is True
        assert (tombstone["author_id"], tombstone["recipient_id"], tombstone["timestamp"]) == (
            before["author_id"],
            before["recipient_id"],
            before["timestamp"],
        )
        listed = await conversation(http, viewer, user_id=other.id)
        assert listed is not None
        assert b"regrettable" not in orjson.dumps(listed), listed
        assert image_url.encode() not in orjson.dumps(listed), listed
    await everyone_gets(
        pair.everyone, pair.alice_phone, deleted, pair.devices_of(pair.alice), pair.bob_phone
    )


async def test_a_deleted_message_can_be_neither_edited_reacted_to_nor_deleted_again(
    pair: Pair, http: HubbubHTTP
) -> None:
    ack = await pair.alice_phone.send_direct(pair.bob.id, "gone soon", "m")
    message_id = ack["message_id"]
    assert (await request(pair.alice_phone, {"type": "delete", "message_id": message_id}, "d"))[
        "type"
    ] == "message_deleted"
    attempts: list[tuple[ChatClient, Frame]] = [
        (pair.alice_phone, {"type": "edit", "message_id": message_id, "message": "revived"}),
        (pair.alice_phone, {"type": "delete", "message_id": message_id}),
        (pair.bob_phone, {"type": "react", "message_id": message_id, "emoji": "👍"}),
        (pair.alice_phone, {"type": "react", "message_id": message_id, "emoji": "👍"}),
    ]
    for n, (chat, frame) in enumerate(attempts):
        refused = await request(chat, frame, f"x{n}")
        assert refused == {"type": "error", "reason": "not allowed", "client_id": f"x{n}"}, frame
    await direct_marker(pair)
    await nothing_came_before(pair.bob_laptop, "marker", "message_edited", "reaction")
    tombstone = by_id(await direct_messages(http, pair.bob, pair.alice.id))[message_id]
    assert (tombstone["message"], tombstone["deleted"], tombstone["reactions"]) == (None, True, [])


async def test_only_the_author_may_delete_a_direct_message(pair: Pair, http: HubbubHTTP) -> None:
    ack = await pair.alice_phone.send_direct(pair.bob.id, "stays", "m")
    for n, chat in enumerate((pair.bob_phone, pair.carol_chat)):
        refused = await request(chat, {"type": "delete", "message_id": ack["message_id"]}, f"d{n}")
        assert refused == {"type": "error", "reason": "not allowed", "client_id": f"d{n}"}
    unknown = await request(pair.alice_phone, {"type": "delete", "message_id": UNKNOWN}, "u")
    assert unknown["reason"] == "not allowed"
    await direct_marker(pair)
    await nothing_came_before(pair.bob_phone, "marker", "message_deleted")
    stored = by_id(await direct_messages(http, pair.bob, pair.alice.id))[ack["message_id"]]
    assert (stored["message"], stored["deleted"]) == ("stays", False)


async def test_a_group_message_is_deleted_by_its_author_or_an_admin_only(
    crew: Crew, http: HubbubHTTP
) -> None:
    by_cy = await crew.cy_chat.send_group(crew.group_id, "cy says", "c")
    by_bo = await crew.bo_phone.send_group(crew.group_id, "bo says", "b")
    history_before = by_id(await group_history(http, crew.ada, crew.group_id))

    # Neither another member (not an admin) nor an outsider may.
    for n, chat in enumerate((crew.bo_phone, crew.out_chat)):
        frame = {"type": "delete", "group_id": crew.group_id, "message_id": by_cy["message_id"]}
        refused = await request(chat, frame, f"no{n}")
        assert refused == {"type": "error", "reason": "not allowed", "client_id": f"no{n}"}

    # The admin deletes someone else's message.
    frame = {"type": "delete", "group_id": crew.group_id, "message_id": by_cy["message_id"]}
    by_admin = await request(crew.ada_chat, frame, "admin")
    assert by_admin == {
        "type": "message_deleted",
        "message_id": by_cy["message_id"],
        "group_id": crew.group_id,
        "deleted_by": crew.ada.id,
        "cursor": by_admin["cursor"],
        "client_id": "admin",
    }
    await everyone_gets(crew.members, crew.ada_chat, by_admin, crew.devices_of(crew.ada))

    # A member who is not an admin deletes their own.
    frame = {"type": "delete", "group_id": crew.group_id, "message_id": by_bo["message_id"]}
    own = await request(crew.bo_laptop, frame, "own")
    assert (own["type"], own["deleted_by"]) == ("message_deleted", crew.bo.id)
    await everyone_gets(crew.members, crew.bo_laptop, own, crew.devices_of(crew.bo))

    history = by_id(await group_history(http, crew.cy, crew.group_id))
    for message_id in (by_cy["message_id"], by_bo["message_id"]):
        tombstone, before = history[message_id], history_before[message_id]
        assert (tombstone["message"], tombstone["image_url"], tombstone["deleted"]) == (
            None,
            None,
            True,
        )
        assert (tombstone["author_id"], tombstone["timestamp"]) == (
            before["author_id"],
            before["timestamp"],
        )
    listed = await conversation(http, crew.cy, group_id=crew.group_id)
    assert listed is not None
    assert b"cy says" not in orjson.dumps(listed) and b"bo says" not in orjson.dumps(listed)


async def test_a_deleted_message_is_never_sent_again_in_catch_up_or_last_message(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice, bob, cy = await make_user("alice"), await make_user("bob"), await make_user("cy")
    group_id = await create_group(http, alice, "quiet", bob, cy)
    async with ChatClient.connect(node.url, alice.access_token) as alice_chat:
        await attached(alice_chat)
        direct = await alice_chat.send_direct(bob.id, "direct secret", "d")
        grouped = await alice_chat.send_group(group_id, "group secret", "g")
        assert direct["status"] == "pending"
        for message_id, group in ((direct["message_id"], None), (grouped["message_id"], group_id)):
            frame: Frame = {"type": "delete", "message_id": message_id}
            if group is not None:
                frame["group_id"] = group
            assert (await request(alice_chat, frame, f"del-{message_id}"))[
                "type"
            ] == "message_deleted"

    async with ChatClient.connect(node.url, bob.access_token) as bob_chat:
        await bob_chat.send({"type": "ping"})
        caught_up = await frames_until(bob_chat, lambda f: f["type"] == "pong")
    for frame in caught_up:
        assert b"secret" not in orjson.dumps(frame), frame
        if frame["type"] in ("message", "group_message"):
            assert frame["deleted"] is True and frame["message"] is None, frame
    for viewer in (bob, alice, cy):
        listed = await http.get("/conversations", viewer.access_token)
        assert listed.status_code == 200, listed.text
        assert "secret" not in listed.text, viewer.username


# -- react -----------------------------------------------------------------------------


async def test_reactions_are_a_set_and_every_react_is_answered(
    pair: Pair, http: HubbubHTTP
) -> None:
    ack = await pair.alice_phone.send_direct(pair.bob.id, "react to me", "m")
    message_id = ack["message_id"]

    async def react(chat: ChatClient, user: Account, emoji: str, op: str | None, cid: str) -> None:
        frame: Frame = {"type": "react", "message_id": message_id, "emoji": emoji}
        if op is not None:
            frame["op"] = op
        answered = await request(chat, frame, cid)
        assert answered == {
            "type": "reaction",
            "message_id": message_id,
            "user_id": user.id,
            "emoji": emoji,
            "op": op or "add",
            "cursor": answered["cursor"],
            "client_id": cid,
        }
        position(answered["cursor"])
        await everyone_gets(pair.everyone, chat, answered, pair.devices_of(user))

    async def shown() -> dict[str, list[int]]:
        stored = by_id(await direct_messages(http, pair.alice, pair.bob.id))[message_id]
        listed = await conversation(http, pair.bob, user_id=pair.alice.id)
        assert listed is not None and listed["last_message"]["message_id"] == message_id
        assert reactions(listed["last_message"]) == reactions(stored)
        return reactions(stored)

    await react(pair.bob_phone, pair.bob, "👍", None, "r1")
    assert await shown() == {"👍": [pair.bob.id]}
    await react(pair.bob_phone, pair.bob, "👍", "add", "r2")  # twice: still one
    assert await shown() == {"👍": [pair.bob.id]}
    await react(pair.alice_phone, pair.alice, "👍", "add", "r3")
    await react(pair.alice_laptop, pair.alice, "🎉", "add", "r4")
    assert await shown() == {"👍": sorted([pair.alice.id, pair.bob.id]), "🎉": [pair.alice.id]}
    await react(pair.bob_phone, pair.bob, "👍", "remove", "r5")
    assert await shown() == {"👍": [pair.alice.id], "🎉": [pair.alice.id]}
    await react(pair.alice_phone, pair.alice, "👍", "remove", "r6")
    await react(pair.alice_phone, pair.alice, "🎉", "remove", "r7")
    assert await shown() == {}


async def test_group_members_react_and_outsiders_may_not(crew: Crew, http: HubbubHTTP) -> None:
    ack = await crew.ada_chat.send_group(crew.group_id, "vote", "m")
    frame = {"type": "react", "group_id": crew.group_id, "message_id": ack["message_id"]}
    answered = await request(crew.cy_chat, {**frame, "emoji": "🗳️"}, "cy")
    assert answered == {
        "type": "reaction",
        "message_id": ack["message_id"],
        "group_id": crew.group_id,
        "user_id": crew.cy.id,
        "emoji": "🗳️",
        "op": "add",
        "cursor": answered["cursor"],
        "client_id": "cy",
    }
    await everyone_gets(crew.members, crew.cy_chat, answered, crew.devices_of(crew.cy))
    refused = await request(crew.out_chat, {**frame, "emoji": "👎"}, "out")
    assert refused == {"type": "error", "reason": "not allowed", "client_id": "out"}
    other_group = await create_group(http, crew.ada, "elsewhere", crew.bo)
    wrong_group = {**frame, "group_id": other_group, "emoji": "x"}
    assert (await request(crew.bo_phone, wrong_group, "wrong"))["reason"] == "not allowed"
    stored = by_id(await group_history(http, crew.bo, crew.group_id))[ack["message_id"]]
    assert reactions(stored) == {"🗳️": [crew.cy.id]}


async def test_a_stranger_may_not_react_to_a_direct_message(pair: Pair, http: HubbubHTTP) -> None:
    ack = await pair.alice_phone.send_direct(pair.bob.id, "private", "m")
    frame = {"type": "react", "message_id": ack["message_id"], "emoji": "👀"}
    assert await request(pair.carol_chat, frame, "c") == {
        "type": "error",
        "reason": "not allowed",
        "client_id": "c",
    }
    unknown = await request(pair.bob_phone, {**frame, "message_id": UNKNOWN}, "u")
    assert unknown["reason"] == "not allowed"
    await direct_marker(pair)
    await nothing_came_before(pair.bob_phone, "marker", "reaction")
    stored = by_id(await direct_messages(http, pair.bob, pair.alice.id))[ack["message_id"]]
    assert stored["reactions"] == []


BAD_EMOJI = {
    "empty": "",
    "33-chars": "x" * 33,
    "33-emoji": "🙂" * 33,
    "space": " ",
    "inner-space": "a b",
    "tab": "\t",
    "newline": "👍\n",
    "nbsp": "\u00a0",
    "ideographic-space": "\u3000ok",
}


async def test_a_bad_emoji_is_an_invalid_reaction(pair: Pair, http: HubbubHTTP) -> None:
    for name, emoji in BAD_EMOJI.items():
        ack = await pair.alice_phone.send_direct(pair.bob.id, "react", f"m-{name}")
        frame = {"type": "react", "message_id": ack["message_id"], "emoji": emoji}
        assert await request(pair.bob_phone, frame, f"bad-{name}") == {
            "type": "error",
            "reason": "invalid reaction",
            "client_id": f"bad-{name}",
        }, name
        # The longest allowed is 32 characters.
        fine = await request(pair.bob_phone, {**frame, "emoji": "x" * 32}, f"fine-{name}")
        assert fine["type"] == "reaction", (name, fine)
        stored = by_id(await direct_messages(http, pair.bob, pair.alice.id))[ack["message_id"]]
        assert reactions(stored) == {"x" * 32: [pair.bob.id]}, name
