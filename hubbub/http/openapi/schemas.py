"""Schemas more than one area uses: errors, tokens, message objects (CONTRACT.md)."""

from __future__ import annotations

from hubbub.http.openapi._parts import ID, TEXT, TIMESTAMP, Schema, nullable, obj, ref

_REACTION = obj({"emoji": TEXT, "user_ids": {"type": "array", "items": ID}})

_MESSAGE_FIELDS: dict[str, Schema] = {
    "message_id": ID,
    "author_id": ID,
    "author_name": TEXT,
    "message": nullable(TEXT),
    "image_url": nullable(TEXT),
    "timestamp": TIMESTAMP,
    "status": {"type": "string", "enum": ["pending", "delivered", "read"]},
    "edited_at": nullable(TIMESTAMP),
    "deleted": {"type": "boolean"},
    "reply_to": nullable(ID),
    "reactions": {"type": "array", "items": ref("Reaction")},
}
_MESSAGE_OPTIONAL: dict[str, Schema] = {"client_id": TEXT}

SCHEMAS: dict[str, Schema] = {
    "Error": {
        **obj({"detail": TEXT}),
        "description": "Every error answer: a status and a human-readable detail.",
    },
    "TokenPair": obj(
        {
            "access_token": TEXT,
            "refresh_token": TEXT,
            "token_type": {"type": "string", "const": "bearer"},
        }
    ),
    "Success": {
        **obj({"Success": TEXT}),
        "description": "The seed's acknowledgement: a sentence saying what was done.",
    },
    "Reaction": _REACTION,
    "DirectMessage": {
        **obj({**_MESSAGE_FIELDS, "recipient_id": ID, "recipient_name": TEXT}, _MESSAGE_OPTIONAL),
        "description": "A direct message object; a deleted one is a tombstone (message and "
        "image_url null, deleted true).",
    },
    "GroupMessage": {
        **obj({**_MESSAGE_FIELDS, "group_id": ID, "group_name": TEXT}, _MESSAGE_OPTIONAL),
        "description": "A group message object (status is always delivered).",
    },
    "Message": {"oneOf": [ref("DirectMessage"), ref("GroupMessage")]},
}
