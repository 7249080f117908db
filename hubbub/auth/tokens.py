"""JWT access and refresh tokens: pure functions, no I/O.

Each token carries ``sub`` (the user id, as a string), ``name``, ``type`` (``access``
or ``refresh``), ``iat`` and ``exp``. A refresh token is never accepted where an access
token is expected, and the reverse.
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


@attrs.frozen
class TokenIssuer:
    secret: str
    access_ttl: int
    refresh_ttl: int

    def issue(
        self, user_id: int, username: str, token_type: TokenType, now: float | None = None
    ) -> str:
        issued = int(time.time() if now is None else now)
        ttl = self.access_ttl if token_type == "access" else self.refresh_ttl
        payload = {
            "sub": str(user_id),
            "name": username,
            "type": token_type,
            "iat": issued,
            "exp": issued + ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(payload, self.secret, algorithm=ALGORITHM)

    def issue_pair(self, user_id: int, username: str) -> dict[str, str]:
        """The login/refresh answer of docs/contract.md."""
        return {
            "access_token": self.issue(user_id, username, "access"),
            "refresh_token": self.issue(user_id, username, "refresh"),
            "token_type": "bearer",
        }

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
        return Claims(user_id, str(payload.get("name", "")), expected, int(payload["exp"]))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
