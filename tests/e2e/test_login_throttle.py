"""Failed logins are throttled per username and per address, over real HTTP."""

from __future__ import annotations

import httpx

from hubbub.client import HubbubHTTP
from hubbub.http.throttle import USERNAME_THRESHOLD

PASSWORD = "correct horse battery"


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert "too many failed logins" in response.json()["detail"]


async def test_past_the_threshold_even_the_right_password_waits(http: HubbubHTTP) -> None:
    await http.signup("ada", "ada@example.com", PASSWORD)
    for _ in range(USERNAME_THRESHOLD):
        assert (await http.login("ada", "wrong password")).status_code == 401
    assert_throttled(await http.login("ada", PASSWORD))
    assert_throttled(await http.login("ADA", "wrong password"))
    # By JSON too: the throttle is the login's, not the form's.
    response = await http.http.post("/auth/login", json={"username": "ada", "password": PASSWORD})
    assert_throttled(response)
    # Another user from the same address is not locked by ada's failures.
    await http.signup("bea", "bea@example.com", PASSWORD)
    assert (await http.login("bea", PASSWORD)).status_code == 200


async def test_unknown_usernames_are_throttled_alike(http: HubbubHTTP) -> None:
    for _ in range(USERNAME_THRESHOLD):
        assert (await http.login("nobody", "wrong password")).status_code == 401
    assert_throttled(await http.login("nobody", "wrong password"))


async def test_a_successful_login_resets_the_usernames_count(http: HubbubHTTP) -> None:
    await http.signup("cy", "cy@example.com", PASSWORD)
    for _ in range(2):
        for _ in range(USERNAME_THRESHOLD - 1):
            assert (await http.login("cy", "wrong password")).status_code == 401
        assert (await http.login("cy", PASSWORD)).status_code == 200
