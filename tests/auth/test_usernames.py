"""Usernames derived from a product token (hubbub/auth/usernames.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubbub.auth.usernames import RANDOM_ATTEMPTS, USERNAME, username_candidates, username_from


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ada", "ada"),
        ("Ada Lovelace", "Ada_Lovelace"),
        ("Zoë Ünal", "Zoe_Unal"),
        ("  --_lead.trail_--  ", "lead.trail"),
        ("auth0|5f7c8ec7c33c6c004bbafe82", "auth0_5f7c8ec7c33c6c004bbafe82"),
        ("alice@example.com", "alice_example.com"),
        ("x" * 40, "x" * 32),
        ("日本語", None),
        ("", None),
        ("___", None),
    ],
)
def test_username_from(text: str, expected: str | None) -> None:
    assert username_from(text) == expected


def test_the_hint_comes_first_then_the_subject_then_a_hash() -> None:
    assert next(username_candidates("Ada Lovelace", "ext-1")) == "Ada_Lovelace"
    assert next(username_candidates(None, "ext-1")) == "ext-1"
    assert next(username_candidates("日本語", "ext-1")) == "ext-1"
    assert next(username_candidates(None, "日本語")).startswith("user-")


def test_the_first_alternative_is_the_same_everywhere_then_random_ones() -> None:
    first = list(username_candidates("ada", "ext-1"))
    second = list(username_candidates("ada", "ext-1"))
    assert first[:2] == second[:2]
    assert first[1].startswith("ada-") and first[1] != "ada"
    assert len(first) == 2 + RANDOM_ATTEMPTS
    assert len(set(first)) == len(first)


@given(st.one_of(st.none(), st.text(max_size=80)), st.text(min_size=1, max_size=300))
def test_every_candidate_is_a_valid_username(hint: str | None, subject: str) -> None:
    for candidate in username_candidates(hint, subject):
        assert USERNAME.fullmatch(candidate), candidate
