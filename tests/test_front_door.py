"""The front door's routing decision and its guard on request heads."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from hubbub.front_door import MAX_HEAD_BYTES, HeadTooLarge, read_head, request_line
from hubbub.ws.handshake import find_credentials, is_chat_upgrade


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"GET /ws/chat HTTP/1.1\r\nHost: x\r\n\r\n", ("GET", "/ws/chat")),
        (b"POST /auth/login HTTP/1.0\r\n\r\n", ("POST", "/auth/login")),
        (b"GET / HTTP/2\r\n\r\n", None),
        (b"\x16\x03\x01 tls hello\r\n\r\n", None),
        (b"GET /\xff HTTP/1.1\r\n\r\n", None),
    ],
)
def test_request_line(head: bytes, expected: tuple[str, str] | None) -> None:
    assert request_line(head) == expected


@pytest.mark.parametrize(
    ("method", "target", "chat"),
    [
        ("GET", "/ws/chat", True),
        ("GET", "/ws/chat?token=abc", True),
        ("GET", "/ws/chat/", True),
        ("POST", "/ws/chat", False),
        ("GET", "/ws/chatter", False),
        ("GET", "/users/me", False),
    ],
)
def test_only_get_on_the_chat_path_is_an_upgrade(method: str, target: str, chat: bool) -> None:
    assert is_chat_upgrade(method, target) is chat


def test_credentials_prefer_query_then_header_then_subprotocol() -> None:
    assert find_credentials("/ws/chat?token=q", "Bearer h", ["s"]).token == "q"
    assert find_credentials("/ws/chat", "Bearer h", ["s"]).token == "h"
    from_protocol = find_credentials("/ws/chat", None, ["s", "t"])
    assert (from_protocol.token, from_protocol.subprotocol) == ("s", "s")
    assert find_credentials("/ws/chat", "Basic x", []).token is None


async def test_a_head_split_over_reads_is_assembled() -> None:
    stream = trio.testing.MemoryReceiveStream()
    stream.put_data(b"GET /ws/chat HT")
    stream.put_data(b"TP/1.1\r\nHost: x\r\n\r\nrest")
    head = await read_head(stream)  # type: ignore[arg-type]
    assert head is not None and head.startswith(b"GET /ws/chat") and head.endswith(b"rest")


async def test_a_head_over_the_limit_is_refused_however_it_is_split() -> None:
    half = b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * (MAX_HEAD_BYTES // 2)
    stream = trio.testing.MemoryReceiveStream()
    stream.put_data(half)
    stream.put_data(b"b" * (MAX_HEAD_BYTES // 2) + b"\r\n\r\n")
    with pytest.raises(HeadTooLarge):
        await read_head(stream)  # type: ignore[arg-type]


async def test_eof_before_the_head_ends_is_none() -> None:
    stream = trio.testing.MemoryReceiveStream()
    stream.put_data(b"GET / HTT")
    stream.put_eof()
    assert await read_head(stream) is None  # type: ignore[arg-type]
