"""The dispatcher: the sessions' frame handler. Each frame type goes to its rule."""

from __future__ import annotations

import contextlib
import logging

import attrs

from hubbub.engine.chat.direct import DirectMessaging
from hubbub.engine.chat.directory import UserDirectory
from hubbub.engine.chat.groups import GroupMessaging
from hubbub.engine.chat.live_pending import LivePending
from hubbub.engine.chat.messages import AnnounceDelivered, Attach, Detach
from hubbub.engine.chat.ports import Peer
from hubbub.engine.chat.presence import PresenceAnnouncer
from hubbub.engine.chat.rich import RichMessages
from hubbub.engine.chat.typing import TypingRelay
from hubbub.engine.chat.users import LocalUsers
from hubbub.engine.chat.writes import WriteGate
from hubbub.engine.runtime.actor import ActorError
from hubbub.engine.runtime.registry import Registry
from hubbub.protocol import errors as reasons
from hubbub.protocol import frames
from hubbub.storage import StorageError

log = logging.getLogger("hubbub.engine")

ATTACH_TIMEOUT = 60.0
DETACH_TIMEOUT = 5.0


@attrs.define(kw_only=True)
class ChatDispatcher:
    """Sessions call it; it holds no per-user state (the UserActors do)."""

    users: Registry[int]
    directory: UserDirectory
    direct: DirectMessaging
    groups: GroupMessaging
    announcer: PresenceAnnouncer
    gate: WriteGate
    rich: RichMessages
    typing: TypingRelay
    #: Where a parked UserActor is found (its session's detach wakes it).
    local_users: LocalUsers | None = None
    #: Messages announced pending that were routed to a recipient here (the tail notes them).
    live_pending: LivePending = attrs.field(factory=LivePending)

    async def session_opened(self, peer: Peer) -> None:
        self.directory.remember(peer.user_id, peer.username)
        failure: object
        try:
            failure = await self.users.ask(peer.user_id, Attach(peer), timeout=ATTACH_TIMEOUT)
        except ActorError as error:
            failure = error
        if failure is not None:
            log.warning(
                "attach failed",
                extra={"fields": {"user_id": peer.user_id, "error": repr(failure)}},
            )
            peer.close_soon(1011, "try again shortly")

    async def session_closed(self, peer: Peer) -> None:
        """The session is over (its socket is not closed yet). Returns once what it was
        sent live reads as delivered in storage (or the writer had its chance): a client
        that closes and reconnects, maybe on another node, is not sent it again."""
        actor = self.users.get(peer.user_id)
        if actor is not None:
            with contextlib.suppress(ActorError):
                await actor.tell(Detach(peer), timeout=DETACH_TIMEOUT)
        else:
            parked = None if self.local_users is None else self.local_users.parked(peer.user_id)
            if parked is not None:
                parked.wake(Detach(peer))
        # Its frames' marks were queued as they were written: all are ahead of this.
        await self.gate.flush_delivered()

    def frames_written(self, peer: Peer, message_ids: list[int]) -> None:
        if not self.live_pending:  # the common case: nothing was announced pending here
            self.gate.mark_delivered(message_ids)
            return
        announced, rest = self.live_pending.take(message_ids)
        if rest:
            self.gate.mark_delivered(rest)
        if announced and not self._tell_user(peer.user_id, AnnounceDelivered(tuple(announced))):
            self.gate.mark_delivered(announced)

    def _tell_user(self, user_id: int, message: object) -> bool:
        """Queue ``message`` for the user's actor, running or parked; never blocks."""
        actor = self.users.get(user_id)
        if actor is not None:
            try:
                actor.tell_nowait(message)
            except ActorError:
                return False
            return True
        parked = None if self.local_users is None else self.local_users.parked(user_id)
        if parked is None:
            return False
        parked.wake(message)
        return True

    async def handle_frame(self, peer: Peer, frame: object) -> None:
        """Do what ``frame`` asks. A database that cannot answer refuses the frame with
        ``storage unavailable``; the session lives on."""
        try:
            await self._dispatch(peer, frame)
        except StorageError as error:
            log.warning(
                "storage unavailable",
                extra={"fields": {"user_id": peer.user_id, "error": str(error)}},
            )
            peer.refuse(reasons.STORAGE_UNAVAILABLE, getattr(frame, "client_id", None))

    async def _dispatch(self, peer: Peer, frame: object) -> None:
        if isinstance(frame, frames.SendDirect):
            await self.direct.send(peer, frame)
        elif isinstance(frame, frames.SendGroup):
            await self.groups.send(peer, frame)
        elif isinstance(frame, frames.ReadDirect):
            await self.direct.read(peer, frame)
        elif isinstance(frame, frames.ReadGroup):
            await self.groups.read(peer, frame)
        elif isinstance(frame, frames.PresenceQuery):
            await self.announcer.query(peer, frame)
        elif isinstance(frame, frames.Typing):
            await self.typing.typing(peer, frame)
        elif isinstance(frame, frames.Edit):
            await self.rich.edit(peer, frame)
        elif isinstance(frame, frames.Delete):
            await self.rich.delete(peer, frame)
        elif isinstance(frame, frames.React):
            await self.rich.react(peer, frame)
        else:
            peer.refuse(reasons.UNKNOWN_TYPE, getattr(frame, "client_id", None))
