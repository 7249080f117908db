"""Direct messages: what ``message`` and ``read`` frames do, what a commit causes, and
the offline catch-up on connect."""

from __future__ import annotations

import logging
from collections.abc import Container, Sequence

import attrs

from hubbub.engine.chat.blocks import BlockCache
from hubbub.engine.chat.messages import StoreDirect
from hubbub.engine.chat.part import ChatPart
from hubbub.engine.chat.ports import Peer, Presence
from hubbub.engine.chat.recent import RecentIds
from hubbub.engine.chat.stream import StreamTail
from hubbub.engine.chat.writes import WriteGate
from hubbub.metrics import Metrics
from hubbub.protocol import errors as reasons
from hubbub.protocol import frames
from hubbub.protocol.codec import encode
from hubbub.protocol.views import direct_frame, encoded_ack
from hubbub.storage import NewDirectMessage, StorageError, StoredDirect, StreamEvent

log = logging.getLogger("hubbub.engine")

CATCH_UP_PAGE = 200


@attrs.define(kw_only=True)
class DirectMessaging(ChatPart):
    """The rules of one-to-one messages."""

    presence: Presence
    gate: WriteGate
    metrics: Metrics
    stream: StreamTail
    blocks: BlockCache

    async def send(self, peer: Peer, frame: frames.SendDirect, *, limited: bool = True) -> None:
        """A ``message`` frame of ``peer``'s user; ``limited`` as in ``WriteGate.send``."""
        if frame.recipient_id != peer.user_id:
            if await self.directory.name(frame.recipient_id) is None:
                peer.refuse(reasons.RECIPIENT_NOT_FOUND, frame.client_id)
                return
            # In memory for a sender live here (blocks.py): no database read per message.
            if await self.blocks.refuses(peer.user_id, frame.recipient_id):
                peer.refuse(reasons.NOT_ALLOWED, frame.client_id)
                return
        fits = frame.reply_to is None or await self._in_conversation(
            frame.reply_to, peer.user_id, frame.recipient_id
        )
        message = NewDirectMessage(
            peer.user_id, frame.recipient_id, frame.message, frame.image_url, frame.client_id
        )
        if frame.reply_to is not None:
            message = attrs.evolve(message, reply_to=frame.reply_to)
        await self.gate.send(
            peer, "direct", StoreDirect(message, peer), reply_fits=fits, limited=limited
        )

    async def _in_conversation(self, message_id: int, user_id: int, other_id: int) -> bool:
        message = await self.storage.direct_message(message_id)
        return message is not None and {message.author_id, message.recipient_id} == {
            user_id,
            other_id,
        }

    async def read(self, peer: Peer, frame: frames.ReadDirect) -> None:
        event = await self.storage.read_direct(frame.message_id, peer.user_id)
        if event is None:
            peer.refuse(reasons.NOT_ALLOWED)
            return
        self.stream.committed([event])

    async def committed(
        self, requests: Sequence[StoreDirect], results: Sequence[StoredDirect]
    ) -> None:
        """After a commit: publish each new message to its recipient and author, then ack.

        The ack's status is the contract's: ``delivered`` if a connection of the
        recipient was live. What storage records is decided by the socket alone: a
        message becomes ``delivered`` there once its frame was written to one."""
        recipients = {stored.message.recipient_id for stored in results if stored.created}
        online = await self.presence.online_among(recipients) if recipients else set()
        created = 0
        events: list[StreamEvent] = []
        received: list[float] = []
        for request, stored in zip(requests, results, strict=True):
            peer = request.origin
            peer.settle_send()
            message = stored.message
            if not stored.created:
                peer.push(encoded_ack(message.id, message.status, message.client_id))
                continue
            created += 1
            status: frames.MessageStatus = (
                "delivered" if message.recipient_id in online else "pending"
            )
            self.directory.remember(peer.user_id, peer.username)
            events.append(
                StreamEvent(
                    position=message.state.position,
                    kind="message",
                    user_ids=(message.author_id, message.recipient_id),
                    message_id=message.id,
                    actor_id=message.author_id,
                    data={"status": status},
                    created_at=message.created_at,
                    direct=message,
                )
            )
            received.append(request.received_at)
            peer.push(encoded_ack(message.id, status, message.client_id))
        self.stream.committed(events, received=received)
        if created:
            self.metrics.messages_stored.labels("direct").inc(created)

    async def announce_delivered(self, message_ids: Sequence[int]) -> None:
        """Mark delivered, with a ``status`` event to each author, messages announced
        ``pending`` that reached the recipient live (``live_pending.py``). If storage
        cannot answer, they are marked as any other (the authors are not told)."""
        try:
            events = await self.storage.deliver_pending(message_ids)
        except StorageError as error:
            log.warning("delivered not announced", extra={"fields": {"error": str(error)}})
            self.gate.mark_delivered(list(message_ids))
            return
        self.stream.committed(events)

    async def catch_up(
        self, peer: Peer, sent: RecentIds, skip: Container[int] = (), cursor: str | None = None
    ) -> bool:
        """Send ``peer`` every direct message never delivered to its user, oldest first.
        A page is marked delivered only once the socket took it, then its authors are
        told. False if the peer left first: what it did not get stays pending.

        ``sent`` collects the ids sent (so live copies already on the way are skipped);
        ``skip``: ids already pushed live whose delivery mark may not be committed yet."""
        user_id = peer.user_id
        while True:
            page = await self.storage.pending_direct_messages(user_id, CATCH_UP_PAGE)
            if not page:
                return True
            fresh = [m for m in page if m.id not in skip]
            names = await self.directory.names({m.author_id for m in fresh} | {user_id})
            for message in fresh:
                sent.add(message.id)
                frame = direct_frame(
                    message,
                    names.get(message.author_id, ""),
                    names.get(user_id, ""),
                    "delivered",
                    cursor,
                )
                if not await peer.send(encode(frame)):
                    return False
            if not await peer.flushed():
                return False
            # Marked delivered with a ``status`` event each, which the stream takes to
            # the authors.
            self.stream.committed(await self.storage.deliver_pending([m.id for m in page]))
            if len(page) < CATCH_UP_PAGE:
                return True
