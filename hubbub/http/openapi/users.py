"""``/users``: the caller's profile, the directory and presence (user_routes.py)."""

from __future__ import annotations

from hubbub.http.openapi._parts import (
    ACCESS,
    ID,
    TEXT,
    TIMESTAMP,
    errors,
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
            "email": TEXT,
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
}
