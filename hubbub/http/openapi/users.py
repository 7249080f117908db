"""``/users``: the caller's profile, the directory, presence (user_routes.py) and blocks
(block_routes.py)."""

from __future__ import annotations

from hubbub.http.openapi._parts import (
    ACCESS,
    ID,
    TEXT,
    TIMESTAMP,
    errors,
    no_content,
    nullable,
    obj,
    ok,
    operation,
    path_id,
)

TAG = "users"

_PRESENCE = {"type": "string", "enum": ["online", "offline"]}

SCHEMAS = {
    "UserRef": obj({"id": ID, "username": TEXT}),
    "Me": obj(
        {
            "id": ID,
            "username": TEXT,
            # null for a user the server API provisioned without one (docs/integrations.md)
            "email": nullable(TEXT),
            "presence_status": _PRESENCE,
            "last_seen": nullable(TIMESTAMP),
        }
    ),
    "Presence": obj(
        {
            "user_id": ID,
            "username": TEXT,
            "presence_status": _PRESENCE,
            "last_seen": nullable(TIMESTAMP),
        }
    ),
}

PATHS = {
    "/users/me": {
        "get": operation(
            "me",
            "The caller's profile (never the password or its hash)",
            ok({"$ref": "#/components/schemas/Me"}),
            tag=TAG,
            security=ACCESS,
        )
    },
    "/users/all": {
        "get": operation(
            "all_users",
            "Every user, by id and username",
            ok({"type": "array", "items": {"$ref": "#/components/schemas/UserRef"}}),
            tag=TAG,
            security=ACCESS,
        )
    },
    "/users/presence/{user_id}": {
        "get": operation(
            "presence",
            "One user's presence (last_seen is null while online)",
            {**ok({"$ref": "#/components/schemas/Presence"}), **errors(404)},
            tag=TAG,
            security=ACCESS,
            parameters=[path_id("user_id", "The user")],
        )
    },
    "/users/online": {
        "get": operation(
            "online_users",
            "The ids of the users online on any node",
            ok(obj({"online": {"type": "array", "items": ID}})),
            tag=TAG,
            security=ACCESS,
        )
    },
    "/users/{user_id}/block": {
        "post": operation(
            "block_user",
            "Block a user: their direct messages to the caller are refused, presence and "
            "typing stop passing between the two",
            {**no_content("Blocked (blocking twice is a 204 too)"), **errors(404, 422)},
            tag=TAG,
            security=ACCESS,
            parameters=[path_id("user_id", "The user to block")],
            description="404 for no such user; 422 for the caller's own id.",
        ),
        "delete": operation(
            "unblock_user",
            "Lift a block",
            {**no_content("Not blocked (whether or not it was)"), **errors(404, 422)},
            tag=TAG,
            security=ACCESS,
            parameters=[path_id("user_id", "The user to unblock")],
            description="404 for no such user; 422 for the caller's own id.",
        ),
    },
    "/users/blocked": {
        "get": operation(
            "blocked_users",
            "Whom the caller blocks",
            ok({"type": "array", "items": obj({"user_id": ID, "username": TEXT})}),
            tag=TAG,
            security=ACCESS,
        )
    },
}
