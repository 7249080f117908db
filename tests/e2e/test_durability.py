"""An ``ack`` means durably stored (docs/contract.md, Guarantees): a node SIGKILLed in the middle
of a burst loses no acked message, and resending after the restart stores nothing twice."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import trio
from trio_websocket import ConnectionClosed

from hubbub.client import Account, ChatClient, HubbubHTTP
from tests.e2e.subprocess_node import NodeProcess, node_process

BURST = 3000
KILL_AFTER_ACKS = 200
#: Acked messages resent after the restart too: each must get its first ``ack`` back.
ACKED_RESENDS = 50
HISTORY_PAGE = 200
PASSWORD = "correct horse battery"
NODE_SETTINGS = {
    # Far above the burst, so the rate limiter refuses nothing.
    "direct_rate_limit": "1000000",
    # Room for an ack and an echo per message of the burst: a sender that pipelines more
    # than about half the queue is closed as a slow consumer however promptly it reads
    # (test_slow_consumer.py shows it), and this test is about durability, not that.
    "outbound_queue": str(4 * BURST),
}


@attrs.define
class Burst:
    """What the sender saw: every client_id it tried to send, and the acks it got."""

    sent: list[str] = attrs.Factory(list)
    acked: dict[str, int] = attrs.Factory(dict)
    errors: list[dict[str, Any]] = attrs.Factory(list)

    def unacked(self) -> list[str]:
        return [client_id for client_id in self.sent if client_id not in self.acked]


def body(client_id: str) -> str:
    # The client_id is in the text too, so duplicates show in history whatever fields it has.
    return f"durable {client_id}"


def direct(recipient_id: int, client_id: str) -> dict[str, Any]:
    return {
        "type": "message",
        "recipient_id": recipient_id,
        "message": body(client_id),
        "client_id": client_id,
    }


async def blast_and_kill(node: NodeProcess, sender: Account, recipient_id: int) -> Burst:
    """Send ``BURST`` messages as fast as the socket takes them while recording acks;
    SIGKILL the node once ``KILL_AFTER_ACKS`` have come back; return when the connection
    is gone."""
    burst = Burst()
    async with ChatClient.connect(node.url, sender.access_token) as chat:

        async def blast() -> None:
            try:
                for number in range(BURST):
                    client_id = f"burst-{number}"
                    # Counted before the send: a frame cut short by the kill may have landed.
                    burst.sent.append(client_id)
                    await chat.send(direct(recipient_id, client_id))
            except ConnectionClosed:
                pass

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(blast)
                try:
                    while True:
                        frame = await chat.receive(timeout=10)
                        if frame["type"] == "ack":
                            burst.acked[frame["client_id"]] = frame["message_id"]
                            if len(burst.acked) == KILL_AFTER_ACKS:
                                node.kill()
                        elif frame["type"] == "error":
                            burst.errors.append(frame)
                except ConnectionClosed as closed:
                    if len(burst.acked) < KILL_AFTER_ACKS:
                        raise AssertionError(
                            f"the node closed the sender after {len(burst.acked)} acks, "
                            f"before the kill: {closed.reason}"
                        ) from None
    assert await node.wait_dead() < 0, "the node should have died of SIGKILL"
    return burst


async def conversation(http: HubbubHTTP, account: Account, other_id: int) -> list[dict]:
    """The whole conversation through ``GET /messages/{other_id}``, paging backwards."""
    pages: list[list[dict]] = []
    before: int | None = None
    while True:
        params: dict[str, int] = {"limit": HISTORY_PAGE}
        if before is not None:
            params["before"] = before
        response = await http.get(f"/messages/{other_id}", account.access_token, **params)
        assert response.status_code == 200, response.text
        page = response.json()
        ids = [message["message_id"] for message in page]
        assert ids == sorted(ids), "a history page must be in ascending id order"
        assert before is None or all(i < before for i in ids)
        if page:
            pages.append(page)
            before = ids[0]
        if len(page) < HISTORY_PAGE:
            return [message for page in reversed(pages) for message in page]


async def resend(
    node: NodeProcess, sender: Account, recipient_id: int, client_ids: list[str]
) -> dict[str, int]:
    """Send each client_id again; return the ``ack`` each got (client_id -> message_id)."""
    acks: dict[str, int] = {}
    async with ChatClient.connect(node.url, sender.access_token) as chat:
        with trio.fail_after(15):
            for client_id in client_ids:
                await chat.send(direct(recipient_id, client_id))
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
            sender = await http.register("sender", "sender@example.com", PASSWORD)
            recipient = await http.register("recipient", "recipient@example.com", PASSWORD)
        burst = await blast_and_kill(first, sender, recipient.id)

    assert burst.errors == []
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
            if stored.get(message_id, {}).get("message") != body(client_id)
        }
        assert lost == {}, f"{len(lost)} of {len(burst.acked)} acked messages were lost"

        acked_sample = list(burst.acked)[:ACKED_RESENDS]
        acks = await resend(second, sender, recipient.id, burst.unacked() + acked_sample)
        assert {c: acks[c] for c in acked_sample} == {c: burst.acked[c] for c in acked_sample}

        history = await conversation(http, sender, recipient.id)
        copies = Counter(message["message"] for message in history)
        assert [text for text, count in copies.items() if count > 1] == []
        assert set(copies) == {body(client_id) for client_id in burst.sent}
        assert {m["message_id"] for m in history} >= set(acks.values())
