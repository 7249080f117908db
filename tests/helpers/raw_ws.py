"""A raw WebSocket client that completes its handshake and then never reads: what a
slow consumer looks like to the server (a library client would read in the background)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio


@asynccontextmanager
async def stalled_websocket(port: int, token: str) -> AsyncIterator[trio.SocketStream]:
    """A WebSocket connection that completes its handshake and then never reads again.

    The receive buffer is shrunk before connecting, so the advertised window stays tiny
    and the server's writes stall after a few kilobytes."""
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    async with stream:
        await stream.send_all(
            f"GET /ws/chat?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        response = b""
        with trio.fail_after(5):
            while b"\r\n\r\n" not in response:
                chunk = await stream.receive_some(1)
                assert chunk, f"the server hung up during the handshake: {response!r}"
                response += chunk
        assert response.startswith(b"HTTP/1.1 101"), response
        yield stream


async def read_to_eof(stream: trio.SocketStream, timeout: float) -> bytes:
    """Everything the server sent that is still unread, once it has closed its side."""
    received = bytearray()
    with trio.fail_after(timeout):
        while chunk := await stream.receive_some(65536):
            received += chunk
    return bytes(received)


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each complete server frame (servers never mask) in ``data``."""
    frames, at = [], 0
    while at + 2 <= len(data):
        opcode, length, header = data[at] & 0x0F, data[at + 1] & 0x7F, 2
        if length == 126:
            length, header = int.from_bytes(data[at + 2 : at + 4], "big"), 4
        elif length == 127:
            length, header = int.from_bytes(data[at + 2 : at + 10], "big"), 10
        if at + header + length > len(data):
            break
        frames.append((opcode, data[at + header : at + header + length]))
        at += header + length
    return frames
