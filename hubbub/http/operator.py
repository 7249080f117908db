"""Who may read the operator page's data: the one credential check for ``/ops``.

Today the credential is ``HUBBUB_OPS_TOKEN``; server API keys plug in here, in
``is_operator``, and every operator route follows.
"""

from __future__ import annotations

import hmac

from quart import request

from hubbub.auth.tokens import bearer_token
from hubbub.config import Settings
from hubbub.http.context import context
from hubbub.http.errors import ApiError

UNAUTHORIZED = "operator credential required: Authorization: Bearer <HUBBUB_OPS_TOKEN>"


def is_operator(authorization: str | None, settings: Settings) -> bool:
    """True if ``authorization`` (an ``Authorization`` header value) carries the operator
    credential. With no ``ops_token`` configured nobody is an operator. Compared in
    constant time, so the answer's timing tells nothing of the token."""
    offered = bearer_token(authorization)
    expected = settings.ops_token
    if offered is None or expected is None:
        return False
    return hmac.compare_digest(offered.encode(), expected.encode())


def require_operator() -> None:
    """Raise 401 (with ``detail``) unless the current request carries the credential."""
    if not is_operator(request.headers.get("Authorization"), context().settings):
        raise ApiError(401, UNAUTHORIZED, {"WWW-Authenticate": 'Bearer realm="hubbub-ops"'})
