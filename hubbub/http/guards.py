"""Who is calling: the bearer access token of the current request.

hubbub's own access token is checked first. With the product's keys configured
(``HttpContext.product_sign_in``), a bearer token that is not one is then checked as a
product token, by a hook that runs before the handler: a user seen for the first time
is provisioned, which needs storage, and ``caller()`` stays synchronous for every
handler that calls it.
"""

from __future__ import annotations

from quart import Quart, g, request

from hubbub.auth.product_users import OWN_REFUSAL
from hubbub.auth.tokens import Claims, InvalidToken, bearer_token
from hubbub.http.context import context
from hubbub.http.errors import ApiError

#: Where the hook leaves the caller's claims, or the reason their token was refused.
_CALLER = "hubbub_caller"
#: Paths that never take a user's token: the server API takes its keys, ``/auth/`` takes
#: hubbub's own tokens, health and media need none. No product token is checked there
#: (and so no user provisioned).
_NO_USER_TOKENS = ("/api/", "/auth/", "/health/", "/media/", "/metrics")


def caller() -> Claims:
    """The verified access-token claims of the caller (hubbub's own token, or the
    product's as the hook resolved it), or 401."""
    resolved = g.get(_CALLER)
    if isinstance(resolved, Claims):
        return resolved
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise ApiError(401, "missing bearer token")
    if isinstance(resolved, str):
        raise ApiError(401, resolved)
    try:
        return context().tokens.verify(token, "access")
    except InvalidToken:
        raise ApiError(401, OWN_REFUSAL) from None


def install_product_tokens(app: Quart) -> None:
    """With product tokens configured, resolve the caller before the handler runs:
    hubbub's own access token first, else the product's (its user provisioned if new);
    ``caller()`` answers with the outcome. Without them, ``caller()`` alone checks."""

    @app.before_request
    async def resolve_caller() -> None:
        sign_in = context().product_sign_in
        if sign_in is None or request.path.startswith(_NO_USER_TOKENS):
            return
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            return
        try:
            claims = context().tokens.verify(token, "access")
        except InvalidToken:
            try:
                claims = await sign_in.authenticate(token)
            except InvalidToken as refusal:
                # Answered (and so logged, once) by caller(), if the handler asks.
                setattr(g, _CALLER, str(refusal))
                return
        setattr(g, _CALLER, claims)
