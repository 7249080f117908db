"""The product-token verifier (hubbub/auth/product_tokens.py): pure, keys made here."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256

from hubbub.auth.product_keys import key_from_pem, keys_from_jwks
from hubbub.auth.product_tokens import MAX_LEEWAY, ProductTokenVerifier, RefusedToken
from tests.helpers.product_tokens import (
    ALGORITHMS,
    AUDIENCE,
    ISSUER,
    ProductKey,
    b64,
    claims,
    hs256_with,
    make_key,
    unsigned,
)


def verifier_for(key: ProductKey) -> ProductTokenVerifier:
    return ProductTokenVerifier((key_from_pem(key.public_pem),), issuer=ISSUER, audience=AUDIENCE)


def refusal(verifier: ProductTokenVerifier, token: str, now: float | None = None) -> str:
    with pytest.raises(RefusedToken) as refused:
        verifier.verify(token, now)
    return refused.value.reason


@pytest.fixture(scope="module", params=ALGORITHMS)
def key(request: pytest.FixtureRequest) -> ProductKey:
    return make_key(request.param)


@pytest.fixture(scope="module")
def rsa_key() -> ProductKey:
    return make_key("RS256")


def test_each_key_type_verifies_its_algorithm(key: ProductKey) -> None:
    payload = claims("ext-1", preferred_username="ada", name="Ada Lovelace", jti="t-1")
    verified = verifier_for(key).verify(key.sign(payload))
    assert verified.subject == "ext-1"
    assert verified.name_hint == "ada"
    assert verified.expires_at == payload["exp"]
    assert verified.token_id == "t-1"


def test_name_is_the_hint_without_preferred_username(key: ProductKey) -> None:
    verified = verifier_for(key).verify(key.sign(claims(name="Ada Lovelace")))
    assert verified.name_hint == "Ada Lovelace"
    assert verifier_for(key).verify(key.sign(claims())).name_hint is None


def test_a_token_of_another_key_of_the_same_type_is_refused(key: ProductKey) -> None:
    other = make_key(key.algorithm)
    assert refusal(verifier_for(key), other.sign(claims())) == "bad signature"


def test_the_key_decides_the_algorithm_not_the_token(key: ProductKey) -> None:
    for algorithm in ALGORITHMS:
        if algorithm != key.algorithm:
            token = make_key(algorithm).sign(claims())
            assert refusal(verifier_for(key), token) == f"algorithm {algorithm} not accepted"


def test_alg_none_is_refused(key: ProductKey) -> None:
    assert refusal(verifier_for(key), unsigned(claims())) == "algorithm none not accepted"


def test_hs256_signed_with_the_public_key_as_secret_is_refused(key: ProductKey) -> None:
    token = hs256_with(key.public_pem, claims())
    assert refusal(verifier_for(key), token) == "algorithm HS256 not accepted"


def test_expiry_has_at_most_sixty_seconds_of_leeway(rsa_key: ProductKey) -> None:
    verifier = verifier_for(rsa_key)
    token = rsa_key.sign(claims(exp=1_000_000, iat=None))
    assert verifier.verify(token, now=1_000_000 + MAX_LEEWAY).subject
    assert refusal(verifier, token, now=1_000_000 + MAX_LEEWAY + 0.5) == "token expired"


def test_a_verifier_cannot_be_given_more_leeway(rsa_key: ProductKey) -> None:
    with pytest.raises(ValueError, match="leeway"):
        ProductTokenVerifier(
            (key_from_pem(rsa_key.public_pem),), issuer=ISSUER, audience=AUDIENCE, leeway=61
        )


def test_a_token_not_yet_valid_is_refused(rsa_key: ProductKey) -> None:
    now = time.time()
    verifier = verifier_for(rsa_key)
    assert refusal(verifier, rsa_key.sign(claims(nbf=int(now) + 120)), now) == (
        "nbf is in the future"
    )
    assert refusal(verifier, rsa_key.sign(claims(iat=int(now) + 120)), now) == (
        "iat is in the future"
    )
    assert verifier.verify(rsa_key.sign(claims(nbf=int(now) + 30)), now).subject


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "https://other.example"}, "wrong issuer"),
        ({"iss": ISSUER + "/"}, "wrong issuer"),
        ({"aud": "hubbub-staging"}, "wrong audience"),
        ({"aud": ["other", "hubbub2"]}, "wrong audience"),
        ({"iss": None}, "no iss claim"),
        ({"aud": None}, "no aud claim"),
        ({"exp": None}, "no exp claim"),
        ({"sub": None}, "no sub claim"),
        ({"sub": ""}, "sub is empty"),
        ({"sub": 42}, "sub is not a string"),
        ({"sub": "x" * 256}, "sub is not a usable id"),
        ({"sub": "a\x00b"}, "sub is not a usable id"),
        ({"exp": "tomorrow"}, "exp is not a number"),
        ({"exp": True}, "exp is not a number"),
        ({"iat": "now"}, "iat is not a number"),
    ],
)
def test_claims_are_checked_strictly(
    rsa_key: ProductKey, changes: dict[str, Any], reason: str
) -> None:
    payload = {**claims(), **changes}
    payload = {name: value for name, value in payload.items() if value is not None}
    assert refusal(verifier_for(rsa_key), rsa_key.sign(payload)) == reason


def test_an_audience_list_holding_the_audience_is_accepted(rsa_key: ProductKey) -> None:
    token = rsa_key.sign(claims(aud=["billing", AUDIENCE]))
    assert verifier_for(rsa_key).verify(token).subject


@pytest.mark.parametrize("exp", [float("nan"), float("inf"), 10**400])
def test_an_exp_that_is_no_usable_number_is_refused(rsa_key: ProductKey, exp: Any) -> None:
    # PyJWT may refuse some of these itself ("malformed"); none may be accepted.
    reason = refusal(verifier_for(rsa_key), rsa_key.sign(claims(exp=exp)))
    assert reason in ("exp is not a number", "malformed token")


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "e30.e30.", "....."])
def test_garbage_is_refused_as_malformed(rsa_key: ProductKey, token: str) -> None:
    assert refusal(verifier_for(rsa_key), token) in (
        "malformed token",
        "algorithm ? not accepted",
    )


def test_a_crit_header_is_refused(rsa_key: ProductKey) -> None:
    # PyJWT refuses extensions it does not know; b64 (RFC 7797) it knows, hubbub does not.
    # (PyJWT drops a b64 of true when it signs, so this token is put together by hand.)
    head = b64(json.dumps({"alg": "RS256", "crit": ["b64"], "b64": True}).encode())
    body = b64(json.dumps(claims()).encode())
    signature = rsa_key.private.sign(f"{head}.{body}".encode(), PKCS1v15(), SHA256())
    token = f"{head}.{body}.{b64(signature)}"
    assert refusal(verifier_for(rsa_key), token) == "crit header not supported"
    token = rsa_key.sign(claims(), crit=["hubbub-unknown"], **{"hubbub-unknown": 1})
    assert refusal(verifier_for(rsa_key), token) == "malformed token"


def test_a_jwks_picks_the_key_by_kid() -> None:
    first, second = make_key("RS256", kid="k1"), make_key("EdDSA", kid="k2")
    keys = keys_from_jwks(json.dumps({"keys": [first.public_jwk(), second.public_jwk()]}))
    verifier = ProductTokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, by_kid=True)
    assert verifier.verify(first.sign(claims("one"))).subject == "one"
    assert verifier.verify(second.sign(claims("two"))).subject == "two"
    # A kid names one key: the other key's kid on this key's token does not verify.
    assert refusal(verifier, first.sign(claims(), kid="k2")) == "algorithm RS256 not accepted"
    mislabelled = make_key("RS256", kid="k1")
    assert refusal(verifier, mislabelled.sign(claims())) == "bad signature"
    assert refusal(verifier, make_key("RS256", kid="k3").sign(claims())) == "unknown kid"
    assert refusal(verifier, make_key("RS256").sign(claims())) == "no kid in the header"


def test_a_refusal_reason_fits_a_websocket_close_reason(rsa_key: ProductKey) -> None:
    weird = hs256_with(b"x", claims(), alg="Ü" * 200)
    reason = refusal(verifier_for(rsa_key), weird)
    assert len(f"invalid product token: {reason}".encode()) <= 123
