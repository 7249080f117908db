"""The server API's users: provisioning, signing in, disconnecting, presence
(docs/integrations.md, "Server API"). Every route needs an API key (``api_guard``)."""

from __future__ import annotations

from quart import request

from hubbub.auth.passwords import hash_password
from hubbub.http.api_guard import api_blueprint
from hubbub.http.auth_routes import issue_tokens
from hubbub.http.context import chat, context
from hubbub.http.errors import ApiError
from hubbub.http.validation import (
    check_email,
    check_password,
    check_username,
    json_body,
    parse_int,
    require_text,
)
from hubbub.storage import Conflict, User

api_users = api_blueprint("api_users")

EXTERNAL_ID_MAX = 255
#: Users one presence call may ask about (as many as a WebSocket ``presence`` query).
PRESENCE_MAX = 200


@api_users.post("/users")
async def provision() -> tuple[dict, int]:
    """Create a user, or (an ``external_id`` already known) answer the existing one: 201
    for a new user, 200 for a known one. ``email`` and ``password`` are optional: without
    a password the user signs in only through ``/api/v1/users/{id}/tokens``."""
    body = await json_body()
    username = check_username(require_text(body, "username"))
    email = _optional(body, "email")
    password = _optional(body, "password")
    external_id = _optional(body, "external_id")
    if email is not None:
        check_email(email)
    if password is not None:
        check_password(password)
    if external_id is not None:
        _check_external_id(external_id)
        # Known already: answered without hashing a password that would not be used.
        known = await context().storage.user_by_external_id(external_id)
        if known is not None:
            return _user_object(known), 200
    password_hash = None if password is None else await hash_password(password)
    try:
        user, created = await context().storage.provision_user(
            username=username, external_id=external_id, email=email, password_hash=password_hash
        )
    except Conflict as conflict:
        raise ApiError(409, f"{conflict.field} already taken") from None
    return _user_object(user), 201 if created else 200


@api_users.post("/users/<int:user_id>/tokens")
async def tokens(user_id: int) -> dict:
    """A new login of the user (access and refresh token), as ``/auth/login`` answers it."""
    user = await _user(user_id)
    return await issue_tokens(user.id, user.username)


@api_users.post("/users/<int:user_id>/disconnect")
async def disconnect(user_id: int) -> tuple[dict, int]:
    """Close every connection of the user, on every node, with 1008. 202: the nodes
    holding them close them as the bus reaches them."""
    await _user(user_id)
    await chat().disconnect(user_id)
    return {"user_id": user_id, "detail": "every connection of the user is being closed"}, 202


@api_users.get("/presence")
async def presence() -> dict:
    """``?user_ids=1,2,3``: each user's presence, in the order asked (duplicates once)."""
    user_ids = _id_list(request.args.get("user_ids", ""))
    queries = chat()
    answers = [await queries.presence_of(user_id) for user_id in user_ids]
    unknown = [str(i) for i, answer in zip(user_ids, answers, strict=True) if answer is None]
    if unknown:
        raise ApiError(404, f"no such user: {', '.join(unknown)}")
    return {
        "presence": [
            {
                "user_id": answer.user_id,
                "presence_status": answer.presence_status,
                "last_seen": answer.last_seen_iso,
            }
            for answer in answers
        ]
    }


async def _user(user_id: int) -> User:
    user = await context().storage.user_by_id(user_id)
    if user is None:
        raise ApiError(404, "no such user")
    return user


def _user_object(user: User) -> dict:
    return {"id": user.id, "username": user.username, "external_id": user.external_id}


def _optional(body: dict, field: str) -> str | None:
    """An optional text field: absent or null is None; else a non-empty string, or 422."""
    if body.get(field) is None:
        return None
    return require_text(body, field)


def _check_external_id(value: str) -> None:
    if len(value) > EXTERNAL_ID_MAX or not value.isprintable():
        raise ApiError(422, f"external_id must be 1 to {EXTERNAL_ID_MAX} printable characters")


def _id_list(raw: str) -> list[int]:
    """Comma-separated user ids, 1 to ``PRESENCE_MAX`` of them; else 422."""
    parts = [part.strip() for part in raw.split(",")] if raw else []
    ids = [parse_int(part) for part in parts]
    if not parts or len(parts) > PRESENCE_MAX or None in ids:
        raise ApiError(
            422,
            f"user_ids must be 1 to {PRESENCE_MAX} comma-separated user ids, e.g. ?user_ids=1,2,3",
        )
    return list(dict.fromkeys(i for i in ids if i is not None))
