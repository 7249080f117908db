"""The registry: a key (user id, group id) to its live actor, spawned on demand.

Actors are started under one supervisor as dynamic children and leave the tree when
they passivate (see ``Actor``'s ``idle_timeout``), so memory follows activity. The
registry holds no actor references of its own: it maps keys to child names and asks
the supervisor for the live instance, so a restarted actor is found, never a stale one.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, cast

import attrs
import trio

from hubbub.engine.runtime.actor import Actor, ActorStopped, AskTimeout
from hubbub.engine.runtime.supervisor import ChildSpec, Restart, Supervisor

__all__ = ["Registry"]

K = TypeVar("K", bound=Hashable)

#: How long ``ensure`` waits for the supervisor to start an actor.
ENSURE_TIMEOUT = 10.0


class Registry(Generic[K]):
    """Routes messages for a key to the key's actor, spawning it when needed.

    ``spec_for(key)`` describes the key's actor; its name must be unique per key
    within the supervisor. A PERMANENT spec is run as TRANSIENT, because
    passivation is a normal return that must not restart the actor; a crashed
    actor is restarted in place (TRANSIENT) or left to the next message (TEMPORARY).

    Sends retry once, transparently, when the actor they found stopped before the
    message got in (passivated or crashed): the retry goes to its successor.
    """

    def __init__(self, supervisor: Supervisor, spec_for: Callable[[K], ChildSpec]) -> None:
        self._supervisor = supervisor
        self._spec_for = spec_for
        self._names: dict[K, str] = {}
        self._keys: dict[str, K] = {}
        supervisor.add_removal_listener(self._forget)

    async def ensure(self, key: K, *, timeout: float = ENSURE_TIMEOUT) -> Actor:
        """The key's live actor, started now if there is none. Concurrent calls for
        one key start one actor. Raises ``ActorStopped`` if the supervisor is down and
        ``AskTimeout`` if the supervisor did not start it within ``timeout`` seconds."""
        spec = self._spec_for(key)
        if spec.restart is Restart.PERMANENT:
            spec = attrs.evolve(spec, restart=Restart.TRANSIENT)
        child = None
        with trio.move_on_after(timeout):
            child = await self._supervisor.ensure_child(spec)
        if child is None:
            raise AskTimeout(f"{spec.name!r} was not started within {timeout}s")
        if not isinstance(child, Actor):
            raise TypeError(
                f"registry children must be Actors; the spec {spec.name!r} built "
                f"{type(child).__name__}"
            )
        # Only while the child is in the tree: its removal, which will come later,
        # is what unmaps it. If it has left already, there is nothing to map.
        if spec.name in self._supervisor:
            self._names[key] = spec.name
            self._keys[spec.name] = key
        return child

    def get(self, key: K) -> Actor | None:
        """The key's live actor, or None. Never starts one."""
        name = self._names.get(key)
        if name is None:
            return None
        return cast("Actor | None", self._supervisor.child(name))

    async def tell_nowait(self, key: K, message: object) -> None:
        """Queue ``message`` for the key's actor, starting it if needed, but never
        waiting for mailbox room: raises ``MailboxFull`` instead."""
        actor = self.get(key)
        if actor is None:
            actor = await self.ensure(key)
        try:
            actor.tell_nowait(message)
        except ActorStopped:
            (await self.ensure(key)).tell_nowait(message)

    async def tell(self, key: K, message: object, *, timeout: float | None = None) -> None:
        """Queue ``message`` for the key's actor, starting it if needed and waiting
        up to ``timeout`` seconds for mailbox room (``MailboxFull`` past it)."""
        actor = self.get(key)
        if actor is None:
            actor = await self.ensure(key)
        try:
            await actor.tell(message, timeout=timeout)
        except ActorStopped:
            await (await self.ensure(key)).tell(message, timeout=timeout)

    async def ask(self, key: K, message: object, *, timeout: float) -> object:
        """Ask the key's actor, starting it if needed. ``timeout`` covers the start,
        the retry and the reply; past it, raises ``AskTimeout``."""
        with trio.move_on_after(timeout):
            actor = self.get(key)
            if actor is None:
                actor = await self.ensure(key)
            try:
                return await actor.ask(message, timeout=timeout)
            except ActorStopped:
                return await (await self.ensure(key)).ask(message, timeout=timeout)
        raise AskTimeout(f"no answer for {key!r} to {type(message).__name__} within {timeout}s")

    def _forget(self, name: str) -> None:
        if name in self._keys:
            key = self._keys.pop(name)
            if self._names.get(key) == name:
                del self._names[key]

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, key: object) -> bool:
        return key in self._names

    def keys(self) -> list[K]:
        """Keys whose actor is in the tree (live, or being restarted)."""
        return list(self._names)
