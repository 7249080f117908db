"""PostgreSQL going away: sends are refused with ``storage unavailable``, never hang, and
nothing unstored is acked; when it returns, a resend with the same client_id goes through."""

from __future__ import annotations

import pytest
import trio

from hubbub.client import ChatClient, HubbubHTTP
from tests.helpers.chat import attached
from tests.helpers.nodes import running_node
from tests.helpers.servers import PostgresServer
from tests.helpers.users import register

pytestmark = pytest.mark.postgres


async def test_sends_during_an_outage_are_refused_and_succeed_after(
    postgres_server: PostgresServer, tmp_path
) -> None:
    async with (
        running_node(tmp_path / "data", postgres_server.url, database_timeout="2") as node,
        HubbubHTTP(node.url) as http,
    ):
        alice, bob = await register(http, "alice"), await register(http, "bob")
        async with (
            ChatClient.connect(node.url, alice.access_token) as alice_chat,
            ChatClient.connect(node.url, bob.access_token) as bob_chat,
        ):
            for chat in (alice_chat, bob_chat):
                await attached(chat)

            await trio.to_thread.run_sync(postgres_server.stop)
            with trio.fail_after(15):
                refused = await alice_chat.send_direct(bob.id, "into the void", "v1")
            assert refused == {
                "type": "error",
                "reason": "storage unavailable",
                "client_id": "v1",
            }
            await alice_chat.send({"type": "read", "message_id": 1})
            assert (await alice_chat.receive_type("error", timeout=15))["reason"] == (
                "storage unavailable"
            )
            ready = await http.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["storage"] is False
            # The connection lives on through the outage; a new one is asked to retry.
            await alice_chat.send({"type": "ping"})
            assert (await alice_chat.receive_type("pong"))["type"] == "pong"
            async with ChatClient.connect(node.url, bob.access_token) as newcomer:
                assert await newcomer.wait_closed(timeout=15) == 1011

            await trio.to_thread.run_sync(postgres_server.start)
            with trio.fail_after(30):
                while True:
                    answer = await alice_chat.send_direct(bob.id, "into the void", "v1")
                    if answer["type"] == "ack":
                        break
                    assert answer["reason"] == "storage unavailable"
            delivered = await bob_chat.receive_type("message")
            assert (delivered["message"], delivered["message_id"]) == (
                "into the void",
                answer["message_id"],
            )
            assert (await http.get("/health/ready")).status_code == 200
        history = (await http.get(f"/messages/{bob.id}", alice.access_token)).json()
        assert [m["message"] for m in history] == ["into the void"]
