"""Registry: spawn on demand, passivation, respawn, one actor per key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from trio.testing import wait_all_tasks_blocked

from hubbub.engine.runtime.actor import Actor, AskTimeout
from hubbub.engine.runtime.registry import Registry
from hubbub.engine.runtime.supervisor import ChildSpec, Supervisor


class Boom(Exception):
    pass


class UserLike(Actor):
    """Records what it handles; "block" waits for the shared gate, "block-crash"
    then raises; "ping" answers with the instance."""

    def __init__(self, key: int, gate: trio.Event, *, idle_timeout: float | None) -> None:
        super().__init__(f"user:{key}", mailbox_size=1, idle_timeout=idle_timeout)
        self.gate = gate
        self.handled: list[object] = []

    async def handle(self, message: object) -> object:
        if message in ("block", "block-crash"):
            await self.gate.wait()
            if message == "block-crash":
                raise Boom(self.name)
        self.handled.append(message)
        return self


class Users:
    """A supervisor, a registry over it, and every actor its factories built."""

    def __init__(self, *, idle_timeout: float | None = None) -> None:
        self.gate = trio.Event()
        self.built: list[UserLike] = []
        self.removed = trio.Event()
        self.supervisor = Supervisor("users", max_restarts=10)
        self.supervisor.add_removal_listener(lambda name: self.removed.set())
        self.registry: Registry[int] = Registry(self.supervisor, self.spec_for)
        self.idle_timeout = idle_timeout

    def spec_for(self, key: int) -> ChildSpec:
        def build() -> UserLike:
            self.built.append(UserLike(key, self.gate, idle_timeout=self.idle_timeout))
            return self.built[-1]

        return ChildSpec(f"user:{key}", build)

    async def wait_removed(self) -> None:
        with trio.fail_after(1000):
            await self.removed.wait()
        self.removed = trio.Event()


@asynccontextmanager
async def running(users: Users) -> AsyncIterator[Users]:
    async with trio.open_nursery() as nursery:
        await nursery.start(users.supervisor.run)
        yield users
        nursery.cancel_scope.cancel()


async def test_spawns_on_demand_and_routes_to_the_live_actor() -> None:
    async with running(Users()) as users:
        registry = users.registry
        assert registry.get(1) is None and len(registry) == 0
        await registry.tell(1, "a")
        await registry.tell_nowait(1, "b")
        actor = await registry.ask(1, "c", timeout=5)
        assert actor is registry.get(1) is users.built[0]
        assert users.built[0].handled == ["a", "b", "c"]
        assert registry.keys() == [1] and 1 in registry and "user:1" in users.supervisor
        assert len(users.built) == 1


async def test_an_idle_actor_passivates_and_the_next_tell_respawns_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running(Users(idle_timeout=30)) as users:
        registry = users.registry
        await registry.tell(7, "first")
        first = registry.get(7)
        await users.wait_removed()
        assert first is not None and first.state == "stopped"
        assert registry.get(7) is None and len(registry) == 0
        assert "user:7" not in users.supervisor
        assert users.supervisor.snapshot()["children"] == []

        await registry.tell(7, "second")
        second = registry.get(7)
        assert second is users.built[1] is not first
        assert await registry.ask(7, "third", timeout=5) is second
        assert users.built[0].handled == ["first"]
        assert users.built[1].handled == ["second", "third"]


async def test_messages_queued_before_passivation_are_all_handled(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running(Users(idle_timeout=30)) as users:
        registry = users.registry
        await registry.tell(1, "block")
        await wait_all_tasks_blocked()  # the actor took "block"
        await registry.tell_nowait(1, "queued")  # the one mailbox slot
        await trio.sleep(100)  # long past the idle timeout, while the actor is busy
        users.gate.set()
        await users.wait_removed()
        assert users.built[0].handled == ["block", "queued"]
        assert len(users.built) == 1


async def test_concurrent_ensures_spawn_one_actor() -> None:
    async with running(Users()) as users:
        found: list[Actor] = []

        async def ensure() -> None:
            found.append(await users.registry.ensure(3))

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(ensure)
        assert len(users.built) == 1
        assert found == [users.built[0]] * 5


async def test_a_send_blocked_on_a_crashing_actor_goes_to_its_successor() -> None:
    async with running(Users()) as users:
        registry = users.registry
        delivered = trio.Event()

        async def tell_blocked() -> None:
            await registry.tell(1, "after")
            delivered.set()

        await registry.tell(1, "block-crash")
        await wait_all_tasks_blocked()
        await registry.tell_nowait(1, "filler")  # mailbox full now
        async with trio.open_nursery() as nursery:
            nursery.start_soon(tell_blocked)
            await wait_all_tasks_blocked()
            assert not delivered.is_set()
            users.gate.set()  # the actor crashes; the blocked tell meets ActorStopped
            with trio.fail_after(5):
                await delivered.wait()
        first, second = users.built
        assert first.state == "crashed"
        assert registry.get(1) is second
        # "filler" died with the crashed actor's mailbox; "after" was retried.
        assert await registry.ask(1, "ping", timeout=5) is second
        assert second.handled == ["after", "ping"]


async def test_ask_through_the_registry_times_out(autojump_clock: trio.abc.Clock) -> None:
    async with running(Users()) as users:
        await users.registry.tell(1, "block")
        with pytest.raises(AskTimeout):
            await users.registry.ask(1, "ping", timeout=2)
        users.gate.set()


async def test_registry_children_must_be_actors() -> None:
    async with running(Users()) as users:
        other = Supervisor("not-an-actor")
        registry: Registry[Any] = Registry(
            users.supervisor, lambda key: ChildSpec(key, lambda: other)
        )
        with pytest.raises(TypeError, match="must be Actors"):
            await registry.ensure("odd")
