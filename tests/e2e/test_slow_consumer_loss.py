"""A slow-consumer close loses nothing (failure F4 of the reliability issue).

A message is ``delivered`` only once its frame was written to the socket: frames still
queued when the server closes a client that does not read (1013) stay pending and come
with the next connect's catch-up. Every acked message reaches the victim in some frame.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import trio

from hubbub.client import ChatClient, HubbubHTTP
from tests.e2e.test_slow_consumer import direct
from tests.helpers.polling import poll_until
from tests.helpers.raw_ws import read_to_eof, server_frames, stalled_websocket
from tests.helpers.users import register
from tests.helpers.views import metric

SETTINGS = {
    "outbound_queue": "64",
    "direct_rate_limit": "1000000",
    "ping_timeout": "2",
    "ping_interval": "60",
}
MESSAGES = 600
BODY = "x" * 1000
# The sender keeps this many sends unanswered (an ack and an echo each, within its queue of
# 64): only the victim is to be a slow consumer, not a sender starved of CPU.
WINDOW = 16


async def test_frames_queued_at_a_slow_consumer_close_come_again_on_reconnect(
    node_factory: Callable[..., Any],
) -> None:
    async with node_factory(**SETTINGS) as node, HubbubHTTP(node.url) as http:
        victim, sender = await register(http, "victim"), await register(http, "sender")
        acked: set[str] = set()
        async with (
            ChatClient.connect(node.url, sender.access_token) as chat,
            stalled_websocket(node.port, victim.access_token) as stalled,
        ):
            # Both sessions counted (the stalled one's handshake answer comes before its
            # session runs), so that one fewer means the victim was closed.
            connections = 2

            async def both_counted() -> bool:
                return await metric(http, "hubbub_ws_connections") == connections

            await poll_until(both_counted, what="both sessions counted", timeout=10)

            window = trio.Semaphore(WINDOW)

            async def send_all() -> None:
                for number in range(MESSAGES):
                    await window.acquire()
                    await chat.send(direct(victim.id, f"{number} {BODY}", f"v{number}"))

            with trio.fail_after(60):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(send_all)
                    while len(acked) < MESSAGES:
                        frame = await chat.receive(timeout=20)
                        assert frame["type"] != "error", frame
                        if frame["type"] == "ack":
                            acked.add(frame["client_id"])
                            window.release()

            async def victim_closed() -> bool:
                return await metric(http, "hubbub_ws_connections") == connections - 1

            await poll_until(victim_closed, what="the victim closed", timeout=30)
            got = {
                json.loads(payload)["client_id"]
                for opcode, payload in server_frames(await read_to_eof(stalled, timeout=10))
                if opcode == 0x1 and json.loads(payload).get("type") == "message"
            }
        # The close must have cut the stream short, or this tests nothing.
        assert len(got) < MESSAGES
        async with ChatClient.connect(node.url, victim.access_token) as again:
            await again.send({"type": "ping"})
            with trio.fail_after(30):
                while True:
                    frame = await again.receive(timeout=30)
                    if frame["type"] == "pong":
                        break
                    if frame["type"] == "message":
                        got.add(frame["client_id"])
    assert sorted(acked - got) == []
