"""Presence announcements and queries: who hears that a user went online or offline."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import attrs

from hubbub.engine.chat.blocks import BlockCache
from hubbub.engine.chat.part import ChatPart
from hubbub.engine.chat.ports import Event, Peer, Presence, user_channel
from hubbub.protocol import frames
from hubbub.protocol.codec import encode
from hubbub.protocol.views import iso
from hubbub.storage import StorageError
from hubbub.storage.webhook_store import Webhooks

PRESENCE_QUERY_LIMIT = 200

log = logging.getLogger("hubbub.engine")


@attrs.define(kw_only=True)
class PresenceAnnouncer(ChatPart):
    """Tells the users who share a conversation or a group with a user, and no one else.

    Announcements carry the user as ``actor_id``: a receiver with a block between them
    drops it (``UserActor``). Lookups by a ``viewer`` show such a user offline."""

    presence: Presence
    blocks: BlockCache
    #: With webhooks on: where ``user.online`` and ``user.offline`` are recorded. Only the
    #: node that sees the user's transition as a whole records it (``went_online`` or
    #: ``went_offline`` true, or ``expired``), so each is reported once per transition.
    webhooks: Webhooks | None = None

    async def online(self, user_id: int, username: str) -> None:
        """The user's first session on this node: tell contacts, unless another node
        already had the user online."""
        if await self.presence.went_online(user_id):
            if self.webhooks is not None:
                try:
                    await self.webhooks.user_online(user_id, datetime.now(UTC))
                except StorageError as error:
                    # Presence lives outside the database: no commit to share with, and a
                    # session is not turned away for a webhook.
                    log.warning(
                        "user.online webhook not recorded",
                        extra={"fields": {"user_id": user_id, "error": str(error)}},
                    )
            await self._announce(user_id, username, None)

    async def offline(self, user_id: int, username: str) -> None:
        if await self.presence.went_offline(user_id):
            await self._gone(user_id, username)

    async def expired(self, user_id: int) -> None:
        """The node holding the user's sessions died (its presence heartbeat expired)."""
        username = await self.directory.name(user_id)
        if username is not None:
            await self._gone(user_id, username)

    async def _gone(self, user_id: int, username: str) -> None:
        now = datetime.now(UTC)
        if self.webhooks is not None:
            await self.webhooks.user_offline(user_id, now)  # last_seen too, one transaction
        else:
            await self.storage.set_last_seen(user_id, now)
        await self._announce(user_id, username, now)

    async def _announce(self, user_id: int, username: str, last_seen: datetime | None) -> None:
        related = await self.storage.conversation_partners(user_id)
        related |= await self.storage.co_members(user_id)
        related.discard(user_id)
        if not related:
            return
        frame = frames.PresenceOut(
            user_id=user_id,
            username=username,
            presence_status="offline" if last_seen else "online",
            last_seen_iso=iso(last_seen),
        )
        event = Event("presence", encode(frame), actor_id=user_id)
        for other in related:
            self.bus.publish(user_channel(other), event)

    async def is_online(self, user_id: int) -> bool:
        return await self.presence.is_online(user_id)

    async def presence_of(
        self, user_id: int, viewer: int | None = None
    ) -> frames.PresenceOut | None:
        """The user's presence as ``viewer`` may see it: with a block between the two
        (either way), offline and no last seen. None for an unknown user."""
        user = await self.storage.user_by_id(user_id)
        if user is None:
            return None
        if viewer is not None and user_id in await self.blocks.hidden_from(viewer):
            return frames.PresenceOut(user.id, user.username, "offline", None)
        online = await self.presence.is_online(user_id)
        return frames.PresenceOut(
            user_id=user.id,
            username=user.username,
            presence_status="online" if online else "offline",
            last_seen_iso=None if online else iso(user.last_seen),
        )

    async def query(self, peer: Peer, frame: frames.PresenceQuery) -> None:
        for user_id in frame.user_ids[:PRESENCE_QUERY_LIMIT]:
            answer = await self.presence_of(user_id, peer.user_id)
            if answer is not None:
                peer.push(encode(answer))
