"""The server API across nodes (PostgreSQL + Redis, three subprocess nodes): a key made
with one node's configuration opens every node's API until it is revoked; a disconnect
asked of one node closes the user's sockets on the others (1008); a message posted on one
node arrives live on another, as if its author had sent it there."""

from __future__ import annotations

import pytest
import trio

from hubbub.client import ChatClient
from tests.helpers.chat import attached, frames_until, is_text
from tests.helpers.cluster import Cluster
from tests.helpers.server_api import ServerApi, api_key_command

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

A, B, C = range(3)


async def created_key(cluster: Cluster, name: str = "backend") -> str:
    """A key made by ``hubbub api-key create`` with node A's configuration."""
    result = await api_key_command("create", name, env=node_a_settings(cluster))
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().splitlines()[-1]


def node_a_settings(cluster: Cluster) -> dict[str, str]:
    return {
        "HUBBUB_DATA_DIR": str(cluster.tmp_path / "node-0"),
        "HUBBUB_DATABASE_URL": cluster.database_url,
        **{f"HUBBUB_{k.upper()}": v for k, v in cluster.settings.items()},
    }


async def test_a_key_made_for_one_node_works_on_every_node_until_revoked(
    cluster: Cluster,
) -> None:
    key = await created_key(cluster)
    for index in (A, B, C):
        api = ServerApi(cluster.http(index), key)
        assert (await api.post("/users", {"username": f"n{index}"})).status_code == 201
    revoked = await api_key_command("revoke", "backend", env=node_a_settings(cluster))
    assert revoked.returncode == 0, revoked.stderr
    for index in (B, C):
        refused = await ServerApi(cluster.http(index), key).post("/users", {"username": "late"})
        assert refused.status_code == 401, index


async def test_a_disconnect_asked_of_one_node_closes_sockets_on_the_others(
    cluster: Cluster,
) -> None:
    api = ServerApi(cluster.http(A), await created_key(cluster))
    target, bystander = await api.account("target"), await api.account("bystander")
    async with (
        cluster.connect(target, B) as on_b,
        cluster.connect(target, C) as on_c,
        cluster.connect(bystander, B) as other,
    ):
        response = await api.post(f"/users/{target.id}/disconnect")
        assert response.status_code == 202
        codes: dict[str, int | None] = {}

        async def closed(name: str, chat: ChatClient) -> None:
            codes[name] = await chat.wait_closed(timeout=10)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(closed, "B", on_b)
            nursery.start_soon(closed, "C", on_c)
        assert codes == {"B": 1008, "C": 1008}
        await attached(other)  # still open


async def test_a_message_posted_on_one_node_arrives_live_on_another(cluster: Cluster) -> None:
    api = ServerApi(cluster.http(A), await created_key(cluster))
    system, alice, bob = [await api.account(p) for p in ("system", "alice", "bob")]
    group = await api.post(
        "/groups", {"name": "Ops", "admin_id": system.id, "member_ids": [bob.id]}
    )
    assert group.status_code == 201
    group_id = group.json()["group_id"]
    async with cluster.connect(alice, B) as alice_b, cluster.connect(bob, C) as bob_c:
        direct = await api.post(
            "/messages", {"author_id": system.id, "recipient_id": alice.id, "message": "hi"}
        )
        assert direct.status_code == 201, direct.text
        assert direct.json()["status"] == "delivered"  # alice is online, on B
        live = (await frames_until(alice_b, is_text("message", "hi")))[-1]
        assert live["message_id"] == direct.json()["message_id"]

        grouped = await api.post(
            "/messages", {"author_id": system.id, "group_id": group_id, "message": "deploy"}
        )
        assert grouped.status_code == 201, grouped.text
        live = (await frames_until(bob_c, is_text("group_message", "deploy")))[-1]
        assert live["message_id"] == grouped.json()["message_id"]

        # Alice, added on A while connected to B, takes part at once.
        added = await api.post(f"/groups/{group_id}/members", {"user_id": alice.id})
        assert added.status_code == 201
        assert (await alice_b.send_group(group_id, "joined", "j-1"))["type"] == "ack"
        await frames_until(bob_c, is_text("group_message", "joined"))
