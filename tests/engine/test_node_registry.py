"""NodeRegistry on a real Redis: live nodes list each other, a node that stops beating
drops out within the ttl, one that stops cleanly leaves at once."""

from __future__ import annotations

import coredis
import pytest
import trio

from hubbub.engine.cluster.node_registry import NodeRegistry
from tests.helpers.polling import poll_until

pytestmark = pytest.mark.redis

#: Quick timings; the timeout stays generous so a loaded machine is not an outage.
TIMING = {"ttl": 1.5, "heartbeat": 0.1, "timeout": 1.0}
SOON = 10.0


def registry(client: coredis.Redis, prefix: str, node_id: str) -> NodeRegistry:
    found = NodeRegistry(client, node_id, prefix=prefix, **TIMING)
    found.describe(lambda: {"url": f"http://{node_id}:8000", "connections": len(node_id)})
    return found


async def ids(of: NodeRegistry) -> list[str]:
    return [entry["node_id"] for entry in await of.live_nodes()]


async def test_running_nodes_list_each_other_with_their_details(
    client: coredis.Redis, prefix: str
) -> None:
    a, b = registry(client, prefix, "a"), registry(client, prefix, "b")
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)

        async def both() -> bool:
            return await ids(a) == ["a", "b"]

        await poll_until(both, what="both nodes listed", timeout=SOON)
        entries = {entry["node_id"]: entry for entry in await b.live_nodes()}
        assert entries["a"]["url"] == "http://a:8000"
        assert entries["a"]["connections"] == 1
        assert entries["a"]["started_at"] == a.started_at
        assert 0 < entries["b"]["expires_in"] <= TIMING["ttl"]

        # A clean stop leaves the set at once, not after the ttl.
        nursery.cancel_scope.cancel()
    assert await ids(registry(client, prefix, "c")) == []


async def test_a_node_that_stops_beating_drops_out_and_leaves_no_trace(
    client: coredis.Redis, prefix: str
) -> None:
    dead, live = registry(client, prefix, "dead"), registry(client, prefix, "live")
    # One beat, then silence: as a node that was SIGKILLed.
    await dead.beat()
    async with trio.open_nursery() as nursery:
        await nursery.start(live.run)

        async def both() -> bool:
            # run() reports started before its first beat is in.
            return await ids(live) == ["dead", "live"]

        await poll_until(both, what="both nodes listed", timeout=TIMING["ttl"] / 2)

        async def dead_gone() -> bool:
            return await ids(live) == ["live"]

        await poll_until(dead_gone, what="the silent node dropping out", timeout=SOON)
        assert set(await client.hkeys(f"{prefix}{{nodes}}:info")) == {b"live"}
        nursery.cancel_scope.cancel()
