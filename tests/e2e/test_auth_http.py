"""Sign-up, login, refresh (rotation), logout and the user endpoints, over real HTTP
(docs/contract.md)."""

from __future__ import annotations

import pytest

from hubbub.client import HubbubHTTP

PASSWORD = "correct horse battery"


async def test_signup_answers_the_contract_shape(http: HubbubHTTP) -> None:
    response = await http.signup("ada", "ada@example.com", PASSWORD)
    assert response.status_code == 201
    body = response.json()
    assert body["Success"] == "User created"
    assert body["username"] == "ada"
    assert isinstance(body["id"], int)


async def test_taken_username_or_email_is_409_case_insensitively(http: HubbubHTTP) -> None:
    assert (await http.signup("grace", "grace@example.com", PASSWORD)).status_code == 201
    same_name = await http.signup("GRACE", "other@example.com", PASSWORD)
    same_email = await http.signup("other", "Grace@Example.com", PASSWORD)
    assert same_name.status_code == 409
    assert "username" in same_name.json()["detail"]
    assert same_email.status_code == 409
    assert "email" in same_email.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@example.com", "password": PASSWORD},
        {"username": "x" * 33, "email": "a@example.com", "password": PASSWORD},
        {"username": "has space", "email": "a@example.com", "password": PASSWORD},
        {"username": "valid", "email": "not-an-email", "password": PASSWORD},
        {"username": "valid", "email": "a@example.com", "password": "short"},
        {"username": 12345, "email": "a@example.com", "password": PASSWORD},
        ["not", "an", "object"],
    ],
)
async def test_invalid_signup_is_422_with_detail(http: HubbubHTTP, body: object) -> None:
    response = await http.http.post("/auth/signup", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_signup_with_a_body_that_is_not_json_is_422(http: HubbubHTTP) -> None:
    response = await http.http.post(
        "/auth/signup", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_login_by_form_and_by_json(http: HubbubHTTP) -> None:
    await http.signup("lin", "lin@example.com", PASSWORD)
    by_form = await http.login("lin", PASSWORD)
    by_json = await http.http.post("/auth/login", json={"username": "lin", "password": PASSWORD})
    for response in (by_form, by_json):
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["access_token"] and body["refresh_token"]


async def test_bad_credentials_are_401_without_saying_which_part(http: HubbubHTTP) -> None:
    await http.signup("kay", "kay@example.com", PASSWORD)
    wrong_password = await http.login("kay", "wrong password!")
    unknown_user = await http.login("nobody", PASSWORD)
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.json() == unknown_user.json()


async def test_me_shows_the_profile_and_never_the_password(http: HubbubHTTP) -> None:
    account = await http.register("mo", "mo@example.com", PASSWORD)
    response = await http.get("/users/me", account.access_token)
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "id": account.id,
        "username": "mo",
        "email": "mo@example.com",
        "presence_status": "offline",
        "last_seen": None,
    }
    assert "password" not in response.text


async def test_me_needs_a_valid_access_token(http: HubbubHTTP) -> None:
    account = await http.register("jo", "jo@example.com", PASSWORD)
    for token in (None, "garbage", account.refresh_token):
        response = await http.get("/users/me", token)
        assert response.status_code == 401
        assert response.json()["detail"]


async def test_refresh_gives_a_new_pair_and_takes_only_refresh_tokens(http: HubbubHTTP) -> None:
    account = await http.register("ri", "ri@example.com", PASSWORD)
    fresh = await http.post("/auth/refresh", account.refresh_token)
    assert fresh.status_code == 200
    pair = fresh.json()
    me = await http.get("/users/me", pair["access_token"])
    assert me.json()["id"] == account.id
    for token in (None, "garbage", account.access_token):
        assert (await http.post("/auth/refresh", token)).status_code == 401


async def refreshed(http: HubbubHTTP, refresh_token: str) -> dict[str, str]:
    """The new pair ``/auth/refresh`` answers for ``refresh_token`` (which must work)."""
    response = await http.post("/auth/refresh", refresh_token)
    assert response.status_code == 200, response.text
    pair = response.json()
    assert set(pair) == {"access_token", "refresh_token", "token_type"}
    assert pair["token_type"] == "bearer"
    return pair


async def test_refresh_rotates_the_refresh_token(http: HubbubHTTP) -> None:
    account = await http.register("rot", "rot@example.com", PASSWORD)
    second = await refreshed(http, account.refresh_token)
    assert second["refresh_token"] != account.refresh_token
    third = await refreshed(http, second["refresh_token"])
    me = await http.get("/users/me", third["access_token"])
    assert me.json()["id"] == account.id
    assert (await http.post("/auth/refresh", second["refresh_token"])).status_code == 401


async def test_a_reused_refresh_token_revokes_its_login_and_no_other(http: HubbubHTTP) -> None:
    account = await http.register("reuse", "reuse@example.com", PASSWORD)
    other_login = (await http.login("reuse", PASSWORD)).json()
    second = await refreshed(http, account.refresh_token)
    replay = await http.post("/auth/refresh", account.refresh_token)
    assert replay.status_code == 401
    assert "revoked" in replay.json()["detail"]
    # The newest token of that login is refused from now on; the other login is untouched.
    assert (await http.post("/auth/refresh", second["refresh_token"])).status_code == 401
    await refreshed(http, other_login["refresh_token"])
    # Logging in again starts a new, working family.
    again = (await http.login("reuse", PASSWORD)).json()
    await refreshed(http, again["refresh_token"])


@pytest.mark.parametrize("how", ["json", "form", "bearer refresh"])
async def test_logout_with_the_refresh_token_ends_that_login(http: HubbubHTTP, how: str) -> None:
    account = await http.register("out", "out@example.com", PASSWORD)
    other_login = (await http.login("out", PASSWORD)).json()
    latest = await refreshed(http, account.refresh_token)
    token = latest["refresh_token"]
    if how == "json":
        response = await http.post("/auth/logout", json={"refresh_token": token})
    elif how == "form":
        response = await http.post("/auth/logout", data={"refresh_token": token})
    else:
        response = await http.post("/auth/logout", token)
    assert response.status_code == 204
    assert response.content == b""
    assert (await http.post("/auth/refresh", token)).status_code == 401
    await refreshed(http, other_login["refresh_token"])


async def test_logout_with_an_access_token_ends_that_login(http: HubbubHTTP) -> None:
    account = await http.register("outa", "outa@example.com", PASSWORD)
    other_login = (await http.login("outa", PASSWORD)).json()
    latest = await refreshed(http, account.refresh_token)
    # An access token of the first pair names the same login as the latest refresh token.
    assert (await http.post("/auth/logout", account.access_token)).status_code == 204
    for token in (account.refresh_token, latest["refresh_token"]):
        assert (await http.post("/auth/refresh", token)).status_code == 401
    await refreshed(http, other_login["refresh_token"])


@pytest.mark.parametrize("body", [None, {"refresh_token": "garbage"}, {"refresh_token": 5}])
async def test_logout_needs_a_valid_token(http: HubbubHTTP, body: object) -> None:
    response = (
        await http.post("/auth/logout", json=body) if body else await http.post("/auth/logout")
    )
    assert response.status_code == 401
    assert response.json()["detail"]
    assert (await http.post("/auth/logout", "garbage")).status_code == 401


async def test_users_all_lists_ids_and_names(http: HubbubHTTP) -> None:
    first = await http.register("al", "al@example.com", PASSWORD)
    second = await http.register("bo", "bo@example.com", PASSWORD)
    response = await http.get("/users/all", first.access_token)
    assert response.status_code == 200
    assert response.json() == [
        {"id": first.id, "username": "al"},
        {"id": second.id, "username": "bo"},
    ]
    assert (await http.get("/users/all")).status_code == 401


async def test_unknown_route_is_404_with_detail(http: HubbubHTTP) -> None:
    response = await http.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json()["detail"]
