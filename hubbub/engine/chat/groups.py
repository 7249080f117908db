"""Group messages: what ``group_message`` and ``group_read`` frames do, what a commit
causes, membership changes, and the unread sync on connect."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import attrs

from hubbub.engine.chat.messages import JOINED, MEMBERSHIP, IsMember, StoreGroup
from hubbub.engine.chat.part import ChatPart
from hubbub.engine.chat.ports import Event, Peer, group_channel, user_channel
from hubbub.engine.chat.recent import RecentIds
from hubbub.engine.chat.stream import StreamTail
from hubbub.engine.chat.writes import WriteGate
from hubbub.engine.runtime.actor import ActorError
from hubbub.engine.runtime.registry import Registry
from hubbub.metrics import Metrics
from hubbub.protocol import errors as reasons
from hubbub.protocol import frames
from hubbub.protocol.codec import encode
from hubbub.protocol.views import GROUP_MESSAGE_STATUS, encoded_ack, group_frame
from hubbub.storage import NewGroupMessage, StoredGroup, StreamEvent

log = logging.getLogger("hubbub.engine")

#: Unread group messages sent per group on connect; older ones are paged through
#: ``GET /groups/{id}/messages?before=<oldest id received>``.
GROUP_CATCH_UP_CAP = 100
ASK_TIMEOUT = 10.0
#: Group names cached (names never change).
NAME_CACHE = 10_000


@attrs.define(kw_only=True)
class GroupMessaging(ChatPart):
    """The rules of group messages. ``group_actors`` holds this node's GroupActors."""

    gate: WriteGate
    metrics: Metrics
    group_actors: Registry[int]
    stream: StreamTail
    _names: dict[int, str] = attrs.field(factory=dict, init=False)

    async def group_name(self, group_id: int) -> str | None:
        """The group's name, or None if there is no such group."""
        name = self._names.get(group_id)
        if name is None:
            group = await self.storage.group(group_id)
            if group is None:
                return None
            name = self._remember(group_id, group.name)
        return name

    def _remember(self, group_id: int, name: str) -> str:
        if len(self._names) >= NAME_CACHE:
            self._names.pop(next(iter(self._names)))
        self._names[group_id] = name
        return name

    async def is_member(self, group_id: int, user_id: int) -> bool:
        if await self.group_name(group_id) is None:
            return False
        answer = await self.group_actors.ask(group_id, IsMember(user_id), timeout=ASK_TIMEOUT)
        return bool(answer)

    # -- frames ------------------------------------------------------------------

    async def send(self, peer: Peer, frame: frames.SendGroup, *, limited: bool = True) -> None:
        """A ``group_message`` frame of ``peer``'s user; ``limited`` as in ``WriteGate.send``."""
        try:
            member = await self.is_member(frame.group_id, peer.user_id)
        except ActorError:
            peer.refuse(reasons.SERVER_BUSY, frame.client_id)
            return
        if not member:
            peer.refuse(reasons.NOT_A_MEMBER, frame.client_id)
            return
        fits = True
        if frame.reply_to is not None:
            replied = await self.storage.group_message(frame.reply_to)
            fits = replied is not None and replied.group_id == frame.group_id
        message = NewGroupMessage(
            frame.group_id, peer.user_id, frame.message, frame.image_url, frame.client_id
        )
        if frame.reply_to is not None:
            message = attrs.evolve(message, reply_to=frame.reply_to)
        name = await self.group_name(frame.group_id) or ""
        await self.gate.send(
            peer, "group", StoreGroup(message, peer, name), reply_fits=fits, limited=limited
        )

    async def read(self, peer: Peer, frame: frames.ReadGroup) -> None:
        if await self.group_name(frame.group_id) is None:
            peer.refuse(reasons.NOT_ALLOWED)
            return
        event = await self.storage.read_group(frame.group_id, peer.user_id, frame.message_id)
        if event is None:
            peer.refuse(reasons.NOT_ALLOWED)
            return
        self.stream.committed([event])

    def committed(self, requests: Sequence[StoreGroup], results: Sequence[StoredGroup]) -> None:
        """After a commit: hand each new message to the stream, then ack."""
        created = 0
        events: list[StreamEvent] = []
        received: list[float] = []
        for request, stored in zip(requests, results, strict=True):
            peer = request.origin
            peer.settle_send()
            message = stored.message
            if stored.created:
                created += 1
                self.directory.remember(peer.user_id, peer.username)
                events.append(
                    StreamEvent(
                        position=message.state.position,
                        kind="group_message",
                        group_id=message.group_id,
                        message_id=message.id,
                        actor_id=message.author_id,
                        created_at=message.created_at,
                        group=message,
                    )
                )
                received.append(request.received_at)
            peer.push(encoded_ack(message.id, GROUP_MESSAGE_STATUS, message.client_id))
        self.stream.committed(events, received=received)
        if created:
            self.metrics.messages_stored.labels("group").inc(created)

    async def membership_changed(self, group_id: int, joined: int | None = None) -> None:
        """Membership of ``group_id`` changed in storage: every node's live GroupActor
        for it reloads its members, and the node of a ``joined`` user starts listening to
        the group if it did not."""
        self.bus.publish(group_channel(group_id), Event(MEMBERSHIP, b""))
        if joined is not None:
            self.bus.publish(user_channel(joined), Event(JOINED, b"", group_id))

    async def listen_all(self, user_id: int) -> None:
        """Make sure this node's GroupActor runs for each of the user's groups, with its
        members loaded (the stream tail reads them to deliver the group's events)."""
        for group in await self.storage.groups_of(user_id):
            self._remember(group.id, group.name)
            await self.group_actors.ask(group.id, IsMember(user_id), timeout=ASK_TIMEOUT)

    async def listen(self, group_id: int) -> None:
        """Make sure this node's GroupActor for ``group_id`` runs (a member is online here)."""
        await self.group_actors.ensure(group_id)

    # -- connect -------------------------------------------------------------------

    async def catch_up(self, peer: Peer, sent: RecentIds, cursor: str | None = None) -> None:
        """Make sure this node listens to each of the user's groups, then send the peer
        each group's unread messages, group by group, oldest first. Past the cap a group
        sends its newest ``GROUP_CATCH_UP_CAP`` unread: the client is current, and pages
        older ones through history with ``before``. ``sent`` collects the ids sent."""
        storage = self.storage
        for group in await storage.groups_of(peer.user_id):
            self._remember(group.id, group.name)
            await self.group_actors.ensure(group.id)
            member = await storage.member(group.id, peer.user_id)
            if member is None:
                continue
            newest = await storage.group_history(group.id, None, GROUP_CATCH_UP_CAP)
            unread = [m for m in newest if m.id > member.last_read_message_id]
            if not unread:
                continue
            names = await self.directory.names({m.author_id for m in unread})
            for message in unread:
                sent.add(message.id)
                frame = group_frame(message, group.name, names.get(message.author_id, ""), cursor)
                if not await peer.send(encode(frame)):
                    return

    async def relisten(self, user_id: int) -> None:
        """Make sure this node's GroupActors for the user's groups run (after the groups
        supervisor restarted, say)."""
        for group in await self.storage.groups_of(user_id):
            await self.group_actors.ensure(group.id)
