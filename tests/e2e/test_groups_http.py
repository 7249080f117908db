"""The group HTTP API over real HTTP: who may do what, membership rules, history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
import httpx
import pytest
import trio

from hubbub.client import Account, ChatClient, HubbubHTTP
from hubbub.node import Node
from hubbub.storage import NewGroupMessage
from tests.helpers.users import UserMaker

UNKNOWN = 10**9


async def call(
    http: HubbubHTTP, method: str, path: str, token: str | None = None, **kwargs: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await http.http.request(method, path, headers=headers, **kwargs)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


@attrs.frozen
class Cast:
    admin: Account  # creates every group
    member: Account  # joins each group first
    other_member: Account  # joins second: whom the admin removes or promotes
    outsider: Account  # a member of none of these groups
    stranger: Account  # never a member either: whom the admin adds


@pytest.fixture
async def cast(make_user: UserMaker) -> Cast:
    names = ("alice", "bob", "erin", "carol", "dave")
    return Cast(*[await make_user(name) for name in names])


async def new_group(http: HubbubHTTP, cast: Cast, name: str = "team") -> int:
    """A group of the cast's admin (admin), member and other_member (members), joined in
    that order."""
    group_id = ok(
        await call(
            http, "POST", "/groups/create-group", cast.admin.access_token, params={"name": name}
        )
    )["group_id"]
    for account in (cast.member, cast.other_member):
        path = f"/groups/{group_id}/add-member"
        ok(await call(http, "POST", path, cast.admin.access_token, params={"user_id": account.id}))
    return group_id


async def roles(http: HubbubHTTP, group_id: int, token: str) -> dict[int, str]:
    members = ok(await call(http, "GET", f"/groups/{group_id}/members", token))
    return {m["user_id"]: m["role"] for m in members}


# -- the authorisation matrix --------------------------------------------------

ANY_MEMBER = {
    "no token": 401,
    "bad token": 401,
    "outsider": 404,
    "member": 200,
    "admin": 200,
    "unknown group": 404,
}
ADMIN_ONLY = {**ANY_MEMBER, "member": 403}
# docs/contract.md: history and add-member tell a non-member that an existing group exists.
OUTSIDER_403 = {"outsider": 403}

MATRIX = [
    ("GET", "/groups/{group}", ANY_MEMBER),
    ("GET", "/groups/{group}/messages", {**ANY_MEMBER, **OUTSIDER_403}),
    ("GET", "/groups/{group}/members", ANY_MEMBER),
    ("POST", "/groups/{group}/leave", ANY_MEMBER),
    ("POST", "/groups/{group}/add-member?user_id={stranger}", {**ADMIN_ONLY, **OUTSIDER_403}),
    ("DELETE", "/groups/{group}/members/{other_member}", ADMIN_ONLY),
    ("POST", "/groups/{group}/members/{other_member}/promote", ADMIN_ONLY),
]


@pytest.mark.parametrize(("method", "template", "expected"), MATRIX, ids=[m[1] for m in MATRIX])
async def test_authorisation_matrix(
    http: HubbubHTTP, cast: Cast, method: str, template: str, expected: dict[str, int]
) -> None:
    tokens = {
        "no token": None,
        "bad token": "garbage",
        "outsider": cast.outsider.access_token,
        "member": cast.member.access_token,
        "admin": cast.admin.access_token,
        "unknown group": cast.admin.access_token,
    }
    for role, status in expected.items():
        group_id = await new_group(http, cast)  # a fresh group each time: some calls mutate
        path = template.format(
            group=UNKNOWN if role == "unknown group" else group_id,
            stranger=cast.stranger.id,
            other_member=cast.other_member.id,
        )
        response = await call(http, method, path, tokens[role])
        assert (role, response.status_code) == (role, status), response.text
        if status != 200:
            assert response.json()["detail"]


async def test_an_outsider_cannot_tell_a_group_exists_from_its_info_or_members(
    http: HubbubHTTP, cast: Cast
) -> None:
    group_id = await new_group(http, cast)
    token = cast.outsider.access_token
    for suffix in ("", "/members"):
        existing = await call(http, "GET", f"/groups/{group_id}{suffix}", token)
        missing = await call(http, "GET", f"/groups/{UNKNOWN}{suffix}", token)
        assert existing.status_code == missing.status_code == 404
        assert existing.json() == missing.json()


@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", "/messages"), ("POST", "/add-member?user_id={stranger}")]
)
async def test_history_and_add_member_are_403_for_a_non_member_and_404_for_no_group(
    http: HubbubHTTP, cast: Cast, method: str, suffix: str
) -> None:
    group_id = await new_group(http, cast)
    token = cast.outsider.access_token
    path = suffix.format(stranger=cast.stranger.id)
    existing = await call(http, method, f"/groups/{group_id}{path}", token)
    missing = await call(http, method, f"/groups/{UNKNOWN}{path}", token)
    assert existing.status_code == 403, existing.text
    assert "not a member" in existing.json()["detail"]
    assert missing.status_code == 404, missing.text
    assert missing.json()["detail"]
    members = await roles(http, group_id, cast.admin.access_token)
    assert cast.stranger.id not in members and cast.outsider.id not in members


@pytest.mark.parametrize(
    ("target", "status"),
    [("unknown user", 404), ("already a member", 409), ("already the admin", 409)],
)
async def test_add_member_refusals(http: HubbubHTTP, cast: Cast, target: str, status: int) -> None:
    group_id = await new_group(http, cast)
    user_id = {
        "unknown user": UNKNOWN,
        "already a member": cast.member.id,
        "already the admin": cast.admin.id,
    }[target]
    response = await call(
        http,
        "POST",
        f"/groups/{group_id}/add-member",
        cast.admin.access_token,
        params={"user_id": user_id},
    )
    assert response.status_code == status
    assert response.json()["detail"]


@pytest.mark.parametrize(("method", "action"), [("DELETE", ""), ("POST", "/promote")])
@pytest.mark.parametrize("target", ["unknown user", "not a member"])
async def test_acting_on_someone_who_is_not_a_member_is_404(
    http: HubbubHTTP, cast: Cast, method: str, action: str, target: str
) -> None:
    group_id = await new_group(http, cast)
    user_id = UNKNOWN if target == "unknown user" else cast.stranger.id
    path = f"/groups/{group_id}/members/{user_id}{action}"
    response = await call(http, method, path, cast.admin.access_token)
    assert response.status_code == 404
    assert "not a member" in response.json()["detail"]


# -- creating and listing --------------------------------------------------------


async def test_create_group_by_query_or_json_makes_the_creator_admin(
    http: HubbubHTTP, cast: Cast
) -> None:
    token = cast.admin.access_token
    by_query = await call(http, "POST", "/groups/create-group", token, params={"name": "Q"})
    by_json = await call(http, "POST", "/groups/create-group", token, json={"name": "  J  "})
    ids = []
    for response in (by_query, by_json):
        body = ok(response)
        assert body == {"Success": "Group Created", "group_id": body["group_id"]}
        ids.append(body["group_id"])
        assert await roles(http, body["group_id"], token) == {cast.admin.id: "admin"}
    listed = ok(await call(http, "GET", "/groups/all", token))
    assert [(g["id"], g["name"]) for g in listed] == [(ids[0], "Q"), (ids[1], "J")]
    assert all(g["created_by"] == cast.admin.id for g in listed)


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {},
        {"params": {"name": ""}},
        {"params": {"name": "   "}},
        {"params": {"name": "x" * 101}},
        {"json": {"name": 123}},
        {"json": {}},
        {"json": ["name"]},
        {"content": b"{nope", "headers": {"content-type": "application/json"}},
    ],
)
async def test_a_bad_group_name_is_422(
    http: HubbubHTTP, cast: Cast, request_kwargs: dict[str, Any]
) -> None:
    kwargs = dict(request_kwargs)  # the parameters are shared by both backends' runs
    headers = {"Authorization": f"Bearer {cast.admin.access_token}", **kwargs.pop("headers", {})}
    response = await http.http.post("/groups/create-group", headers=headers, **kwargs)
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_the_longest_name_is_accepted(http: HubbubHTTP, cast: Cast) -> None:
    name = "x" * 100
    response = await call(
        http, "POST", "/groups/create-group", cast.admin.access_token, params={"name": name}
    )
    group_id = ok(response)["group_id"]
    info = ok(await call(http, "GET", f"/groups/{group_id}", cast.admin.access_token))
    assert info["name"] == name


async def test_create_group_needs_a_token(http: HubbubHTTP) -> None:
    response = await call(http, "POST", "/groups/create-group", params={"name": "x"})
    assert response.status_code == 401


async def test_groups_all_lists_only_the_callers_groups(http: HubbubHTTP, cast: Cast) -> None:
    first = await new_group(http, cast, "first")
    token = cast.admin.access_token
    mine = ok(await call(http, "POST", "/groups/create-group", token, params={"name": "solo"}))
    for account, expected in [
        (cast.admin, [first, mine["group_id"]]),
        (cast.member, [first]),
        (cast.outsider, []),
    ]:
        listed = ok(await call(http, "GET", "/groups/all", account.access_token))
        assert [g["id"] for g in listed] == expected
    assert (await call(http, "GET", "/groups/all")).status_code == 401


async def test_group_info(http: HubbubHTTP, cast: Cast) -> None:
    group_id = await new_group(http, cast, "info")
    for account, role in [(cast.admin, "admin"), (cast.member, "member")]:
        info = ok(await call(http, "GET", f"/groups/{group_id}", account.access_token))
        assert datetime.fromisoformat(info.pop("created_at")).tzinfo is not None
        assert info == {
            "id": group_id,
            "name": "info",
            "created_by": cast.admin.id,
            "member_count": 3,
            "role": role,
        }


# -- adding ----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["query", "json"])
async def test_an_added_member_sees_the_group(http: HubbubHTTP, cast: Cast, how: str) -> None:
    group_id = await new_group(http, cast)
    path = f"/groups/{group_id}/add-member"
    where = (
        {"params": {"user_id": cast.stranger.id}}
        if how == "query"
        else {"json": {"user_id": cast.stranger.id}}
    )
    assert ok(await call(http, "POST", path, cast.admin.access_token, **where)) == {
        "Success": "User added to the group"
    }
    listed = ok(await call(http, "GET", "/groups/all", cast.stranger.access_token))
    assert [g["id"] for g in listed] == [group_id]
    assert (await roles(http, group_id, cast.admin.access_token))[cast.stranger.id] == "member"


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {},
        {"params": {"user_id": "abc"}},
        {"params": {"user_id": "0"}},
        {"json": {"user_id": "5"}},
        {"json": {"user_id": True}},
        {"json": {"user_id": -1}},
    ],
)
async def test_a_bad_user_id_is_422(
    http: HubbubHTTP, cast: Cast, request_kwargs: dict[str, Any]
) -> None:
    group_id = await new_group(http, cast)
    path = f"/groups/{group_id}/add-member"
    response = await call(http, "POST", path, cast.admin.access_token, **request_kwargs)
    assert response.status_code == 422
    assert response.json()["detail"]


# -- history -----------------------------------------------------------------------


async def store(node: Node, group_id: int, author: Account, count: int) -> list[int]:
    batch = [
        NewGroupMessage(
            group_id, author.id, f"m{i}", f"/media/{i}.png" if i == 0 else None, f"c{i}"
        )
        for i in range(count)
    ]
    return [stored.message.id for stored in await node.storage.store_group_messages(batch)]


async def test_history_is_the_newest_page_oldest_first(
    http: HubbubHTTP, node: Node, cast: Cast
) -> None:
    group_id = await new_group(http, cast, "chat")
    ids = await store(node, group_id, cast.member, 5)
    path = f"/groups/{group_id}/messages"
    page = ok(await call(http, "GET", path, cast.other_member.access_token))
    assert [m["message_id"] for m in page] == ids
    first = page[0]
    assert datetime.fromisoformat(first.pop("timestamp")).tzinfo is not None
    assert first == {
        "group_id": group_id,
        "group_name": "chat",
        "message_id": ids[0],
        "author_id": cast.member.id,
        "author_name": cast.member.username,
        "message": "m0",
        "image_url": "/media/0.png",
        "status": "delivered",
        "edited_at": None,
        "deleted": False,
        "reply_to": None,
        "reactions": [],
        "client_id": "c0",
    }
    newest = ok(await call(http, "GET", path, cast.admin.access_token, params={"limit": 2}))
    assert [m["message_id"] for m in newest] == ids[3:]
    older = ok(
        await call(
            http, "GET", path, cast.admin.access_token, params={"before": ids[3], "limit": 2}
        )
    )
    assert [m["message_id"] for m in older] == ids[1:3]
    oldest = ok(await call(http, "GET", path, cast.admin.access_token, params={"before": ids[1]}))
    assert [m["message_id"] for m in oldest] == ids[:1]


async def test_history_pages_are_capped_at_200(http: HubbubHTTP, node: Node, cast: Cast) -> None:
    group_id = await new_group(http, cast)
    ids = await store(node, group_id, cast.admin, 205)
    path = f"/groups/{group_id}/messages"
    page = ok(await call(http, "GET", path, cast.admin.access_token, params={"limit": 1000}))
    assert [m["message_id"] for m in page] == ids[5:]
    default = ok(await call(http, "GET", path, cast.admin.access_token))
    assert [m["message_id"] for m in default] == ids[-50:]


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "x"}, {"before": "-3"}])
async def test_bad_history_arguments_are_422(
    http: HubbubHTTP, cast: Cast, params: dict[str, str]
) -> None:
    group_id = await new_group(http, cast)
    path = f"/groups/{group_id}/messages"
    response = await call(http, "GET", path, cast.admin.access_token, params=params)
    assert response.status_code == 422


# -- members, removal, leaving, promotion ----------------------------------------------


async def test_members_list(http: HubbubHTTP, node: Node, cast: Cast) -> None:
    group_id = await new_group(http, cast)
    [newest] = await store(node, group_id, cast.admin, 1)
    path = f"/groups/{group_id}/add-member"
    ok(
        await call(
            http, "POST", path, cast.admin.access_token, params={"user_id": cast.stranger.id}
        )
    )
    members = ok(await call(http, "GET", f"/groups/{group_id}/members", cast.member.access_token))
    for member in members:
        assert datetime.fromisoformat(member.pop("joined_at")).tzinfo is not None
    assert members == [
        {
            "user_id": account.id,
            "username": account.username,
            "role": role,
            "last_read_message_id": last_read,
        }
        for account, role, last_read in [
            (cast.admin, "admin", 0),
            (cast.member, "member", 0),
            (cast.other_member, "member", 0),
            (cast.stranger, "member", newest),  # joined after the message: nothing unread
        ]
    ]


async def test_a_removed_member_loses_the_group(http: HubbubHTTP, cast: Cast) -> None:
    group_id = await new_group(http, cast)
    path = f"/groups/{group_id}/members/{cast.other_member.id}"
    assert ok(await call(http, "DELETE", path, cast.admin.access_token)) == {
        "Success": "User removed from the group"
    }
    gone = cast.other_member.access_token
    assert ok(await call(http, "GET", "/groups/all", gone)) == []
    assert (await call(http, "GET", f"/groups/{group_id}/messages", gone)).status_code == 403
    assert cast.other_member.id not in await roles(http, group_id, cast.admin.access_token)
    again = await call(http, "DELETE", path, cast.admin.access_token)
    assert again.status_code == 404


async def test_an_admin_may_remove_another_admin(http: HubbubHTTP, cast: Cast) -> None:
    group_id = await new_group(http, cast)
    token = cast.admin.access_token
    ok(await call(http, "POST", f"/groups/{group_id}/members/{cast.member.id}/promote", token))
    ok(await call(http, "DELETE", f"/groups/{group_id}/members/{cast.member.id}", token))
    assert await roles(http, group_id, token) == {
        cast.admin.id: "admin",
        cast.other_member.id: "member",
    }


async def test_a_member_who_leaves_loses_the_group(http: HubbubHTTP, cast: Cast) -> None:
    group_id = await new_group(http, cast)
    token = cast.member.access_token
    response = await call(http, "POST", f"/groups/{group_id}/leave", token)
    assert ok(response) == {"Success": "Left the group"}
    assert ok(await call(http, "GET", "/groups/all", token)) == []
    assert (await call(http, "POST", f"/groups/{group_id}/leave", token)).status_code == 404
    assert await roles(http, group_id, cast.admin.access_token) == {
        cast.admin.id: "admin",
        cast.other_member.id: "member",
    }


@pytest.mark.parametrize("how", ["leave", "delete self"])
async def test_when_the_last_admin_leaves_the_longest_standing_member_becomes_admin(
    http: HubbubHTTP, cast: Cast, how: str
) -> None:
    group_id = await new_group(http, cast)
    if how == "leave":
        response = await call(http, "POST", f"/groups/{group_id}/leave", cast.admin.access_token)
    else:
        path = f"/groups/{group_id}/members/{cast.admin.id}"
        response = await call(http, "DELETE", path, cast.admin.access_token)
    assert ok(response) == {"Success": "Left the group"}
    assert await roles(http, group_id, cast.other_member.access_token) == {
        cast.member.id: "admin",  # joined before other_member
        cast.other_member.id: "member",
    }


async def test_no_one_is_promoted_while_another_admin_remains(http: HubbubHTTP, cast: Cast) -> None:
    group_id = await new_group(http, cast)
    token = cast.admin.access_token
    ok(
        await call(
            http, "POST", f"/groups/{group_id}/members/{cast.other_member.id}/promote", token
        )
    )
    ok(await call(http, "POST", f"/groups/{group_id}/leave", token))
    assert await roles(http, group_id, cast.member.access_token) == {
        cast.member.id: "member",
        cast.other_member.id: "admin",
    }


async def test_when_the_last_member_leaves_the_group_is_visible_to_no_one(
    http: HubbubHTTP, cast: Cast
) -> None:
    token = cast.admin.access_token
    created = await call(http, "POST", "/groups/create-group", token, params={"name": "alone"})
    group_id = ok(created)["group_id"]
    ok(await call(http, "POST", f"/groups/{group_id}/leave", token))
    assert (await call(http, "GET", f"/groups/{group_id}", token)).status_code == 404
    assert ok(await call(http, "GET", "/groups/all", token)) == []


async def test_admins_removing_each_other_at_once_leave_an_admin(
    http: HubbubHTTP, cast: Cast
) -> None:
    group_id = await new_group(http, cast)
    ok(
        await call(
            http,
            "POST",
            f"/groups/{group_id}/members/{cast.member.id}/promote",
            cast.admin.access_token,
        )
    )
    statuses: list[int] = []

    async def remove(actor: Account, target: Account) -> None:
        path = f"/groups/{group_id}/members/{target.id}"
        statuses.append((await call(http, "DELETE", path, actor.access_token)).status_code)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(remove, cast.admin, cast.member)
        nursery.start_soon(remove, cast.member, cast.admin)
    assert 200 in statuses and set(statuses) <= {200, 404}
    remaining = await roles(http, group_id, cast.other_member.access_token)
    assert "admin" in remaining.values()


async def test_a_promoted_member_can_act_as_admin(http: HubbubHTTP, cast: Cast) -> None:
    group_id = await new_group(http, cast)
    path = f"/groups/{group_id}/members/{cast.member.id}/promote"
    for _ in range(2):  # promoting an admin again is harmless
        assert ok(await call(http, "POST", path, cast.admin.access_token)) == {
            "Success": "User is now an admin of the group"
        }
    added = await call(
        http,
        "POST",
        f"/groups/{group_id}/add-member",
        cast.member.access_token,
        json={"user_id": cast.stranger.id},
    )
    assert ok(added) == {"Success": "User added to the group"}


async def test_membership_changes_over_http_take_effect_on_live_connections(
    http: HubbubHTTP, node: Node, cast: Cast
) -> None:
    group_id = await new_group(http, cast)
    admin = cast.admin.access_token
    async with (
        ChatClient.connect(node.url, admin) as admin_chat,
        ChatClient.connect(node.url, cast.stranger.access_token) as stranger_chat,
    ):
        for chat in (admin_chat, stranger_chat):
            await chat.send({"type": "ping"})
            await chat.receive_type("pong")
        ok(
            await call(
                http, "POST", f"/groups/{group_id}/add-member?user_id={cast.stranger.id}", admin
            )
        )
        await admin_chat.send({"type": "group_message", "group_id": group_id, "message": "hi"})
        assert (await stranger_chat.receive_type("group_message"))["message"] == "hi"

        ok(await call(http, "DELETE", f"/groups/{group_id}/members/{cast.stranger.id}", admin))
        await admin_chat.send({"type": "group_message", "group_id": group_id, "message": "gone"})
        await admin_chat.receive_where(lambda f: f.get("message") == "gone")
        # A direct message after it is a barrier: the removed member got nothing before it.
        await admin_chat.send({"type": "message", "recipient_id": cast.stranger.id, "message": "b"})
        assert (await stranger_chat.receive())["type"] == "message"
