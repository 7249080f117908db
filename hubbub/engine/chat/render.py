"""Stream events to wire frames: one place that knows how each event kind looks.

Live delivery (the node's stream tail), replay on resume and ``GET /sync`` all render
through ``StreamRenderer``, so a replayed frame is the frame live delivery would have sent
(with the message as it is now). It renders each frame's JSON object (``as_dict`` of the
frame): direct messages, one per message on the hot path, are built without the frame.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs

from hubbub.engine.chat.directory import UserDirectory
from hubbub.protocol import frames
from hubbub.protocol.codec import as_dict
from hubbub.protocol.cursor import Cursor
from hubbub.protocol.views import direct_object, group_frame
from hubbub.storage import StreamEvent

GroupNames = Callable[[int], Awaitable[str | None]]


@attrs.define(kw_only=True)
class StreamRenderer:
    """Renders events of the stream named ``epoch``."""

    directory: UserDirectory
    group_name: GroupNames
    epoch: str = ""

    def cursor(self, position: int) -> str:
        return str(Cursor(self.epoch, position))

    async def render(
        self, events: Sequence[StreamEvent], client_id: str | None = None
    ) -> list[dict[str, Any]]:
        """One frame's JSON object per event, in order. ``client_id``: put on the frames of events
        whose requester asked with one (the requester's own copies)."""
        wanted: set[int] = set()
        for event in events:
            if event.actor_id is not None:
                wanted.add(event.actor_id)
            if event.direct is not None:
                wanted.update((event.direct.author_id, event.direct.recipient_id))
            if event.group is not None:
                wanted.add(event.group.author_id)
        names = await self.directory.names(wanted)
        return [await self._object(event, names, client_id) for event in events]

    async def _object(
        self, event: StreamEvent, names: dict[int, str], client_id: str | None
    ) -> dict[str, Any]:
        if event.kind == "message" and event.direct is not None:
            message = event.direct
            return direct_object(
                message,
                names.get(message.author_id, ""),
                names.get(message.recipient_id, ""),
                event.data.get("status", message.status),
                self.cursor(event.position),
            )
        return as_dict(await self._frame(event, names, client_id))

    async def _frame(
        self, event: StreamEvent, names: dict[int, str], client_id: str | None
    ) -> frames.ServerFrame:
        cursor = self.cursor(event.position)
        data = event.data
        kind = event.kind
        if kind == "group_message" and event.group is not None:
            posted = event.group
            group_name = await self.group_name(posted.group_id) or ""
            return group_frame(posted, group_name, names.get(posted.author_id, ""), cursor)
        message_id = event.message_id or 0
        actor = event.actor_id or 0
        # What the answers to edit, delete and react have alike.
        change: dict[str, Any] = {
            "message_id": message_id,
            "group_id": event.group_id,
            "cursor": cursor,
            "client_id": client_id,
        }
        if kind == "message_edited":
            text, edited_at = data.get("message"), data.get("edited_at", "")
            return frames.MessageEdited(
                **change, author_id=actor, message=text, edited_at=edited_at
            )
        if kind == "message_deleted":
            return frames.MessageDeleted(**change, deleted_by=actor)
        if kind == "reaction":
            emoji, op = data.get("emoji", ""), data.get("op", "add")
            return frames.ReactionOut(**change, user_id=actor, emoji=emoji, op=op)
        if kind == "read_receipt":
            return frames.ReadReceipt(
                message_id=message_id,
                reader_id=actor,
                reader_name=names.get(actor, ""),
                author_id=int(data.get("author_id", 0)),
                cursor=cursor,
            )
        if kind == "group_read":
            return frames.GroupReadOut(
                group_id=event.group_id or 0,
                user_id=actor,
                message_id=int(data.get("message_id", message_id)),
                cursor=cursor,
            )
        if kind == "status":
            return frames.StatusOut(
                message_id=message_id, status=data.get("status", "delivered"), cursor=cursor
            )
        raise ValueError(f"cannot render a stream event of kind {kind!r}")
