"""The write path under the sessions: frames built as bytes, one flusher for the node,
and a connection's queue written as far as its socket takes it, in order."""

from __future__ import annotations

import socket

import attrs
import pytest
import trio
from websockets.frames import Close, Frame, Opcode

from hubbub.ws.connection import ConnectionClosed, WebSocketConnection
from hubbub.ws.flusher import SocketFlusher
from hubbub.ws.frames import PING_FRAME, FrameCache, text_frame
from tests.helpers.raw_ws import server_frames

TEXT, PING, CLOSE = 0x1, 0x9, 0x8


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 70000])
def test_a_text_frame_parses_back_to_its_payload(length: int) -> None:
    payload = b"x" * length
    framed = text_frame(payload)
    assert framed[0] == 0x80 | TEXT  # final, not fragmented
    assert server_frames(framed) == [(TEXT, payload)]


def test_the_ping_frame_is_a_ping() -> None:
    assert [opcode for opcode, _ in server_frames(PING_FRAME)] == [PING]


def test_the_frame_cache_frames_a_payload_once_for_pushes_in_a_row() -> None:
    cache, payload = FrameCache(), b'{"type":"group_message"}'
    first = cache.frame(payload)
    assert cache.frame(payload) is first
    other = cache.frame(b'{"type":"other"}')
    assert other is not first and server_frames(other) == [(TEXT, b'{"type":"other"}')]


@attrs.define(eq=False)
class Due:
    """Counts the flusher's calls."""

    writes: int = 0
    written: trio.Event = attrs.Factory(trio.Event)

    def write_due(self) -> None:
        self.writes += 1
        self.written.set()


async def test_the_flusher_writes_every_session_scheduled_in_a_pass_once() -> None:
    flusher = SocketFlusher()
    sessions = [Due() for _ in range(3)]
    assert not flusher.schedule(sessions[0])  # not running: the caller writes itself
    async with trio.open_nursery() as nursery:
        await nursery.start(flusher.run)
        for session in sessions:
            assert flusher.schedule(session)
        with trio.fail_after(5):
            for session in sessions:
                await session.written.wait()
        assert [session.writes for session in sessions] == [1, 1, 1]
        nursery.cancel_scope.cancel()
    assert not flusher.schedule(sessions[0])


async def test_what_is_due_when_the_flusher_stops_is_still_written() -> None:
    flusher, session = SocketFlusher(), Due()
    async with trio.open_nursery() as nursery:
        await nursery.start(flusher.run)
        flusher.schedule(session)
        nursery.cancel_scope.cancel()  # before its next pass
    assert session.writes == 1


async def connected() -> tuple[WebSocketConnection, socket.socket]:
    ours, theirs = socket.socketpair()
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
    return WebSocketConnection(stream, b"", 65536), theirs


async def test_a_full_socket_keeps_the_rest_queued_in_order_until_drained() -> None:
    connection, peer = await connected()
    peer.setblocking(False)
    frames = [text_frame(b"%06d" % n + b"x" * 1000) for n in range(2000)]
    numbers = [connection.queue(frame) for frame in frames]
    assert numbers == list(range(1, 2001))
    assert not connection.write_nowait()  # ~2 MB: more than a socket buffer takes
    assert 0 < connection.written < 2000 and connection.unsent == 2000 - connection.written
    received = bytearray()

    async def read_all() -> None:
        while len(received) < sum(map(len, frames)):
            await trio.lowlevel.wait_readable(peer)
            received.extend(peer.recv(1 << 20))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_all)
            await connection.drain()
    assert connection.unsent == 0 and connection.written == 2000
    assert bytes(received) == b"".join(frames)
    peer.close()


async def test_writing_to_a_peer_that_is_gone_says_so() -> None:
    connection, peer = await connected()
    peer.close()
    connection.queue(text_frame(b"hello"))
    with pytest.raises(ConnectionClosed):
        for _ in range(3):  # the first write may still be taken by the kernel
            connection.queue(text_frame(b"again"))
            connection.write_nowait()
            await trio.lowlevel.checkpoint()


async def test_the_answer_to_a_peers_close_waits_for_the_owners_close() -> None:
    """The peer hears its close answered only once the connection's owner is done with
    it: a session's delivery marks are committed in between (ChatDispatcher)."""
    connection, peer = await connected()
    peer.setblocking(False)
    peer.send(Frame(Opcode.CLOSE, Close(1000, "").serialize()).serialize(mask=True, extensions=[]))
    with trio.fail_after(5):
        assert await connection.receive_text() is None
    with pytest.raises(BlockingIOError):
        peer.recv(1024)  # nothing answered yet
    with trio.fail_after(5):
        await connection.close(1000)
    assert server_frames(peer.recv(1024)) == [(CLOSE, (1000).to_bytes(2, "big"))]
    peer.close()
