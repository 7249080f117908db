"""The GroupActor: one per group with a member online on this node.

It caches the group's members and listens on the bus channel ``group:<id>`` for what
is not in the stream: typing and membership changes. The stream tail reads the member
cache (``members``) to hand each stream event of the group to the members online here,
in stream order; the frame is encoded once, whatever the group's size.

Nothing is dropped silently. A full mailbox closes the local members' sessions as slow
consumers (they reconnect, and resume or catch up from storage).
"""

from __future__ import annotations

import logging

import attrs
import trio

from hubbub.engine.chat.messages import MEMBERSHIP, IsMember, Reload, Resync
from hubbub.engine.chat.ports import Bus, Event, group_channel
from hubbub.engine.chat.users import LocalUsers
from hubbub.engine.runtime.actor import Actor, ActorStopped, MailboxFull
from hubbub.metrics import Metrics
from hubbub.storage import Storage, StorageError

log = logging.getLogger("hubbub.engine")


@attrs.define(eq=False, slots=False, kw_only=True)
class GroupActor(Actor):
    """Built with what it uses: storage, the bus, this node's live users, metrics."""

    group_id: int
    storage: Storage
    bus: Bus
    users: LocalUsers
    metrics: Metrics
    idle: float = 60.0
    members: frozenset[int] = attrs.field(factory=frozenset, init=False)
    _stale: bool = attrs.field(default=True, init=False)
    _subscribed: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        super().__init__(f"group:{self.group_id}", mailbox_size=8192, idle_timeout=self.idle)
        # Subscribing and loading are the first work, after the start: a slow bus or
        # database must not hold up the supervisor, which starts children one at a time.
        self.tell_nowait(Reload())

    def can_passivate(self) -> bool:
        return not any(self.users.is_here(member) for member in self.members)

    def _on_event(self, event: Event) -> None:
        try:
            self.tell_nowait(event)
        except ActorStopped:
            pass  # stopping: the node's next GroupActor for the group takes over
        except MailboxFull:
            self.metrics.group_overflows.inc()
            log.warning("group mailbox full", extra={"fields": {"group": self.group_id}})
            for member in self.members:
                self.users.close_slow(member)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await super().run(task_status=task_status)
        finally:
            self.bus.unsubscribe(group_channel(self.group_id), self._on_event)

    async def _load_members(self) -> None:
        """Refresh the member cache; on a database error keep the old one and retry at the
        next message (an outage is not a crash)."""
        try:
            members = await self.storage.group_members(self.group_id)
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
        if isinstance(message, Reload) and not self._subscribed:
            # Subscribe before loading, so no membership change slips between the two.
            await self.bus.subscribe(group_channel(self.group_id), self._on_event)
            self._subscribed = True
        membership = isinstance(message, Event) and message.kind == MEMBERSHIP
        if self._stale or membership or isinstance(message, Reload | Resync):
            await self._load_members()
        if isinstance(message, Event):
            if not membership:
                self._fan_out(message)
            return None
        if isinstance(message, IsMember):
            return message.user_id in self.members
        if isinstance(message, Reload | Resync):
            return None
        raise TypeError(f"GroupActor cannot handle {message!r}")

    def _fan_out(self, event: Event) -> None:
        deliver = self.users.deliver
        for member in self.members:
            if member != event.actor_id:
                deliver(member, event)
