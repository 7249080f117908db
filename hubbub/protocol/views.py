"""Records to wire frames: how a stored message looks to a client, for chat and HTTP alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hubbub.protocol import frames
from hubbub.storage.records import DirectMessage, GroupMessage

#: Group messages have no per-recipient status; every frame of one says this.
GROUP_MESSAGE_STATUS: frames.MessageStatus = "delivered"


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _message_fields(message: DirectMessage | GroupMessage, author_name: str) -> dict[str, Any]:
    """What a direct and a group message frame have alike."""
    return {
        "message_id": message.id,
        "author_id": message.author_id,
        "author_name": author_name,
        "message": message.body,
        "image_url": message.image_url,
        "timestamp": message.created_at.isoformat(),
        "client_id": message.client_id,
    }


def direct_frame(
    message: DirectMessage,
    author_name: str,
    recipient_name: str,
    status: frames.MessageStatus,
) -> frames.MessageOut:
    return frames.MessageOut(
        **_message_fields(message, author_name),
        recipient_id=message.recipient_id,
        recipient_name=recipient_name,
        status=status,
    )


def group_frame(message: GroupMessage, group_name: str, author_name: str) -> frames.GroupMessageOut:
    return frames.GroupMessageOut(
        **_message_fields(message, author_name),
        group_id=message.group_id,
        group_name=group_name,
        status=GROUP_MESSAGE_STATUS,
    )
