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

import trio

from hubbub.engine.chat.messages import MEMBERSHIP, IsMember, Reload
from hubbub.engine.chat.ports import Event, group_channel
from hubbub.engine.runtime.actor import Actor, ActorStopped, MailboxFull
from hubbub.storage import StorageError

if TYPE_CHECKING:
    from hubbub.engine.chat.chat_service import ChatService

log = logging.getLogger("hubbub.engine")


class GroupActor(Actor):
    def __init__(self, group_id: int, chat: ChatService, *, idle_timeout: float = 60.0) -> None:
        super().__init__(f"group:{group_id}", mailbox_size=8192, idle_timeout=idle_timeout)
        self.group_id = group_id
        self.chat = chat
        self.members: frozenset[int] = frozenset()
        self._stale = True

    def can_passivate(self) -> bool:
        users = self.chat.users
        return not any(users.get(member) is not None for member in self.members)

    def _on_event(self, event: Event) -> None:
        try:
            self.tell_nowait(event)
        except ActorStopped:
            pass  # stopping: the node's next GroupActor for the group takes over
        except MailboxFull:
            log.warning(
                "group mailbox full, event dropped", extra={"fields": {"group": self.group_id}}
            )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        channel = group_channel(self.group_id)
        # Subscribe before loading, so no membership change slips between the two.
        await self.chat.bus.subscribe(channel, self._on_event)
        # Members load as the first message, after the start: a slow database must not
        # hold up the supervisor, which starts its children one at a time.
        self.tell_nowait(Reload())
        try:
            await super().run(task_status=task_status)
        finally:
            self.chat.bus.unsubscribe(channel, self._on_event)

    async def _load_members(self) -> None:
        """Refresh the member cache; on a database error keep the old one and retry at the
        next message (an outage is not a crash)."""
        try:
            members = await self.chat.storage.group_members(self.group_id)
        except StorageError as error:
            self._stale = True
            log.warning(
                "members not loaded",
                extra={"fields": {"group": self.group_id, "error": str(error)}},
            )
            return
        self.members = frozenset(member.user_id for member in members)
        self._stale = False

    async def handle(self, message: object) -> object:
        membership = isinstance(message, Event) and message.kind == MEMBERSHIP
        if self._stale or membership or isinstance(message, Reload):
            await self._load_members()
        if isinstance(message, Event):
            if not membership:
                self._fan_out(message)
            return None
        if isinstance(message, IsMember):
            return message.user_id in self.members
        if isinstance(message, Reload):
            return None
        raise TypeError(f"GroupActor cannot handle {message!r}")

    def _fan_out(self, event: Event) -> None:
        deliver = self.chat.deliver_here
        for member in self.members:
            deliver(member, event)
