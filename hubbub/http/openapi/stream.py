"""v2 reads: ``/conversations`` and ``/sync`` (stream_routes.py); muting a conversation
(block_routes.py)."""

from __future__ import annotations

from hubbub.http.block_routes import UNTIL_MAX
from hubbub.http.openapi._parts import (
    ACCESS,
    ID,
    TEXT,
    TIMESTAMP,
    errors,
    json_content,
    no_content,
    nullable,
    obj,
    ok,
    operation,
    query,
    ref,
)
from hubbub.http.stream_routes import (
    CONVERSATIONS_LIMIT,
    MAX_CONVERSATIONS,
    MAX_SYNC,
    MAX_TOKEN,
    SYNC_LIMIT,
)
from hubbub.http.validation import MAX_ID

TAG = "stream"

_TOKEN = {"type": "string", "maxLength": MAX_TOKEN}
#: The frames of a user's stream (CONTRACT.md, "The stream and resuming it").
STREAM_TYPES = (
    "message",
    "group_message",
    "message_edited",
    "message_deleted",
    "reaction",
    "read_receipt",
    "group_read",
    "status",
)
_COMMON = {
    "name": TEXT,
    "last_message": nullable(ref("Message")),
    "unread_count": {"type": "integer", "minimum": 0},
    "last_read_message_id": nullable(ID),
    "last_activity": TIMESTAMP,
    "muted": {"type": "boolean"},
    "muted_until": nullable(TIMESTAMP),
}
#: The conversation a mute names (and, for muting, until when).
_MUTE_TARGET = {
    "oneOf": [
        obj({"kind": {"type": "string", "const": "direct"}, "user_id": ID}),
        obj({"kind": {"type": "string", "const": "group"}, "group_id": ID}),
    ]
}
_MUTE = {
    "allOf": [
        _MUTE_TARGET,
        obj({}, {"until": nullable({**TIMESTAMP, "maxLength": UNTIL_MAX})}),
    ]
}

SCHEMAS = {
    "Conversation": {
        "oneOf": [
            obj({"kind": {"type": "string", "const": "direct"}, "user_id": ID, **_COMMON}),
            obj({"kind": {"type": "string", "const": "group"}, "group_id": ID, **_COMMON}),
        ]
    },
    "StreamEvent": {
        **obj({"type": {"type": "string", "enum": list(STREAM_TYPES)}, "cursor": TEXT}),
        "description": "A stream frame as the WebSocket sends it (docs/protocol.md): "
        "message, group_message, message_edited, message_deleted, reaction, "
        "read_receipt, group_read, status; each with its cursor.",
    },
}


def _limit(default: int, cap: int) -> dict:
    return query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_ID, "default": default},
        f"At most this many (served as {cap} above {cap})",
    )


PATHS = {
    "/conversations": {
        "get": operation(
            "conversations",
            "The caller's conversations, most recent activity first",
            ok(
                obj(
                    {
                        "conversations": {"type": "array", "items": ref("Conversation")},
                        "next": nullable(TEXT),
                    }
                )
            ),
            tag=TAG,
            security=ACCESS,
            parameters=[
                _limit(CONVERSATIONS_LIMIT, MAX_CONVERSATIONS),
                query("before", _TOKEN, "The `next` of the previous page (422 otherwise)"),
            ],
        )
    },
    "/sync": {
        "get": operation(
            "sync",
            "The caller's stream after a cursor, for clients that poll",
            ok(
                obj(
                    {
                        "events": {"type": "array", "items": ref("StreamEvent")},
                        "cursor": TEXT,
                        "recovered": {"type": "boolean"},
                        "has_more": {"type": "boolean"},
                    }
                )
            ),
            tag=TAG,
            security=ACCESS,
            parameters=[
                query(
                    "since",
                    {**_TOKEN, "minLength": 1},
                    "A cursor this server gave, or `now` (422 without one). An unknown "
                    "cursor answers recovered false: reload conversations and history.",
                    required=True,
                ),
                _limit(SYNC_LIMIT, MAX_SYNC),
            ],
        )
    },
    "/conversations/mute": {
        "post": operation(
            "mute_conversation",
            "Mute a conversation until `until` (or until unmuted); muting again replaces it",
            {**no_content("Muted"), **errors(404)},
            tag=TAG,
            security=ACCESS,
            body={"required": True, "content": json_content(_MUTE)},
            description="A direct conversation with any existing user (404 otherwise), or "
            "a group of the caller's (404 otherwise). `until`: an ISO-8601 time with a "
            "timezone, in the future (422 otherwise), or null.",
        ),
        "delete": operation(
            "unmute_conversation",
            "Unmute a conversation (unmuting what is not muted is a 204 too)",
            {**no_content("Not muted"), **errors(404)},
            tag=TAG,
            security=ACCESS,
            body={"required": True, "content": json_content(_MUTE)},
            description="The body names the conversation as for muting; `until` is ignored.",
        ),
    },
}
