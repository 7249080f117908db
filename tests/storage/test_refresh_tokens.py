"""The refresh-token part of the ``Storage`` contract, on every backend: rotation spends a
token once, a replay revokes its family, and logout revokes a family or a user's all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import trio

from hubbub.storage import InvalidData, SpentRefreshToken, Storage, User

LATER = datetime.now(UTC) + timedelta(days=1)


async def user(storage: Storage, name: str = "alice") -> User:
    return await storage.create_user(name, f"{name}@example.org", "hash")


async def test_a_recorded_token_is_spent_once(storage: Storage) -> None:
    alice = await user(storage)
    await storage.record_refresh_token("t1", alice.id, "f1", LATER)
    assert await storage.spend_refresh_token("t1") == SpentRefreshToken(alice.id, "f1", False)
    # Its successor, issued into the same family, is spent in turn.
    await storage.record_refresh_token("t2", alice.id, "f1", LATER)
    assert await storage.spend_refresh_token("t2") == SpentRefreshToken(alice.id, "f1", False)


async def test_a_spent_token_presented_again_revokes_its_whole_family(storage: Storage) -> None:
    alice = await user(storage)
    await storage.record_refresh_token("t1", alice.id, "f1", LATER)
    await storage.record_refresh_token("other", alice.id, "f2", LATER)
    await storage.spend_refresh_token("t1")
    await storage.record_refresh_token("t2", alice.id, "f1", LATER)
    assert await storage.spend_refresh_token("t1") == SpentRefreshToken(alice.id, "f1", True)
    assert await storage.spend_refresh_token("t2") is None
    # A token issued into the family after the replay is refused too.
    await storage.record_refresh_token("t3", alice.id, "f1", LATER)
    assert await storage.spend_refresh_token("t3") is None
    assert await storage.spend_refresh_token("t1") == SpentRefreshToken(alice.id, "f1", True)
    # Another login of the same user is not touched.
    assert await storage.spend_refresh_token("other") == SpentRefreshToken(alice.id, "f2", False)


async def test_unknown_and_expired_tokens_are_none(storage: Storage) -> None:
    alice = await user(storage)
    await storage.record_refresh_token("old", alice.id, "f1", datetime.now(UTC) - timedelta(1))
    assert await storage.spend_refresh_token("old") is None
    assert await storage.spend_refresh_token("never issued") is None
    assert await storage.spend_refresh_token("nul\x00") is None


async def test_revoking_a_family_or_a_user(storage: Storage) -> None:
    alice, bob = await user(storage, "alice"), await user(storage, "bob")
    for jti, owner, family in [
        ("a1", alice, "fa1"),
        ("a2", alice, "fa2"),
        ("a3", alice, "fa3"),
        ("b1", bob, "fb1"),
    ]:
        await storage.record_refresh_token(jti, owner.id, family, LATER)
    await storage.revoke_refresh_family("fa1")
    assert await storage.spend_refresh_token("a1") is None
    assert await storage.spend_refresh_token("a2") is not None
    await storage.revoke_user_refresh_tokens(alice.id)
    assert await storage.spend_refresh_token("a3") is None
    await storage.record_refresh_token("a4", alice.id, "fa2", LATER)  # into a revoked family
    assert await storage.spend_refresh_token("a4") is None
    assert await storage.spend_refresh_token("b1") == SpentRefreshToken(bob.id, "fb1", False)
    # A later login is a new family, untouched by what was revoked before it.
    await storage.record_refresh_token("a5", alice.id, "fa5", LATER)
    assert await storage.spend_refresh_token("a5") is not None
    await storage.revoke_refresh_family("no such family")
    await storage.revoke_user_refresh_tokens(2**70)


async def test_of_concurrent_spends_of_one_token_exactly_one_wins(storage: Storage) -> None:
    alice = await user(storage)
    await storage.record_refresh_token("t1", alice.id, "f1", LATER)
    answers = []

    async def spend() -> None:
        answers.append(await storage.spend_refresh_token("t1"))

    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(spend)
    assert sorted(a.reused for a in answers) == [False] + [True] * 5


@pytest.mark.parametrize(
    ("jti", "owner", "family"),
    [("t\x00", None, "f"), ("t", None, "f\x00"), ("t", 2**70, "f"), ("t", 10_000, "f")],
)
async def test_recording_what_cannot_be_stored_is_invalid(
    storage: Storage, jti: str, owner: int | None, family: str
) -> None:
    alice = await user(storage)
    with pytest.raises(InvalidData):
        await storage.record_refresh_token(jti, owner or alice.id, family, LATER)


async def test_a_jti_is_recorded_once(storage: Storage) -> None:
    alice = await user(storage)
    await storage.record_refresh_token("t1", alice.id, "f1", LATER)
    with pytest.raises(InvalidData):
        await storage.record_refresh_token("t1", alice.id, "f2", LATER)
    assert await storage.spend_refresh_token("t1") == SpentRefreshToken(alice.id, "f1", False)
