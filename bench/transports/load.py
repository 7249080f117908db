"""A lean WebSocket echo load generator: one process, one epoll loop, no framework.

Run as ``python -m bench.transports.load --port N --connections C --inflight K
--latencies FILE``. It opens C connections to ``ws://127.0.0.1:N/ws/chat`` with the
``websockets`` Sans-I/O ``ClientProtocol``, prints ``READY``, then waits for one line
``GO <measure_from> <measure_until>`` on stdin (``time.monotonic()`` values, which are
comparable across processes on Linux). From then on each connection keeps K small
JSON text frames in flight; every echo is checked against what was sent. Echoes that
arrive inside the window are counted and their round-trip times written to FILE as
native doubles (seconds). At the end it closes every connection and prints one JSON
line: ``{"messages": ..., "mismatches": ..., "lost": <connections the server closed>}``.

It stays lean on purpose: it shares two cores with the server it measures.
"""

from __future__ import annotations

import argparse
import array
import collections
import selectors
import socket
import sys
import time

import orjson
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.protocol import OPEN
from websockets.uri import parse_uri

RECEIVE_SIZE = 262144
HANDSHAKE_TIMEOUT = 10.0
# After the window, outstanding echoes get this long before connections close anyway.
DRAIN_TIMEOUT = 3.0
BODY = "see you at the standup in ten minutes"


def make_payload(connection: int, sequence: int) -> bytes:
    """A ~100-byte JSON text frame shaped like a chat ``send``."""
    return orjson.dumps(
        {
            "type": "send",
            "id": f"c{connection}-{sequence}",
            "to": {"user": 100000 + connection},
            "body": BODY,
        }
    )


class Connection:
    """One client connection: its socket, protocol state and frames in flight."""

    __slots__ = ("index", "out", "pending", "protocol", "sent", "sock", "writing")

    def __init__(self, index: int, sock: socket.socket, protocol: ClientProtocol) -> None:
        self.index = index
        self.sock = sock
        self.protocol = protocol
        self.pending: collections.deque[tuple[float, bytes]] = collections.deque()
        self.sent = 0
        self.out = b""
        self.writing = False


def open_connection(index: int, port: int) -> Connection:
    """Connect and complete the opening handshake (blocking), then go non-blocking.

    Raises ConnectionError if the server refuses the handshake.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=HANDSHAKE_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/ws/chat"))
    protocol.send_request(protocol.connect())
    sock.sendall(b"".join(protocol.data_to_send()))
    while protocol.state is not OPEN:
        data = sock.recv(RECEIVE_SIZE)
        if not data:
            protocol.receive_eof()
        else:
            protocol.receive_data(data)
        answered = any(isinstance(e, Response) for e in protocol.events_received())
        if (answered or not data) and protocol.state is not OPEN:
            raise ConnectionError(f"handshake failed: {protocol.handshake_exc!r}")
    sock.setblocking(False)
    return Connection(index, sock, protocol)


class Load:
    """The event loop driving every connection of this process."""

    def __init__(self, connections: list[Connection], inflight: int) -> None:
        self.connections = connections
        self.inflight = inflight
        self.selector = selectors.EpollSelector()
        self.latencies = array.array("d")
        self.messages = 0
        self.mismatches = 0
        self.lost: set[Connection] = set()
        self.start = self.until = 0.0
        self.sending = True
        for c in connections:
            self.selector.register(c.sock, selectors.EVENT_READ, c)

    def send_next(self, c: Connection) -> None:
        payload = make_payload(c.index, c.sent)
        c.sent += 1
        c.pending.append((time.monotonic(), payload))
        c.protocol.send_text(payload)

    def flush(self, c: Connection) -> None:
        """Write what is queued; register for writability only if the kernel is full."""
        chunks = c.protocol.data_to_send()
        if chunks:
            c.out += b"".join(chunks)
        if c.out:
            try:
                sent = c.sock.send(c.out)
            except BlockingIOError:
                sent = 0
            c.out = c.out[sent:]
        if bool(c.out) != c.writing:
            c.writing = bool(c.out)
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.writing else 0)
            self.selector.modify(c.sock, events, c)

    def on_readable(self, c: Connection) -> bool:
        """Handle echoes and send the next frames; False if the server closed on us."""
        try:
            data = c.sock.recv(RECEIVE_SIZE)
        except ConnectionError:
            data = b""
        now = time.monotonic()
        if not data:
            c.protocol.receive_eof()
            c.pending.clear()
            self.selector.unregister(c.sock)
            self.lost.add(c)
            return False
        c.protocol.receive_data(data)
        for event in c.protocol.events_received():
            if event.opcode is not Opcode.TEXT:
                continue
            sent_at, payload = c.pending.popleft()
            if event.data != payload:
                self.mismatches += 1
            if self.start <= now < self.until:
                self.messages += 1
                self.latencies.append(now - sent_at)
            if self.sending:
                self.send_next(c)
        return True

    def run(self, start: float, until: float) -> None:
        """Keep ``inflight`` frames per connection until ``until``, then drain and close."""
        self.start, self.until = start, until
        for c in self.connections:
            for _ in range(self.inflight):
                self.send_next(c)
            self.flush(c)
        deadline = until + DRAIN_TIMEOUT
        while True:
            now = time.monotonic()
            if self.sending and now >= until:
                self.sending = False
            if not self.sending and (
                now >= deadline or not any(c.pending for c in self.connections)
            ):
                break
            for key, mask in self.selector.select(timeout=0.05):
                c = key.data
                if mask & selectors.EVENT_READ and not self.on_readable(c):
                    continue
                self.flush(c)
        self.close_all()

    def close_all(self) -> None:
        """Send a close frame on each connection, wait briefly for the server's, close."""
        open_ones = set(self.connections) - self.lost
        for c in open_ones:
            c.protocol.send_close()
            self.flush(c)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while open_ones and time.monotonic() < deadline:
            for key, _ in self.selector.select(timeout=0.05):
                c = key.data
                try:
                    data = c.sock.recv(RECEIVE_SIZE)
                except (BlockingIOError, ConnectionError):
                    data = b""
                if data:
                    c.protocol.receive_data(data)
                else:
                    c.protocol.receive_eof()
                    self.selector.unregister(c.sock)
                    open_ones.discard(c)
        for c in self.connections:
            c.sock.close()


def main(argv: list[str] | None = None) -> None:
    """Run one load process as described in the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=25)
    parser.add_argument("--inflight", type=int, default=1)
    parser.add_argument("--first-index", type=int, default=0, help="payload id offset")
    parser.add_argument("--latencies", required=True, help="file for round-trip times")
    args = parser.parse_args(argv)

    connections = [
        open_connection(args.first_index + i, args.port) for i in range(args.connections)
    ]
    load = Load(connections, args.inflight)
    print("READY", flush=True)
    go = sys.stdin.readline().split()
    if len(go) != 3 or go[0] != "GO":
        sys.exit(f"expected 'GO <from> <until>' on stdin, got {go!r}")
    load.run(float(go[1]), float(go[2]))
    with open(args.latencies, "wb") as f:
        load.latencies.tofile(f)
    summary = {"messages": load.messages, "mismatches": load.mismatches, "lost": len(load.lost)}
    print(orjson.dumps(summary).decode())


if __name__ == "__main__":
    main()
