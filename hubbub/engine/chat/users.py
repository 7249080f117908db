"""This node's live users: the registry of UserActors, seen from the rest of the chat domain.

A live user's actor is either running (in the registry) or *parked*: an actor whose
sessions sat idle for ``park_after`` seconds ends its task and closes its mailbox (the
memory of an idle user), but its object stays here, with its sessions, still subscribed
to the user's channel. A parked actor delivers live frames at once, on the caller's task,
as a running idle one does; anything that needs its task (an attach or detach, a group
joined, a block changed, a resync) wakes it: the work is held, in arrival order, with
every event after it, and the user's next actor adopts the sessions and takes the held
work before anything else (``UserActor``). Nothing addressed to the user goes around it.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Collection
from typing import Any

import trio

from hubbub.engine.chat.messages import Resync
from hubbub.engine.chat.ports import Event
from hubbub.engine.runtime.actor import ActorError
from hubbub.engine.runtime.registry import Registry

log = logging.getLogger("hubbub.engine")


class LocalUsers:
    """Hands events to the UserActors of users connected here; never starts one (but
    wakes a parked one, through ``run``)."""

    def __init__(self, registry: Registry[int]) -> None:
        self.registry = registry
        #: Parked actors (``UserActor``) by user id.
        self._parked: dict[int, Any] = {}
        # Unbounded, yet bounded in practice: a user is queued once per wake-up.
        self._wakes, self._to_wake = trio.open_memory_channel[int](math.inf)

    def _find(self, user_id: int) -> Any:
        """The user's running actor, else its parked one, else None."""
        actor = self.registry.get(user_id)
        return self._parked.get(user_id) if actor is None else actor

    def deliver(self, user_id: int, event: Event) -> None:
        """Hand ``event`` to ``user_id``'s actor if the user is live on this node."""
        actor = self._find(user_id)
        if actor is not None:
            actor.on_event(event)

    def is_here(self, user_id: int) -> bool:
        return self._find(user_id) is not None

    def close_slow(self, user_id: int) -> None:
        """Close the user's sessions here as slow consumers: they reconnect and catch up."""
        actor = self._find(user_id)
        if actor is not None:
            actor.close_sessions(1013, "slow consumer")

    def live(self) -> list[int]:
        """Users with an actor here, running or parked."""
        return list(dict.fromkeys([*self.registry.keys(), *self._parked]))

    def with_sessions(self) -> list[int]:
        """Users with at least one session on this node (presence heartbeats claim them)."""
        found = []
        for user_id in self.live():
            actor = self._find(user_id)
            if actor is not None and actor.sessions:
                found.append(user_id)
        return found

    def resync(self, user_ids: Collection[int] | None = None) -> None:
        """These live users (None: every one) fetch from storage what live delivery may
        have missed."""
        for user_id in self.live() if user_ids is None else user_ids:
            actor = self.registry.get(user_id)
            if actor is not None:
                with contextlib.suppress(ActorError):
                    actor.tell_nowait(Resync())
            elif (parked := self._parked.get(user_id)) is not None:
                parked.wake(Resync())

    # -- parking (called by UserActor) -----------------------------------------

    def park(self, actor: Any) -> None:
        """``actor`` ended its task with sessions attached: keep it reachable."""
        self._parked[actor.user_id] = actor

    def parked(self, user_id: int) -> Any:
        """The user's parked actor, or None."""
        return self._parked.get(user_id)

    def unpark(self, user_id: int, actor: Any) -> None:
        """``actor``'s successor took over: forget it (a no-op if another is parked)."""
        if self._parked.get(user_id) is actor:
            del self._parked[user_id]

    def wake(self, user_id: int) -> None:
        """Have ``run`` start the user's next actor (it adopts the parked one). Never
        blocks."""
        self._wakes.send_nowait(user_id)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the actor of each user woken. If it cannot be started, the parked
        sessions are closed (1011): they reconnect, rather than wait for work that
        would never be done."""
        task_status.started()
        async for user_id in self._to_wake:
            parked = self._parked.get(user_id)
            if parked is None or not parked.waiting:
                continue  # woken already (an attach started the successor first)
            try:
                await self.registry.ensure(user_id)
            except ActorError as error:
                log.warning(
                    "parked user not woken",
                    extra={"fields": {"user_id": user_id, "error": repr(error)}},
                )
                if parked.waiting:
                    self.unpark(user_id, parked)
                    parked.close_sessions(1011, "internal error, please reconnect")
