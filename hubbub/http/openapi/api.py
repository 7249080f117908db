"""``/api/v1``: the server API for the product's backend and bots (api_user_routes.py,
api_chat_routes.py; docs/integrations.md, "Server API"). Every call needs an API key."""

from __future__ import annotations

from hubbub.http.api_chat_routes import MEMBERS_MAX
from hubbub.http.api_user_routes import EXTERNAL_ID_MAX, PRESENCE_MAX
from hubbub.http.group_routes import NAME_MAX
from hubbub.http.openapi._parts import (
    API_KEY,
    ID,
    TEXT,
    errors,
    json_content,
    no_content,
    nullable,
    obj,
    ok,
    operation,
    path_id,
    query,
    ref,
)
from hubbub.http.openapi.auth import SIGNUP_FIELDS

TAG = "api"

_EXTERNAL_ID = {"type": "string", "minLength": 1, "maxLength": EXTERNAL_ID_MAX}
_PRESENCE = {"type": "string", "enum": ["online", "offline"]}
_USER_ID = path_id("user_id", "The user")
_GROUP_ID = path_id("group_id", "The group")

SCHEMAS = {
    "ProvisionedUser": obj({"id": ID, "username": TEXT, "external_id": nullable(TEXT)}),
}

PATHS = {
    "/api/v1/users": {
        "post": operation(
            "api_provision_user",
            "Create a user, or answer the one an external_id already names",
            {
                **ok(ref("ProvisionedUser"), "The user was created", status=201),
                **ok(ref("ProvisionedUser"), "The external_id is known: that user"),
                **errors(409),
            },
            tag=TAG,
            security=API_KEY,
            body={
                "required": True,
                "content": json_content(
                    obj(
                        {"username": SIGNUP_FIELDS["username"]},
                        {
                            "email": nullable(SIGNUP_FIELDS["email"]),
                            "password": nullable(SIGNUP_FIELDS["password"]),
                            "external_id": nullable(_EXTERNAL_ID),
                        },
                    )
                ),
            },
            description="username, email and password are checked as sign-up checks them "
            "(409 if the username or email is taken). Without a password the user signs in "
            "only through /api/v1/users/{user_id}/tokens. A known external_id answers 200 "
            "and that user; the other fields are then ignored.",
        )
    },
    "/api/v1/users/{user_id}/tokens": {
        "post": operation(
            "api_user_tokens",
            "A new login of the user, as POST /auth/login answers it",
            {**ok(ref("TokenPair")), **errors(404)},
            tag=TAG,
            security=API_KEY,
            parameters=[_USER_ID],
        )
    },
    "/api/v1/users/{user_id}/disconnect": {
        "post": operation(
            "api_disconnect_user",
            "Close every WebSocket of the user, on every node, with 1008",
            {
                **ok(
                    obj({"user_id": ID, "detail": TEXT}),
                    "The connections are being closed",
                    status=202,
                ),
                **errors(404),
            },
            tag=TAG,
            security=API_KEY,
            parameters=[_USER_ID],
            description="Tokens are not revoked: the client may reconnect.",
        )
    },
    "/api/v1/presence": {
        "get": operation(
            "api_presence",
            "Each user's presence, in the order asked (a duplicate once)",
            {
                **ok(
                    obj(
                        {
                            "presence": {
                                "type": "array",
                                "items": obj(
                                    {
                                        "user_id": ID,
                                        "presence_status": _PRESENCE,
                                        "last_seen": nullable(TEXT),
                                    }
                                ),
                            }
                        }
                    )
                ),
                **errors(404),
            },
            tag=TAG,
            security=API_KEY,
            parameters=[
                query(
                    "user_ids",
                    {"type": "string"},
                    f"1 to {PRESENCE_MAX} comma-separated user ids (422 otherwise)",
                    required=True,
                )
            ],
            description="404 naming any id no user has; last_seen is null while online.",
        )
    },
    "/api/v1/messages": {
        "post": operation(
            "api_send_message",
            "Send a message as a user, exactly as that user's WebSocket send",
            {
                **ok(ref("Message"), "The message, committed, as history shows it", 201),
                **errors(403, 404),
            },
            tag=TAG,
            security=API_KEY,
            body={
                "required": True,
                "content": json_content(
                    obj(
                        {"author_id": ID},
                        {
                            "recipient_id": ID,
                            "group_id": ID,
                            "message": nullable(TEXT),
                            "image_url": nullable(TEXT),
                            "client_id": nullable(TEXT),
                            "reply_to": nullable(ID),
                        },
                    )
                ),
            },
            description="Exactly one of recipient_id and group_id. A refusal's detail is the "
            "protocol's reason: recipient or group not found 404, not a member 403, a message "
            "too long, empty, a bad image_url or reply_to 422. A resend with the same "
            "client_id answers the stored message. Rate limits do not apply.",
        )
    },
    "/api/v1/groups": {
        "post": operation(
            "api_create_group",
            "Create a group with its admin and members",
            {**ok(obj({"group_id": ID}), "The group was created", 201), **errors(404)},
            tag=TAG,
            security=API_KEY,
            body={
                "required": True,
                "content": json_content(
                    obj(
                        {
                            "name": {"type": "string", "minLength": 1, "pattern": "\\S"},
                            "admin_id": ID,
                        },
                        {
                            "member_ids": {"type": "array", "items": ID, "maxItems": MEMBERS_MAX},
                        },
                    )
                ),
            },
            description=f"The name is 1 to {NAME_MAX} characters, outer spaces not counted; "
            "admin_id is required; member_ids (the admin and duplicates skipped) must all "
            "exist, else 404 and no group is created.",
        )
    },
    "/api/v1/groups/{group_id}/members": {
        "post": operation(
            "api_add_member",
            "Add a user to a group as a member",
            {
                **ok(
                    obj({"group_id": ID, "user_id": ID, "role": {"type": "string"}}),
                    "The user is a member",
                    201,
                ),
                **errors(404, 409),
            },
            tag=TAG,
            security=API_KEY,
            parameters=[_GROUP_ID],
            body={"required": True, "content": json_content(obj({"user_id": ID}))},
            description="404 for no such group or user; 409 if already a member.",
        )
    },
    "/api/v1/groups/{group_id}/members/{user_id}": {
        "delete": operation(
            "api_remove_member",
            "Remove a member (the last admin's role passes to the longest-standing member)",
            {**no_content("The member was removed"), **errors(404)},
            tag=TAG,
            security=API_KEY,
            parameters=[_GROUP_ID, path_id("user_id", "The member")],
        )
    },
}
