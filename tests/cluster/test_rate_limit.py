"""The rate limit is per user across all nodes, not per connection or per node
(docs/contract.md)."""

from __future__ import annotations

import pytest

from tests.helpers.cluster import ClusterFactory
from tests.helpers.views import direct_history

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

LIMIT = 5
PER_NODE = 3  # 3 nodes x 3 sends: over the limit, though under it on every node alone


@pytest.mark.redis_cluster
async def test_a_user_on_three_nodes_gets_the_limit_once_in_total(
    cluster_factory: ClusterFactory,
) -> None:
    async with cluster_factory(direct_rate_limit=str(LIMIT)) as cluster:
        sender, recipient = await cluster.register_all("sender", "recipient")
        async with (
            cluster.connect(sender, 0) as on_a,
            cluster.connect(sender, 1) as on_b,
            cluster.connect(sender, 2) as on_c,
        ):
            chats = {"A": on_a, "B": on_b, "C": on_c}
            # All at once, so the nodes decide concurrently.
            for n in range(PER_NODE):
                for name, chat in chats.items():
                    frame = {"type": "message", "recipient_id": recipient.id}
                    await chat.send({**frame, "message": f"{name}{n}", "client_id": f"{name}{n}"})
            answers = []
            for name, chat in chats.items():
                for n in range(PER_NODE):
                    answers.append(await chat.receive_answer(f"{name}{n}"))
            acked = [answer for answer in answers if answer["type"] == "ack"]
            refused = [answer for answer in answers if answer["type"] == "error"]
            assert len(acked) == LIMIT, answers
            assert {answer["reason"] for answer in refused} == {"rate limit exceeded"}

            for name, chat in chats.items():
                over = await chat.send_direct(recipient.id, "one too many", f"over-{name}")
                assert over == {
                    "type": "error",
                    "reason": "rate limit exceeded",
                    "client_id": f"over-{name}",
                }

        history = await direct_history(cluster.http(1), sender, recipient.id)
        assert sorted(m["message_id"] for m in history) == sorted(a["message_id"] for a in acked)
