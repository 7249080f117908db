"""The product's own tokens end to end (docs/integrations.md), on both backends: a node
configured with the product's public key (or JWKS) takes the product's tokens over HTTP
and WebSocket beside hubbub's own, provisions a first-seen user once, and refuses every
token that is not strictly valid (401, 1008)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from hubbub.client import ChatClient, HubbubHTTP
from hubbub.node import Node
from tests.helpers.product_tokens import (
    ALGORITHMS,
    ProductKey,
    claims,
    hs256_with,
    make_key,
    settings_for,
    unsigned,
    write_jwks,
    write_pem,
)
from tests.helpers.users import register

NodeFactory = Callable[..., Any]


async def me(http: HubbubHTTP, token: str) -> dict[str, Any]:
    """``GET /users/me`` with ``token``, which must be accepted."""
    answer = await http.get("/users/me", token)
    assert answer.status_code == 200, answer.text
    return answer.json()


def same_user(profile: dict[str, Any], other: dict[str, Any]) -> bool:
    """The same user (presence and last_seen may differ between two reads)."""
    fields = ("id", "username", "email")
    return [profile[f] for f in fields] == [other[f] for f in fields]


async def speaks_as(node: Node, token: str, author_id: int, recipient: Any) -> None:
    """A WebSocket opened with ``token`` works, and sends as ``author_id``: the recipient
    (a hubbub user with their own token) gets the message from that author."""
    async with (
        ChatClient.connect(node.url, recipient.access_token) as inbox,
        ChatClient.connect(node.url, token) as chat,
    ):
        await chat.send({"type": "ping"})
        assert await chat.receive_type("pong") == {"type": "pong"}
        text = f"hello from {author_id} at {time.monotonic_ns()}"
        ack = await chat.send_direct(recipient.id, text, client_id=text)
        assert ack["type"] == "ack", ack
        received = await inbox.receive_where(
            lambda frame: frame["type"] == "message" and frame.get("message") == text
        )
        assert received["author_id"] == author_id


async def refused(node: Node, http: HubbubHTTP, token: str) -> tuple[str, str | None]:
    """Assert ``token`` gets 401 over HTTP and 1008 over WebSocket; the two reasons."""
    answer = await http.get("/users/me", token)
    assert answer.status_code == 401, answer.text
    async with ChatClient.connect(node.url, token) as chat:
        code, reason = await chat.wait_close()
    assert code == 1008
    return answer.json()["detail"], reason


@pytest.fixture
def product_node(tmp_path: Path, node_factory: NodeFactory) -> Callable[..., Any]:
    """``async with product_node(key) as (node, http):`` a node that takes ``key``'s tokens
    (with ``jwks=True``, ``keys`` as a JWKS document)."""

    @asynccontextmanager
    async def start(*keys: ProductKey, jwks: bool = False) -> AsyncIterator[tuple[Node, Any]]:
        path = write_jwks(tmp_path, *keys) if jwks else write_pem(tmp_path, keys[0])
        async with (
            node_factory(**settings_for(path, jwks=jwks)) as node,
            HubbubHTTP(node.url) as http,
        ):
            yield node, http

    return start


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_product_tokens_sign_a_user_in_over_http_and_websocket(
    product_node: Callable[..., Any], algorithm: str
) -> None:
    key = make_key(algorithm)
    subject = f"product-{algorithm}-42"
    async with product_node(key) as (node, http):
        hubbub_user = await register(http, "own")
        first = key.sign(claims(subject, preferred_username=f"ada_{algorithm}"))
        profile = await me(http, first)
        assert profile["username"] == f"ada_{algorithm}"
        assert profile["email"] is None
        await speaks_as(node, first, profile["id"], hubbub_user)

        # The same user again, with a later token: not provisioned twice.
        again = key.sign(claims(subject, preferred_username="renamed", jti="second"))
        assert same_user(await me(http, again), profile)
        await speaks_as(node, again, profile["id"], hubbub_user)
        stored = await node.storage.user_by_external_id(subject)
        assert stored is not None and stored.id == profile["id"]
        names = [user["username"] for user in (await http.get("/users/all", again)).json()]
        assert sorted(names) == sorted([hubbub_user.username, f"ada_{algorithm}"])

        # hubbub's own tokens keep working beside the product's.
        assert (await me(http, hubbub_user.access_token))["id"] == hubbub_user.id


async def test_every_invalid_product_token_is_refused(product_node: Callable[..., Any]) -> None:
    key = make_key("RS256")
    now = int(time.time())
    cases = {
        "expired beyond the leeway": (key.sign(claims(exp=now - 90)), "token expired"),
        "wrong issuer": (key.sign(claims(iss="https://evil.example")), "wrong issuer"),
        "wrong audience": (key.sign(claims(aud="another-app")), "wrong audience"),
        "no sub": (key.sign({n: v for n, v in claims().items() if n != "sub"}), "no sub claim"),
        "empty sub": (key.sign({**claims(), "sub": ""}), "sub is empty"),
        "alg none": (unsigned(claims()), "algorithm none not accepted"),
        "another key": (make_key("RS256").sign(claims()), "bad signature"),
        "another key type": (make_key("ES256").sign(claims()), "algorithm ES256 not accepted"),
        # RS/HS confusion: the public key (which is public) used as an HMAC secret.
        "HS256 with the public key": (hs256_with(key.public_pem, claims()), None),
        "not a JWT": ("certainly-not-a-jwt", "malformed token"),
    }
    async with product_node(key) as (node, http):
        for case, (token, reason) in cases.items():
            detail, close_reason = await refused(node, http, token)
            if reason is None:  # an HS* token is hubbub's own kind: hubbub's refusal
                assert detail == close_reason == "invalid or expired token", case
            else:
                assert detail.startswith("invalid product token: "), (case, detail)
                assert reason in detail and close_reason == detail, (case, close_reason)
        assert await node.storage.list_users() == []


async def test_a_token_within_the_leeway_is_accepted(product_node: Callable[..., Any]) -> None:
    key = make_key("EdDSA")
    async with product_node(key) as (node, http):
        hubbub_user = await register(http, "own")
        # Expired 20 s ago: within the 60 s of leeway, on HTTP and on a WebSocket (which
        # is not closed at once as expired either).
        token = key.sign(claims(exp=int(time.time()) - 20))
        profile = await me(http, token)
        await speaks_as(node, token, profile["id"], hubbub_user)


async def test_a_taken_username_gets_a_unique_one(product_node: Callable[..., Any]) -> None:
    key = make_key("ES256")
    async with product_node(key) as (_node, http):
        taken = await register(http, "carol")
        profile = await me(http, key.sign(claims(preferred_username=taken.username)))
        assert profile["id"] != taken.id
        assert profile["username"].startswith(f"{taken.username}-")
        # Without preferred_username, name; without either, the sub.
        named = await me(http, key.sign(claims(name="Carol Danvers")))
        assert named["username"] == "Carol_Danvers"
        plain = await me(http, key.sign(claims("crm:4711")))
        assert plain["username"] == "crm_4711"


async def test_a_jwks_with_two_keys_picks_each_by_kid(product_node: Callable[..., Any]) -> None:
    first, second = make_key("RS256", kid="2026-01"), make_key("EdDSA", kid="2026-07")
    async with product_node(first, second, jwks=True) as (node, http):
        hubbub_user = await register(http, "own")
        for key in (first, second):
            token = key.sign(claims(f"user-of-{key.kid}"))
            profile = await me(http, token)
            await speaks_as(node, token, profile["id"], hubbub_user)
        unknown = make_key("RS256", kid="2025-01").sign(claims())
        detail, _ = await refused(node, http, unknown)
        assert detail == "invalid product token: unknown kid"
        # A known kid on a token the other key signed does not verify.
        forged = make_key("RS256", kid=first.kid).sign(claims())
        assert (await refused(node, http, forged))[0] == "invalid product token: bad signature"
