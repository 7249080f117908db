"""Who may read the operator page's data: the one credential check for ``/ops``.

The credential is a live server API key (``hubbub api-key create``) or
``HUBBUB_OPS_TOKEN``; every operator route goes through ``require_operator``.
"""

from __future__ import annotations

import hmac

from quart import request

from hubbub.auth.api_keys import key_hash, looks_like_key
from hubbub.auth.tokens import bearer_token
from hubbub.config import Settings
from hubbub.http.context import context
from hubbub.http.errors import ApiError

UNAUTHORIZED = (
    "operator credential required: Authorization: Bearer <a server API key or HUBBUB_OPS_TOKEN>"
)


def is_operator(authorization: str | None, settings: Settings) -> bool:
    """True if ``authorization`` (an ``Authorization`` header value) carries the operator
    credential. With no ``ops_token`` configured nobody is an operator. Compared in
    constant time, so the answer's timing tells nothing of the token."""
    offered = bearer_token(authorization)
    expected = settings.ops_token
    if offered is None or expected is None:
        return False
    return hmac.compare_digest(offered.encode(), expected.encode())


async def require_operator() -> None:
    """Raise 401 (with ``detail``) unless the current request carries the ops token or a
    live server API key (looked up by its hash, so a revoked key stops at once)."""
    authorization = request.headers.get("Authorization")
    ctx = context()
    if is_operator(authorization, ctx.settings):
        return
    offered = bearer_token(authorization)
    if (
        offered is not None
        and looks_like_key(offered)
        and await ctx.storage.live_api_key(key_hash(offered)) is not None
    ):
        return
    raise ApiError(401, UNAUTHORIZED, {"WWW-Authenticate": 'Bearer realm="hubbub-ops"'})
