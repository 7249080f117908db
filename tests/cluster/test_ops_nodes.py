"""The operator page in a cluster: every node lists the live nodes (the heartbeat registry
in Redis), and a SIGKILLed node drops out of the list within the registry's ttl."""

from __future__ import annotations

import pytest

from tests.helpers.cluster import NODES, ClusterFactory
from tests.helpers.polling import poll_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

TOKEN = "ops-token-for-cluster-tests-0123"
#: The registry's ttl (15 s) with slack for a loaded machine.
DROP_TIMEOUT = 30.0


@pytest.mark.redis_cluster
async def test_every_node_lists_the_live_nodes_and_a_dead_one_drops_out(
    cluster_factory: ClusterFactory,
) -> None:
    async with cluster_factory(ops_token=TOKEN) as cluster:

        async def listed(index: int) -> list[tuple[str, str]]:
            state = (await cluster.http(index).get("/ops/state", TOKEN)).json()
            assert state["redis"] == {"configured": True, "ok": True}
            assert find_registry(state["tree"])
            return sorted((n["node_id"], n["url"]) for n in state["nodes"])

        expected = sorted(
            [
                ((await cluster.http(i).get("/ops/state", TOKEN)).json()["node_id"], cluster.url(i))
                for i in range(NODES)
            ]
        )
        for index in range(NODES):
            assert await listed(index) == expected

        dead_url = cluster.url(2)
        await cluster.kill(2)

        async def dropped() -> bool:
            return dead_url not in {url for _, url in await listed(0)}

        await poll_until(dropped, what="the killed node leaving the list", timeout=DROP_TIMEOUT)
        assert (
            await listed(1)
            == await listed(0)
            == [entry for entry in expected if entry[1] != dead_url]
        )


def find_registry(tree: dict) -> bool:
    return any(child["name"] == "node-registry" for child in tree["children"])
