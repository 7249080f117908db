"""Webhooks are delivered at least once across a SIGKILL: what was committed (acked) is
in the outbox, and a restarted node sends it, on both backends. The node runs as a
``python -m hubbub serve`` subprocess, the only honest way to crash it."""

from __future__ import annotations

from pathlib import Path

from hubbub.client import ChatClient, HubbubHTTP
from tests.helpers.chat import attached
from tests.helpers.nodes import node_process
from tests.helpers.users import register
from tests.helpers.webhooks import SECRET, Event, always, open_receiver

MESSAGES = 8


def settings(url: str, timeout: str) -> dict[str, str]:
    return {
        "webhook_url": url,
        "webhook_secret": SECRET,
        "webhook_timeout": timeout,
        "webhook_undelivered_after": "1",
        "webhook_lease": "2",
    }


async def send_messages(url: str) -> list[int]:
    """Alice sends bob ``MESSAGES`` direct messages; their ids, once each is acked."""
    async with HubbubHTTP(url) as http:
        alice, bob = await register(http, "alice"), await register(http, "bob")
    async with ChatClient.connect(url, alice.access_token) as chat:
        await attached(chat)
        acks = [await chat.send_direct(bob.id, f"m{n}", f"c{n}") for n in range(MESSAGES)]
    assert all(ack["type"] == "ack" for ack in acks)
    return [ack["message_id"] for ack in acks]


def created_ids(events: list[Event]) -> set[int]:
    return {
        e["data"]["message_id"]
        for e in events
        if e["type"] == "message.created" and "recipient_id" in e["data"]
    }


async def test_committed_events_survive_a_sigkill_while_the_receiver_is_down(
    tmp_path: Path, database_url: str
) -> None:
    async with open_receiver(SECRET, always(503)) as receiver:
        hooks = settings(receiver.url, "1")
        data_dir, log = tmp_path / "data", tmp_path / "node.log"
        async with node_process(data_dir, database_url, log, **hooks) as node:
            sent = await send_messages(node.url)
            await receiver.wait_for(
                lambda: created_ids([d.event for d in receiver.deliveries]) == set(sent),
                "a refused attempt of every message.created",
            )
            node.kill()
            await node.wait_dead()
        receiver.behaviour = always(200)
        async with node_process(data_dir, database_url, log, **hooks):
            await receiver.wait_for(
                lambda: created_ids(receiver.accepted()) == set(sent),
                "every acked message's message.created, after the restart",
            )
        # Undelivered too (bob never connected): the scan survived the crash as well.
        undelivered = {e["data"]["message_id"] for e in receiver.accepted("message.undelivered")}
        assert undelivered <= set(sent)


async def test_an_event_in_flight_at_a_sigkill_is_sent_again(
    tmp_path: Path, database_url: str
) -> None:
    def first_never_answered(event: Event, nth: int) -> int | None:
        return None if nth == 1 else 200

    async with open_receiver(SECRET, first_never_answered) as receiver:
        # A long timeout: the first node is still waiting for every answer when it dies.
        data_dir, log = tmp_path / "data", tmp_path / "node.log"
        async with node_process(
            data_dir, database_url, log, **settings(receiver.url, "60")
        ) as node:
            sent = await send_messages(node.url)
            await receiver.wait_for(
                lambda: created_ids([d.event for d in receiver.deliveries]) == set(sent),
                "every message.created in flight",
            )
            node.kill()
            await node.wait_dead()
        assert created_ids(receiver.accepted()) == set()
        async with node_process(data_dir, database_url, log, **settings(receiver.url, "5")):
            await receiver.wait_for(
                lambda: created_ids(receiver.accepted()) == set(sent),
                "every message.created sent again after the restart",
            )
        arrivals = receiver.arrivals()
        for event in receiver.accepted("message.created"):
            assert arrivals[event["id"]] == 2  # the one lost in the crash, and the one answered
