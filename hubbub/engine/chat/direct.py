"""Direct messages: what ``message`` and ``read`` frames do, what a commit causes, and
the offline catch-up on connect."""

from __future__ import annotations

import logging
from collections.abc import Container, Sequence

import attrs

from hubbub.engine.chat.messages import StoreDirect
from hubbub.engine.chat.part import ChatPart
from hubbub.engine.chat.ports import Event, Peer, Presence, user_channel
from hubbub.engine.chat.recent import RecentIds
from hubbub.engine.chat.writes import WriteGate
from hubbub.metrics import Metrics
from hubbub.protocol import errors as reasons
from hubbub.protocol import frames
from hubbub.protocol.codec import encode
from hubbub.protocol.views import direct_frame
from hubbub.storage import NewDirectMessage, StoredDirect

log = logging.getLogger("hubbub.engine")

CATCH_UP_PAGE = 200


@attrs.define(kw_only=True)
class DirectMessaging(ChatPart):
    """The rules of one-to-one messages."""

    presence: Presence
    gate: WriteGate
    metrics: Metrics

    async def send(self, peer: Peer, frame: frames.SendDirect) -> None:
        if frame.recipient_id != peer.user_id and (
            await self.directory.name(frame.recipient_id) is None
        ):
            peer.refuse(reasons.RECIPIENT_NOT_FOUND, frame.client_id)
            return
        if not await self.gate.admits(peer, "direct", frame.image_url, frame.client_id):
            return
        message = NewDirectMessage(
            peer.user_id, frame.recipient_id, frame.message, frame.image_url, frame.client_id
        )
        await self.gate.submit(peer, StoreDirect(message, peer))

    async def read(self, peer: Peer, frame: frames.ReadDirect) -> None:
        message = await self.storage.direct_message(frame.message_id)
        if message is None or message.recipient_id != peer.user_id:
            peer.refuse(reasons.NOT_ALLOWED)
            return
        if message.status != "read":
            await self.storage.mark_read(message.id)
        receipt = frames.ReadReceipt(
            message_id=message.id,
            reader_id=peer.user_id,
            reader_name=peer.username,
            author_id=message.author_id,
        )
        self.bus.publish(user_channel(message.author_id), Event("read_receipt", encode(receipt)))

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
        for request, stored in zip(requests, results, strict=True):
            peer = request.origin
            peer.settle_send()
            message = stored.message
            if not stored.created:
                peer.push(encode(frames.Ack(message.id, message.status, message.client_id)))
                continue
            created += 1
            status: frames.MessageStatus = (
                "delivered" if message.recipient_id in online else "pending"
            )
            recipient_name = self.directory.cached(message.recipient_id) or ""
            payload = encode(direct_frame(message, peer.username, recipient_name, status))
            self.bus.publish(
                user_channel(message.recipient_id), Event("direct", payload, message.id)
            )
            if message.author_id != message.recipient_id:
                self.bus.publish(
                    user_channel(message.author_id), Event("echo", payload, message.id)
                )
            peer.push(encode(frames.Ack(message.id, status, message.client_id)))
        if created:
            self.metrics.messages_stored.labels("direct").inc(created)

    async def catch_up(self, peer: Peer, sent: RecentIds, skip: Container[int] = ()) -> bool:
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
                    message, names.get(message.author_id, ""), names.get(user_id, ""), "delivered"
                )
                if not await peer.send(encode(frame)):
                    return False
            if not await peer.flushed():
                return False
            await self.storage.mark_delivered([m.id for m in page])
            for message in fresh:
                status = encode(frames.StatusOut(message_id=message.id, status="delivered"))
                self.bus.publish(user_channel(message.author_id), Event("status", status))
            if len(page) < CATCH_UP_PAGE:
                return True
