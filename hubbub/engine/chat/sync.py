"""``GET /sync`` and ``GET /conversations``: the stream and the conversation list, read
by HTTP clients (polling clients, and clients that lost their place)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs

from hubbub.engine.chat.directory import UserDirectory
from hubbub.engine.chat.render import GroupNames, StreamRenderer
from hubbub.engine.chat.resume import Resumption
from hubbub.protocol import frames as wire
from hubbub.protocol.cursor import NOW
from hubbub.protocol.views import direct_frame, group_frame, message_object
from hubbub.storage import (
    Conversation,
    ConversationKey,
    DirectMessage,
    GroupMessage,
    MessageKind,
    Storage,
)


@attrs.define(kw_only=True)
class StreamQueries:
    storage: Storage
    resume: Resumption
    renderer: StreamRenderer

    async def sync(self, user_id: int, since: str, limit: int) -> dict[str, Any]:
        """The user's events after ``since``: ``{events, cursor, recovered, has_more}``.

        ``since=now`` or a lost place: no events, the current cursor; ``recovered`` is
        False for a lost place (the client reloads conversations and history)."""
        state = await self.storage.stream_state()
        self.renderer.epoch = self.renderer.epoch or state.epoch
        head = self.renderer.cursor(state.head)
        if since == NOW:
            return {"events": [], "cursor": head, "recovered": True, "has_more": False}
        cursor = await self.resume.usable(since)
        if cursor is None:
            return {"events": [], "cursor": head, "recovered": False, "has_more": False}
        events = await self.storage.stream_for_user(user_id, cursor.position, None, limit + 1)
        has_more = len(events) > limit
        events = events[:limit]
        objects = await self.renderer.render(events)
        last = events[-1].position if events else cursor.position
        return {
            "events": objects,
            "cursor": self.renderer.cursor(last),
            "recovered": True,
            "has_more": has_more,
        }


def conversation_token(key: ConversationKey) -> str:
    """``next`` of a conversation page: opaque to clients."""
    return f"{key.position:x}.{key.kind[0]}.{key.peer_id:x}"


def parse_conversation_token(text: str) -> ConversationKey | None:
    parts = text.split(".")
    if len(parts) != 3 or parts[1] not in ("d", "g"):
        return None
    try:
        position, peer_id = int(parts[0], 16), int(parts[2], 16)
    except ValueError:
        return None
    if not (0 <= position < 2**63 and 0 < peer_id < 2**63) or len(text) > 64:
        return None
    return ConversationKey(position, "direct" if parts[1] == "d" else "group", peer_id)


@attrs.define(kw_only=True)
class ConversationList:
    storage: Storage
    directory: UserDirectory
    group_name: GroupNames

    async def page(self, user_id: int, before: ConversationKey | None, limit: int) -> dict:
        """``{"conversations": [...], "next"}`` as the contract has it."""
        found = await self.storage.conversations(user_id, before, limit)
        wanted: set[int] = set()
        for item in found:
            if isinstance(item.last_message, DirectMessage):
                wanted.update((item.last_message.author_id, item.last_message.recipient_id))
            elif isinstance(item.last_message, GroupMessage):
                wanted.add(item.last_message.author_id)
        names = await self.directory.names(wanted)
        mutes = {
            (mute.kind, mute.conversation_id): mute.muted_until
            for mute in await self.storage.mutes(user_id, datetime.now(UTC))
        }
        return {
            "conversations": [self._item(item, names, mutes) for item in found],
            "next": conversation_token(found[-1].key) if len(found) == limit else None,
        }

    def _item(
        self,
        item: Conversation,
        names: dict[int, str],
        mutes: dict[tuple[MessageKind, int], datetime | None],
    ) -> dict[str, Any]:
        last = item.last_message
        last_object: dict[str, Any] | None = None
        if isinstance(last, DirectMessage):
            frame: wire.MessageOut | wire.GroupMessageOut = direct_frame(
                last, names.get(last.author_id, ""), names.get(last.recipient_id, ""), last.status
            )
            last_object = message_object(frame)
        elif isinstance(last, GroupMessage):
            frame = group_frame(last, item.name, names.get(last.author_id, ""))
            last_object = message_object(frame)
        entry: dict[str, Any] = {"kind": item.kind}
        entry["user_id" if item.kind == "direct" else "group_id"] = item.peer_id
        entry.update(
            name=item.name,
            last_message=last_object,
            unread_count=item.unread_count,
            last_read_message_id=item.last_read_message_id,
            last_activity=item.last_activity.isoformat(),
        )
        # A mute in force: ``muted`` true, and ``muted_until`` its end (null: until
        # unmuted). Not muted, or a mute that has ended: false and null.
        muted = (item.kind, item.peer_id) in mutes
        until = mutes.get((item.kind, item.peer_id))
        entry.update(muted=muted, muted_until=None if until is None else until.isoformat())
        return entry
