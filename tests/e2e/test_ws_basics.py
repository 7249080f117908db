"""The WebSocket endpoint: authentication, keepalive answers, bad input (docs/contract.md)."""

from __future__ import annotations

import logging
from unittest.mock import ANY

import pytest
import trio
from trio_websocket import ConnectionClosed

from hubbub.client import ChatClient, HubbubHTTP
from hubbub.node import Node
from tests.helpers.chat import attached
from tests.helpers.polling import poll_until
from tests.helpers.users import UserMaker, register
from tests.helpers.views import closed_sessions, metric


@pytest.mark.parametrize("placement", ["query", "header", "subprotocol"])
async def test_each_token_placement_authenticates(
    node: Node, make_user: UserMaker, placement: str
) -> None:
    user = await make_user()
    async with ChatClient.connect(node.url, user.access_token, placement=placement) as chat:
        if placement == "subprotocol":
            assert chat.subprotocol == user.access_token
        await chat.send({"type": "ping"})
        assert await chat.receive() == {"type": "pong"}


@pytest.mark.parametrize("token", [None, "not-a-jwt", "refresh"])
async def test_missing_or_bad_token_is_accepted_then_closed_1008(
    node: Node, make_user: UserMaker, token: str | None
) -> None:
    if token == "refresh":
        token = (await make_user()).refresh_token
    async with ChatClient.connect(node.url, token) as chat:
        assert await chat.wait_closed() == 1008


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "invalid frame"),
        ("[1, 2]", "invalid frame"),
        ('{"no": "type"}', "invalid frame"),
        ('{"type": "message", "recipient_id": "7", "message": "x"}', "invalid frame"),
        ('{"type": "teleport"}', "unknown_type"),
        ('{"type": "message", "recipient_id": 1}', "empty message"),
    ],
)
async def test_bad_frames_get_an_error_and_the_connection_lives(
    node: Node, make_user: UserMaker, frame: str, reason: str
) -> None:
    user = await make_user()
    async with ChatClient.connect(node.url, user.access_token) as chat:
        await chat.send(frame)
        assert await chat.receive_type("error") == {"type": "error", "reason": reason}
        await chat.send({"type": "ping"})
        assert await chat.receive_type("pong") == {"type": "pong"}


async def test_error_echoes_the_client_id(node: Node, make_user: UserMaker) -> None:
    user = await make_user()
    async with ChatClient.connect(node.url, user.access_token) as chat:
        await chat.send({"type": "message", "recipient_id": user.id, "client_id": "c-9"})
        error = await chat.receive_type("error")
        assert error == {"type": "error", "reason": "empty message", "client_id": "c-9"}


async def test_text_over_the_limit_is_message_too_long(node: Node, make_user: UserMaker) -> None:
    user = await make_user()
    async with ChatClient.connect(node.url, user.access_token) as chat:
        await chat.send({"type": "message", "recipient_id": user.id, "message": "x" * 4001})
        assert (await chat.receive_type("error"))["reason"] == "message too long"


async def test_a_frame_over_64_kib_closes_1009_and_spares_others(
    node: Node, make_user: UserMaker
) -> None:
    abuser, bystander = await make_user(), await make_user()
    async with (
        ChatClient.connect(node.url, abuser.access_token) as bad,
        ChatClient.connect(node.url, bystander.access_token) as good,
    ):
        await bad.send("x" * (64 * 1024 + 1))
        assert await bad.wait_closed() == 1009
        await good.send({"type": "ping"})
        assert await good.receive_type("pong") == {"type": "pong"}


@pytest.mark.parametrize("payload", [b'{"type": "ping"}', b"\x00\xff"])
async def test_a_binary_frame_closes_1003_and_spares_others(
    node: Node, make_user: UserMaker, payload: bytes
) -> None:
    sender, bystander = await make_user(), await make_user()
    async with (
        ChatClient.connect(node.url, sender.access_token) as bad,
        ChatClient.connect(node.url, bystander.access_token) as good,
    ):
        await bad.send({"type": "ping"})
        assert await bad.receive_type("pong") == {"type": "pong"}
        # Even valid JSON is refused as binary: text frames only.
        await bad.send(payload)
        assert await bad.wait_close() == (1003, "binary frames are not supported")
        await good.send({"type": "ping"})
        assert await good.receive_type("pong") == {"type": "pong"}


async def test_a_plain_http_get_on_the_ws_path_is_refused(node: Node) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", node.port)
    async with stream:
        await stream.send_all(b"GET /ws/chat HTTP/1.1\r\nHost: x\r\n\r\n")
        with trio.fail_after(5):
            answer = await stream.receive_some(4096)
    assert answer.startswith(b"HTTP/1.1 4")


async def test_garbage_instead_of_http_is_dropped_quietly(node: Node, make_user: UserMaker) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", node.port)
    async with stream:
        await stream.send_all(b"\x16\x03\x01 this is not http\r\n\r\n")
        with trio.fail_after(5):
            assert await stream.receive_some(4096) == b""
    user = await make_user()
    async with ChatClient.connect(node.url, user.access_token) as chat:
        await chat.send({"type": "ping"})
        assert await chat.receive() == {"type": "pong"}


async def test_server_keepalive_closes_a_silent_dead_peer(
    node_factory, make_user: UserMaker
) -> None:
    async with node_factory(ping_interval="0.2", ping_timeout="0.3") as small:
        async with HubbubHTTP(small.url) as http:
            user = await register(http, "quiet")
        async with ChatClient.connect(small.url, user.access_token) as chat:
            # Time passing is the subject here: several keepalive rounds go by, and a client
            # that answers pings (trio-websocket does) stays connected...
            await trio.sleep(1.0)
            await chat.send({"type": "ping"})
            assert await chat.receive() == {"type": "pong"}
        # ...while a peer that never answers is closed by the keepalive.
        stream = await trio.open_tcp_stream("127.0.0.1", small.port)
        async with stream:
            await stream.send_all(
                b"GET /ws/chat?token=" + user.access_token.encode() + b" HTTP/1.1\r\n"
                b"Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            received = b""
            with trio.fail_after(10):
                while chunk := await stream.receive_some(4096):
                    received += chunk
            assert received.startswith(b"HTTP/1.1 101")
            # The server's close frame (opcode 0x88) with code 1011 ends what it sent.
            assert b"\x88" in received and (1011).to_bytes(2, "big") in received


async def test_an_open_connection_is_closed_1008_when_its_token_expires(node_factory) -> None:
    # A token's exp is whole seconds: a 3 s lifetime leaves the handshake over 2 s of it.
    # The small ping interval makes the sweep (a quarter of it) visit every 0.25 s.
    async with node_factory(access_token_ttl="3", ping_interval="1") as small:
        async with HubbubHTTP(small.url) as http:
            user = await http.register("brief", "brief@example.com", "correct horse battery")
        async with ChatClient.connect(small.url, user.access_token) as chat:
            await chat.send({"type": "ping"})
            assert await chat.receive_type("pong") == {"type": "pong"}
            assert await chat.wait_close(timeout=15) == (1008, "token expired")


async def test_past_max_connections_per_user_the_newest_is_closed_1008(node_factory) -> None:
    async with node_factory(max_connections_per_user="2") as small:
        async with HubbubHTTP(small.url) as http:
            user = await http.register("many", "many@example.com", "correct horse battery")
            other = await http.register("other", "other@example.com", "correct horse battery")
        async with (
            ChatClient.connect(small.url, user.access_token) as first,
            ChatClient.connect(small.url, user.access_token) as second,
        ):
            await attached(first)
            await attached(second)
            async with ChatClient.connect(small.url, user.access_token) as third:
                assert await third.wait_close() == (1008, "too many connections")
            # The cap is per user, and the connections already open are untouched.
            async with ChatClient.connect(small.url, other.access_token) as theirs:
                await attached(theirs)
            await attached(first)
            await attached(second)

            # A closed connection frees its slot.
            await second.ws.aclose(code=1000)
            with trio.fail_after(5):
                while True:
                    if small.metrics.registry.get_sample_value("hubbub_ws_connections") == 1:
                        break
                    # The server counts the session out once it has finished closing it,
                    # which no frame tells the client, and no event does: poll the node's
                    # own gauge, under the deadline.
                    await trio.sleep(0.01)
            async with ChatClient.connect(small.url, user.access_token) as again:
                await attached(again)


async def test_closing_from_the_client_side_is_clean(
    node: Node, http: HubbubHTTP, make_user: UserMaker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hubbub.ws")
    user = await make_user()
    async with ChatClient.connect(node.url, user.access_token) as chat:
        await attached(chat)
        assert await metric(http, "hubbub_ws_connections") == 1
        await chat.ws.aclose(code=1000)
        with pytest.raises(ConnectionClosed):
            await chat.ws.get_message()

    # The server ended the session (a hung close handshake or a leaked session would not):
    # the connection gauge is back to zero and the close is logged as a normal one.
    async def no_connections() -> bool:
        return await metric(http, "hubbub_ws_connections") == 0

    await poll_until(no_connections, what="the server closing the session", timeout=5)
    assert closed_sessions(caplog) == [
        {"user_id": user.id, "session": ANY, "code": 1000, "reason": ""}
    ]


async def test_an_oversize_request_head_gets_431_and_the_node_serves_on(
    node: Node, make_user: UserMaker
) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", node.port)
    async with stream:
        await stream.send_all(b"GET /users/me HTTP/1.1\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n")
        with trio.fail_after(5):
            answer = await stream.receive_some(4096)
    assert answer.startswith(b"HTTP/1.1 431")
    assert b'"detail"' in answer
    user = await make_user()
    async with ChatClient.connect(node.url, user.access_token) as chat:
        await chat.send({"type": "ping"})
        assert await chat.receive() == {"type": "pong"}
