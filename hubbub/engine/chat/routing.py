"""Where the stream tail sends each event: the actors of its audience on this node."""

from __future__ import annotations

import attrs

from hubbub.engine.chat.live_pending import LivePending
from hubbub.engine.chat.ports import Event
from hubbub.engine.chat.users import LocalUsers
from hubbub.engine.runtime.registry import Registry
from hubbub.storage import StreamEvent


@attrs.define(kw_only=True)
class StreamRouting:
    users: LocalUsers
    group_actors: Registry[int]
    live_pending: LivePending = attrs.field(factory=LivePending)

    def dispatch(self, event: StreamEvent, frame: bytes, own_frame: bytes | None) -> None:
        """Hand ``event`` to the UserActors of its audience that live here; never blocks.

        A group's audience is its GroupActor's member cache (a group with no actor here
        has no member online here). ``own_frame`` goes to the event's actor."""
        kind = event.kind
        deliver = self.users.deliver
        position = event.position
        message_id = event.message_id
        if event.group_id is not None:
            actor = self.group_actors.get(event.group_id)
            if actor is None:
                return
            members: frozenset[int] = actor.members  # type: ignore[attr-defined]
            local_kind = "group" if kind == "group_message" else kind
            # Events are frozen: one for every member (the actor's own, if it differs).
            shared = Event(local_kind, frame, message_id, position=position)
            own = shared
            if own_frame is not None:
                own = Event(local_kind, own_frame, message_id, position=position)
            actor_id = event.actor_id
            for member in members:
                deliver(member, own if member == actor_id else shared)
            return
        if kind == "message":
            author, recipient = event.user_ids
            # Committed here and announced pending, yet the recipient is connected here.
            pending = event.data.get("status") == "pending"
            if pending and message_id is not None and self.users.is_here(recipient):
                self.live_pending.note(message_id)
            deliver(recipient, Event("direct", frame, message_id, position=position))
            if author != recipient:
                deliver(author, Event("echo", frame, message_id, position=position))
            return
        for user_id in dict.fromkeys(event.user_ids):
            payload = own_frame if own_frame is not None and user_id == event.actor_id else frame
            deliver(user_id, Event(kind, payload, message_id, position=position))
