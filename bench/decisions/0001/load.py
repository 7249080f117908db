"""A lean WebSocket echo load generator: one process, one epoll loop, no framework.

Run as ``python -m bench.decisions.0001.load --port N --connections C --inflight K
--latencies FILE``. It opens C connections to ``ws://127.0.0.1:N/ws/chat`` with the
load scripts' client (``bench.harness.wire``: the ``websockets`` Sans-I/O
``ClientProtocol`` on non-blocking sockets), prints ``READY``, then waits for one line
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
import sys
import time

import orjson

from bench.harness.wire import Connection, Loop, start_connection

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


class Echoes:
    """One connection's frames in flight (a ``Connection``'s key)."""

    __slots__ = ("index", "pending", "sent")

    def __init__(self, index: int) -> None:
        self.index = index
        self.pending: collections.deque[tuple[float, bytes]] = collections.deque()
        self.sent = 0


def open_connections(loop: Loop, port: int, count: int, first_index: int) -> list[Connection]:
    """Connect ``count`` clients and complete their opening handshakes.

    Raises ConnectionError if a handshake is refused or not done within the timeout."""
    url = f"ws://127.0.0.1:{port}/ws/chat"
    connections = []
    for index in range(first_index, first_index + count):
        conn = start_connection(url, Echoes(index), HANDSHAKE_TIMEOUT)
        loop.add(conn)
        connections.append(conn)
    deadline = time.monotonic() + HANDSHAKE_TIMEOUT
    while not all(conn.is_open for conn in connections):
        refused = [conn.closed for conn in connections if conn.closed is not None]
        if refused or time.monotonic() >= deadline:
            raise ConnectionError(f"handshake failed: {refused or 'timed out'}")
        loop.poll(0.05)
    return connections


class Load:
    """The event loop driving every connection of this process."""

    def __init__(self, loop: Loop, connections: list[Connection], inflight: int) -> None:
        self.loop = loop
        self.connections = connections
        self.inflight = inflight
        self.latencies = array.array("d")
        self.messages = 0
        self.mismatches = 0
        self.lost: set[Connection] = set()
        self.start = self.until = 0.0
        self.sending = True

    def send_next(self, conn: Connection) -> None:
        echoes: Echoes = conn.key  # type: ignore[assignment]
        payload = make_payload(echoes.index, echoes.sent)
        echoes.sent += 1
        echoes.pending.append((time.monotonic(), payload))
        self.loop.send_text(conn, payload)

    def on_echoes(self, conn: Connection, frames: list[bytes], now: float) -> None:
        """Check and count echoes, and send the next frames."""
        pending = conn.key.pending  # type: ignore[attr-defined]
        for data in frames:
            sent_at, payload = pending.popleft()
            if data != payload:
                self.mismatches += 1
            if self.start <= now < self.until:
                self.messages += 1
                self.latencies.append(now - sent_at)
            if self.sending:
                self.send_next(conn)

    def run(self, start: float, until: float) -> None:
        """Keep ``inflight`` frames per connection until ``until``, then drain and close."""
        self.start, self.until = start, until
        for conn in self.connections:
            for _ in range(self.inflight):
                self.send_next(conn)
            self.loop.flush(conn)
        deadline = until + DRAIN_TIMEOUT
        while True:
            now = time.monotonic()
            if self.sending and now >= until:
                self.sending = False
            if not self.sending and (
                now >= deadline or not any(conn.key.pending for conn in self.connections)
            ):
                break
            for conn, frames in self.loop.poll(0.05):
                self.on_echoes(conn, frames, time.monotonic())
                if conn.closed is not None:
                    conn.key.pending.clear()  # type: ignore[attr-defined]
                    self.lost.add(conn)
                else:
                    self.loop.flush(conn)
        self.loop.close_all(self.connections, timeout=DRAIN_TIMEOUT)


def main(argv: list[str] | None = None) -> None:
    """Run one load process as described in the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=25)
    parser.add_argument("--inflight", type=int, default=1)
    parser.add_argument("--first-index", type=int, default=0, help="payload id offset")
    parser.add_argument("--latencies", required=True, help="file for round-trip times")
    args = parser.parse_args(argv)

    loop = Loop()
    connections = open_connections(loop, args.port, args.connections, args.first_index)
    load = Load(loop, connections, args.inflight)
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
