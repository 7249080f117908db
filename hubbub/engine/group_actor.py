"""The GroupActor: one per group with a member online on this node.

It caches the group's members and listens on the bus channel ``group:<id>``. Every
group event (a stored message, a read marker) arrives there once per node, already
encoded, and the actor hands it to the UserActors of the members online here: the
frame is encoded once, whatever the group's size. Cross-node traffic is per group, not
per member.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs
import trio

from hubbub.engine.actor import Actor, MailboxFull
from hubbub.engine.bus import Event, group_channel

if TYPE_CHECKING:
    from hubbub.engine.chat_service import ChatService

log = logging.getLogger("hubbub.engine")

#: Event kinds on a group channel.
MEMBERSHIP = "membership"


@attrs.frozen(slots=True)
class IsMember:
    user_id: int


class GroupActor(Actor):
    def __init__(self, group_id: int, chat: ChatService, *, idle_timeout: float = 60.0) -> None:
        super().__init__(f"group:{group_id}", mailbox_size=8192, idle_timeout=idle_timeout)
        self.group_id = group_id
        self.chat = chat
        self.members: frozenset[int] = frozenset()

    def can_passivate(self) -> bool:
        users = self.chat.users
        return not any(users.get(member) is not None for member in self.members)

    def _on_event(self, event: Event) -> None:
        try:
            self.tell_nowait(event)
        except MailboxFull:
            log.warning(
                "group mailbox full, event dropped", extra={"fields": {"group": self.group_id}}
            )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        channel = group_channel(self.group_id)
        # Subscribe before loading, so no membership change slips between the two.
        await self.chat.bus.subscribe(channel, self._on_event)
        try:
            await self._load_members()
            await super().run(task_status=task_status)
        finally:
            self.chat.bus.unsubscribe(channel, self._on_event)

    async def _load_members(self) -> None:
        members = await self.chat.storage.group_members(self.group_id)
        self.members = frozenset(member.user_id for member in members)

    async def handle(self, message: object) -> object:
        if isinstance(message, Event):
            if message.kind == MEMBERSHIP:
                await self._load_members()
            else:
                self._fan_out(message)
            return None
        if isinstance(message, IsMember):
            return message.user_id in self.members
        raise TypeError(f"GroupActor cannot handle {message!r}")

    def _fan_out(self, event: Event) -> None:
        deliver = self.chat.deliver_here
        for member in self.members:
            deliver(member, event)
