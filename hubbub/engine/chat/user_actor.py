"""The UserActor: one per user with a live session on this node.

It owns the user's sessions (devices). Everything addressed to the user arrives on the
bus channel ``user:<id>`` and passes through this actor's mailbox, which is what orders
offline catch-up before live traffic: while the actor sends a new session its backlog,
live events wait in the mailbox.

If the actor crashes, its sessions are closed (1011) before the supervisor restarts it:
a session must never sit connected but deaf. Clients reconnect and catch up from storage.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING

import trio

from hubbub.engine.chat.messages import JOINED, Attach, Detach, Resync
from hubbub.engine.chat.ports import Event, user_channel
from hubbub.engine.runtime.actor import Actor, ActorStopped, MailboxFull
from hubbub.storage import StorageError

if TYPE_CHECKING:
    from hubbub.engine.chat.chat_service import ChatService
    from hubbub.ws.session import Session

log = logging.getLogger("hubbub.engine")

#: Enough to cover the delivery marks one storage batch can hold back.
RECENT_LIVE = 1024


class UserActor(Actor):
    def __init__(self, user_id: int, chat: ChatService, *, idle_timeout: float = 30.0) -> None:
        super().__init__(f"user:{user_id}", mailbox_size=4096, idle_timeout=idle_timeout)
        self.user_id = user_id
        self.chat = chat
        self.sessions: list[Session] = []
        self._busy = False
        #: Direct messages lately pushed live, whose delivery mark may still be on its way
        #: to storage: a resync must not send them again.
        self._recent_live: deque[int | None] = deque(maxlen=RECENT_LIVE)

    def can_passivate(self) -> bool:
        return not self.sessions

    def on_event(self, event: Event) -> None:
        """Hand an event to the user's sessions; never blocks.

        When the actor is idle with nothing queued, nothing can be ahead of this event,
        so it is delivered at once rather than through the mailbox: a task switch saved
        per delivery, which is most of a group fan-out. While the actor works (a catch-up
        in progress, say), events queue, and keep their order behind it."""
        if (
            event.kind != JOINED  # not a frame: handled, with an await, in the mailbox
            and not self._busy
            and self.mailbox_depth == 0
            and self.state == "running"
        ):
            self._deliver(event)
            return
        try:
            self.tell_nowait(event)
        except ActorStopped:
            pass  # stopping: storage holds what matters; the next session catches up
        except MailboxFull:
            # The user's devices cannot keep up; they reconnect and catch up from storage.
            for session in self.sessions:
                session.close_soon(1013, "slow consumer")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        channel = user_channel(self.user_id)
        await self.chat.bus.subscribe(channel, self.on_event)
        try:
            await super().run(task_status=task_status)
        except BaseException as error:
            if not isinstance(error, trio.Cancelled):
                for session in self.sessions:
                    session.close_soon(1011, "internal error, please reconnect")
            raise
        finally:
            self.chat.bus.unsubscribe(channel, self.on_event)

    async def handle(self, message: object) -> object:
        self._busy = True
        try:
            return await self._handle(message)
        finally:
            self._busy = False

    async def _handle(self, message: object) -> object:
        if isinstance(message, Event):
            if message.kind == JOINED and message.message_id is not None:
                await self.chat.groups.listen(message.message_id)
            else:
                self._deliver(message)
        elif isinstance(message, Attach):
            return await self._attach(message.session)
        elif isinstance(message, Detach):
            await self._detach(message.session)
        elif isinstance(message, Resync):
            for session in list(self.sessions):
                with contextlib.suppress(StorageError):  # the next connect catches up
                    await self.chat.catch_up_direct(session, self._recent_live)
        else:
            raise TypeError(f"UserActor cannot handle {message!r}")
        return None

    def _deliver(self, event: Event) -> None:
        delivered = False
        message_id = event.message_id
        for session in self.sessions:
            if message_id is not None and message_id in session.already_sent(event.kind):
                continue
            delivered = session.push(event.frame) or delivered
        if delivered and event.kind == "direct":
            self._recent_live.append(message_id)
            self.chat.mark_delivered(event.message_id)

    async def _attach(self, session: Session) -> StorageError | None:
        """Register the session and catch it up. A database outage is an answer, not a
        crash: the session is turned away (and reconnects), the actor carries on."""
        first = not self.sessions
        self.sessions.append(session)
        try:
            if first:
                await self.chat.user_online(self.user_id, session.username)
            await self.chat.catch_up(session)
        except StorageError as error:
            await self._detach(session)
            return error
        return None

    async def _detach(self, session: Session) -> None:
        if session in self.sessions:
            self.sessions.remove(session)
            # What it was sent live must read as delivered before it reconnects, maybe on
            # another node, or its catch-up there would send it again.
            self.chat.flush_delivered()
            if not self.sessions:
                try:
                    await self.chat.user_offline(self.user_id, session.username)
                except StorageError as error:
                    log.warning(
                        "offline not recorded",
                        extra={"fields": {"user_id": self.user_id, "error": str(error)}},
                    )
