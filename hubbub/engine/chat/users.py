"""This node's live users: the registry of UserActors, seen from the rest of the chat domain."""

from __future__ import annotations

import contextlib
from collections.abc import Collection

from hubbub.engine.chat.messages import Resync
from hubbub.engine.chat.ports import Event
from hubbub.engine.runtime.actor import ActorError
from hubbub.engine.runtime.registry import Registry


class LocalUsers:
    """Hands events to the UserActors of users connected here; never starts one."""

    def __init__(self, registry: Registry[int]) -> None:
        self.registry = registry

    def deliver(self, user_id: int, event: Event) -> None:
        """Hand ``event`` to ``user_id``'s actor if the user is live on this node."""
        actor = self.registry.get(user_id)
        if actor is not None:
            actor.on_event(event)  # type: ignore[attr-defined]

    def is_here(self, user_id: int) -> bool:
        return self.registry.get(user_id) is not None

    def close_slow(self, user_id: int) -> None:
        """Close the user's sessions here as slow consumers: they reconnect and catch up."""
        actor = self.registry.get(user_id)
        if actor is not None:
            actor.close_sessions(1013, "slow consumer")  # type: ignore[attr-defined]

    def with_sessions(self) -> list[int]:
        """Users with at least one session on this node (presence heartbeats claim them)."""
        found = []
        for user_id in list(self.registry.keys()):
            actor = self.registry.get(user_id)
            if actor is not None and actor.sessions:  # type: ignore[attr-defined]
                found.append(user_id)
        return found

    def resync(self, user_ids: Collection[int] | None = None) -> None:
        """These live users (None: every one) fetch from storage what live delivery may
        have missed."""
        for user_id in list(self.registry.keys()) if user_ids is None else user_ids:
            actor = self.registry.get(user_id)
            if actor is not None:
                with contextlib.suppress(ActorError):
                    actor.tell_nowait(Resync())
