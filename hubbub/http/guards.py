"""Who is calling: the bearer access token of the current request."""

from __future__ import annotations

from quart import request

from hubbub.auth.tokens import Claims, InvalidToken, bearer_token
from hubbub.http.context import context
from hubbub.http.errors import ApiError


def caller() -> Claims:
    """The verified access-token claims of the caller, or 401."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise ApiError(401, "missing bearer token")
    try:
        return context().tokens.verify(token, "access")
    except InvalidToken:
        raise ApiError(401, "invalid or expired token") from None
