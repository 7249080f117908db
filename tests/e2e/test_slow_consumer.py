"""One client that stops reading must not hold up anyone else, nor the server's memory.

The stalled client here is a raw socket with a tiny receive buffer that is never read
after the handshake: a trio-websocket client would keep reading into its own queue in
the background, and never look slow to the server.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any
from unittest.mock import ANY

import attrs
import pytest
import trio
from trio_websocket import ConnectionClosed

from hubbub.client import Account, ChatClient, HubbubHTTP
from tests.helpers.polling import poll_until
from tests.helpers.prometheus import scrape
from tests.helpers.raw_ws import read_to_eof, server_frames, stalled_websocket
from tests.helpers.users import register
from tests.helpers.views import closed_sessions, find_in_tree, metric

SETTINGS = {
    "outbound_queue": "64",
    "direct_rate_limit": "1000000",
    # A write stuck this long closes the connection too; low, so the test is quick.
    "ping_timeout": "2",
    # No keepalive round within the test: the close must come from the slow-consumer path.
    "ping_interval": "60",
}
FLOODERS = 3
#: Unacked messages per flooder: well-behaved senders (see the pipelining test below).
WINDOW = 16
#: Every exchange of the busy pair must complete within this, however hard the flood.
ROUND_TIMEOUT = 5.0
MIN_ROUNDS = 20
#: UserActor's mailbox_size: a full mailbox drops events for that user.
USER_MAILBOX = 4096


def direct(recipient_id: int, text: str, client_id: str) -> dict[str, Any]:
    return {
        "type": "message",
        "recipient_id": recipient_id,
        "message": text,
        "client_id": client_id,
    }


async def receive_ack(chat: ChatClient, timeout: float = ROUND_TIMEOUT) -> dict[str, Any]:
    """The next ``ack`` on ``chat``, skipping (not holding) other frames; an error fails."""
    with trio.fail_after(timeout):
        while True:
            frame = await chat.receive(timeout=timeout)
            assert frame["type"] != "error", frame
            if frame["type"] == "ack":
                return frame


async def flood(chat: ChatClient, target_id: int, stop: trio.Event) -> None:
    """Send to ``target_id`` with ``WINDOW`` messages in flight until ``stop``."""
    in_flight = 0
    for number in itertools.count():
        if stop.is_set():
            return
        await chat.send(direct(target_id, f"flood {number}", f"flood-{number}"))
        in_flight += 1
        if in_flight == WINDOW:
            await receive_ack(chat)
            in_flight -= 1


@attrs.define
class Exchange:
    """The busy pair's conversation: rounds that completed in time."""

    rounds: int = 0


async def converse(
    pair: tuple[tuple[Account, ChatClient], tuple[Account, ChatClient]],
    stop: trio.Event,
    exchange: Exchange,
) -> None:
    """Alternate messages between the pair until ``stop`` (and at least ``MIN_ROUNDS``):
    each must be acked and reach the other side within ``ROUND_TIMEOUT``."""
    while not (stop.is_set() and exchange.rounds >= MIN_ROUNDS):
        sender, recipient = pair if exchange.rounds % 2 == 0 else pair[::-1]
        client_id = f"round-{exchange.rounds}"
        with trio.fail_after(ROUND_TIMEOUT):
            await sender[1].send(direct(recipient[0].id, client_id, client_id))
            ack = await receive_ack(sender[1])
            assert ack["client_id"] == client_id
            assert ack["status"] == "delivered"
            received = await recipient[1].receive_where(
                lambda frame, c=client_id: frame["type"] == "message" and frame["message"] == c
            )
            assert received["message_id"] == ack["message_id"]
        exchange.rounds += 1


@attrs.define
class MailboxWatch:
    """Samples one actor's mailbox depth from ``/health/supervisor``."""

    http: HubbubHTTP
    actor: str
    depths: list[int] = attrs.Factory(list)

    async def depth(self) -> int | None:
        response = await self.http.get("/health/supervisor")
        response.raise_for_status()
        entry = find_in_tree(response.json(), self.actor)
        return None if entry is None else entry["mailbox_depth"]

    async def sample(self) -> None:
        if (depth := await self.depth()) is not None:
            self.depths.append(depth)

    async def is_empty(self) -> bool:
        return await self.depth() in (None, 0)


async def test_a_stalled_client_is_closed_while_others_keep_flowing(
    node_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hubbub.ws")
    async with node_factory(**SETTINGS) as node, HubbubHTTP(node.url) as http:
        slow = await register(http, "slow")
        flooders = [await register(http, "flooder") for _ in range(FLOODERS)]
        alice, bob = await register(http, "alice"), await register(http, "bob")
        async with AsyncExitStack() as stack:
            chats = [
                await stack.enter_async_context(ChatClient.connect(node.url, a.access_token))
                for a in (*flooders, alice, bob)
            ]
            flooder_chats, (alice_chat, bob_chat) = chats[:FLOODERS], chats[FLOODERS:]
            # A first message makes the slow user someone the first flooder shares a
            # conversation with: its presence frame then tells when the stalled session
            # is attached, so the flood goes down the live path.
            await flooder_chats[0].send(direct(slow.id, "hello", "hello"))
            await receive_ack(flooder_chats[0])
            stalled = await stack.enter_async_context(
                stalled_websocket(node.port, slow.access_token)
            )
            await flooder_chats[0].receive_where(
                lambda f: (
                    f["type"] == "presence"
                    and f["user_id"] == slow.id
                    and f["presence_status"] == "online"
                )
            )
            connections = await metric(http, "hubbub_ws_connections")
            assert connections == len(chats) + 1
            slow_closed = await scrape(http)
            mailbox = MailboxWatch(http, f"user:{slow.id}")

            async def stalled_one_is_gone() -> bool:
                return await metric(http, "hubbub_ws_connections") == connections - 1

            stop = trio.Event()
            exchange = Exchange()
            async with trio.open_nursery() as nursery:
                for chat in flooder_chats:
                    nursery.start_soon(flood, chat, slow.id, stop)
                pair = ((alice, alice_chat), (bob, bob_chat))
                nursery.start_soon(converse, pair, stop, exchange)
                await poll_until(
                    stalled_one_is_gone,
                    what="the stalled connection closing",
                    timeout=20,
                    every=mailbox.sample,
                )
                stop.set()

            # The stalled connection, and it alone, was closed as a slow consumer...
            assert closed_sessions(caplog) == [
                {"user_id": slow.id, "session": ANY, "code": 1013, "reason": "slow consumer"}
            ]
            # Its outbound queue filled: counted once, under that reason alone.
            closes = "hubbub_slow_consumers_closed_total"
            closed_now = await scrape(http)
            assert closed_now.total(closes) == slow_closed.total(closes) + 1
            assert closed_now.value(closes, reason="queue_full") == (
                slow_closed.value(closes, reason="queue_full") + 1
            )
            # ...while the busy pair's messages all went through in time.
            assert exchange.rounds >= MIN_ROUNDS
            # Memory: what waits for the slow user is bounded (its outbound queue by
            # construction), its mailbox never filled, and nothing is left queued.
            assert mailbox.depths, "the slow user's actor never showed in /health/supervisor"
            assert max(mailbox.depths) < USER_MAILBOX, "the slow user's mailbox filled up"
            await poll_until(mailbox.is_empty, what="the slow user's mailbox emptying", timeout=10)
            # The server really hung up: what it had sent, once read, ends in EOF: the
            # flood, then (if the client read soon enough for the closing handshake's
            # wait) the close frame, 1013, after the one text frame partly written.
            frames = server_frames(await read_to_eof(stalled, timeout=10))
            texts = [opcode for opcode, _ in frames if opcode == 0x1]
            closes = [payload for opcode, payload in frames if opcode == 0x8]
            assert texts and len(texts) + len(closes) == len(frames)
            if closes:
                assert frames[-1][0] == 0x8 and closes[0][:2] == (1013).to_bytes(2, "big")


async def test_a_client_that_reads_promptly_is_not_closed_as_slow(
    node_factory: Callable[..., Any],
) -> None:
    """A sender that pipelines a burst and reads all the while is keeping up.

    A committed batch answers every send in it at once (an ack, and an echo each), with
    no checkpoint between: what keeps that from overflowing the sender's outbound queue
    is the bound on each connection's unacked sends."""
    count = 10 * int(SETTINGS["outbound_queue"])
    acked: set[str] = set()
    closed: ConnectionClosed | None = None
    # Only the queue bound is under test: a generous write timeout keeps a loaded
    # machine from closing the sender for a stuck write instead.
    settings = {**SETTINGS, "ping_timeout": "15"}
    async with node_factory(**settings) as node, HubbubHTTP(node.url) as http:
        sender, recipient = await register(http, "burst"), await register(http, "quiet")
        try:
            async with ChatClient.connect(node.url, sender.access_token) as chat:
                # trio-websocket reads in the background while these go out: never stalled.
                for number in range(count):
                    await chat.send(direct(recipient.id, f"burst {number}", f"burst-{number}"))
                while len(acked) < count:
                    acked.add((await receive_ack(chat))["client_id"])
        except ConnectionClosed as error:
            closed = error
    assert closed is None, f"closed after {len(acked)} of {count} acks: {closed.reason}"
    assert len(acked) == count
