"""Edit, delete and react: changes to a stored message, each committed with its stream
event and delivered by the stream to every participant.

Who may is decided before the text rules (the contract's order): the message is looked up
and the rule checked first, so a stranger learns ``not allowed`` whatever the text;
storage checks the rule again inside the transaction that makes the change.
"""

from __future__ import annotations

import attrs

from hubbub.engine.chat.blocks import BlockCache
from hubbub.engine.chat.groups import GroupMessaging
from hubbub.engine.chat.ports import Peer
from hubbub.engine.chat.stream import StreamTail
from hubbub.protocol import errors as reasons
from hubbub.protocol import frames
from hubbub.protocol.rules import emoji_problem, text_problem
from hubbub.storage import DirectMessage, GroupMessage, MessageKind, Storage


@attrs.define(kw_only=True)
class RichMessages:
    storage: Storage
    groups: GroupMessaging
    stream: StreamTail
    blocks: BlockCache
    max_text_length: int

    async def _message(
        self, message_id: int, group_id: int | None
    ) -> DirectMessage | GroupMessage | None:
        """The live (not deleted) message the frame names, or None."""
        message: DirectMessage | GroupMessage | None
        if group_id is None:
            message = await self.storage.direct_message(message_id)
        else:
            posted = await self.storage.group_message(message_id)
            if posted is None or posted.group_id != group_id:
                return None
            message = posted
        if message is None or message.state.deleted:
            return None
        return message

    async def _participant(self, user_id: int, message: DirectMessage | GroupMessage) -> bool:
        if isinstance(message, DirectMessage):
            return user_id in (message.author_id, message.recipient_id)
        return await self.groups.is_member(message.group_id, user_id)

    async def _blocked(self, user_id: int, message: DirectMessage | GroupMessage) -> bool:
        """Whether the other user of a direct message's conversation blocks ``user_id``:
        then an edit or a reaction by ``user_id`` would reach the blocker, and is refused
        (a delete is not: taking back one's words is always allowed)."""
        if not isinstance(message, DirectMessage):
            return False
        other = message.recipient_id if message.author_id == user_id else message.author_id
        return other != user_id and await self.blocks.refuses(user_id, other)

    async def edit(self, peer: Peer, frame: frames.Edit) -> None:
        message = await self._message(frame.message_id, frame.group_id)
        if (
            message is None
            or message.author_id != peer.user_id
            or await self._blocked(peer.user_id, message)
        ):
            peer.refuse(reasons.NOT_ALLOWED, frame.client_id)
            return
        problem = text_problem(frame.message, self.max_text_length)
        if problem is not None:
            peer.refuse(problem, frame.client_id)
            return
        event = await self.storage.edit_message(
            _kind(frame.group_id), frame.message_id, frame.group_id, peer.user_id, frame.message
        )
        self._answer(peer, event, frame.client_id)

    async def delete(self, peer: Peer, frame: frames.Delete) -> None:
        event = await self.storage.delete_message(
            _kind(frame.group_id), frame.message_id, frame.group_id, peer.user_id
        )
        self._answer(peer, event, frame.client_id)

    async def react(self, peer: Peer, frame: frames.React) -> None:
        message = await self._message(frame.message_id, frame.group_id)
        if (
            message is None
            or not await self._participant(peer.user_id, message)
            or await self._blocked(peer.user_id, message)
        ):
            peer.refuse(reasons.NOT_ALLOWED, frame.client_id)
            return
        problem = emoji_problem(frame.emoji)
        if problem is not None:
            peer.refuse(problem, frame.client_id)
            return
        event = await self.storage.react(
            _kind(frame.group_id),
            frame.message_id,
            frame.group_id,
            peer.user_id,
            frame.emoji,
            frame.op == "add",
        )
        self._answer(peer, event, frame.client_id)

    def _answer(self, peer: Peer, event: object, client_id: str | None) -> None:
        if event is None:
            peer.refuse(reasons.NOT_ALLOWED, client_id)
            return
        self.stream.committed([event], client_id)  # type: ignore[list-item]


def _kind(group_id: int | None) -> MessageKind:
    return "direct" if group_id is None else "group"
