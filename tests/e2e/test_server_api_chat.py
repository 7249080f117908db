"""The server API's messages and groups, over real HTTP and WebSocket, on both backends:
a message posted for a user is delivered live as if that user had sent it over a
WebSocket (same rules, same refusals, idempotent on client_id, no rate limit); groups
made and changed through the API keep live membership right."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from hubbub.client import Account, ChatClient, HubbubHTTP
from hubbub.node import Node
from tests.helpers.chat import attached, frames_until, is_text
from tests.helpers.images import encoded_image
from tests.helpers.server_api import ServerApi, create_key
from tests.helpers.views import direct_history

UNKNOWN = 10**9


@pytest.fixture
async def api(node: Node, http: HubbubHTTP) -> AsyncIterator[ServerApi]:
    yield ServerApi(http, await create_key(node.storage))


async def send(api: ServerApi, **body: Any) -> Any:
    response = await api.post("/messages", body)
    assert response.status_code == 201, response.text
    return response.json()


async def refused(api: ServerApi, body: dict[str, Any], status: int, detail: str) -> None:
    response = await api.post("/messages", body)
    assert response.status_code == status, (body, response.text)
    assert detail in response.json()["detail"], body


# -- direct messages -------------------------------------------------------------


async def test_a_direct_message_arrives_live_as_if_the_author_sent_it(
    api: ServerApi, node: Node
) -> None:
    system, alice = await api.account("system"), await api.account("alice")
    async with (
        ChatClient.connect(node.url, alice.access_token) as recipient,
        ChatClient.connect(node.url, system.access_token) as authors_device,
    ):
        await attached(recipient)
        await attached(authors_device)
        message = await send(
            api, author_id=system.id, recipient_id=alice.id, message="welcome", client_id="w-1"
        )
        assert message["author_id"] == system.id and message["recipient_id"] == alice.id
        assert (message["message"], message["client_id"]) == ("welcome", "w-1")
        assert message["author_name"] == system.username
        assert message["status"] == "delivered"  # the recipient is online
        for chat in (recipient, authors_device):
            live = (await frames_until(chat, is_text("message", "welcome")))[-1]
            assert live["message_id"] == message["message_id"]
            assert live["author_id"] == system.id
    history = await direct_history(api.http, alice, system.id)
    assert [m["message_id"] for m in history] == [message["message_id"]]


async def test_a_resend_with_the_same_client_id_stores_nothing_new(
    api: ServerApi, node: Node
) -> None:
    system, bob = await api.account("system"), await api.account("bob")
    body = {"author_id": system.id, "recipient_id": bob.id, "message": "once", "client_id": "c"}
    first, second = await send(api, **body), await send(api, **body)
    assert first["message_id"] == second["message_id"]
    assert first["status"] == "pending"  # bob is offline
    # Bob catches up once, on connect: one message.
    async with ChatClient.connect(node.url, bob.access_token) as chat:
        await chat.send({"type": "ping"})
        frames = await frames_until(chat, lambda f: f["type"] == "pong")
    assert [f["message_id"] for f in frames if f["type"] == "message"] == [first["message_id"]]


async def test_rate_limits_do_not_apply(node_factory: Callable[..., Any]) -> None:
    async with node_factory(direct_rate_limit="2") as node, HubbubHTTP(node.url) as http:
        api = ServerApi(http, await create_key(node.storage))
        system, carol = await api.account("system"), await api.account("carol")
        ids = [
            (await send(api, author_id=system.id, recipient_id=carol.id, message=f"n{n}"))[
                "message_id"
            ]
            for n in range(5)
        ]
        assert len(set(ids)) == 5
        # The author's own WebSocket sends are still limited.
        async with ChatClient.connect(node.url, system.access_token) as chat:
            await attached(chat)
            answers = [await chat.send_direct(carol.id, f"ws{n}", f"ws-{n}") for n in range(3)]
        assert [a["type"] for a in answers] == ["ack", "ack", "error"]
        assert answers[-1]["reason"] == "rate limit exceeded"


async def test_a_message_is_checked_as_a_websocket_send_is(api: ServerApi, node: Node) -> None:
    system, dave, eve = [a async for a in _accounts(api, "system", "dave", "eve")]
    theirs = await send(api, author_id=dave.id, recipient_id=eve.id, message="private")
    base = {"author_id": system.id, "recipient_id": dave.id}
    await refused(api, {**base, "message": "x" * 4001}, 422, "message too long")
    await refused(api, {**base, "message": "   "}, 422, "empty message")
    await refused(api, {**base}, 422, "empty message")
    await refused(
        api, {**base, "message": "hi", "image_url": "/media/none.png"}, 422, "invalid image_url"
    )
    await refused(
        api, {**base, "message": "hi", "reply_to": theirs["message_id"]}, 422, "invalid reply_to"
    )
    await refused(api, {**base, "message": "hi", "client_id": "x" * 129}, 422, "invalid frame")
    await refused(api, {**base, "message": 5}, 422, "message must be a string")
    await refused(api, {"recipient_id": dave.id, "message": "hi"}, 422, "author_id")
    await refused(api, {"author_id": system.id, "message": "hi"}, 422, "exactly one")
    await refused(api, {**base, "group_id": 1, "message": "hi"}, 422, "exactly one")
    await refused(api, {**base, "author_id": UNKNOWN, "message": "hi"}, 404, "no such user")
    await refused(
        api, {**base, "recipient_id": UNKNOWN, "message": "hi"}, 404, "recipient not found"
    )

    # What passes: a reply in the conversation, an image this node serves.
    first = await send(api, **base, message="question")
    reply = await send(api, **base, message="answer", reply_to=first["message_id"])
    assert reply["reply_to"] == first["message_id"]
    upload = await api.http.post(
        "/upload/image",
        dave.access_token,
        files={"file": ("a.png", encoded_image("PNG"), "image/png")},
    )
    url = upload.json()["url"]
    picture = await send(api, **base, image_url=url)
    assert (picture["image_url"], picture["message"]) == (url, None)


async def _accounts(api: ServerApi, *prefixes: str) -> AsyncIterator[Account]:
    for prefix in prefixes:
        yield await api.account(prefix)


# -- groups ----------------------------------------------------------------------


async def test_a_group_message_reaches_members_and_is_refused_to_others(
    api: ServerApi, node: Node
) -> None:
    admin, member, outsider = [a async for a in _accounts(api, "admin", "member", "outsider")]
    created = await api.post(
        "/groups", {"name": "Team", "admin_id": admin.id, "member_ids": [member.id]}
    )
    assert created.status_code == 201
    group_id = created.json()["group_id"]
    async with ChatClient.connect(node.url, member.access_token) as chat:
        await attached(chat)
        message = await send(api, author_id=admin.id, group_id=group_id, message="standup")
        assert (message["group_id"], message["group_name"]) == (group_id, "Team")
        live = (await frames_until(chat, is_text("group_message", "standup")))[-1]
        assert live["message_id"] == message["message_id"]
    await refused(
        api,
        {"author_id": outsider.id, "group_id": group_id, "message": "hi"},
        403,
        "user is not a member of the group",
    )
    await refused(
        api, {"author_id": admin.id, "group_id": UNKNOWN, "message": "hi"}, 404, "group not found"
    )


async def test_groups_made_and_changed_through_the_api(api: ServerApi, http: HubbubHTTP) -> None:
    admin, one, two, three = [a async for a in _accounts(api, "admin", "one", "two", "three")]
    created = await api.post(
        "/groups",
        {"name": " Crew ", "admin_id": admin.id, "member_ids": [one.id, two.id, one.id, admin.id]},
    )
    assert created.status_code == 201
    group_id = created.json()["group_id"]

    async def members() -> dict[int, str]:
        response = await http.get(f"/groups/{group_id}/members", admin.access_token)
        assert response.status_code == 200, response.text
        return {m["user_id"]: m["role"] for m in response.json()}

    assert await members() == {admin.id: "admin", one.id: "member", two.id: "member"}
    info = (await http.get(f"/groups/{group_id}", one.access_token)).json()
    assert info["name"] == "Crew"

    added = await api.post(f"/groups/{group_id}/members", {"user_id": three.id})
    assert added.status_code == 201
    assert (await api.post(f"/groups/{group_id}/members", {"user_id": three.id})).status_code == 409
    removed = await api.call("DELETE", f"/groups/{group_id}/members/{two.id}")
    assert removed.status_code == 204
    assert await members() == {admin.id: "admin", one.id: "member", three.id: "member"}
    # The last admin removed: the longest-standing member inherits, as for the user route.
    assert (await api.call("DELETE", f"/groups/{group_id}/members/{admin.id}")).status_code == 204
    roles = (await http.get(f"/groups/{group_id}/members", one.access_token)).json()
    assert {m["user_id"]: m["role"] for m in roles} == {one.id: "admin", three.id: "member"}

    for method, path, body, status in [
        ("DELETE", f"/groups/{group_id}/members/{two.id}", None, 404),
        ("DELETE", f"/groups/{UNKNOWN}/members/{one.id}", None, 404),
        ("POST", f"/groups/{UNKNOWN}/members", {"user_id": one.id}, 404),
        ("POST", f"/groups/{group_id}/members", {"user_id": UNKNOWN}, 404),
        ("POST", f"/groups/{group_id}/members", {}, 422),
        ("POST", "/groups", {"name": "x", "admin_id": UNKNOWN, "member_ids": []}, 404),
        ("POST", "/groups", {"name": "x", "admin_id": one.id, "member_ids": [UNKNOWN]}, 404),
        ("POST", "/groups", {"name": "", "admin_id": one.id, "member_ids": []}, 422),
        ("POST", "/groups", {"name": "x", "admin_id": one.id, "member_ids": "1"}, 422),
        ("POST", "/groups", {"name": "x", "admin_id": one.id, "member_ids": [True]}, 422),
        ("POST", "/groups", {"name": "x", "member_ids": []}, 422),
    ]:
        response = await api.call(method, path, json=body)
        assert response.status_code == status, (method, path, body, response.text)
        assert response.json()["detail"]
    # A group refused for an unknown member was not created.
    assert [g["name"] for g in (await http.get("/groups/all", one.access_token)).json()] == ["Crew"]


async def test_live_membership_follows_api_changes(api: ServerApi, node: Node) -> None:
    admin, joiner = [a async for a in _accounts(api, "admin", "joiner")]
    group_id = (
        await api.post("/groups", {"name": "Live", "admin_id": admin.id, "member_ids": []})
    ).json()["group_id"]
    async with ChatClient.connect(node.url, joiner.access_token) as chat:
        await attached(chat)
        before = await chat.send_group(group_id, "let me in", "g-0")
        assert before["reason"] == "user is not a member of the group"
        assert (
            await api.post(f"/groups/{group_id}/members", {"user_id": joiner.id})
        ).status_code == 201
        # Added while connected: sends and receives at once, without reconnecting.
        assert (await chat.send_group(group_id, "in", "g-1"))["type"] == "ack"
        await send(api, author_id=admin.id, group_id=group_id, message="hello joiner")
        await frames_until(chat, is_text("group_message", "hello joiner"))
        assert (
            await api.call("DELETE", f"/groups/{group_id}/members/{joiner.id}")
        ).status_code == 204
        after = await chat.send_group(group_id, "still here?", "g-2")
        assert after["reason"] == "user is not a member of the group"
