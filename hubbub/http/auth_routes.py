"""Sign-up, login and token refresh."""

from __future__ import annotations

from quart import Blueprint, request

from hubbub.auth.passwords import hash_password, verify_password
from hubbub.auth.tokens import InvalidToken, bearer_token
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
    return context().tokens.issue_pair(user.id, user.username)


@auth.post("/refresh")
async def refresh() -> dict:
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise ApiError(401, "missing bearer refresh token")
    try:
        claims = context().tokens.verify(token, "refresh")
    except InvalidToken:
        raise ApiError(401, "invalid or expired refresh token") from None
    user = await context().storage.user_by_id(claims.user_id)
    if user is None:
        raise ApiError(401, "invalid or expired refresh token")
    return context().tokens.issue_pair(user.id, user.username)
