"""Handing writes to the storage writer: the one way a send reaches storage.

The writer's mailbox is a ``Mailbox`` owned by the node, not by the writer: a writer
that crashes and restarts reads on from it, so nothing queued is lost. ``submit``
holds one of the sender's unacked-send slots until the commit (or refusal) answers it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import attrs
import trio

from hubbub.engine.chat.messages import FlushDelivered, MarkDelivered, StoreDirect, StoreGroup
from hubbub.engine.chat.ports import Kind, Peer, RateLimiter
from hubbub.engine.runtime.actor import Mailbox, MailboxFull
from hubbub.protocol import errors as reasons
from hubbub.protocol import frames
from hubbub.protocol.views import encoded_ack
from hubbub.storage import DirectMessage, Storage, StorageError

log = logging.getLogger("hubbub.engine")

#: How long a sender waits for room in a full writer mailbox before being refused.
SUBMIT_WAIT = 10.0
#: How long a closing session waits for its delivery marks to be committed.
FLUSH_WAIT = 2.0

ImagePolicy = Callable[[str], Awaitable[bool]]


@attrs.define(kw_only=True)
class WriteGate:
    """What every send passes before it is queued: image policy, rate limit, a slot."""

    mailbox: Mailbox
    storage: Storage
    rate_limiter: RateLimiter
    image_policy: ImagePolicy | None = None

    async def admits(
        self,
        peer: Peer,
        kind: Kind,
        image_url: str | None,
        client_id: str | None,
        *,
        limited: bool = True,
    ) -> bool:
        """Whether a send may go on to storage: its image is allowed and (if ``limited``)
        it is within the sender's limit. If not, the send has been answered here."""
        if not await self.allowed_image(image_url):
            peer.refuse(reasons.INVALID_IMAGE_URL, client_id)
            return False
        return not limited or await self.within_limit(peer, kind, client_id)

    async def allowed_image(self, image_url: str | None) -> bool:
        """Whether a message may carry ``image_url`` (no image is always fine)."""
        if image_url is None or self.image_policy is None:
            return True
        return await self.image_policy(image_url)

    async def within_limit(self, peer: Peer, kind: Kind, client_id: str | None) -> bool:
        """Count the send against ``peer``'s limit. Over it, the send is answered here:
        a resend of a message already stored still gets its first ack (so a retrying
        client learns it got through), anything else ``rate limit exceeded``."""
        if await self.rate_limiter.allow(peer.user_id, kind):
            return True
        if client_id is not None:
            lookup = (
                self.storage.direct_by_client_id
                if kind == "direct"
                else self.storage.group_by_client_id
            )
            earlier = await lookup(peer.user_id, client_id)
            if earlier is not None:
                status: frames.MessageStatus = (
                    earlier.status if isinstance(earlier, DirectMessage) else "delivered"
                )
                peer.push(encoded_ack(earlier.id, status, client_id))
                return False
        peer.refuse(reasons.RATE_LIMITED, client_id)
        return False

    async def send(
        self,
        peer: Peer,
        kind: Kind,
        request: StoreDirect | StoreGroup,
        *,
        reply_fits: bool,
        limited: bool = True,
    ) -> None:
        """The end every send shares: a ``reply_to`` outside the conversation is refused,
        then the gate's checks, then the write is queued (and answered by its commit).
        ``limited=False`` (the server API's sends) skips the rate limit alone."""
        message = request.message
        if not reply_fits:
            peer.refuse(reasons.INVALID_REPLY_TO, message.client_id)
        elif await self.admits(peer, kind, message.image_url, message.client_id, limited=limited):
            await self.submit(peer, request)

    async def submit(self, peer: Peer, request: StoreDirect | StoreGroup) -> None:
        """Queue a write; the commit answers it (ack or error), exactly once."""
        client_id = request.message.client_id
        if not await peer.reserve_send():
            return
        try:
            self.mailbox.tell_nowait(request)
        except MailboxFull:
            # Back-pressure: this sender waits for room rather than queueing without bound.
            try:
                await self.mailbox.tell(request, timeout=SUBMIT_WAIT)
            except MailboxFull:
                peer.settle_send()
                peer.refuse(reasons.STORAGE_UNAVAILABLE, client_id)

    def mark_delivered(self, message_ids: list[int]) -> None:
        """Record (with the next commit) that these direct messages reached a socket. If
        the mark cannot be queued the message stays pending and comes again on the next
        connect: at least once, never lost."""
        with contextlib.suppress(MailboxFull):
            self.mailbox.tell_nowait(MarkDelivered(tuple(message_ids)))

    async def flush_delivered(self, timeout: float = FLUSH_WAIT) -> bool:
        """Have the writer commit the delivery marks queued so far, and wait (at most
        ``timeout``) until it has tried. True if it did in time."""
        done = trio.Event()
        try:
            self.mailbox.tell_nowait(FlushDelivered(done))
        except MailboxFull:
            return False
        with trio.move_on_after(timeout):
            await done.wait()
        return done.is_set()


def refuse_unstored(requests: Sequence[StoreDirect | StoreGroup], error: StorageError) -> None:
    """Answer writes that were not stored: ``storage unavailable``, and the slot back."""
    for request in requests:
        request.origin.settle_send()
        request.origin.refuse(reasons.STORAGE_UNAVAILABLE, request.message.client_id)
