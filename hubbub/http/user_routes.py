"""The caller's profile and the user directory."""

from __future__ import annotations

from quart import Blueprint

from hubbub.http.context import chat, context
from hubbub.http.errors import ApiError
from hubbub.http.guards import caller

users = Blueprint("users", __name__, url_prefix="/users")


def iso(value) -> str | None:  # type: ignore[no-untyped-def]
    return value.isoformat() if value is not None else None


@users.get("/me")
async def me() -> dict:
    claims = caller()
    user = await context().storage.user_by_id(claims.user_id)
    if user is None:
        raise ApiError(401, "the token's user no longer exists")
    chat = context().chat
    online = bool(chat and await chat.is_online(user.id))
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "presence_status": "online" if online else "offline",
        "last_seen": iso(user.last_seen),
    }


@users.get("/all")
async def all_users() -> list[dict[str, object]]:
    caller()
    return [
        {"id": ref.id, "username": ref.username} for ref in await context().storage.list_users()
    ]


@users.get("/presence/<int:user_id>")
async def presence(user_id: int) -> dict:
    me = caller()
    answer = await chat().presence_of(user_id, me.user_id)
    if answer is None:
        raise ApiError(404, "no such user")
    return {
        "user_id": answer.user_id,
        "username": answer.username,
        "presence_status": answer.presence_status,
        "last_seen": answer.last_seen_iso,
    }


@users.get("/online")
async def online() -> dict:
    me = caller()
    return {"online": await chat().online_users(me.user_id)}
