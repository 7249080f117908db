"""RedisPresence on a real Redis: several instances (nodes) behave as one cluster, a dead
node's users expire exactly once, and Redis going away neither hangs nor crashes a node."""

from __future__ import annotations

import logging
import os
import signal
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator

import attrs
import coredis
import pytest
import trio

from hubbub.engine.cluster.redis_presence import RedisPresence
from tests.helpers.polling import poll_until

#: Quick timings; the timeout stays generous so a loaded test machine is not an outage.
TIMING = {"ttl": 1.5, "heartbeat": 0.1, "timeout": 1.0}
#: Hang guard for anything that must happen "soon".
SOON = 10.0


class Expiries:
    """Records every node's ``on_expired`` calls; tests wait on them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self._events: defaultdict[int, trio.Event] = defaultdict(trio.Event)

    def callback(self, node_id: str) -> Callable[[int], Awaitable[None]]:
        async def on_expired(user_id: int) -> None:
            self.calls.append((node_id, user_id))
            self._events[user_id].set()

        return on_expired

    async def wait_for(self, user_id: int) -> None:
        with trio.fail_after(SOON):
            await self._events[user_id].wait()

    def users(self) -> list[int]:
        return sorted(user for _, user in self.calls)


@attrs.define(eq=False)
class Node:
    """One node's view: its sessions' users and its presence."""

    presence: RedisPresence
    users: set[int]

    async def join(self, user_id: int) -> bool:
        self.users.add(user_id)
        return await self.presence.went_online(user_id)

    async def leave(self, user_id: int) -> bool:
        self.users.discard(user_id)
        return await self.presence.went_offline(user_id)


@pytest.fixture
def expiries() -> Expiries:
    return Expiries()


def make_node(
    client: coredis.Redis, node_id: str, prefix: str, expiries: Expiries, **timing: float
) -> Node:
    users: set[int] = set()
    presence = RedisPresence(
        client,
        node_id,
        local_users=lambda: users,
        on_expired=expiries.callback(node_id),
        prefix=prefix,
        **{**TIMING, **timing},
    )
    return Node(presence, users)


@pytest.fixture
def nodes(client: coredis.Redis, prefix: str, expiries: Expiries) -> Iterator[list[Node]]:
    """Three nodes of one cluster, their heartbeats not running."""
    yield [make_node(client, node_id, prefix, expiries) for node_id in ("a", "b", "c")]


async def test_only_the_first_claim_anywhere_says_the_user_came_online(
    nodes: list[Node],
) -> None:
    a, b, _ = nodes
    assert await a.join(11) is True
    assert await b.join(11) is False
    assert await a.leave(11) is False
    assert await b.leave(11) is True
    assert await b.join(11) is True


async def test_online_while_any_node_holds_the_user(nodes: list[Node]) -> None:
    a, b, c = nodes
    await a.join(7)
    await b.join(7)
    assert await c.presence.is_online(7)

    assert await a.leave(7) is False
    assert await c.presence.is_online(7)
    assert await b.leave(7) is True
    assert not await c.presence.is_online(7)
    assert await c.presence.online_users() == []
    # Offline once per online period: leaving again announces nothing.
    assert await b.leave(7) is False


async def test_online_users_and_online_among(nodes: list[Node]) -> None:
    a, b, c = nodes
    for user in (30, 1):
        await a.join(user)
    for user in (2, 1):
        await b.join(user)

    assert await c.presence.online_users() == [1, 2, 30]
    assert await c.presence.online_among({1, 2, 30, 4}) == {1, 2, 30}
    assert await c.presence.online_among([]) == set()
    await b.leave(2)
    assert await a.presence.online_among([2, 30]) == {30}


async def test_a_dead_nodes_users_expire_exactly_once(
    nodes: list[Node], expiries: Expiries
) -> None:
    a, b, c = nodes
    await a.join(5)
    await a.join(6)
    await b.join(6)
    async with trio.open_nursery() as nursery:
        dead = trio.CancelScope()

        async def run_a(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with dead:
                await a.presence.run(task_status=task_status)

        await nursery.start(run_a)
        await nursery.start(b.presence.run)
        await nursery.start(c.presence.run)

        # Heartbeats keep live claims fresh well past the ttl.
        await trio.sleep(2 * TIMING["ttl"])
        assert await c.presence.online_among([5, 6]) == {5, 6}
        assert expiries.calls == []

        dead.cancel()  # a stops heartbeating and never calls went_offline: a SIGKILL.
        await expiries.wait_for(5)
        assert not await c.presence.is_online(5)
        assert await c.presence.is_online(6), "b still holds user 6"
        # Later sweeps by every survivor find nothing more to expire.
        assert await b.presence.sweep() == []
        assert await c.presence.sweep() == []
        nursery.cancel_scope.cancel()
    assert expiries.users() == [5]
    assert expiries.calls[0][0] in ("b", "c")


async def test_concurrent_sweeps_expire_each_user_once(
    client: coredis.Redis, prefix: str, expiries: Expiries
) -> None:
    # A short ttl so the claims lapse soon, and room for the first calls, which on a
    # cluster also open the connections to its shards: a join that timed out would have
    # claimed nothing, and its user would never be swept.
    dead = make_node(client, "dead", prefix, expiries, ttl=1.0, heartbeat=0.1, timeout=0.8)
    for user in range(100, 140):
        await dead.join(user)
    survivors = [make_node(client, f"s{i}", prefix, expiries) for i in range(3)]

    async def all_lapsed() -> bool:
        return await survivors[0].presence.online_users() == []

    await poll_until(all_lapsed, what="every claim lapsing", timeout=SOON, interval=0.02)
    won: list[list[int]] = []

    async def sweep(node: Node) -> None:
        won.append(await node.presence.sweep())

    async with trio.open_nursery() as nursery:
        for node in survivors:
            nursery.start_soon(sweep, node)
    assert sorted(user for users in won for user in users) == list(range(100, 140))
    assert expiries.users() == list(range(100, 140))
    # A node that comes back after being expired does not announce a second offline.
    assert await dead.leave(100) is False


async def test_redis_killed_calls_degrade_and_heartbeats_reregister(
    redis_server, prefix: str, expiries: Expiries, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hubbub.engine")
    async with coredis.Redis.from_url(redis_server.url, decode_responses=False) as client:
        node = make_node(client, "a", prefix, expiries)
        observer = make_node(client, "observer", prefix, expiries)
        async with trio.open_nursery() as nursery:
            await nursery.start(node.presence.run)
            await node.join(1)

            redis_server.kill()
            with trio.fail_after(2 * TIMING["timeout"] + 1):
                await node.join(2)
                # This node's own knowledge, as a lone node's.
                assert await node.presence.online_among({1, 2, 3}) == {1, 2}
                assert await node.presence.is_online(2)
                assert await node.presence.online_users() == [1, 2]
                assert await node.leave(1) is True
            assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1

            redis_server.start()  # Empty: every claim was lost with the process.

            async def two_is_back() -> bool:
                return await observer.presence.is_online(2)

            await poll_until(two_is_back, what="user 2 re-claimed", timeout=SOON, interval=0.02)
            assert await observer.presence.online_users() == [2]
            nursery.cancel_scope.cancel()
    assert expiries.calls == []


async def test_paused_redis_times_out_then_nobody_live_is_expired(
    redis_server, prefix: str, expiries: Expiries
) -> None:
    """Redis stops answering for longer than the ttl (its clock running on), then resumes
    with its data: live nodes' users must not be expired in the meantime."""
    timing = {"ttl": 1.0, "heartbeat": 0.1, "timeout": 0.5}
    async with coredis.Redis.from_url(redis_server.url, decode_responses=False) as client:
        pid = int((await client.info("server"))["process_id"])
        node = make_node(client, "a", prefix, expiries, **timing)
        dead = make_node(client, "dead", prefix, expiries, **timing)
        observer = make_node(client, "observer", prefix, expiries, **timing)
        await dead.join(3)
        async with trio.open_nursery() as nursery:
            await nursery.start(node.presence.run)
            await node.join(1)
            await node.join(2)
            os.kill(pid, signal.SIGSTOP)
            try:
                with trio.fail_after(timing["timeout"] + 1):
                    assert await node.leave(1) is True
                    assert await node.presence.online_users() == [2]
                await trio.sleep(timing["ttl"])  # Every claim lapses on Redis's clock.
            finally:
                os.kill(pid, signal.SIGCONT)

            # The first sweep after the pause is the one that expires the dead node's user.
            await expiries.wait_for(3)
            nursery.cancel_scope.cancel()
        assert expiries.calls == [("a", 3)], "user 1 went offline already; user 2 is live"
        assert await observer.presence.online_users() == [2]


async def test_unanswering_redis_neither_hangs_nor_crashes(prefix: str, expiries: Expiries) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    try:
        async with coredis.Redis.from_url(url, decode_responses=False) as client:
            node = make_node(client, "a", prefix, expiries, ttl=1.0, timeout=0.2)
            async with trio.open_nursery() as nursery:
                await nursery.start(node.presence.run)
                with trio.fail_after(SOON):
                    await node.join(4)
                    assert await node.presence.is_online(4)
                    assert not await node.presence.is_online(5)
                    assert await node.leave(4) is True
                    assert await node.presence.online_users() == []
                nursery.cancel_scope.cancel()
    finally:
        for listener in listeners:
            await listener.aclose()


async def test_sweeping_waits_for_live_nodes_to_reclaim_after_an_outage(
    redis_server, prefix: str, expiries: Expiries
) -> None:
    timing = {"ttl": 1.0, "heartbeat": 0.1, "timeout": 0.5}
    async with coredis.Redis.from_url(redis_server.url, decode_responses=False) as client:
        pid = int((await client.info("server"))["process_id"])
        dead = make_node(client, "dead", prefix, expiries, **timing)
        sweeper = make_node(client, "sweeper", prefix, expiries, **timing)
        observer = make_node(client, "observer", prefix, expiries, **timing)
        await dead.join(3)

        async def lapsed() -> bool:
            return await observer.presence.online_users() == []

        await poll_until(lapsed, what="the claim lapsing", timeout=SOON, interval=0.02)
        os.kill(pid, signal.SIGSTOP)
        try:
            assert not await sweeper.presence.is_online(3)  # Times out: an outage.
        finally:
            os.kill(pid, signal.SIGCONT)
        assert await sweeper.presence.online_users() == []  # Redis answers again...
        assert await sweeper.presence.sweep() == []  # ...but live nodes re-claim first.

        swept: list[int] = []

        async def swept_once_open() -> bool:
            swept.extend(await sweeper.presence.sweep())
            return bool(swept)

        await poll_until(
            swept_once_open, what="a sweep expiring user 3", timeout=SOON, interval=0.02
        )
        assert swept == [3]
        assert expiries.calls == [("sweeper", 3)]


async def test_a_node_without_users_sees_an_outage_and_its_end(
    redis_server, prefix: str, expiries: Expiries, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hubbub.engine")
    timing = {"ttl": 1.0, "heartbeat": 0.1, "timeout": 0.3}
    async with coredis.Redis.from_url(redis_server.url, decode_responses=False) as client:
        pid = int((await client.info("server"))["process_id"])
        dead = make_node(client, "dead", prefix, expiries, **timing)
        sweeper = make_node(client, "sweeper", prefix, expiries, **timing)
        async with trio.open_nursery() as nursery:
            await nursery.start(sweeper.presence.run)
            os.kill(pid, signal.SIGSTOP)
            try:
                # The outage is the subject: long enough for several heartbeats and sweeps.
                await trio.sleep(2.0)
            finally:
                os.kill(pid, signal.SIGCONT)
            await dead.join(3)
            await expiries.wait_for(3)
            nursery.cancel_scope.cancel()
        assert expiries.calls == [("sweeper", 3)]
    # Its heartbeats probe Redis although it has nobody to claim: the outage is seen, once,
    # and so is its end. (On a loaded machine a heartbeat after it may miss the 0.3 s
    # timeout: another outage, reported the same way; never one reported twice.)
    seen = [r.getMessage() for r in caplog.records if r.name == "hubbub.engine"]
    down, up = "redis unavailable, degrading until it answers", "redis answers again"
    assert seen[:2] == [down, up], seen
    assert all(seen[i] == (down, up)[i % 2] for i in range(len(seen))), seen
