"""Group messaging: what ``group_message`` and ``group_read`` frames do, what a committed
group message causes, and the unread sync on connect."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hubbub.engine.chat.messages import JOINED, MEMBERSHIP, IsMember, StoreGroup
from hubbub.engine.chat.ports import Event, group_channel, user_channel
from hubbub.engine.runtime.actor import ActorError
from hubbub.engine.runtime.registry import Registry
from hubbub.protocol import errors as reasons
from hubbub.protocol import frames
from hubbub.protocol.codec import encode
from hubbub.protocol.views import GROUP_MESSAGE_STATUS, group_frame
from hubbub.storage import NewGroupMessage, StoredGroup

if TYPE_CHECKING:
    from hubbub.engine.chat.chat_service import ChatService
    from hubbub.ws.session import Session

log = logging.getLogger("hubbub.engine")

#: Unread group messages sent per group on connect; older ones are paged through
#: ``GET /groups/{id}/messages?before=<oldest id received>``.
GROUP_CATCH_UP_CAP = 100
ASK_TIMEOUT = 10.0


class GroupChat:
    """The group half of the chat service."""

    def __init__(self, chat: ChatService) -> None:
        self.chat = chat
        self._names: dict[int, str] = {}
        # Wired by the node once the supervisor exists.
        self.groups: Registry[int]

    async def group_name(self, group_id: int) -> str | None:
        """The group's name (names never change, so they are cached), or None if unknown."""
        name = self._names.get(group_id)
        if name is None:
            group = await self.chat.storage.group(group_id)
            if group is None:
                return None
            name = self._names[group_id] = group.name
        return name

    async def is_member(self, group_id: int, user_id: int) -> bool:
        if await self.group_name(group_id) is None:
            return False
        return bool(await self.groups.ask(group_id, IsMember(user_id), timeout=ASK_TIMEOUT))

    # -- frames ----------------------------------------------------------------

    async def send(self, session: Session, frame: frames.SendGroup) -> None:
        try:
            member = await self.is_member(frame.group_id, session.user_id)
        except ActorError:
            session.refuse(reasons.SERVER_BUSY, frame.client_id)
            return
        if not member:
            session.refuse(reasons.NOT_A_MEMBER, frame.client_id)
            return
        if not await self.chat.allowed_image(frame.image_url):
            session.refuse(reasons.INVALID_IMAGE_URL, frame.client_id)
            return
        if not await self.chat.rate_limiter.allow(session.user_id, "group"):
            await self.chat.refuse_rate_limited(session, "group", frame.client_id)
            return
        request = StoreGroup(
            NewGroupMessage(
                frame.group_id, session.user_id, frame.message, frame.image_url, frame.client_id
            ),
            session,
            self._names[frame.group_id],
        )
        await self.chat.to_writer(session, request, frame.client_id)

    async def read(self, session: Session, frame: frames.ReadGroup) -> None:
        if await self.group_name(frame.group_id) is None:
            session.refuse(reasons.NOT_ALLOWED)
            return
        last_read = await self.chat.storage.advance_group_read(
            frame.group_id, session.user_id, frame.message_id
        )
        if last_read is None:
            session.refuse(reasons.NOT_ALLOWED)
            return
        marker = frames.GroupReadOut(
            group_id=frame.group_id, user_id=session.user_id, message_id=last_read
        )
        self.chat.bus.publish(group_channel(frame.group_id), Event("group_read", encode(marker)))

    def on_committed(self, results: Sequence[tuple[StoreGroup, StoredGroup]]) -> None:
        """After a commit: publish each new message on its group's channel, then ack."""
        created = 0
        for request, stored in results:
            session: Session = request.origin
            session.settle_send()
            message = stored.message
            if stored.created:
                created += 1
                payload = encode(group_frame(message, request.group_name, session.username))
                self.chat.bus.publish(
                    group_channel(message.group_id), Event("group", payload, message.id)
                )
            session.push(encode(frames.Ack(message.id, GROUP_MESSAGE_STATUS, message.client_id)))
        if created:
            self.chat.metrics.messages_stored.labels("group").inc(created)

    async def membership_changed(self, group_id: int, joined: int | None) -> None:
        self.chat.bus.publish(group_channel(group_id), Event(MEMBERSHIP, b""))
        if joined is not None:
            self.chat.bus.publish(user_channel(joined), Event(JOINED, b"", group_id))

    async def listen(self, group_id: int) -> None:
        """Make sure this node's GroupActor for ``group_id`` runs (a member is online here)."""
        await self.groups.ensure(group_id)

    # -- connect -----------------------------------------------------------------

    async def catch_up(self, session: Session) -> None:
        """Make sure this node listens to each of the user's groups, then send the session
        each group's unread messages, group by group, oldest first. Past the cap a group
        sends its newest ``GROUP_CATCH_UP_CAP`` unread: the client is current, and pages
        older ones through history with ``before``."""
        storage = self.chat.storage
        for group in await storage.groups_of(session.user_id):
            self._names[group.id] = group.name
            await self.groups.ensure(group.id)
            member = await storage.member(group.id, session.user_id)
            if member is None:
                continue
            newest = await storage.group_history(group.id, None, GROUP_CATCH_UP_CAP)
            unread = [m for m in newest if m.id > member.last_read_message_id]
            if not unread:
                continue
            names = await self.chat.directory.names({m.author_id for m in unread})
            for message in unread:
                session.caught_up_group.add(message.id)
                frame = group_frame(message, group.name, names.get(message.author_id, ""))
                if not await session.send(encode(frame)):
                    return
