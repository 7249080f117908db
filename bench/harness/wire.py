"""WebSocket client connections on plain non-blocking sockets, driven by one epoll loop.

The ``websockets`` Sans-I/O ``ClientProtocol`` does the framing (and answers the
server's pings by itself); this module only moves bytes. The server never fragments
its text frames, so each complete text frame is one message here.
"""

from __future__ import annotations

import selectors
import socket
import time
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

RECEIVE_SIZE = 262144
_READ = selectors.EVENT_READ
_READ_WRITE = selectors.EVENT_READ | selectors.EVENT_WRITE


def chat_url(base_url: str, token: str) -> str:
    """The ``ws://`` chat endpoint of a node given by its HTTP base URL, with ``token``.

    Raises ValueError for anything but plain ``http://`` or ``ws://`` (no TLS here)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "ws"):
        raise ValueError(f"{base_url!r}: give the node as http://host:port (no TLS)")
    return f"ws://{parts.netloc}/ws/chat?token={token}"


class Connection:
    """One client connection. ``key`` is the caller's (what this connection is for)."""

    __slots__ = ("closed", "key", "out", "protocol", "sock", "writing")

    def __init__(self, sock: socket.socket, protocol: ClientProtocol, key: object) -> None:
        self.sock = sock
        self.protocol = protocol
        self.key = key
        self.out = b""
        self.writing = False
        #: Why the connection ended, once it has (None while it lives).
        self.closed: str | None = None

    @property
    def is_open(self) -> bool:
        """The handshake succeeded and neither side has closed."""
        return self.closed is None and self.protocol.state is State.OPEN


def start_connection(url: str, key: object, timeout: float) -> Connection:
    """Connect (blocking, at most ``timeout``) and send the upgrade request.

    The answer is read by ``Loop.poll``; the connection is open once ``is_open``.
    Raises OSError if the TCP connection fails."""
    uri = parse_uri(url)
    sock = socket.create_connection((uri.host, uri.port), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        protocol = ClientProtocol(uri)
        protocol.send_request(protocol.connect())
        sock.sendall(b"".join(protocol.data_to_send()))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return Connection(sock, protocol, key)


class Loop:
    """One selector over many connections: reads, frames, writes."""

    def __init__(self) -> None:
        self.selector = selectors.EpollSelector()

    def add(self, conn: Connection) -> None:
        self.selector.register(conn.sock, _READ, conn)

    def send_text(self, conn: Connection, payload: bytes) -> None:
        """Queue one text frame; nothing is written until ``flush``."""
        if conn.is_open:
            conn.protocol.send_text(payload)

    def flush(self, conn: Connection) -> None:
        """Write what is queued without blocking; what the kernel refuses waits for
        writability (and is retried by ``poll``)."""
        if conn.closed is not None:
            return
        chunks = conn.protocol.data_to_send()
        if chunks:
            conn.out += b"".join(chunks)
        if conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except BlockingIOError:
                sent = 0
            except OSError as error:
                self.drop(conn, f"send failed: {error.strerror}")
                return
            conn.out = conn.out[sent:]
        if bool(conn.out) != conn.writing:
            conn.writing = bool(conn.out)
            self.selector.modify(conn.sock, _READ_WRITE if conn.writing else _READ, conn)

    def poll(self, timeout: float) -> list[tuple[Connection, list[bytes]]]:
        """Wait at most ``timeout`` seconds; return the text frames each connection received.

        A connection that ended during the call is listed too (possibly with no frames),
        with ``closed`` set."""
        received = []
        for key, mask in self.selector.select(timeout):
            conn = key.data
            if mask & selectors.EVENT_WRITE:
                self.flush(conn)
            if mask & _READ and conn.closed is None:
                frames = self._read(conn)
                if frames or conn.closed is not None:
                    received.append((conn, frames))
        return received

    def _read(self, conn: Connection) -> list[bytes]:
        protocol = conn.protocol
        try:
            data = conn.sock.recv(RECEIVE_SIZE)
        except BlockingIOError:
            return []
        except OSError:
            data = b""
        if data:
            protocol.receive_data(data)
        else:
            protocol.receive_eof()
        frames = []
        for event in protocol.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT:
                    frames.append(event.data)
            elif isinstance(event, Response) and protocol.state is not State.OPEN:
                self.drop(conn, f"handshake refused: HTTP {event.status_code}")
                return frames
        if data:
            self.flush(conn)  # pongs to the server's pings, or our half of a close
        if not data or protocol.state in (State.CLOSING, State.CLOSED):
            code = protocol.close_code
            self.drop(conn, "server closed (EOF)" if code is None else f"server closed {code}")
        return frames

    def drop(self, conn: Connection, reason: str) -> None:
        """Forget a connection and close its socket; ``reason`` is kept in ``closed``."""
        if conn.closed is None:
            conn.closed = reason
            self.selector.unregister(conn.sock)
            conn.sock.close()

    def close_all(self, conns: list[Connection], timeout: float) -> None:
        """Close each open connection politely (close frame, wait for the server's EOF)
        for at most ``timeout`` seconds, then close every socket regardless."""
        waiting = set()
        for conn in conns:
            if conn.is_open:
                conn.protocol.send_close(1000)
                self.flush(conn)
                waiting.add(conn)
        deadline = time.monotonic() + timeout
        while any(conn.closed is None for conn in waiting) and time.monotonic() < deadline:
            self.poll(0.05)
        for conn in conns:
            self.drop(conn, "closed by the harness")
