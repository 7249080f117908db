"""The chat service: what a session's frames do, and what committed writes cause.

It is the sessions' ``FrameHandler`` and the StorageWriter's callbacks. It holds no
per-user state of its own: that lives in the UserActors (via ``users``), in storage,
and in presence.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Container, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hubbub.config import Settings
from hubbub.engine.chat.directory import UserDirectory
from hubbub.engine.chat.group_chat import GroupChat
from hubbub.engine.chat.messages import (
    Attach,
    Detach,
    FlushDelivered,
    MarkDelivered,
    Resync,
    StoreDirect,
    StoreGroup,
)
from hubbub.engine.chat.ports import Bus, Event, Presence, RateLimiter, user_channel
from hubbub.engine.runtime.actor import ActorError, MailboxFull
from hubbub.engine.runtime.registry import Registry
from hubbub.metrics import Metrics
from hubbub.protocol import errors as reasons
from hubbub.protocol import frames
from hubbub.protocol.codec import encode
from hubbub.protocol.views import direct_frame, iso
from hubbub.storage import (
    NewDirectMessage,
    Storage,
    StorageError,
    StoredDirect,
    StoredGroup,
)

if TYPE_CHECKING:
    from hubbub.engine.chat.storage_writer import StorageWriter
    from hubbub.ws.session import Session

log = logging.getLogger("hubbub.engine")

CATCH_UP_PAGE = 200
ATTACH_TIMEOUT = 60.0
PRESENCE_QUERY_LIMIT = 200


class ChatService:
    def __init__(
        self,
        *,
        settings: Settings,
        storage: Storage,
        metrics: Metrics,
        bus: Bus,
        presence: Presence,
        rate_limiter: RateLimiter,
        directory: UserDirectory,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.metrics = metrics
        self.bus = bus
        self.presence = presence
        self.rate_limiter = rate_limiter
        self.directory = directory
        self.groups = GroupChat(self)
        #: How long a UserActor without sessions lingers before it stops.
        self.user_idle_timeout = 30.0
        #: Decides which ``image_url`` a message may carry; set by the node (uploads).
        self.image_policy: Callable[[str], Awaitable[bool]] | None = None
        # Wired by the node once the actors exist.
        self.writer: StorageWriter
        self.users: Registry[int]

    # -- sessions ----------------------------------------------------------

    async def session_opened(self, session: Session) -> None:
        self.directory.remember(session.user_id, session.username)
        try:
            failure = await self.users.ask(session.user_id, Attach(session), timeout=ATTACH_TIMEOUT)
        except ActorError as error:
            failure = error
        if failure is not None:
            log.warning(
                "attach failed",
                extra={"fields": {"user_id": session.user_id, "error": repr(failure)}},
            )
            session.close_soon(1011, "try again shortly")

    async def session_closed(self, session: Session) -> None:
        actor = self.users.get(session.user_id)
        if actor is not None:
            with contextlib.suppress(ActorError):
                await actor.tell(Detach(session), timeout=5.0)

    async def handle_frame(self, session: Session, frame: object) -> None:
        """Do what ``frame`` asks. A database that cannot answer refuses the frame with
        ``storage unavailable``; the session lives on."""
        try:
            await self._dispatch(session, frame)
        except StorageError as error:
            log.warning(
                "storage unavailable",
                extra={"fields": {"user_id": session.user_id, "error": str(error)}},
            )
            session.refuse(reasons.STORAGE_UNAVAILABLE, getattr(frame, "client_id", None))

    async def _dispatch(self, session: Session, frame: object) -> None:
        if isinstance(frame, frames.SendDirect):
            await self._send_direct(session, frame)
        elif isinstance(frame, frames.SendGroup):
            await self.groups.send(session, frame)
        elif isinstance(frame, frames.ReadDirect):
            await self._read_direct(session, frame)
        elif isinstance(frame, frames.ReadGroup):
            await self.groups.read(session, frame)
        elif isinstance(frame, frames.PresenceQuery):
            await self._presence_query(session, frame)
        else:
            session.refuse(reasons.UNKNOWN_TYPE, getattr(frame, "client_id", None))

    # -- direct messages ---------------------------------------------------

    async def _send_direct(self, session: Session, frame: frames.SendDirect) -> None:
        if frame.recipient_id != session.user_id and (
            await self.directory.name(frame.recipient_id) is None
        ):
            session.refuse(reasons.RECIPIENT_NOT_FOUND, frame.client_id)
            return
        if not await self.allowed_image(frame.image_url):
            session.refuse(reasons.INVALID_IMAGE_URL, frame.client_id)
            return
        if not await self.rate_limiter.allow(session.user_id, "direct"):
            await self.refuse_rate_limited(session, "direct", frame.client_id)
            return
        request = StoreDirect(
            NewDirectMessage(
                session.user_id, frame.recipient_id, frame.message, frame.image_url, frame.client_id
            ),
            session,
        )
        await self.to_writer(session, request, frame.client_id)

    async def allowed_image(self, image_url: str | None) -> bool:
        """Whether a message may carry ``image_url`` (no image is always fine)."""
        if image_url is None or self.image_policy is None:
            return True
        return await self.image_policy(image_url)

    async def refuse_rate_limited(self, session: Session, kind: str, client_id: str | None) -> None:
        """Refuse a send over the limit, unless it resends a message already stored: that
        one still gets its first ack, so a retrying client learns it got through."""
        if client_id is not None:
            lookup = (
                self.storage.direct_by_client_id
                if kind == "direct"
                else self.storage.group_by_client_id
            )
            earlier = await lookup(session.user_id, client_id)
            if earlier is not None:
                status = getattr(earlier, "status", "delivered")
                session.push(encode(frames.Ack(earlier.id, status, client_id)))
                return
        session.refuse(reasons.RATE_LIMITED, client_id)

    async def to_writer(self, session: Session, request: object, client_id: str | None) -> None:
        """Queue a write; the commit callbacks answer it. Holds one of the session's
        unacked-send slots until then."""
        if not await session.reserve_send():
            return
        try:
            self.writer.tell_nowait(request)
        except MailboxFull:
            # Back-pressure: this sender waits for room rather than queueing without bound.
            try:
                await self.writer.tell(request, timeout=10.0)
            except ActorError:
                session.settle_send()
                session.refuse(reasons.STORAGE_UNAVAILABLE, client_id)
        except ActorError:
            session.settle_send()
            session.refuse(reasons.STORAGE_UNAVAILABLE, client_id)

    async def on_direct_committed(
        self, results: Sequence[tuple[StoreDirect, StoredDirect]]
    ) -> None:
        """After a commit: fan out each new message, then ack its sender."""
        recipients = {stored.message.recipient_id for _, stored in results if stored.created}
        online = await self.presence.online_among(recipients) if recipients else set()
        created = 0
        for request, stored in results:
            session: Session = request.origin
            session.settle_send()
            message = stored.message
            if not stored.created:
                session.push(encode(frames.Ack(message.id, message.status, message.client_id)))
                continue
            created += 1
            status = "delivered" if message.recipient_id in online else "pending"
            recipient_name = self.directory.cached(message.recipient_id) or ""
            payload = encode(direct_frame(message, session.username, recipient_name, status))
            self.bus.publish(
                user_channel(message.recipient_id), Event("direct", payload, message.id)
            )
            if message.author_id != message.recipient_id:
                self.bus.publish(
                    user_channel(message.author_id), Event("echo", payload, message.id)
                )
            session.push(encode(frames.Ack(message.id, status, message.client_id)))
        if created:
            self.metrics.messages_stored.labels("direct").inc(created)

    async def on_group_committed(self, results: Sequence[tuple[StoreGroup, StoredGroup]]) -> None:
        self.groups.on_committed(results)

    def on_write_failed(
        self, requests: Sequence[StoreDirect | StoreGroup], error: StorageError
    ) -> None:
        for request in requests:
            request.origin.settle_send()
            request.origin.refuse(reasons.STORAGE_UNAVAILABLE, request.message.client_id)

    def mark_delivered(self, message_id: int | None) -> None:
        if message_id is None:
            return
        # On failure it stays pending in storage and is delivered again on the next connect.
        with contextlib.suppress(ActorError):
            self.writer.tell_nowait(MarkDelivered((message_id,)))

    def flush_delivered(self) -> None:
        """Have the writer commit held delivery marks now."""
        with contextlib.suppress(ActorError):
            self.writer.tell_nowait(FlushDelivered())

    def deliver_here(self, user_id: int, event: Event) -> None:
        """Hand ``event`` to ``user_id``'s actor if the user is live on this node."""
        actor = self.users.get(user_id)
        if actor is not None:
            actor.on_event(event)

    def local_users(self) -> list[int]:
        """Users with at least one session on this node (presence heartbeats claim them)."""
        return [user_id for user_id in list(self.users.keys()) if self._has_sessions(user_id)]

    def _has_sessions(self, user_id: int) -> bool:
        actor = self.users.get(user_id)
        return actor is not None and bool(actor.sessions)

    async def resync(self) -> None:
        """After the shared bus was down: live users fetch what they may have missed."""
        for user_id in list(self.users.keys()):
            actor = self.users.get(user_id)
            if actor is not None:
                with contextlib.suppress(ActorError):
                    actor.tell_nowait(Resync())

    async def _read_direct(self, session: Session, frame: frames.ReadDirect) -> None:
        message = await self.storage.direct_message(frame.message_id)
        if message is None or message.recipient_id != session.user_id:
            session.refuse(reasons.NOT_ALLOWED)
            return
        if message.status != "read":
            await self.storage.mark_read(message.id)
        receipt = frames.ReadReceipt(
            message_id=message.id,
            reader_id=session.user_id,
            reader_name=session.username,
            author_id=message.author_id,
        )
        self.bus.publish(user_channel(message.author_id), Event("read_receipt", encode(receipt)))

    # -- offline catch-up ----------------------------------------------------

    async def catch_up(self, session: Session) -> None:
        """Offline delivery for a new session: direct messages never delivered, then
        unread group messages (CONTRACT.md's order)."""
        if await self.catch_up_direct(session):
            await self.groups.catch_up(session)

    async def catch_up_direct(self, session: Session, delivered_live: Container[int] = ()) -> bool:
        """Send ``session`` every direct message never delivered to its user, oldest first,
        marking each page delivered and telling the authors. False if the session left.

        ``delivered_live``: ids already pushed to the user's sessions whose delivery mark
        may not be committed yet; they are marked, not sent again."""
        user_id = session.user_id
        while True:
            page = await self.storage.pending_direct_messages(user_id, CATCH_UP_PAGE)
            if not page:
                return True
            fresh = [m for m in page if m.id not in delivered_live]
            names = await self.directory.names({m.author_id for m in fresh} | {user_id})
            for message in fresh:
                session.caught_up.add(message.id)
                frame = direct_frame(
                    message, names.get(message.author_id, ""), names.get(user_id, ""), "delivered"
                )
                if not await session.send(encode(frame)):
                    return False  # The session left: what it did not get stays pending.
            await self.storage.mark_delivered([m.id for m in page])
            for message in fresh:
                status = encode(frames.StatusOut(message_id=message.id, status="delivered"))
                self.bus.publish(user_channel(message.author_id), Event("status", status))
            if len(page) < CATCH_UP_PAGE:
                return True

    # -- groups --------------------------------------------------------------

    async def membership_changed(self, group_id: int, joined: int | None = None) -> None:
        """Membership of ``group_id`` changed in storage: every node's live GroupActor
        for it reloads its members, and the node of a ``joined`` user starts listening to
        the group if it did not."""
        await self.groups.membership_changed(group_id, joined)

    # -- presence ----------------------------------------------------------

    async def user_online(self, user_id: int, username: str) -> None:
        """The user's first session on this node: tell contacts, unless another node
        already had the user online."""
        if await self.presence.went_online(user_id):
            await self._announce(user_id, username, None)

    async def user_offline(self, user_id: int, username: str) -> None:
        if await self.presence.went_offline(user_id):
            await self._gone(user_id, username)

    async def user_expired(self, user_id: int) -> None:
        """The node holding the user's sessions died (its presence heartbeat expired)."""
        username = await self.directory.name(user_id)
        if username is not None:
            await self._gone(user_id, username)

    async def _gone(self, user_id: int, username: str) -> None:
        now = datetime.now(UTC)
        await self.storage.set_last_seen(user_id, now)
        await self._announce(user_id, username, now)

    async def _announce(self, user_id: int, username: str, last_seen: datetime | None) -> None:
        """Tell the users who share a conversation or a group with ``user_id``, no one else."""
        related = await self.storage.conversation_partners(user_id)
        related |= await self.storage.co_members(user_id)
        related.discard(user_id)
        if not related:
            return
        frame = frames.PresenceOut(
            user_id=user_id,
            username=username,
            presence_status="offline" if last_seen else "online",
            last_seen_iso=iso(last_seen),
        )
        event = Event("presence", encode(frame))
        for other in related:
            self.bus.publish(user_channel(other), event)

    async def is_online(self, user_id: int) -> bool:
        return await self.presence.is_online(user_id)

    async def presence_of(self, user_id: int) -> frames.PresenceOut | None:
        user = await self.storage.user_by_id(user_id)
        if user is None:
            return None
        online = await self.presence.is_online(user_id)
        return frames.PresenceOut(
            user_id=user.id,
            username=user.username,
            presence_status="online" if online else "offline",
            last_seen_iso=None if online else iso(user.last_seen),
        )

    async def _presence_query(self, session: Session, frame: frames.PresenceQuery) -> None:
        for user_id in frame.user_ids[:PRESENCE_QUERY_LIMIT]:
            answer = await self.presence_of(user_id)
            if answer is not None:
                session.push(encode(answer))
