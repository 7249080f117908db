"""The server API's credential and its user endpoints, over real HTTP and WebSocket, on
both backends: the API key guard, provisioning by external_id, signing a user in,
presence, and disconnecting every connection of a user."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from hubbub.auth.api_keys import key_hash
from hubbub.client import ChatClient, HubbubHTTP
from hubbub.node import Node
from tests.helpers.chat import attached
from tests.helpers.server_api import ServerApi, create_key
from tests.helpers.users import PASSWORD, UserMaker

UNKNOWN = 10**9


@pytest.fixture
async def api(node: Node, http: HubbubHTTP) -> AsyncIterator[ServerApi]:
    yield ServerApi(http, await create_key(node.storage))


# -- the key -----------------------------------------------------------------


async def test_calls_without_a_live_key_are_refused(
    api: ServerApi, node: Node, make_user: UserMaker
) -> None:
    user = await make_user("alice")
    refusals = {
        "no header": (None, "missing API key"),
        "not a key": ("garbage", "not an API key"),
        "a user's access token": (user.access_token, "not an API key"),
        "a user's refresh token": (user.refresh_token, "not an API key"),
        "an unknown key": ("hbk_" + "x" * 43, "unknown or revoked API key"),
    }
    for what, (key, detail) in refusals.items():
        for method, path in (("POST", "/users"), ("GET", "/presence?user_ids=1")):
            response = await api.call(method, path, key=key, json={"username": "x"})
            assert response.status_code == 401, what
            assert detail in response.json()["detail"], what
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # The same key works until it is revoked, then it is refused like any unknown one.
    assert (await api.call("GET", f"/presence?user_ids={user.id}")).status_code == 200
    await node.storage.create_api_key("second", key_hash("hbk_" + "y" * 43))
    assert await node.storage.revoke_api_key("tests")
    revoked = await api.call("GET", f"/presence?user_ids={user.id}")
    assert revoked.status_code == 401
    assert revoked.json()["detail"] == "unknown or revoked API key"
    other = await api.call("GET", f"/presence?user_ids={user.id}", key="hbk_" + "y" * 43)
    assert other.status_code == 200


async def test_a_key_is_not_accepted_on_the_user_endpoints(api: ServerApi, node: Node) -> None:
    for path in ("/users/me", "/users/all", "/conversations"):
        response = await api.http.get(path, api.key)
        assert response.status_code == 401, path
    assert (await api.http.post("/auth/refresh", api.key)).status_code == 401
    async with ChatClient.connect(node.url, api.key) as chat:
        assert await chat.wait_closed(timeout=10) == 1008


# -- provisioning --------------------------------------------------------------


async def test_provisioning_is_idempotent_on_external_id(api: ServerApi) -> None:
    first = await api.post("/users", {"username": "prov1", "external_id": "crm-1"})
    assert first.status_code == 201
    user = first.json()
    assert set(user) == {"id", "username", "external_id"}
    assert (user["username"], user["external_id"]) == ("prov1", "crm-1")
    # Known: 200, the same user, whatever else the body says.
    again = await api.post("/users", {"username": "other", "external_id": "crm-1"})
    assert (again.status_code, again.json()) == (200, user)
    # Without an external id every call creates a user.
    plain = await api.post("/users", {"username": "prov2"})
    assert plain.status_code == 201 and plain.json()["external_id"] is None
    assert plain.json()["id"] != user["id"]


async def test_provisioning_validates_as_signup_does(api: ServerApi, make_user: UserMaker) -> None:
    taken = await make_user("taken")
    refusals = [
        ({}, 422, "username"),
        ({"username": "bad name!"}, 422, "username"),
        ({"username": "ok1", "email": "not-an-address"}, 422, "email"),
        ({"username": "ok2", "password": "short"}, 422, "password"),
        ({"username": "ok3", "external_id": ""}, 422, "external_id"),
        ({"username": "ok4", "external_id": "x" * 256}, 422, "external_id"),
        ({"username": "ok5", "external_id": 5}, 422, "external_id"),
        ({"username": taken.username}, 409, "username already taken"),
        ({"username": taken.username.upper(), "external_id": "new"}, 409, "username"),
        ({"username": "ok6", "email": f"{taken.username}@example.com"}, 409, "email"),
    ]
    for body, status, detail in refusals:
        response = await api.post("/users", body)
        assert response.status_code == status, body
        assert detail in response.json()["detail"], body
    assert (await api.call("POST", "/users", content=b"[1]")).status_code == 422


async def test_a_provisioned_user_without_password_never_logs_in_with_one(
    api: ServerApi, http: HubbubHTTP
) -> None:
    bare = await api.account("bare", external_id="no-password")
    for password in ("", "!no-password", PASSWORD):
        response = await http.login(bare.username, password)
        assert response.status_code in (401, 422), password
    # It has no email, and no client is shown one.
    me = (await http.get("/users/me", bare.access_token)).json()
    assert (me["id"], me["email"]) == (bare.id, None)

    full = await api.provision("full", email="full@example.org", password=PASSWORD)
    login = await http.login(full["username"], PASSWORD)
    assert login.status_code == 200
    me = (await http.get("/users/me", login.json()["access_token"])).json()
    assert me["email"] == "full@example.org"


# -- tokens ----------------------------------------------------------------------


async def test_tokens_sign_a_user_in_without_a_password(api: ServerApi, node: Node) -> None:
    user = await api.provision("signed", external_id="signed-1")
    response = await api.post(f"/users/{user['id']}/tokens")
    assert response.status_code == 200
    tokens = response.json()
    assert set(tokens) == {"access_token", "refresh_token", "token_type"}
    assert tokens["token_type"] == "bearer"
    me = await api.http.get("/users/me", tokens["access_token"])
    assert me.status_code == 200 and me.json()["username"] == user["username"]
    refreshed = await api.http.post("/auth/refresh", tokens["refresh_token"])
    assert refreshed.status_code == 200
    async with ChatClient.connect(node.url, tokens["access_token"]) as chat:
        await attached(chat)
    assert (await api.post(f"/users/{UNKNOWN}/tokens")).status_code == 404


# -- presence --------------------------------------------------------------------


async def test_presence_of_several_users(api: ServerApi, node: Node) -> None:
    online, offline = await api.account("on"), await api.account("off")
    async with ChatClient.connect(node.url, offline.access_token) as chat:
        await attached(chat)
    async with ChatClient.connect(node.url, online.access_token) as chat:
        await attached(chat)
        ids = f"{offline.id},{online.id},{offline.id}"
        response = await api.call("GET", f"/presence?user_ids={ids}")
        assert response.status_code == 200
        presence = response.json()["presence"]
    assert [(p["user_id"], p["presence_status"]) for p in presence] == [
        (offline.id, "offline"),
        (online.id, "online"),
    ]
    assert presence[0]["last_seen"] is not None and presence[1]["last_seen"] is None

    unknown = await api.call("GET", f"/presence?user_ids={online.id},{UNKNOWN}")
    assert unknown.status_code == 404 and str(UNKNOWN) in unknown.json()["detail"]
    for query in ("", "?user_ids=", "?user_ids=1,x", "?user_ids=0", "?user_ids=" + "1," * 201):
        response = await api.call("GET", f"/presence{query}")
        assert response.status_code == 422, query
        assert "user_ids" in response.json()["detail"]


# -- disconnect ------------------------------------------------------------------


async def test_disconnect_closes_every_connection_of_the_user_with_1008(
    api: ServerApi, node: Node
) -> None:
    target, bystander = await api.account("target"), await api.account("bystander")
    async with (
        ChatClient.connect(node.url, target.access_token) as phone,
        ChatClient.connect(node.url, target.access_token) as laptop,
        ChatClient.connect(node.url, bystander.access_token) as other,
    ):
        for chat in (phone, laptop, other):
            await attached(chat)
        response = await api.post(f"/users/{target.id}/disconnect")
        assert response.status_code == 202
        async with trio.open_nursery() as nursery:
            codes: list[int | None] = []

            async def closed(chat: ChatClient) -> None:
                codes.append(await chat.wait_closed(timeout=10))

            nursery.start_soon(closed, phone)
            nursery.start_soon(closed, laptop)
        assert codes == [1008, 1008]
        # Nobody else's connection is touched.
        await attached(other)
    assert (await api.post(f"/users/{UNKNOWN}/disconnect")).status_code == 404
