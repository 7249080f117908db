"""Tokens the embedding product signs for its users: strict verification, pure, no I/O.

The product signs with its own private key; hubbub holds only public keys (loaded by
``product_keys``). A token is accepted only if all of this holds:

- its header names the algorithm of the key it is checked against, and that algorithm
  follows from the key's type (RSA: RS256, EC P-256: ES256, Ed25519/Ed448: EdDSA). So
  ``none``, every HS* (among them an HS256 token "signed" with the public key's PEM as
  its secret) and any algorithm the key was not made for are refused before any
  signature is checked. With a JWKS the header's ``kid`` picks the key; with one PEM
  key ``kid`` is ignored. ``jku``, ``jwk``, ``x5u`` and the like are never followed;
  a ``crit`` header is refused (no extension is understood);
- the signature verifies under that key;
- ``exp`` is present, a number, and not more than ``leeway`` (at most 60) seconds past;
  ``nbf`` and ``iat``, if present, are numbers not more than ``leeway`` in the future;
- ``iss`` equals the configured issuer and ``aud`` is (or, as a list, contains) the
  configured audience, compared as exact strings;
- ``sub`` is a non-empty string of at most 255 characters that storage can hold: it is
  the user's ``external_id``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from typing import Any

import attrs
import jwt

from hubbub.storage.values import storable

#: The most leeway the clocks of the product and hubbub get, seconds.
MAX_LEEWAY = 60
SUBJECT_MAX = 255
#: Claims whose values must be numbers (seconds since the epoch) when present.
_TIMES = ("exp", "nbf", "iat")
_ALG = re.compile(r"[A-Za-z0-9]{1,10}")


class RefusedToken(Exception):
    """The token is not a valid product token; ``reason`` says why, in a few words
    (short enough for a WebSocket close reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class VerificationKey:
    """One public key of the product and the one algorithm it verifies."""

    algorithm: str
    #: A ``cryptography`` public key object.
    key: Any
    #: Its JWKS ``kid``; None for a key from a PEM file.
    kid: str | None = None


@attrs.frozen
class ProductClaims:
    """What hubbub takes from a verified product token."""

    #: ``sub``: the user's ``external_id``.
    subject: str
    #: ``preferred_username``, else ``name``, if the token carries one (not yet a valid
    #: username: ``usernames.username_candidates`` makes one of it).
    name_hint: str | None
    #: ``exp``, seconds since the epoch.
    expires_at: int
    #: ``jti``, if any.
    token_id: str | None


@attrs.frozen
class ProductTokenVerifier:
    """Verifies product tokens against ``keys`` (one PEM key, or a JWKS by ``kid``)."""

    keys: tuple[VerificationKey, ...]
    issuer: str
    audience: str
    #: True: ``keys`` came from a JWKS and a token's ``kid`` picks one.
    by_kid: bool = False
    leeway: int = attrs.field(default=MAX_LEEWAY)
    _index: Mapping[str | None, VerificationKey] = attrs.field(init=False)

    @leeway.validator
    def _check_leeway(self, _attribute: object, value: int) -> None:
        if not 0 <= value <= MAX_LEEWAY:
            raise ValueError(f"leeway must be 0 to {MAX_LEEWAY} seconds")

    def __attrs_post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a verifier needs at least one key")
        if not self.by_kid and len(self.keys) != 1:
            raise ValueError("without a JWKS there is exactly one key")
        object.__setattr__(self, "_index", {key.kid: key for key in self.keys})

    def verify(self, token: str, now: float | None = None) -> ProductClaims:
        """The claims of ``token`` if it passes every check of the module docstring;
        else raise ``RefusedToken``. ``now`` (seconds since the epoch) is for tests."""
        key = self._key_for(_header(token))
        try:
            payload = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                # Times are checked below against ``now``; the rest by PyJWT.
                options={
                    "require": ["exp", "iss", "aud", "sub"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.MissingRequiredClaimError as error:
            raise RefusedToken(f"no {error.claim} claim") from None
        except jwt.InvalidAudienceError:
            raise RefusedToken("wrong audience") from None
        except jwt.InvalidIssuerError:
            raise RefusedToken("wrong issuer") from None
        except jwt.InvalidSignatureError:
            raise RefusedToken("bad signature") from None
        except jwt.exceptions.InvalidSubjectError:
            raise RefusedToken("sub is not a string") from None
        except jwt.PyJWTError:
            raise RefusedToken("malformed token") from None
        return self._claims(payload, time.time() if now is None else now)

    def _key_for(self, header: Mapping[str, Any]) -> VerificationKey:
        if "crit" in header:
            raise RefusedToken("crit header not supported")
        if self.by_kid:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise RefusedToken("no kid in the header")
            key = self._index.get(kid)
            if key is None:
                raise RefusedToken("unknown kid")
        else:
            key = self.keys[0]
        algorithm = header.get("alg")
        if algorithm != key.algorithm:
            # The one defence against alg confusion that matters: the key decides.
            # Named only if it looks like one: the reason may become a close reason.
            shown = algorithm if isinstance(algorithm, str) and _ALG.fullmatch(algorithm) else "?"
            raise RefusedToken(f"algorithm {shown} not accepted")
        return key

    def _claims(self, payload: Mapping[str, Any], now: float) -> ProductClaims:
        times: dict[str, float] = {}
        for claim in _TIMES:
            if claim in payload:
                seconds = _seconds(payload[claim])
                if seconds is None:
                    raise RefusedToken(f"{claim} is not a number")
                times[claim] = seconds
        if now > times["exp"] + self.leeway:
            raise RefusedToken("token expired")
        for claim in ("nbf", "iat"):
            if times.get(claim, now) > now + self.leeway:
                raise RefusedToken(f"{claim} is in the future")
        subject = payload["sub"]
        if not isinstance(subject, str) or not subject:
            raise RefusedToken("sub is empty")
        # Storage refuses NUL and lone surrogates: such a sub is refused here, not there.
        if len(subject) > SUBJECT_MAX or not storable(subject):
            raise RefusedToken("sub is not a usable id")
        token_id = payload.get("jti")
        return ProductClaims(
            subject=subject,
            name_hint=_name_hint(payload),
            expires_at=int(times["exp"]),
            token_id=token_id if isinstance(token_id, str) and token_id else None,
        )


def _header(token: str) -> Mapping[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise RefusedToken("malformed token") from None


def _seconds(value: Any) -> float | None:
    """``value`` as seconds since the epoch, or None if it is no usable number. JSON as
    Python reads it also has NaN and Infinity (a NaN ``exp`` would never expire), and an
    integer too large for a float would fail every sum with the clock."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None


def _name_hint(payload: Mapping[str, Any]) -> str | None:
    for claim in ("preferred_username", "name"):
        value = payload.get(claim)
        if isinstance(value, str) and value.strip() and storable(value):
            return value
    return None
