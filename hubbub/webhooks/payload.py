"""A webhook's body: ``{"id", "type", "created_at", "data"}``, rendered when it is sent.

``data`` shows what the event is about as it is at sending time, as a stream replay
does (docs/protocol.md): the message object for ``message.*`` (as in history; a group
message's has ``group_id`` and ``group_name``), so a retry never shows content deleted
since, and the newest state wins whatever order events arrive in; ``{"user_id"}`` for
``user.*``; ``{"group_id", "user_id"}`` for ``group.*``.
"""

from __future__ import annotations

from typing import Any

import orjson

from hubbub.protocol.views import direct_frame, group_frame, message_object
from hubbub.storage import Storage
from hubbub.storage.webhook_store import OutboxEvent


async def event_data(storage: Storage, event: OutboxEvent) -> dict[str, Any]:
    """The event's ``data``, read from storage now. Raises ``StorageError``."""
    if event.message_kind is not None and event.message_id is not None:
        data = await _message(storage, event.message_kind, event.message_id)
    elif event.type.startswith("group."):
        data = {"group_id": event.group_id, "user_id": event.user_id}
    else:
        data = {"user_id": event.user_id}
    data.update(event.facts)
    return data


async def _message(storage: Storage, kind: str, message_id: int) -> dict[str, Any]:
    if kind == "direct":
        direct = await storage.direct_message(message_id)
        if direct is None:  # messages are never deleted, only made tombstones
            return {"message_id": message_id}
        names = await storage.usernames({direct.author_id, direct.recipient_id})
        frame = direct_frame(
            direct,
            names.get(direct.author_id, ""),
            names.get(direct.recipient_id, ""),
            direct.status,
        )
        return message_object(frame)
    message = await storage.group_message(message_id)
    if message is None:
        return {"message_id": message_id}
    group = await storage.group(message.group_id)
    names = await storage.usernames({message.author_id})
    group_name = group.name if group is not None else ""
    return message_object(group_frame(message, group_name, names.get(message.author_id, "")))


async def render(storage: Storage, event: OutboxEvent) -> bytes:
    """The exact body to POST (and sign). Raises ``StorageError``."""
    body = {
        "id": event.event_id,
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "data": await event_data(storage, event),
    }
    return orjson.dumps(body)
