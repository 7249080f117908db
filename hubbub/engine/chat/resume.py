"""What a new connection gets before live traffic: a v1 catch-up, or a resumed stream.

- No ``since`` (v1): undelivered direct messages, then each group's unread messages.
- ``since=<cursor>``: every stream event of the user after the cursor, in order, then
  ``synced`` (``recovered: true``). A cursor that is malformed, of another epoch, newer
  than the stream, or older than its retention: the v1 catch-up, then ``synced`` with
  ``recovered: false``.
- ``since=now``: nothing but ``synced``.

Called by the UserActor while it attaches the session, so live events wait in its
mailbox meanwhile. The replay reads up to the stream tail's position ``T`` (everything up
to ``T`` has been dispatched here, so nothing after ``T`` was missed by the mailbox);
events after ``T`` arrive live. The device's floor (``max(cursor, T)``) keeps live copies
of what the replay (or a faster node, for a cursor from ahead) already gave from being sent
twice. docs/decisions/0004 has the argument.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from hubbub.engine.chat.direct import DirectMessaging
from hubbub.engine.chat.groups import GroupMessaging
from hubbub.engine.chat.ports import Peer
from hubbub.engine.chat.render import StreamRenderer
from hubbub.engine.chat.stream import StreamTail
from hubbub.protocol import frames
from hubbub.protocol.codec import encode, encode_object
from hubbub.protocol.cursor import NOW, Cursor, parse_cursor
from hubbub.storage import Storage

log = logging.getLogger("hubbub.engine")

REPLAY_PAGE = 500


@attrs.define(kw_only=True)
class Resumption:
    storage: Storage
    stream: StreamTail
    renderer: StreamRenderer
    direct: DirectMessaging
    groups: GroupMessaging

    async def attach(self, peer: Peer, device: Any) -> None:
        """Bring a new session of ``peer.user_id`` up to date (``device`` is the
        UserActor's record of it; its ``floor`` is set here)."""
        since = peer.since
        # Every group of the user is listened to, its members loaded, before ``T`` is
        # taken: a group event after ``T`` then finds this user in its member cache.
        await self.groups.listen_all(peer.user_id)
        start = self.stream.position
        if since is None:
            await self._catch_up(peer, device, self.renderer.cursor(start))
            return
        if since == NOW:
            device.floor = start
            peer.push(encode(frames.Synced(cursor=self.renderer.cursor(start), recovered=True)))
            return
        cursor = await self.usable(since)
        if cursor is None:
            await self._catch_up(peer, device, self.renderer.cursor(start))
            device.floor = start
            peer.push(encode(frames.Synced(cursor=self.renderer.cursor(start), recovered=False)))
            return
        pending = await self._replay(peer, cursor.position, start)
        if pending is None:
            return
        device.floor = max(cursor.position, start)
        peer.push(encode(frames.Synced(cursor=self.renderer.cursor(device.floor), recovered=True)))
        await self._mark_delivered(peer, pending)

    async def usable(self, since: str) -> Cursor | None:
        """The cursor ``since`` names if the stream still has its place, else None."""
        cursor = parse_cursor(since)
        if cursor is None or cursor.epoch != self.stream.epoch:
            return None
        state = await self.storage.stream_state()
        if cursor.position > state.head or cursor.position < state.swept_through:
            return None
        return cursor

    async def _catch_up(self, peer: Peer, device: Any, cursor: str) -> None:
        if await self.direct.catch_up(peer, device.direct, cursor=cursor):
            await self.groups.catch_up(peer, device.group, cursor)

    async def _replay(self, peer: Peer, after: int, upto: int) -> list[int] | None:
        """Send the user's events in ``(after, upto]``. Returns the direct messages to
        the user among them still pending (to be marked delivered once written), or
        None if the peer left first."""
        user_id = peer.user_id
        pending: list[int] = []
        while after < upto:
            events = await self.storage.stream_for_user(user_id, after, upto, REPLAY_PAGE)
            if not events:
                break
            rendered = await self.renderer.render(events)
            for event, frame in zip(events, rendered, strict=True):
                message = event.direct
                if (
                    message is not None
                    and message.recipient_id == user_id
                    and message.status == "pending"
                ):
                    pending.append(message.id)
                if not await peer.send(encode_object(frame)):
                    return None
            after = events[-1].position
            if len(events) < REPLAY_PAGE:
                break
        return pending

    async def _mark_delivered(self, peer: Peer, pending: list[int]) -> None:
        """Pending direct messages the replay wrote become delivered, as in a catch-up:
        once they are on the socket, in one change. After ``synced``, so the client is
        not kept waiting for the write; their status events follow in the stream."""
        if pending and await peer.flushed():
            self.stream.committed(await self.storage.deliver_pending(pending))
