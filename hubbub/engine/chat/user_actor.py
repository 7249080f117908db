"""The UserActor: one per user with a live session on this node.

It owns the user's sessions (devices). Everything addressed to the user arrives on the
bus channel ``user:<id>`` and passes through this actor, which is what orders offline
catch-up before live traffic: while the actor sends a new session its backlog, live
events wait in the mailbox.

Whenever the actor stops with sessions still attached (a crash, a supervisor that gave up
and restarts, a node shutting down), it closes them (1011, unless an earlier close code
was asked for): a session must never sit connected but deaf. Clients reconnect and catch
up from storage. It passivates with no session left.

With sessions, it *parks* once idle for ``park_after`` seconds: its task ends and its
mailbox goes (what an idle user costs), while the object stays in ``LocalUsers`` with
the sessions, still subscribed, and delivers live frames at once as an idle running actor
does. Work that needs the task (attach, detach, a group joined, blocks changed, resync)
is held in arrival order, with every event after it, and wakes the user: the next
actor adopts the sessions and queues the held work first, behind nothing, so catch-up
still comes before live events and nothing is lost or reordered (users.py).
"""

from __future__ import annotations

import contextlib
import logging

import attrs
import trio

from hubbub.engine.chat.blocks import BLOCKS_CHANGED, HIDDEN_KINDS, BlockCache
from hubbub.engine.chat.direct import DirectMessaging
from hubbub.engine.chat.groups import GroupMessaging
from hubbub.engine.chat.messages import (
    DISCONNECT,
    JOINED,
    AnnounceDelivered,
    Attach,
    Detach,
    Resync,
)
from hubbub.engine.chat.ports import Bus, Event, Peer, user_channel
from hubbub.engine.chat.presence import PresenceAnnouncer
from hubbub.engine.chat.recent import RecentIds
from hubbub.engine.chat.resume import Resumption
from hubbub.engine.chat.users import LocalUsers
from hubbub.engine.chat.writes import WriteGate
from hubbub.engine.runtime.actor import Actor, ActorError, ActorStopped, MailboxFull
from hubbub.storage import StorageError

log = logging.getLogger("hubbub.engine")

#: The close code of a session the server API disconnected (policy violation).
CLOSE_DISCONNECTED = 1008
MAILBOX = 4096
#: Work a parked actor holds for its successor, at most (then: a slow consumer).
PENDING_LIMIT = MAILBOX - 16
#: Event kinds that carry a message a catch-up may already have sent.
_MESSAGE_KINDS = frozenset(("direct", "echo", "group"))
#: Event kinds that are work for the actor (with an await), not frames to deliver.
_WORK_KINDS = frozenset((JOINED, BLOCKS_CHANGED))


class _Subscribe:
    """The actor's first piece of work: listen on its channel (OTP's handle_continue)."""


class _Device:
    """One attached session, the catch-up ids sent to it (direct, group), and its floor:
    the stream position up to which it has everything (live events at or below it are
    not sent again)."""

    __slots__ = ("direct", "floor", "group", "peer")

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.direct = RecentIds()
        self.group = RecentIds()
        self.floor = 0


@attrs.define(eq=False, slots=False, kw_only=True)
class UserActor(Actor):
    """Built with what it uses: the bus, the direct and group rules, presence, the gate,
    and this node's block relations (loaded on the first attach, dropped on stop)."""

    user_id: int
    bus: Bus
    direct: DirectMessaging
    groups: GroupMessaging
    announcer: PresenceAnnouncer
    gate: WriteGate
    resume: Resumption
    blocks: BlockCache
    #: Where it parks, and where its successor finds it.
    users: LocalUsers
    idle: float = 30.0
    #: Idle seconds with sessions before it parks.
    park_after: float = 1.0
    _devices: list[_Device] = attrs.field(factory=list, init=False)
    _busy: bool = attrs.field(default=False, init=False)
    #: Events queued in the mailbox and not yet handled (cheaper to keep than to ask
    #: the channel for its statistics on every delivery).
    _events_queued: int = attrs.field(default=0, init=False)
    _idle_since: float = attrs.field(factory=trio.current_time, init=False)
    #: Parked: the task ended with sessions attached (``LocalUsers`` holds it).
    _parked: bool = attrs.field(default=False, init=False)
    #: Parked and woken: the work (and events) held for the successor, in order.
    _pending: list[object] | None = attrs.field(default=None, init=False)
    #: The actor that adopted this parked one's sessions: everything goes to it.
    _successor: UserActor | None = attrs.field(default=None, init=False, repr=False)
    #: The parked actor this one adopted, until this one listens on the channel.
    _predecessor: UserActor | None = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        super().__init__(
            f"user:{self.user_id}",
            mailbox_size=MAILBOX,
            idle_timeout=min(self.idle, self.park_after),
        )
        self.tell_nowait(_Subscribe())
        parked = self.users.parked(self.user_id)
        if parked is not None and parked._successor is None:
            self._adopt(parked)

    def _adopt(self, parked: UserActor) -> None:
        """Take over a parked actor's sessions and the work it held, queued first (right
        behind the subscription), then whatever it forwards from now on. Synchronous: no
        event can fall between the two."""
        self._devices = parked._devices  # shared: the parked one reports the same sessions
        self._predecessor = parked
        parked._successor = self
        self.blocks.hand_over(self.user_id, parked, self)
        held, parked._pending = parked._pending or [], None
        for message in held:
            self.tell_nowait(message)
            if isinstance(message, Event):
                self._events_queued += 1  # as on_event counts what it queues

    @property
    def sessions(self) -> list[Peer]:
        return [device.peer for device in self._devices]

    @property
    def waiting(self) -> bool:
        """Parked with work held, and no successor yet."""
        return self._pending is not None and self._successor is None

    def can_passivate(self) -> bool:
        """Stop after ``idle`` seconds without a session; park after ``park_after`` with."""
        idle_for = trio.current_time() - self._idle_since
        return idle_for >= (self.park_after if self._devices else self.idle)

    def wake(self, message: object) -> None:
        """Hold ``message`` for this parked actor's successor, starting it if this is the
        first. Never blocks. Too much held closes the sessions as slow consumers."""
        successor = self._successor
        if successor is not None:
            if isinstance(message, Event):
                successor.on_event(message)
            else:
                with contextlib.suppress(ActorError):
                    successor.tell_nowait(message)
            return
        if self._pending is None:
            self._pending = [message]
            self.users.wake(self.user_id)
        elif len(self._pending) < PENDING_LIMIT:
            self._pending.append(message)
        else:
            self.close_sessions(1013, "slow consumer")

    def close_sessions(self, code: int, reason: str) -> None:
        for device in self._devices:
            device.peer.close_soon(code, reason)

    def on_event(self, event: Event) -> None:
        """Hand an event to the user's sessions; never blocks.

        When the actor is idle with nothing queued, nothing can be ahead of this event,
        so it is delivered at once, on the caller's task, rather than through the
        mailbox: a task switch saved per delivery. That is the one exception to "only
        the actor's task touches its state", and it is safe because delivery is
        synchronous (no checkpoint). While the actor works (a catch-up in progress,
        say), events queue, and keep their order behind it.

        ``DISCONNECT`` closes every session at once (1008), queued work or not: a
        session being caught up is closed too, not left to finish first."""
        if event.kind == DISCONNECT:
            self.close_sessions(CLOSE_DISCONNECTED, "disconnected by the server")
            return
        if self._parked:
            # Nothing queued ahead (no work held): a frame goes out at once, as below.
            if event.kind in _WORK_KINDS or self._pending is not None or self._successor:
                self.wake(event)
            else:
                self._deliver(event)
            return
        if (
            event.kind not in _WORK_KINDS  # not a frame: handled, with an await, in the mailbox
            and not self._busy
            and not self._events_queued
            and self.state == "running"
        ):
            self._deliver(event)
            return
        try:
            self.tell_nowait(event)
            self._events_queued += 1
        except ActorStopped:
            pass  # stopping: storage holds what matters; the next session catches up
        except MailboxFull:
            # The user's devices cannot keep up; they reconnect and catch up from storage.
            self.close_sessions(1013, "slow consumer")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        park = False
        try:
            await super().run(task_status=task_status)
            park = bool(self._devices)  # passivated with sessions: idle, not gone
        finally:
            self._let_go_of_predecessor()
            if park:
                self._parked = True
                self._drop_mailbox_after_run()
                self.users.park(self)
            else:
                self.bus.unsubscribe(user_channel(self.user_id), self.on_event)
                self.blocks.forget(self.user_id, self)
                self.close_sessions(1011, "internal error, please reconnect")

    def _let_go_of_predecessor(self) -> None:
        if self._predecessor is not None:
            self.users.unpark(self.user_id, self._predecessor)
            self._predecessor = None

    async def handle(self, message: object) -> object:
        self._busy = True
        try:
            return await self._handle(message)
        finally:
            self._busy = False
            self._idle_since = trio.current_time()

    async def _handle(self, message: object) -> object:
        if isinstance(message, Event):
            self._events_queued -= 1
            if message.kind == JOINED and message.message_id is not None:
                await self.groups.listen(message.message_id)
            elif message.kind == BLOCKS_CHANGED:
                await self._refresh_blocks()
            else:
                self._deliver(message)
        elif isinstance(message, Attach):
            return await self._attach(message.session)
        elif isinstance(message, Detach):
            await self._detach(message.session)
        elif isinstance(message, Resync):
            await self._resync()
        elif isinstance(message, AnnounceDelivered):
            await self.direct.announce_delivered(message.message_ids)
        elif isinstance(message, _Subscribe):
            await self.bus.subscribe(user_channel(self.user_id), self.on_event)
            # The channel is ours now (a parked predecessor forwarded it meanwhile).
            self._let_go_of_predecessor()
        else:
            raise TypeError(f"UserActor cannot handle {message!r}")
        return None

    def _deliver(self, event: Event) -> None:
        kind = event.kind
        if kind == "typing" and event.actor_id == self.user_id:
            return  # the typer's own devices are not told
        if (
            kind in HIDDEN_KINDS
            and event.actor_id is not None
            and self.blocks.hides(self.user_id, event.actor_id)
        ):
            return  # presence and typing do not pass between users with a block between them
        message_id = event.message_id if kind in _MESSAGE_KINDS else None
        direct = kind == "direct"
        position = event.position
        for device in self._devices:
            if position and position <= device.floor:
                continue
            if message_id is not None:
                seen = device.group if kind == "group" else device.direct
                if message_id in seen:
                    continue
            device.peer.push(event.frame, message_id if direct else None)

    async def _attach(self, peer: Peer) -> StorageError | ActorError | None:
        """Register the session and catch it up. A database outage is an answer, not a
        crash: the session is turned away (and reconnects), the actor carries on."""
        first = not self._devices
        device = _Device(peer)
        self._devices.append(device)
        try:
            if first:
                # Before the session reads a frame: its sends are checked against these.
                await self.blocks.load(self.user_id, self)
                await self.announcer.online(self.user_id, peer.username)
            await self.resume.attach(peer, device)
        except (StorageError, ActorError) as error:
            await self._detach(peer)
            return error
        return None

    async def _resync(self) -> None:
        # Stream events missed while the bus was down come from the stream tail, which
        # reads storage; what is left is to make sure the user's groups are listened to.
        if self._devices:
            # A group actor that cannot be started now is started by the next connect.
            with contextlib.suppress(StorageError, ActorError):
                await self.groups.relisten(self.user_id)
        # A block changed while the bus was down was announced to no one.
        await self._refresh_blocks()

    async def _refresh_blocks(self) -> None:
        """Re-read the user's block relations. If storage cannot answer, the ones in place
        stay until the next change, resync or first attach re-reads them."""
        try:
            await self.blocks.refresh(self.user_id)
        except StorageError as error:
            log.warning(
                "block relations not refreshed",
                extra={"fields": {"user_id": self.user_id, "error": str(error)}},
            )

    async def _detach(self, peer: Peer) -> None:
        device = next((d for d in self._devices if d.peer is peer), None)
        if device is None:
            return
        self._devices.remove(device)
        if not self._devices:
            try:
                await self.announcer.offline(self.user_id, peer.username)
            except StorageError as error:
                log.warning(
                    "offline not recorded",
                    extra={"fields": {"user_id": self.user_id, "error": str(error)}},
                )
