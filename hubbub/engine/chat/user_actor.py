"""The UserActor: one per user with a live session on this node.

It owns the user's sessions (devices). Everything addressed to the user arrives on the
bus channel ``user:<id>`` and passes through this actor, which is what orders offline
catch-up before live traffic: while the actor sends a new session its backlog, live
events wait in the mailbox.

Whenever the actor stops with sessions still attached (a crash, a supervisor that gave up
and restarts, a node shutting down), it closes them (1011, unless an earlier close code
was asked for): a session must never sit connected but deaf. Clients reconnect and catch
up from storage. It passivates only with no session left.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque

import attrs
import trio

from hubbub.engine.chat.blocks import BLOCKS_CHANGED, HIDDEN_KINDS, BlockCache
from hubbub.engine.chat.direct import DirectMessaging
from hubbub.engine.chat.groups import GroupMessaging
from hubbub.engine.chat.messages import DISCONNECT, JOINED, Attach, Detach, Resync
from hubbub.engine.chat.ports import Bus, Event, Peer, user_channel
from hubbub.engine.chat.presence import PresenceAnnouncer
from hubbub.engine.chat.recent import RecentIds
from hubbub.engine.chat.resume import Resumption
from hubbub.engine.chat.writes import WriteGate
from hubbub.engine.runtime.actor import Actor, ActorError, ActorStopped, MailboxFull
from hubbub.storage import StorageError

log = logging.getLogger("hubbub.engine")

#: Enough to cover the delivery marks one storage batch can hold back.
RECENT_LIVE = 1024
#: The close code of a session the server API disconnected (policy violation).
CLOSE_DISCONNECTED = 1008
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
    idle: float = 30.0
    _devices: list[_Device] = attrs.field(factory=list, init=False)
    _busy: bool = attrs.field(default=False, init=False)
    #: Events queued in the mailbox and not yet handled (cheaper to keep than to ask
    #: the channel for its statistics on every delivery).
    _events_queued: int = attrs.field(default=0, init=False)
    #: Direct messages lately pushed live, whose delivery mark may still be on its way
    #: to storage: a resync must not send them again.
    _recent_live: deque[int] = attrs.field(factory=lambda: deque(maxlen=RECENT_LIVE), init=False)

    def __attrs_post_init__(self) -> None:
        super().__init__(f"user:{self.user_id}", mailbox_size=4096, idle_timeout=self.idle)
        self.tell_nowait(_Subscribe())

    @property
    def sessions(self) -> list[Peer]:
        return [device.peer for device in self._devices]

    def can_passivate(self) -> bool:
        return not self._devices

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
        try:
            await super().run(task_status=task_status)
        finally:
            self.bus.unsubscribe(user_channel(self.user_id), self.on_event)
            self.blocks.forget(self.user_id, self)
            self.close_sessions(1011, "internal error, please reconnect")

    async def handle(self, message: object) -> object:
        self._busy = True
        try:
            return await self._handle(message)
        finally:
            self._busy = False

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
        elif isinstance(message, _Subscribe):
            await self.bus.subscribe(user_channel(self.user_id), self.on_event)
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
        pushed = False
        for device in self._devices:
            if position and position <= device.floor:
                continue
            if message_id is not None:
                seen = device.group if kind == "group" else device.direct
                if message_id in seen:
                    continue
            pushed = device.peer.push(event.frame, message_id if direct else None) or pushed
        if pushed and direct and message_id is not None:
            self._recent_live.append(message_id)

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
        # What it was sent live must read as delivered before it reconnects, maybe on
        # another node, or its catch-up there would send it again.
        self.gate.flush_delivered()
        if not self._devices:
            try:
                await self.announcer.offline(self.user_id, peer.username)
            except StorageError as error:
                log.warning(
                    "offline not recorded",
                    extra={"fields": {"user_id": self.user_id, "error": str(error)}},
                )
