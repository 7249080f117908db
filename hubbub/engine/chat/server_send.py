"""Sends on behalf of a user, by the server API: the same path as a WebSocket send.

``ServerSends.send`` hands a ``message`` or ``group_message`` frame to the same rules a
session's frame goes to (``DirectMessaging.send``, ``GroupMessaging.send``), with a
``ServerPeer`` standing in for the session: every author rule applies (the recipient
exists, group membership, ``reply_to`` in the conversation, the image is one of ours),
the write goes through the ``WriteGate`` and the storage writer's group commit, and the
commit publishes it exactly as it publishes a session's message (the recipient's and the
author's live connections get it, on every node). Only the rate limit is skipped: the
product's backend is not a chatty client.
"""

from __future__ import annotations

import logging

import attrs
import trio

from hubbub.engine.chat.direct import DirectMessaging
from hubbub.engine.chat.groups import GroupMessaging
from hubbub.protocol import errors as reasons
from hubbub.protocol import frames
from hubbub.protocol.codec import decode_server_frame
from hubbub.protocol.errors import ProtocolError
from hubbub.storage import StorageError

log = logging.getLogger("hubbub.engine")

#: Longest wait for the commit's answer: the writer's queue wait, then a database call.
ANSWER_TIMEOUT = 30.0


@attrs.frozen
class SendAnswer:
    """How a send was answered: the stored message's id and ack status, or the contract's
    refusal ``reason`` (``hubbub.protocol.errors``)."""

    message_id: int | None = None
    status: str | None = None
    reason: str | None = None


@attrs.define(eq=False)
class ServerPeer:
    """A ``Peer`` with no connection: it keeps the one answer (ack or error) a send gets.

    Sends never queue behind it (no slots to take), and it has nothing to close."""

    user_id: int
    username: str
    since: str | None = None
    _answer: SendAnswer | None = attrs.field(default=None, init=False)
    _answered: trio.Event = attrs.field(factory=trio.Event, init=False)

    def _settle(self, answer: SendAnswer) -> None:
        if self._answer is None:
            self._answer = answer
            self._answered.set()

    def push(self, payload: bytes, delivers: int | None = None) -> bool:
        try:
            frame = decode_server_frame(payload)
        except ProtocolError:
            return True
        if frame["type"] == "ack":
            self._settle(SendAnswer(frame["message_id"], frame["status"]))
        return True

    async def send(self, payload: bytes) -> bool:
        return self.push(payload)

    async def flushed(self) -> bool:
        return True

    def refuse(self, reason: str, client_id: str | None = None) -> None:
        self._settle(SendAnswer(reason=reason))

    async def reserve_send(self) -> bool:
        return True

    def settle_send(self) -> None:
        pass

    def close_soon(self, code: int, reason: str) -> None:
        pass

    async def answer(self, timeout: float) -> SendAnswer:
        """The answer, once the send has one; ``storage unavailable`` after ``timeout``
        (the write may still commit: resending under the same ``client_id`` is safe)."""
        with trio.move_on_after(timeout):
            await self._answered.wait()
        return self._answer or SendAnswer(reason=reasons.STORAGE_UNAVAILABLE)


@attrs.define(kw_only=True)
class ServerSends:
    """The server API's sends, through the rules of ``direct`` and ``groups``."""

    direct: DirectMessaging
    groups: GroupMessaging
    timeout: float = ANSWER_TIMEOUT

    async def send(
        self, user_id: int, username: str, frame: frames.SendDirect | frames.SendGroup
    ) -> SendAnswer:
        """Send ``frame`` as ``user_id`` (who must exist) and wait for its answer: the ack
        after the commit, or the refusal a session would have got."""
        peer = ServerPeer(user_id, username)
        try:
            if isinstance(frame, frames.SendDirect):
                await self.direct.send(peer, frame, limited=False)
            else:
                await self.groups.send(peer, frame, limited=False)
        except StorageError as error:
            log.warning(
                "storage unavailable",
                extra={"fields": {"user_id": user_id, "error": str(error)}},
            )
            return SendAnswer(reason=reasons.STORAGE_UNAVAILABLE)
        return await peer.answer(self.timeout)
