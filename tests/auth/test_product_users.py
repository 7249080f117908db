"""A product token as a hubbub user (hubbub/auth/product_users.py), on both backends."""

from __future__ import annotations

import pytest
import trio

from hubbub.auth.product_keys import key_from_pem
from hubbub.auth.product_tokens import ProductTokenVerifier
from hubbub.auth.product_users import OWN_REFUSAL, ProductSignIn
from hubbub.auth.tokens import InvalidToken, TokenIssuer
from hubbub.auth.usernames import username_candidates
from hubbub.storage import Storage
from tests.helpers.product_tokens import AUDIENCE, ISSUER, ProductKey, claims, make_key


@pytest.fixture(scope="module")
def key() -> ProductKey:
    return make_key("ES256")


def sign_in_for(key: ProductKey, storage: Storage) -> ProductSignIn:
    verifier = ProductTokenVerifier(
        (key_from_pem(key.public_pem),), issuer=ISSUER, audience=AUDIENCE
    )
    return ProductSignIn(verifier, storage)


async def test_a_first_seen_user_is_provisioned_once(key: ProductKey, storage: Storage) -> None:
    sign_in = sign_in_for(key, storage)
    first = await sign_in.authenticate(key.sign(claims("ext-ada", preferred_username="ada")))
    again = await sign_in.authenticate(key.sign(claims("ext-ada", preferred_username="other")))
    # Another node (its own cache, empty) finds the same user in storage.
    elsewhere = await sign_in_for(key, storage).authenticate(key.sign(claims("ext-ada")))
    assert first.user_id == again.user_id == elsewhere.user_id
    assert first.username == again.username == elsewhere.username == "ada"
    assert (first.type, first.family) == ("access", None)
    stored = await storage.user_by_external_id("ext-ada")
    assert stored is not None and (stored.id, stored.username) == (first.user_id, "ada")
    assert [u.username for u in await storage.list_users()] == ["ada"]


async def test_the_session_lasts_until_exp_plus_the_leeway(
    key: ProductKey, storage: Storage
) -> None:
    payload = claims(jti="j-1")
    signed_in = await sign_in_for(key, storage).authenticate(key.sign(payload))
    assert signed_in.expires_at == payload["exp"] + 60
    assert signed_in.jti == "j-1"


async def test_a_taken_username_gets_a_derived_one(key: ProductKey, storage: Storage) -> None:
    taken = await storage.create_user("ada", "ada@example.com", "hash")
    candidates = list(username_candidates("ada", "ext-2"))
    await storage.create_user(candidates[1], "ada2@example.com", "hash")
    signed_in = await sign_in_for(key, storage).authenticate(
        key.sign(claims("ext-2", preferred_username="ada"))
    )
    assert signed_in.user_id != taken.id
    assert signed_in.username.startswith("ada-")
    assert signed_in.username not in candidates[:2]
    assert (await storage.user_by_username("ada")) == taken


async def test_concurrent_first_tokens_make_one_user(key: ProductKey, storage: Storage) -> None:
    # Two nodes (two caches) see the same new user at once.
    nodes = [sign_in_for(key, storage) for _ in range(4)]
    ids: list[int] = []

    async def sign_in(node: ProductSignIn) -> None:
        ids.append((await node.authenticate(key.sign(claims("ext-race")))).user_id)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for node in nodes:
                nursery.start_soon(sign_in, node)
    assert len(ids) == 4 and len(set(ids)) == 1
    assert len(await storage.list_users()) == 1


async def test_refusals_say_why(key: ProductKey, storage: Storage) -> None:
    sign_in = sign_in_for(key, storage)
    with pytest.raises(InvalidToken, match=r"^invalid product token: wrong audience$"):
        await sign_in.authenticate(key.sign(claims(aud="elsewhere")))
    # A token of hubbub's own kind (HS256) is no product token: hubbub's refusal stands.
    own = TokenIssuer("s" * 32, 60, 60).issue(1, "x", "access", "f", now=0)[0]
    with pytest.raises(InvalidToken, match=f"^{OWN_REFUSAL}$"):
        await sign_in.authenticate(own)
    assert await storage.list_users() == []
