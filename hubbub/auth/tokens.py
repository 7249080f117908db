"""JWT access and refresh tokens: pure functions, no I/O.

Each token carries ``sub`` (the user id, as a string), ``name``, ``type`` (``access``
or ``refresh``), ``iat``, ``exp``, ``jti`` (its own random id) and ``fam``: the family,
one random id per login, which every pair issued by rotating that login's refresh tokens
keeps (storage records refresh tokens by ``jti`` and ``fam`` to spend each once and to
end a login). A refresh token is never accepted where an access token is expected, and
the reverse.
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

import attrs
import jwt

TokenType = Literal["access", "refresh"]
ALGORITHM = "HS256"


class InvalidToken(Exception):
    """Missing, malformed, expired, badly signed, or of the wrong type."""


@attrs.frozen
class Claims:
    user_id: int
    username: str
    type: TokenType
    expires_at: int
    jti: str
    #: None for tokens issued before families existed.
    family: str | None


@attrs.frozen
class TokenPair:
    access_token: str
    refresh_token: str
    #: The refresh token's claims: what storage records of it.
    refresh: Claims

    def response(self) -> dict[str, str]:
        """The login/refresh answer of docs/contract.md."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "bearer",
        }


@attrs.frozen
class TokenIssuer:
    secret: str
    access_ttl: int
    refresh_ttl: int

    def issue(
        self,
        user_id: int,
        username: str,
        token_type: TokenType,
        family: str,
        now: float | None = None,
    ) -> tuple[str, Claims]:
        """A signed token of ``family``, and its claims."""
        issued = int(time.time() if now is None else now)
        ttl = self.access_ttl if token_type == "access" else self.refresh_ttl
        claims = Claims(user_id, username, token_type, issued + ttl, uuid.uuid4().hex, family)
        payload = {
            "sub": str(user_id),
            "name": username,
            "type": token_type,
            "iat": issued,
            "exp": claims.expires_at,
            "jti": claims.jti,
            "fam": family,
        }
        return jwt.encode(payload, self.secret, algorithm=ALGORITHM), claims

    def issue_pair(self, user_id: int, username: str, family: str) -> TokenPair:
        """An access and a refresh token of ``family`` (``new_family()`` for a login)."""
        access, _ = self.issue(user_id, username, "access", family)
        refresh, claims = self.issue(user_id, username, "refresh", family)
        return TokenPair(access, refresh, claims)

    def verify(self, token: str, expected: TokenType) -> Claims:
        """Return the claims of a valid token of type ``expected``; else raise InvalidToken."""
        try:
            payload = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "type", "exp", "iat"]},
            )
            user_id = int(payload["sub"])
        except (jwt.PyJWTError, ValueError, TypeError) as error:
            raise InvalidToken(str(error)) from None
        if payload.get("type") != expected:
            raise InvalidToken(f"expected a {expected} token")
        family = payload.get("fam")
        return Claims(
            user_id,
            str(payload.get("name", "")),
            expected,
            int(payload["exp"]),
            str(payload.get("jti", "")),
            family if isinstance(family, str) and family else None,
        )


def new_family() -> str:
    """A new family id: one per login."""
    return uuid.uuid4().hex


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
