"""An ``ack`` means durably stored (docs/contract.md, Guarantees): a node SIGKILLed in the middle
of a burst loses no acked message, and resending after the restart stores nothing twice."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import trio
from trio_websocket import ConnectionClosed

from hubbub.client import Account, ChatClient, HubbubHTTP
from tests.helpers.burst import Burst
from tests.helpers.nodes import NodeProcess, node_process
from tests.helpers.users import register
from tests.helpers.views import history_pages

BURST = 3000
KILL_AFTER_ACKS = 200
#: Acked messages resent after the restart too: each must get its first ``ack`` back.
ACKED_RESENDS = 50
NODE_SETTINGS = {
    # Far above the burst, so the rate limiter refuses nothing.
    "direct_rate_limit": "1000000",
    # Room for an ack and an echo per message of the burst: a sender that pipelines more
    # than about half the queue is closed as a slow consumer however promptly it reads
    # (test_slow_consumer.py shows it), and this test is about durability, not that.
    "outbound_queue": str(4 * BURST),
}


async def blast_and_kill(node: NodeProcess, sender: Account, recipient_id: int) -> Burst:
    """Send ``BURST`` messages as fast as the socket takes them while recording acks;
    SIGKILL the node once ``KILL_AFTER_ACKS`` have come back; return when the connection
    is gone."""
    burst = Burst()
    async with ChatClient.connect(node.url, sender.access_token) as chat:

        async def blast() -> None:
            try:
                for _ in range(BURST):
                    await chat.send(burst.next_frame(recipient_id))
            except ConnectionClosed:
                pass

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(blast)
                try:
                    while True:
                        frame = await chat.receive(timeout=10)
                        if frame["type"] in ("ack", "error"):
                            burst.record(frame)
                            if len(burst.acked) == KILL_AFTER_ACKS and frame["type"] == "ack":
                                node.kill()
                except ConnectionClosed as closed:
                    if len(burst.acked) < KILL_AFTER_ACKS:
                        raise AssertionError(
                            f"the node closed the sender after {len(burst.acked)} acks, "
                            f"before the kill: {closed.reason}"
                        ) from None
    assert await node.wait_dead() < 0, "the node should have died of SIGKILL"
    return burst


async def conversation(http: HubbubHTTP, account: Account, other_id: int) -> list[dict]:
    """The whole conversation through ``GET /messages/{other_id}``, paging backwards; each
    page checked to be in ascending order and older than the page before it."""
    pages: list[list[dict]] = []
    async for before, page in history_pages(http, account, other_id):
        ids = [message["message_id"] for message in page]
        assert ids == sorted(ids), "a history page must be in ascending id order"
        assert before is None or all(i < before for i in ids)
        pages.append(page)
    return [message for page in reversed(pages) for message in page]


async def resend(
    node: NodeProcess, sender: Account, recipient_id: int, burst: Burst, client_ids: list[str]
) -> dict[str, int]:
    """Send each client_id again; return the ``ack`` each got (client_id -> message_id)."""
    acks: dict[str, int] = {}
    async with ChatClient.connect(node.url, sender.access_token) as chat:
        with trio.fail_after(15):
            for client_id in client_ids:
                await chat.send(burst.frame(recipient_id, client_id))
            while len(acks) < len(client_ids):
                frame = await chat.receive_where(lambda f: f["type"] in ("ack", "error"))
                assert frame["type"] == "ack", frame
                acks[frame["client_id"]] = frame["message_id"]
    return acks


async def test_acked_messages_survive_sigkill_and_resends_store_once(
    tmp_path: Path, database_url: str
) -> None:
    data_dir = tmp_path / "data"
    logs = (tmp_path / f"node-{n}.log" for n in itertools.count(1))

    async with node_process(data_dir, database_url, next(logs), **NODE_SETTINGS) as first:
        async with HubbubHTTP(first.url) as http:
            sender, recipient = await register(http, "sender"), await register(http, "recipient")
        burst = await blast_and_kill(first, sender, recipient.id)

    assert burst.refused == []
    assert len(burst.acked) >= KILL_AFTER_ACKS
    # The kill must land mid-burst, or this tests nothing about messages in flight.
    assert burst.unacked(), "every message was acked before the kill; raise BURST"

    # Same data dir (so the same JWT secret: the tokens stay valid) and same database.
    async with (
        node_process(data_dir, database_url, next(logs), **NODE_SETTINGS) as second,
        HubbubHTTP(second.url) as http,
    ):
        stored = {m["message_id"]: m for m in await conversation(http, sender, recipient.id)}
        lost = {
            client_id: message_id
            for client_id, message_id in burst.acked.items()
            if stored.get(message_id, {}).get("message") != burst.text(client_id)
        }
        assert lost == {}, f"{len(lost)} of {len(burst.acked)} acked messages were lost"

        acked_sample = list(burst.acked)[:ACKED_RESENDS]
        acks = await resend(second, sender, recipient.id, burst, burst.unacked() + acked_sample)
        assert {c: acks[c] for c in acked_sample} == {c: burst.acked[c] for c in acked_sample}

        history = await conversation(http, sender, recipient.id)
        copies = Counter(message["message"] for message in history)
        assert [text for text, count in copies.items() if count > 1] == []
        assert set(copies) == {burst.text(client_id) for client_id in burst.sent}
        assert {m["message_id"] for m in history} >= set(acks.values())
