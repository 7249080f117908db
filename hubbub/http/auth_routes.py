"""Sign-up, login, token refresh and logout.

Refresh tokens rotate: each is spent by ``/auth/refresh``, which answers a new pair of the
same family (login). A spent token presented again is a replay: 401, and every token of
that family is revoked, so whoever holds the newest one must log in again. ``/auth/logout``
revokes a family. Access tokens are not recorded: they live out their short lifetime.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from quart import Blueprint, request

from hubbub.auth.passwords import hash_password, verify_password
from hubbub.auth.tokens import Claims, InvalidToken, TokenType, bearer_token, new_family
from hubbub.http.context import context
from hubbub.http.errors import ApiError
from hubbub.http.validation import (
    check_email,
    check_password,
    check_username,
    form_or_json,
    json_body,
    require_text,
)
from hubbub.storage import Conflict

auth = Blueprint("auth", __name__, url_prefix="/auth")


@auth.post("/signup")
async def signup() -> tuple[dict, int]:
    body = await json_body()
    username = check_username(require_text(body, "username"))
    email = check_email(require_text(body, "email"))
    password = check_password(require_text(body, "password"))
    password_hash = await hash_password(password)
    try:
        user = await context().storage.create_user(username, email, password_hash)
    except Conflict as conflict:
        raise ApiError(409, f"{conflict.field} already taken") from None
    return {"Success": "User created", "id": user.id, "username": user.username}, 201


@auth.post("/login")
async def login() -> dict:
    """Tokens for a username and password. Failed attempts are throttled per username and
    per client address (throttle.py): past the limit, 429 with ``Retry-After``."""
    body = await form_or_json()
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ApiError(422, "username and password are required")
    throttle, address = context().login_throttle, request.remote_addr or ""
    wait = throttle.attempt(username, address)
    if wait is not None:
        raise ApiError(
            429,
            f"too many failed logins: try again in {wait} seconds",
            {"Retry-After": str(wait)},
        )
    user = await context().storage.user_by_username(username)
    ok = await verify_password(user.password_hash if user else None, password)
    if user is None or not ok:
        raise ApiError(401, "incorrect username or password")
    throttle.succeeded(username, address)
    return await issue_tokens(user.id, user.username)


async def issue_tokens(user_id: int, username: str, family: str | None = None) -> dict:
    """A new access and refresh pair, of ``family`` or of a new one (a login), its refresh
    token recorded so that it can be spent once; the answer of docs/contract.md."""
    family = family or new_family()
    pair = context().tokens.issue_pair(user_id, username, family)
    expires_at = datetime.fromtimestamp(pair.refresh.expires_at, UTC)
    await context().storage.record_refresh_token(pair.refresh.jti, user_id, family, expires_at)
    return pair.response()


@auth.post("/refresh")
async def refresh() -> dict:
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise ApiError(401, "missing bearer refresh token")
    claims = _verified(token, "refresh")
    user = await context().storage.user_by_id(claims.user_id)
    if user is None or claims.family is None:  # no family: issued before rotation
        raise ApiError(401, "invalid or expired refresh token")
    # The successor is recorded before the token is spent: should spending fail (storage
    # unavailable), the token is still good for a retry, and the successor, never handed
    # out, expires unused. Should it be a replay, revoking the family covers the successor.
    pair = await issue_tokens(user.id, user.username, claims.family)
    spent = await context().storage.spend_refresh_token(claims.jti)
    if spent is None:
        raise ApiError(401, "invalid or expired refresh token")
    if spent.reused:
        raise ApiError(401, "refresh token already used: every token of this login is revoked")
    return pair


@auth.post("/logout")
async def logout() -> tuple[str, int]:
    """End one login: the refresh token in the body (JSON or form ``refresh_token``), or
    the bearer token (access or refresh), names it; every token of its family is revoked."""
    presented = await _body_refresh_token()
    if presented is not None:
        claims = _verified(presented, "refresh")
    else:
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            raise ApiError(401, "missing refresh_token or bearer token")
        claims = _verified(token, "access", "refresh")
    if claims.family is None:  # issued before families: end every login of the user
        await context().storage.revoke_user_refresh_tokens(claims.user_id)
    else:
        await context().storage.revoke_refresh_family(claims.family)
    return "", 204


def _verified(token: str, *kinds: TokenType) -> Claims:
    """The claims of ``token``, valid as the first of ``kinds`` it is; else 401."""
    for kind in kinds:
        with contextlib.suppress(InvalidToken):
            return context().tokens.verify(token, kind)
    raise ApiError(401, f"invalid or expired {' or '.join(kinds)} token")


async def _body_refresh_token() -> str | None:
    """``refresh_token`` of a form or JSON body, if there is one. Any other body (none,
    not an object, not UTF-8) names no token: the bearer token is looked at instead."""
    if not await request.get_data():
        return None
    try:
        value = (await form_or_json()).get("refresh_token")
    except ApiError as error:
        if error.status != 422:
            raise
        return None
    return value if isinstance(value, str) and value else None
