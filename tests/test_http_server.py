"""Kept-alive HTTP connections behind the front door, over a raw socket: a later request
head gets the same deadline as the first one, however slowly it trickles in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
from quart_trio import QuartTrio

from hubbub.front_door import FrontDoor, open_listeners
from hubbub.http.server import HttpServer

HEAD_TIMEOUT = 0.5
REQUEST = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
RESPONSE_END = b'{"hello":"world"}\n'
# Long enough that a server without a head deadline answers it before the test gives up:
# sent a byte each TRICKLE seconds, it takes far longer than HEAD_TIMEOUT to complete.
SLOW_HEAD = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 300 + b"\r\n\r\n"
TRICKLE = 0.05


@pytest.fixture
async def port() -> AsyncIterator[int]:
    """A front door and HTTP server with a short head deadline, on a free port."""
    app = QuartTrio("test")

    @app.get("/hello")
    async def hello() -> dict:
        return {"hello": "world"}

    @app.post("/hello")
    async def hello_without_reading_the_body() -> dict:
        return {"hello": "world"}

    server = HttpServer(app, head_timeout=HEAD_TIMEOUT, keep_alive_timeout=HEAD_TIMEOUT)
    listeners = await open_listeners("127.0.0.1", 0)
    door = FrontDoor(
        listeners,
        websocket=server.serve_connection,
        http=server.serve_connection,
        head_timeout=HEAD_TIMEOUT,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        await nursery.start(door.run)
        yield door.port
        nursery.cancel_scope.cancel()


class Responses:
    """Reads /hello responses off a connection, one at a time."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def next(self) -> bytes:
        with trio.fail_after(10):
            while RESPONSE_END not in self.buffer:
                chunk = await self.stream.receive_some()
                assert chunk, f"closed before the response ended: {self.buffer!r}"
                self.buffer += chunk
        response, _, self.buffer = self.buffer.partition(RESPONSE_END)
        assert response.startswith(b"HTTP/1.1 200")
        return response


async def trickle_until_closed(stream: trio.SocketStream, head: bytes) -> tuple[int, bytes]:
    """Send ``head`` a byte at a time; stop once the server closes the connection.

    Returns how many bytes were sent and what the server sent back."""
    got = b""
    for sent in range(len(head)):
        try:
            await stream.send_all(head[sent : sent + 1])
        except trio.BrokenResourceError:
            return sent, got
        with trio.move_on_after(TRICKLE):
            chunk = await stream.receive_some()
            if not chunk:
                return sent + 1, got
            got += chunk
    return len(head), got


async def test_a_trickled_second_head_on_a_kept_alive_connection_is_cut(port: int) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(REQUEST)
        await Responses(stream).next()
        sent, got = await trickle_until_closed(stream, SLOW_HEAD)
    assert got == b""  # closed without an answer
    assert sent < len(SLOW_HEAD)


async def test_a_trickled_first_head_is_cut_alike(port: int) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        sent, got = await trickle_until_closed(stream, SLOW_HEAD)
    assert got == b""
    assert sent < len(SLOW_HEAD)


async def test_kept_alive_connections_serve_one_request_after_another(port: int) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        responses = Responses(stream)
        for _ in range(3):
            await stream.send_all(REQUEST)
            await responses.next()
        # Pipelined requests are all answered.
        await stream.send_all(REQUEST * 3)
        for _ in range(3):
            await responses.next()


async def test_an_idle_kept_alive_connection_is_closed(port: int) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(REQUEST)
        await Responses(stream).next()
        with trio.fail_after(10):  # a bound on a failing test, not a measurement
            assert await stream.receive_some() == b""


async def test_an_answer_sent_before_the_body_arrived_closes_the_connection(port: int) -> None:
    # The handler answers without reading the body, before the client sent it: the
    # connection cannot be reused, so the server must close it, and say so. (It used to
    # leave it open and answer nothing more: the next request on it hung.)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n")
        responses = Responses(stream)
        # Said in the answer, so that the client does not send its next request on it.
        assert b"\r\nconnection: close\r\n" in (await responses.next()).lower()
        with trio.fail_after(10):  # a bound on a failing test, not a measurement
            assert responses.buffer + await stream.receive_some() == b""
