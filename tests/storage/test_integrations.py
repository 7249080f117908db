"""The integrations part of the ``Storage`` contract, on every backend: provisioning users
by the product's ``external_id`` and server API keys."""

from __future__ import annotations

import hashlib

import pytest
import trio

from hubbub.auth.passwords import hash_password, verify_password
from hubbub.storage import Conflict, InvalidData, Storage


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def test_provisioning_creates_once_then_answers_the_same_user(storage: Storage) -> None:
    user, created = await storage.provision_user(username="alice", external_id="prod-1")
    assert created and user.username == "alice" and user.external_id == "prod-1"
    # Idempotent: the same external id answers the same user, whatever else is asked.
    again, created = await storage.provision_user(username="other", external_id="prod-1")
    assert (again.id, again.username, created) == (user.id, "alice", False)
    assert await storage.user_by_external_id("prod-1") == again
    assert await storage.user_by_id(user.id) == again
    assert await storage.user_by_external_id("PROD-1") is None  # exact, not case-folded
    assert await storage.user_by_external_id("nul\x00") is None


async def test_a_user_without_email_or_password_shows_neither(storage: Storage) -> None:
    one, _ = await storage.provision_user(username="one", external_id="e1")
    two, _ = await storage.provision_user(username="two", external_id="e2")
    # Two users without an email: the unique rule on emails does not bite.
    assert one.email is None and two.email is None
    assert one.password_hash is None
    assert (await storage.user_by_username("one")) == one
    # No password verifies against the stored "no password".
    assert not await verify_password(one.password_hash, "")
    assert not await verify_password(one.password_hash, "!no-password")
    # Signed-up users keep theirs and have no external id.
    signed = await storage.create_user("carol", "carol@example.org", "hash")
    assert (signed.email, signed.password_hash, signed.external_id) == (
        "carol@example.org",
        "hash",
        None,
    )


async def test_a_provisioned_user_with_email_and_password(storage: Storage) -> None:
    password_hash = await hash_password("correct horse")
    user, created = await storage.provision_user(
        username="dave", external_id="e-dave", email="dave@example.org", password_hash=password_hash
    )
    assert created and user.email == "dave@example.org"
    assert await verify_password(user.password_hash, "correct horse")


async def test_provisioning_refuses_a_taken_username_or_email(storage: Storage) -> None:
    await storage.create_user("alice", "alice@example.org", "hash")
    with pytest.raises(Conflict) as refused:
        await storage.provision_user(username="ALICE", external_id="e1")
    assert refused.value.field == "username"
    with pytest.raises(Conflict) as refused:
        await storage.provision_user(username="x", external_id="e2", email="Alice@example.org")
    assert refused.value.field == "email"
    assert await storage.user_by_external_id("e1") is None
    with pytest.raises(InvalidData):
        await storage.provision_user(username="y", external_id="bad\x00")


async def test_concurrent_provisioning_of_one_external_id_creates_one_user(
    storage: Storage,
) -> None:
    answers: list[tuple[int, bool]] = []

    async def provision() -> None:
        user, created = await storage.provision_user(username="racer", external_id="same")
        answers.append((user.id, created))

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(provision)
    assert len({user_id for user_id, _ in answers}) == 1
    assert sorted(created for _, created in answers) == [False, False, False, True]


async def test_api_keys_are_created_found_by_hash_listed_and_revoked(storage: Storage) -> None:
    key = await storage.create_api_key("backend", sha("hbk_one"))
    assert key.name == "backend" and key.revoked_at is None
    assert await storage.live_api_key(sha("hbk_one")) == key
    assert await storage.live_api_key(sha("hbk_unknown")) is None
    with pytest.raises(Conflict) as refused:
        await storage.create_api_key("backend", sha("hbk_two"))
    assert refused.value.field == "api_key"

    assert await storage.revoke_api_key("backend")
    assert not await storage.revoke_api_key("backend")
    assert not await storage.revoke_api_key("never")
    assert await storage.live_api_key(sha("hbk_one")) is None
    # The name of a revoked key may be used again.
    second = await storage.create_api_key("backend", sha("hbk_two"))
    listed = await storage.api_keys()
    assert [k.id for k in listed] == [key.id, second.id]
    assert listed[0].revoked_at is not None and listed[1].revoked_at is None
    assert await storage.live_api_key(sha("hbk_two")) == second


async def test_a_user_without_external_id_is_always_created(storage: Storage) -> None:
    one, created = await storage.provision_user(username="bot1", external_id=None)
    two, created_too = await storage.provision_user(username="bot2", external_id=None)
    assert created and created_too and one.id != two.id
    assert one.external_id is None and one.email is None
    with pytest.raises(Conflict):
        await storage.provision_user(username="bot1", external_id=None)
