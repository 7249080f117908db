"""Block and mute (docs/integrations.md): the endpoints and their refusals, what a block
refuses and hides, and what a mute shows in ``GET /conversations``, on every backend.

That a frame did not arrive is shown by ``drain`` (the frames queued before the answer to
a new ping): on one node a presence announcement and a typing relay are pushed to the
receivers' queues before the sender's next frame is read, so once the sender's own ping is
answered (``attached``), anything not filtered is ahead of the receiver's pong.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import httpx
import pytest

from hubbub.client import Account, ChatClient, HubbubHTTP
from hubbub.node import Node
from tests.helpers.chat import Frame, attached, drain
from tests.helpers.stream import create_group, event
from tests.helpers.users import UserMaker

UNKNOWN = 10**9


async def call(
    http: HubbubHTTP, method: str, path: str, token: str | None, body: Any = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await http.http.request(method, path, headers=headers, json=body)


async def block(http: HubbubHTTP, who: Account, whom: Account) -> None:
    response = await call(http, "POST", f"/users/{whom.id}/block", who.access_token)
    assert response.status_code == 204, response.text


async def unblock(http: HubbubHTTP, who: Account, whom: Account) -> None:
    response = await call(http, "DELETE", f"/users/{whom.id}/block", who.access_token)
    assert response.status_code == 204, response.text


def of_type(frames: list[Frame], frame_type: str) -> list[Frame]:
    return [frame for frame in frames if frame["type"] == frame_type]


async def conversation(http: HubbubHTTP, account: Account, **key: int) -> dict[str, Any]:
    """The entry of ``account``'s conversation list with ``user_id`` or ``group_id``."""
    page = await http.conversations(account.access_token)
    [kind] = key
    found = [c for c in page["conversations"] if c.get(kind) == key[kind]]
    assert len(found) == 1, page
    return found[0]


# -- the block endpoints ----------------------------------------------------------------


async def test_block_list_and_unblock(http: HubbubHTTP, make_user: UserMaker) -> None:
    ann, bob, cid = [await make_user(n) for n in ("ann", "bob", "cid")]
    await block(http, ann, cid)
    await block(http, ann, bob)
    await block(http, ann, bob)  # twice: still one block, still 204
    listed = await call(http, "GET", "/users/blocked", ann.access_token)
    assert listed.status_code == 200
    assert listed.json() == [
        {"user_id": bob.id, "username": bob.username},
        {"user_id": cid.id, "username": cid.username},
    ]
    # Blocks are the blocker's: Bob blocks no one.
    assert (await call(http, "GET", "/users/blocked", bob.access_token)).json() == []

    await unblock(http, ann, bob)
    await unblock(http, ann, bob)  # nothing left to lift: still 204
    listed = await call(http, "GET", "/users/blocked", ann.access_token)
    assert listed.json() == [{"user_id": cid.id, "username": cid.username}]


async def test_block_refusals(http: HubbubHTTP, make_user: UserMaker) -> None:
    ann, bob = await make_user("ann"), await make_user("bob")
    for method in ("POST", "DELETE"):
        response = await call(http, method, f"/users/{ann.id}/block", ann.access_token)
        assert response.status_code == 422
        assert response.json() == {"detail": "you cannot block or unblock yourself"}
        response = await call(http, method, f"/users/{UNKNOWN}/block", ann.access_token)
        assert response.status_code == 404
        assert response.json() == {"detail": "no such user"}
        for token in (None, "not-a-token", ann.refresh_token):
            response = await call(http, method, f"/users/{bob.id}/block", token)
            assert response.status_code == 401
            assert "detail" in response.json()
    response = await call(http, "GET", "/users/blocked", None)
    assert response.status_code == 401
    # Nothing refused was recorded.
    assert (await call(http, "GET", "/users/blocked", ann.access_token)).json() == []


# -- what a block refuses ---------------------------------------------------------------


async def test_a_blocked_users_direct_messages_are_refused_until_unblocked(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    ann, bob = await make_user("ann"), await make_user("bob")
    async with (
        ChatClient.connect(node.url, ann.access_token) as ann_chat,
        ChatClient.connect(node.url, bob.access_token) as bob_chat,
    ):
        await attached(ann_chat)
        before = await bob_chat.send_direct(ann.id, "hello", "b1")
        assert before["type"] == "ack"
        await event(ann_chat, "message", before["message_id"])

        await block(http, ann, bob)
        refused = await bob_chat.send_direct(ann.id, "are you there?", "b2")
        assert refused == {"type": "error", "reason": "not allowed", "client_id": "b2"}
        refused = await bob_chat.send_direct(ann.id, "a reply", "b3", reply_to=before["message_id"])
        assert refused == {"type": "error", "reason": "not allowed", "client_id": "b3"}
        # The blocker received nothing, and nothing was stored.
        assert of_type(await drain(ann_chat), "message") == []
        history = (await http.get(f"/messages/{bob.id}", ann.access_token)).json()
        assert [m["message_id"] for m in history] == [before["message_id"]]
        # The blocker may still write to the blocked user.
        sent = await ann_chat.send_direct(bob.id, "please stop", "a1")
        assert sent["type"] == "ack"
        assert (await event(bob_chat, "message", sent["message_id"]))["message"] == "please stop"
        # Someone else is not affected.
        assert (await bob_chat.send_direct(bob.id, "note to self", "b4"))["type"] == "ack"

        await unblock(http, ann, bob)
        after = await bob_chat.send_direct(ann.id, "sorry", "b5")
        assert after["type"] == "ack"
        assert (await event(ann_chat, "message", after["message_id"]))["message"] == "sorry"


async def test_a_blocked_user_may_not_edit_or_react_in_the_conversation(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    ann, bob = await make_user("ann"), await make_user("bob")
    async with (
        ChatClient.connect(node.url, ann.access_token) as ann_chat,
        ChatClient.connect(node.url, bob.access_token) as bob_chat,
    ):
        first = await bob_chat.send_direct(ann.id, "one", "b1")
        second = await bob_chat.send_direct(ann.id, "two", "b2")
        hers = await ann_chat.send_direct(bob.id, "three", "a1")
        await block(http, ann, bob)

        refused = await bob_chat.edit(first["message_id"], "changed", "e1")
        assert refused == {"type": "error", "reason": "not allowed", "client_id": "e1"}
        refused = await bob_chat.react(hers["message_id"], "👍", "r1")
        assert refused == {"type": "error", "reason": "not allowed", "client_id": "r1"}
        # Taking back one's words stays allowed; the blocker may react.
        deleted = await bob_chat.delete(second["message_id"], "d1")
        assert deleted["type"] == "message_deleted"
        reacted = await ann_chat.react(first["message_id"], "👎", "r2")
        assert reacted["type"] == "reaction"
        frames = await drain(ann_chat)
        assert of_type(frames, "message_edited") == []
        # (Ann's own reaction was her answer above: none of Bob's came.)
        assert of_type(frames, "reaction") == []
        history = (await http.get(f"/messages/{bob.id}", ann.access_token)).json()
        assert history[0]["message"] == "one" and history[0]["edited_at"] is None


# -- what a block hides -----------------------------------------------------------------


async def test_presence_does_not_pass_either_way(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    ann, bob, cid = [await make_user(n) for n in ("ann", "bob", "cid")]
    async with ChatClient.connect(node.url, bob.access_token) as bob_chat:
        # Ann and Bob have a conversation, Cid and Bob too: each hears of the other.
        await bob_chat.send_direct(ann.id, "hi ann", "b1")
        await bob_chat.send_direct(cid.id, "hi cid", "b2")
    await block(http, ann, bob)

    async with AsyncExitStack() as stack:
        ann_chat = await attached(
            await stack.enter_async_context(ChatClient.connect(node.url, ann.access_token))
        )
        cid_chat = await attached(
            await stack.enter_async_context(ChatClient.connect(node.url, cid.access_token))
        )
        async with ChatClient.connect(node.url, bob.access_token) as bob_chat:
            await attached(bob_chat)  # online announced by now
            # Cid hears that Bob is online; Ann (the blocker) does not.
            online = await event(cid_chat, "presence")
            assert (online["user_id"], online["presence_status"]) == (bob.id, "online")
            assert of_type(await drain(ann_chat), "presence") == []
            # Bob connected after Ann, so he was never told of her either (she came
            # online before him); asked, he and Ann see each other offline, with no
            # last seen, while Cid sees both online.
            await bob_chat.send({"type": "presence", "user_ids": [ann.id, cid.id]})
            answers = {}
            for _ in range(2):
                answer = await event(bob_chat, "presence")
                answers[answer["user_id"]] = answer
            assert answers[ann.id] == {
                "type": "presence",
                "user_id": ann.id,
                "username": ann.username,
                "presence_status": "offline",
                "last_seen_iso": None,
            }
            assert answers[cid.id]["presence_status"] == "online"
            for viewer, other in ((bob, ann), (ann, bob)):
                seen = (await http.get(f"/users/presence/{other.id}", viewer.access_token)).json()
                assert (seen["presence_status"], seen["last_seen"]) == ("offline", None)
                online_ids = (await http.get("/users/online", viewer.access_token)).json()
                assert other.id not in online_ids["online"]
            cid_view = (await http.get("/users/online", cid.access_token)).json()["online"]
            assert {ann.id, bob.id} <= set(cid_view)
        # Bob leaves: Cid is told, Ann is not.
        offline = await event(cid_chat, "presence")
        assert (offline["user_id"], offline["presence_status"]) == (bob.id, "offline")
        assert of_type(await drain(ann_chat), "presence") == []

    # The other way: Bob (and Cid, who now writes to Ann too) online first, then Ann
    # comes and goes. Cid is told each time, which is when Bob would have been.
    async with (
        ChatClient.connect(node.url, cid.access_token) as cid_chat,
        ChatClient.connect(node.url, bob.access_token) as bob_chat,
    ):
        await cid_chat.send_direct(ann.id, "hi ann", "c1")
        await attached(bob_chat)
        async with ChatClient.connect(node.url, ann.access_token) as ann_chat:
            await attached(ann_chat)
            await presence_event(cid_chat, ann, "online")
            assert ann.id not in presence_from(await drain(bob_chat))
        await presence_event(cid_chat, ann, "offline")
        assert ann.id not in presence_from(await drain(bob_chat))
        # Unblocked, presence passes again.
        await unblock(http, ann, bob)
        async with ChatClient.connect(node.url, ann.access_token) as ann_chat:
            await attached(ann_chat)
            await presence_event(bob_chat, ann, "online")


async def presence_event(chat: ChatClient, user: Account, status: str) -> Frame:
    return await chat.receive_where(
        lambda f: (
            f["type"] == "presence" and f["user_id"] == user.id and f["presence_status"] == status
        ),
        timeout=10,
    )


def presence_from(frames: list[Frame]) -> list[int]:
    return [frame["user_id"] for frame in of_type(frames, "presence")]


@attrs.define
class Trio:
    """Ann blocks Bob; all three are in one group."""

    group_id: int
    ann: Account
    bob: Account
    cid: Account
    ann_chat: ChatClient
    bob_chat: ChatClient
    cid_chat: ChatClient


@pytest.fixture
async def trio_room(node: Node, http: HubbubHTTP, make_user: UserMaker) -> AsyncIterator[Trio]:
    ann, bob, cid = [await make_user(n) for n in ("ann", "bob", "cid")]
    group_id = await create_group(http, ann, "room", bob, cid)
    await block(http, ann, bob)
    async with AsyncExitStack() as stack:
        chats = []
        for account in (ann, bob, cid):
            chat = await stack.enter_async_context(
                ChatClient.connect(node.url, account.access_token)
            )
            chats.append(await attached(chat))
        yield Trio(group_id, ann, bob, cid, *chats)


async def test_typing_does_not_pass_either_way_direct_or_in_a_group(trio_room: Trio) -> None:
    room = trio_room
    pairs = ((room.ann_chat, room.bob_chat, room.bob), (room.bob_chat, room.ann_chat, room.ann))
    for typer_chat, other_chat, other in pairs:
        await typer_chat.typing(recipient_id=other.id)
        await typer_chat.typing(group_id=room.group_id)
        await attached(typer_chat)  # both relayed (or dropped) by now
        assert of_type(await drain(other_chat), "typing") == []
    # Cid, blocked by no one, gets both group typings (the test can see typing at all).
    typers = [(await event(room.cid_chat, "typing"))["user_id"] for _ in range(2)]
    assert sorted(typers) == sorted([room.ann.id, room.bob.id])
    # Cid's typing reaches both of them.
    await room.cid_chat.typing(group_id=room.group_id)
    for chat in (room.ann_chat, room.bob_chat):
        assert (await event(chat, "typing"))["user_id"] == room.cid.id


async def test_group_messages_still_flow_between_them(trio_room: Trio) -> None:
    room = trio_room
    pairs = (("g1", room.bob_chat, room.ann_chat), ("g2", room.ann_chat, room.bob_chat))
    for client_id, sender, receiver in pairs:
        ack = await sender.send_group(room.group_id, "to the room", client_id)
        assert ack["type"] == "ack"
        got = await event(receiver, "group_message", ack["message_id"])
        assert got["message"] == "to the room"


# -- mute -------------------------------------------------------------------------------


async def test_mute_shows_in_the_conversation_list_until_unmuted(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    ann, bob = await make_user("ann"), await make_user("bob")
    group_id = await create_group(http, ann, "room", bob)
    later = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)

    # A direct conversation may be muted before its first message, until unmuted.
    muted = await call(http, "POST", "/conversations/mute", ann.access_token,
                       {"kind": "direct", "user_id": bob.id})  # fmt: skip
    assert muted.status_code == 204
    body = {"kind": "group", "group_id": group_id, "until": later.isoformat()}
    assert (
        await call(http, "POST", "/conversations/mute", ann.access_token, body)
    ).status_code == 204
    async with ChatClient.connect(node.url, bob.access_token) as bob_chat:
        await bob_chat.send_direct(ann.id, "hi", "b1")

    direct = await conversation(http, ann, user_id=bob.id)
    assert (direct["muted"], direct["muted_until"]) == (True, None)
    group = await conversation(http, ann, group_id=group_id)
    assert group["muted"] is True
    assert datetime.fromisoformat(group["muted_until"]) == later
    # Mutes are the muter's: Bob sees neither conversation muted.
    for key in ({"user_id": ann.id}, {"group_id": group_id}):
        entry = await conversation(http, bob, **key)
        assert (entry["muted"], entry["muted_until"]) == (False, None)

    # Muting again replaces the end ("Z" is accepted for UTC).
    body = {"kind": "direct", "user_id": bob.id, "until": "2999-01-01T00:00:00Z"}
    assert (
        await call(http, "POST", "/conversations/mute", ann.access_token, body)
    ).status_code == 204
    direct = await conversation(http, ann, user_id=bob.id)
    assert datetime.fromisoformat(direct["muted_until"]) == datetime(2999, 1, 1, tzinfo=UTC)

    for body in ({"kind": "direct", "user_id": bob.id}, {"kind": "group", "group_id": group_id}):
        response = await call(http, "DELETE", "/conversations/mute", ann.access_token, body)
        assert response.status_code == 204
    for key in ({"user_id": bob.id}, {"group_id": group_id}):
        entry = await conversation(http, ann, **key)
        assert (entry["muted"], entry["muted_until"]) == (False, None)
    # Unmuting what is not muted is no error.
    body = {"kind": "direct", "user_id": bob.id}
    assert (
        await call(http, "DELETE", "/conversations/mute", ann.access_token, body)
    ).status_code == 204


async def test_an_expired_mute_shows_as_not_muted(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    ann, bob = await make_user("ann"), await make_user("bob")
    async with ChatClient.connect(node.url, bob.access_token) as bob_chat:
        await bob_chat.send_direct(ann.id, "hi", "b1")
    # The API refuses an end in the past; a mute whose end has passed is one made earlier,
    # written here straight to storage rather than waiting for it to pass.
    await node.storage.mute(ann.id, "direct", bob.id, datetime.now(UTC) - timedelta(seconds=1))
    entry = await conversation(http, ann, user_id=bob.id)
    assert (entry["muted"], entry["muted_until"]) == (False, None)


async def test_mute_refusals(node: Node, http: HubbubHTTP, make_user: UserMaker) -> None:
    ann, bob, cid = [await make_user(n) for n in ("ann", "bob", "cid")]
    theirs = await create_group(http, bob, "theirs", cid)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    cases: list[tuple[Any, int, str | None]] = [
        ({"kind": "direct", "user_id": UNKNOWN}, 404, "no such user"),
        ({"kind": "group", "group_id": UNKNOWN}, 404, "no such group"),
        ({"kind": "group", "group_id": theirs}, 404, "no such group"),  # not a member
        ({"kind": "channel", "user_id": bob.id}, 422, None),
        ({"kind": "direct"}, 422, None),
        ({"kind": "direct", "user_id": "2"}, 422, None),
        ({"kind": "group", "user_id": bob.id}, 422, None),
        ([], 422, None),
    ]
    for method in ("POST", "DELETE"):
        for body, status, detail in cases:
            response = await call(http, method, "/conversations/mute", ann.access_token, body)
            assert response.status_code == status, (method, body, response.text)
            assert response.json()["detail"] == detail or detail is None
            assert response.json()["detail"]
        response = await call(http, method, "/conversations/mute", None, cases[0][0])
        assert response.status_code == 401
    for until, detail in (
        (past, "until is in the past"),
        ("2999-01-01T00:00:00", "until needs a timezone (for instance 2030-01-01T00:00:00Z)"),
        ("tomorrow", "until must be an ISO-8601 time with a timezone, or null"),
        (12, "until must be an ISO-8601 time with a timezone, or null"),
    ):
        body = {"kind": "direct", "user_id": bob.id, "until": until}
        response = await call(http, "POST", "/conversations/mute", ann.access_token, body)
        assert (response.status_code, response.json()) == (422, {"detail": detail})
    # Nothing refused was recorded.
    assert await node.storage.mutes(ann.id, datetime.now(UTC)) == []
