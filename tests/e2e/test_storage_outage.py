"""PostgreSQL going away: sends are refused with ``storage unavailable``, never hang, and
nothing unstored is acked; when it returns, a resend with the same client_id goes through."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import trio
from servers import PostgresServer, ServerError

from hubbub.client import ChatClient, HubbubHTTP
from tests.e2e.chat_helpers import send_direct
from tests.e2e.conftest import running_node

pytestmark = pytest.mark.postgres


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, to stop and start."""
    try:
        server = PostgresServer.create()
        server.start()
    except ServerError as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"no PostgreSQL: {error}")
        pytest.skip(f"no PostgreSQL: {error}")
    try:
        yield server
    finally:
        server.cleanup()


async def test_sends_during_an_outage_are_refused_and_succeed_after(
    own_postgres: PostgresServer, tmp_path
) -> None:
    async with (
        running_node(tmp_path / "data", own_postgres.url, database_timeout="2") as node,
        HubbubHTTP(node.url) as http,
    ):
        alice = await http.register("alice", "alice@example.com", "correct horse battery")
        bob = await http.register("bob", "bob@example.com", "correct horse battery")
        async with (
            ChatClient.connect(node.url, alice.access_token) as alice_chat,
            ChatClient.connect(node.url, bob.access_token) as bob_chat,
        ):
            for chat in (alice_chat, bob_chat):
                await chat.send({"type": "ping"})
                await chat.receive_type("pong")

            await trio.to_thread.run_sync(own_postgres.stop)
            with trio.fail_after(15):
                refused = await send_direct(alice_chat, bob.id, "into the void", "v1")
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

            await trio.to_thread.run_sync(own_postgres.start)
            with trio.fail_after(30):
                while True:
                    answer = await send_direct(alice_chat, bob.id, "into the void", "v1")
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
