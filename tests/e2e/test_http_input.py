"""Bad input at the HTTP boundary, over real HTTP on both backends: every refusal is a 4xx
with a ``detail``, never a 500 (docs: hubbub/http/validation.py, boundary.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
import pytest

from hubbub.client import Account, HubbubHTTP
from hubbub.http.validation import BODY_LIMIT
from hubbub.node import Node
from tests.e2e.conftest import UserMaker
from tests.test_media import encoded_image

PASSWORD = "correct horse battery"
JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
HUGE = str(2**70)
INT64_PAST = str(2**63)
ARABIC_12 = "\u0661\u0662"  # "١٢": digits to int(), not to an id


@attrs.frozen
class Case:
    name: str
    method: str
    path: str
    status: int
    content: bytes | None = None
    headers: dict[str, str] = attrs.Factory(dict)
    json: Any = None
    params: dict[str, str] | None = None


def signup_json(**fields: str) -> dict[str, str]:
    return {"username": "valid", "email": "valid@example.com", "password": PASSWORD, **fields}


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


async def check(http: HubbubHTTP, token: str, cases: list[Case]) -> None:
    """Send every case (authenticated) and compare all the answers at once."""
    got, wanted = [], []
    for case in cases:
        response = await http.http.request(
            case.method,
            case.path,
            content=case.content,
            json=case.json,
            params=case.params,
            headers={"Authorization": f"Bearer {token}", **case.headers},
        )
        detail = response.json().get("detail") if response.status_code >= 400 else "-"
        got.append((case.name, response.status_code, bool(detail)))
        wanted.append((case.name, case.status, True))
    assert got == wanted


@pytest.fixture
async def me(make_user: UserMaker) -> Account:
    return await make_user("probe")


@pytest.fixture
async def group_id(http: HubbubHTTP, me: Account) -> int:
    response = await http.post("/groups/create-group", me.access_token, params={"name": "g"})
    return response.json()["group_id"]


async def test_bodies_that_are_not_utf8_json_objects_are_422(http: HubbubHTTP, me: Account) -> None:
    deep = nested(30_000)  # within the body cap, beyond any parser's nesting limit
    deep_object = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    assert len(deep) < BODY_LIMIT and len(deep_object) < BODY_LIMIT
    await check(
        http,
        me.access_token,
        [
            Case("nested array", "POST", "/auth/signup", 422, deep, JSON),
            Case("nested object", "POST", "/auth/signup", 422, deep_object, JSON),
            Case("nested login", "POST", "/auth/login", 422, deep, JSON),
            Case("nested group", "POST", "/groups/create-group", 422, deep, JSON),
            Case("nested add", "POST", "/groups/1/add-member", 422, deep, JSON),
            Case(
                "not UTF-8",
                "POST",
                "/auth/signup",
                422,
                b'{"username":"\xff\xfe","email":"a@b.cc","password":"12345678"}',
                JSON,
            ),
            Case("lone surrogate", "POST", "/auth/signup", 422, b'{"username":"\\ud800"}', JSON),
            Case("form not UTF-8", "POST", "/auth/login", 422, b"username=\xff&password=x", FORM),
            Case("form %ff", "POST", "/auth/login", 422, b"username=%ff&password=x", FORM),
            Case("huge number", "POST", "/auth/signup", 422, b'{"username":1' + b"0" * 5000, JSON),
            Case("empty body", "POST", "/auth/signup", 422, b"", JSON),
            Case("array", "POST", "/auth/signup", 422, b"[1, 2]", JSON),
        ],
    )


async def test_ids_outside_the_64_bit_range_or_not_ascii_are_404_in_paths_and_422_elsewhere(
    http: HubbubHTTP, me: Account, group_id: int
) -> None:
    await check(
        http,
        me.access_token,
        [
            Case("group 2**70", "GET", f"/groups/{HUGE}", 404),
            Case("group history 2**70", "GET", f"/groups/{HUGE}/messages", 404),
            Case("add to group 2**70", "POST", f"/groups/{HUGE}/add-member?user_id=1", 404),
            Case("messages 2**63", "GET", f"/messages/{INT64_PAST}", 404),
            Case("presence 2**70", "GET", f"/users/presence/{HUGE}", 404),
            Case("remove 2**70", "DELETE", f"/groups/{group_id}/members/{HUGE}", 404),
            Case("promote 2**63", "POST", f"/groups/{group_id}/members/{INT64_PAST}/promote", 404),
            Case("group in Arabic digits", "GET", f"/groups/{ARABIC_12}", 404),
            Case("group 0", "GET", "/groups/0", 404),
            Case("before 2**70", "GET", f"/messages/{me.id}", 422, params={"before": HUGE}),
            Case("limit 2**63", "GET", f"/messages/{me.id}", 422, params={"limit": INT64_PAST}),
            Case("before Arabic", "GET", f"/messages/{me.id}", 422, params={"before": ARABIC_12}),
            Case("before +5", "GET", f"/messages/{me.id}", 422, params={"before": "+5"}),
            Case("before 5_0", "GET", f"/messages/{me.id}", 422, params={"before": "5_0"}),
            Case(
                "group before 2**70",
                "GET",
                f"/groups/{group_id}/messages",
                422,
                params={"before": HUGE},
            ),
            Case(
                "add user_id 2**70 (query)",
                "POST",
                f"/groups/{group_id}/add-member",
                422,
                params={"user_id": HUGE},
            ),
            Case(
                "add user_id 2**63 (JSON)",
                "POST",
                f"/groups/{group_id}/add-member",
                422,
                json={"user_id": 2**63},
            ),
            Case(
                "add user_id Arabic",
                "POST",
                f"/groups/{group_id}/add-member",
                422,
                params={"user_id": ARABIC_12},
            ),
            Case("in range still works", "GET", f"/messages/{me.id}", 200, params={"before": "9"}),
        ],
    )


async def test_nul_in_any_text_input_is_422(http: HubbubHTTP, me: Account) -> None:
    nul = "a\x00b"
    await check(
        http,
        me.access_token,
        [
            Case("username", "POST", "/auth/signup", 422, json=signup_json(username=nul)),
            Case("email", "POST", "/auth/signup", 422, json=signup_json(email=f"{nul}@x.cc")),
            Case("password", "POST", "/auth/signup", 422, json=signup_json(password=nul * 8)),
            Case("a key", "POST", "/auth/signup", 422, json={**signup_json(), nul: 1}),
            Case("login (form)", "POST", "/auth/login", 422, b"username=a%00b&password=x", FORM),
            Case(
                "login (JSON)", "POST", "/auth/login", 422, json={"username": nul, "password": ""}
            ),
            Case("group name (query)", "POST", "/groups/create-group", 422, params={"name": nul}),
            Case("group name (JSON)", "POST", "/groups/create-group", 422, json={"name": nul}),
            Case("any query argument", "GET", "/users/me", 422, params={"x": nul}),
        ],
    )
    assert (await http.signup("valid", "valid@example.com", PASSWORD)).status_code == 201


# -- the body cap ------------------------------------------------------------------


async def test_every_json_or_form_body_is_capped_at_64_kib(http: HubbubHTTP, me: Account) -> None:
    big_json = {"username": "x" * BODY_LIMIT, "password": "y"}
    big_form = b"username=ada&password=" + b"x" * BODY_LIMIT

    async def chunked() -> AsyncIterator[bytes]:
        # No Content-Length: the cap must hold while the body streams in.
        yield b'{"name": "'
        for _ in range(BODY_LIMIT // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    await check(
        http,
        me.access_token,
        [
            Case("signup", "POST", "/auth/signup", 413, json=signup_json(email="x" * BODY_LIMIT)),
            Case("login (JSON)", "POST", "/auth/login", 413, json=big_json),
            Case("login (form)", "POST", "/auth/login", 413, big_form, FORM),
            Case("group", "POST", "/groups/create-group", 413, json={"name": "x" * BODY_LIMIT}),
            Case("a route that reads no body", "POST", "/groups/1/leave", 413, b"x" * 70_000),
        ],
    )
    response = await http.http.post(
        "/groups/create-group",
        content=chunked(),
        headers={"Authorization": f"Bearer {me.access_token}", **JSON},
    )
    assert response.status_code == 413
    assert str(BODY_LIMIT) in response.json()["detail"]


async def test_uploads_keep_their_own_limit(http: HubbubHTTP, me: Account) -> None:
    data = encoded_image("PNG", (200, 200), noisy=True)
    assert len(data) > BODY_LIMIT
    response = await http.post(
        "/upload/image", me.access_token, files={"file": ("a.png", data, "image/png")}
    )
    assert response.status_code == 200, response.text


# -- email addresses --------------------------------------------------------------

REFUSED_EMAILS = [
    "<script>@x.cc",
    '"q"@x.cc',
    "\u00e4@x.cc",
    "caf\u00e9@example.com",
    "a@b.c",
    "a b@x.cc",
    "a@x.cc\n",
    ".a@x.cc",
    "a..b@x.cc",
    "a@-x.cc",
    "a@x_y.cc",
    "a\t@x.cc",
    "a@[127.0.0.1]",
    "x" * 65 + "@example.com",
    "a@" + "b" * 64 + ".com",
]
ACCEPTED_EMAILS = [
    "ada@example.com",
    "First.Last+tag@mail.example.co.uk",
    "o'brien@example.ie",
    "x_y-z@sub-domain.example.org",
    "user@xn--bcher-kva.example",
    "x" * 64 + "@example.com",
]


async def test_email_validation_refuses_odd_addresses_and_accepts_ordinary_ones(
    http: HubbubHTTP,
) -> None:
    refused = [
        (email, (await http.signup(f"r{i}", email, PASSWORD)).status_code)
        for i, email in enumerate(REFUSED_EMAILS)
    ]
    accepted = [
        (email, (await http.signup(f"a{i}", email, PASSWORD)).status_code)
        for i, email in enumerate(ACCEPTED_EMAILS)
    ]
    assert refused == [(email, 422) for email in REFUSED_EMAILS]
    assert accepted == [(email, 201) for email in ACCEPTED_EMAILS]


async def test_the_node_answers_after_all_of_it(node: Node) -> None:
    async with httpx.AsyncClient(base_url=node.url) as client:
        nested_signup = await client.post("/auth/signup", content=nested(100_000), headers=JSON)
        assert nested_signup.status_code == 413  # 200 KB: over the cap before any parsing
        assert (await client.get("/health/live")).status_code == 200
