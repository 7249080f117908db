"""A node told to stop (SIGTERM) drains: it stops taking frames, answers every send it
read (commit, ack), closes every WebSocket with 1012 so clients reconnect elsewhere at
once, and exits by itself. Nothing it read is left unanswered; nothing acked is lost."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import trio
from trio_websocket import ConnectionClosed

from hubbub.client import ChatClient, HubbubHTTP
from tests.helpers.nodes import node_process
from tests.helpers.views import direct_history

BURST = 2000
STOP_AFTER_ACKS = 150
PASSWORD = "correct horse battery"
# A small queue bounds the sends a connection may have unanswered (a quarter of it), so
# the node cannot have read the whole burst when the stop comes: most of it is still
# unread in the socket, and must get no answer.
NODE_SETTINGS = {"direct_rate_limit": "1000000", "outbound_queue": "256"}
# The sender keeps at most this many sends unanswered, as a client must to stay within its
# queue (an ack and an echo per send, 2 x WINDOW < 256): without it a sender that reads
# more slowly than the node answers (a loaded machine) is closed 1013 as a slow consumer.
# Above the node's 64 unanswered, so part of the window is still unread when the stop comes.
WINDOW = 100


def direct(recipient_id: int, client_id: str) -> dict[str, Any]:
    return {
        "type": "message",
        "recipient_id": recipient_id,
        "message": client_id,
        "client_id": client_id,
    }


async def test_sigterm_mid_burst_answers_every_send_read_and_closes_1012(
    tmp_path: Path, database_url: str
) -> None:
    log_path = tmp_path / "node.log"
    async with node_process(tmp_path / "data", database_url, log_path, **NODE_SETTINGS) as node:
        async with HubbubHTTP(node.url) as http:
            sender = await http.register("sender", "sender@example.com", PASSWORD)
            recipient = await http.register("recipient", "recipient@example.com", PASSWORD)
        sent: list[str] = []
        answers: dict[str, dict[str, Any]] = {}
        close_codes: list[int | None] = []
        window = trio.Semaphore(WINDOW)
        # The sender's close ends the burst: a sender waiting for a window slot when the
        # 1012 comes would otherwise wait for an answer that can no longer arrive.
        burst = trio.CancelScope()
        async with (
            ChatClient.connect(node.url, sender.access_token) as chat,
            ChatClient.connect(node.url, recipient.access_token) as bystander,
        ):

            async def blast() -> None:
                with burst:
                    try:
                        for number in range(BURST):
                            await window.acquire()
                            sent.append(f"d-{number}")
                            await chat.send(direct(recipient.id, f"d-{number}"))
                    except ConnectionClosed:
                        pass

            async def watch_bystander() -> None:
                try:
                    while True:
                        await bystander.receive(timeout=30)
                except ConnectionClosed as closed:
                    close_codes.append(closed.reason.code)

            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(blast)
                    nursery.start_soon(watch_bystander)
                    try:
                        while True:
                            frame = await chat.receive(timeout=20)
                            if frame["type"] in ("ack", "error"):
                                answers[frame["client_id"]] = frame
                                window.release()
                                if len(answers) == STOP_AFTER_ACKS:
                                    node.process.send_signal(signal.SIGTERM)
                    except ConnectionClosed as closed:
                        close_codes.append(closed.reason.code)
                    burst.cancel()
            status = await node.wait_dead()

    assert status == 0, log_path.read_text()[-3000:]
    assert close_codes == [1012, 1012]
    assert [a for a in answers.values() if a["type"] != "ack"] == []
    # The stop came mid-burst, or this tests nothing about sends in flight.
    assert len(answers) < len(sent)
    # Frames are read and answered in order: the answered ones are a prefix of the sent.
    assert list(answers) == sent[: len(answers)]
    log = log_path.read_text()
    assert "drained, stopping" in log

    again_log = tmp_path / "again.log"
    async with (
        node_process(tmp_path / "data", database_url, again_log) as again,
        HubbubHTTP(again.url) as http,
    ):
        stored = await direct_history(http, sender, recipient.id)
    stored_ids = {m["message_id"] for m in stored}
    # Every ack is a stored message, and every stored message of the burst was answered.
    assert {a["message_id"] for a in answers.values()} == stored_ids
