"""The server API's credential: ``Authorization: Bearer <API key>`` on every ``/api/v1/``
route, checked before anything else of the request is read.

Only a live key is accepted: a key is looked up by its hash on each call, so a key
created or revoked on any node (``hubbub api-key``) counts on every node at once. A
user's access or refresh token is never a key (and a key is never a user's token: the
user routes verify JWTs only), so neither opens the other's routes.
"""

from __future__ import annotations

from quart import Blueprint, request

from hubbub.auth.api_keys import key_hash, looks_like_key
from hubbub.auth.tokens import bearer_token
from hubbub.http.context import context
from hubbub.http.errors import ApiError

PREFIX = "/api/v1"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="hubbub server API"'}


def api_blueprint(name: str) -> Blueprint:
    """A blueprint under ``/api/v1`` whose every route requires a live API key."""
    blueprint = Blueprint(name, __name__, url_prefix=PREFIX)
    blueprint.before_request(require_api_key)
    return blueprint


async def require_api_key() -> None:
    """Return if the request carries a live API key; else 401 saying which is wrong."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise ApiError(401, "missing API key: send Authorization: Bearer <key>", _CHALLENGE)
    if not looks_like_key(token):
        raise ApiError(
            401, "not an API key (a user's token is not accepted on /api/v1/)", _CHALLENGE
        )
    if await context().storage.live_api_key(key_hash(token)) is None:
        raise ApiError(401, "unknown or revoked API key", _CHALLENGE)
