"""The GroupActor: one per group with a member online on this node.

It caches the group's members and listens on the bus channel ``group:<id>``. Every
group event (a stored message, a read marker) arrives there once per node, already
encoded, and the actor hands it to the UserActors of the members online here: the
frame is encoded once, whatever the group's size. Cross-node traffic is per group, not
per member.

Nothing is dropped silently. A full mailbox closes the local members' sessions as slow
consumers (they reconnect and get their unread messages). After the bus was down
(``Resync``), the actor fetches from storage the messages it may have missed and fans
out those it has not: it remembers the ids it fanned out lately (``RecentIds``).
"""

from __future__ import annotations

import logging

import attrs
import trio

from hubbub.engine.chat.messages import MEMBERSHIP, IsMember, Reload, Resync
from hubbub.engine.chat.ports import Bus, Event, group_channel
from hubbub.engine.chat.recent import RecentIds
from hubbub.engine.chat.users import LocalUsers
from hubbub.engine.runtime.actor import Actor, ActorStopped, MailboxFull
from hubbub.metrics import Metrics
from hubbub.protocol.codec import encode
from hubbub.protocol.views import group_frame
from hubbub.storage import Storage, StorageError

log = logging.getLogger("hubbub.engine")

#: Messages fetched per resync at most (older misses come with the next connect's sync).
RESYNC_LIMIT = 1000


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
    _fanned: RecentIds = attrs.field(factory=RecentIds, init=False)
    #: Ids up to here were current when the actor started (members caught up).
    _floor: int | None = attrs.field(default=None, init=False)

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
            if self._floor is None:
                newest = await self.storage.group_history(self.group_id, None, 1)
                self._floor = newest[-1].id if newest else 0
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
        if isinstance(message, Reload) and self._floor is None:
            # Subscribe before loading, so no membership change slips between the two.
            await self.bus.subscribe(group_channel(self.group_id), self._on_event)
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
        if isinstance(message, Resync):
            await self._resync()
            return None
        raise TypeError(f"GroupActor cannot handle {message!r}")

    def _fan_out(self, event: Event) -> None:
        if event.kind == "group" and event.message_id is not None:
            if event.message_id in self._fanned:
                return
            self._fanned.add(event.message_id)
        deliver = self.users.deliver
        for member in self.members:
            deliver(member, event)

    async def _resync(self) -> None:
        """Fan out what was committed since the oldest message we remember, or since the
        start, and not fanned out yet."""
        if self._floor is None:
            return
        after = self._floor
        oldest = self._fanned.oldest()
        if len(self._fanned) >= self._fanned.capacity and oldest is not None:
            after = max(after, oldest)  # older than what we remember: assumed fanned out
        try:
            missed = await self.storage.group_messages_after(self.group_id, after, RESYNC_LIMIT)
            missed = [message for message in missed if message.id not in self._fanned]
            group = await self.storage.group(self.group_id)
            names = await self.storage.usernames({message.author_id for message in missed})
        except StorageError:
            return  # members get them with their next connect's unread sync
        if group is None:
            return
        for message in missed:
            frame = group_frame(message, group.name, names.get(message.author_id, ""))
            self._fan_out(Event("group", encode(frame), message.id))
