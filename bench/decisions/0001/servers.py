"""The candidate WebSocket echo servers, one per subprocess.

Run as ``python -m bench.decisions.0001.servers KIND [--port N]``. The process listens on
127.0.0.1, prints ``READY <port>`` on stdout once it accepts connections, and echoes
every text frame on ``/ws/chat`` until it receives SIGINT. Kinds:

- ``quart``: a Quart-Trio websocket route on Hypercorn's trio worker (wsproto inside).
- ``triows``: trio-websocket's ``serve_websocket`` (wsproto inside).
- ``sansio``: the ``websockets`` Sans-I/O ``ServerProtocol`` driven over a
  ``trio.SocketStream`` by :func:`drive_echo`.
- ``frontdoor``: one port, through hubbub's own front door (``hubbub.front_door``):
  it reads the request head, hands ``GET /ws/chat`` to :func:`drive_echo` and every
  other connection to hubbub's ``HttpServer`` (Hypercorn's ``TCPServer``, the bytes
  already read replayed first) serving the same Quart app.
- ``wstrio``: the ``websockets`` package's own Trio server (a reference point).
"""

from __future__ import annotations

import argparse
import signal
from functools import partial

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from quart import websocket
from quart_trio import QuartTrio
from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.protocol import CLOSED, OPEN
from websockets.server import ServerProtocol

from hubbub.front_door import HEAD_TIMEOUT, FrontDoor, open_listeners
from hubbub.http.server import HttpServer

HOST = "127.0.0.1"
RECEIVE_SIZE = 65536
# Errors that mean "the peer went away"; a connection handler must not let them
# escape, or trio.serve_listeners would take the whole server down.
PEER_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError)


def make_app() -> QuartTrio:
    """A Quart-Trio app with the echo route and one plain HTTP route for sanity checks."""
    app = QuartTrio(__name__)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.websocket("/ws/chat")
    async def chat() -> None:
        while True:
            await websocket.send(await websocket.receive())

    return app


# -- the websockets Sans-I/O driver --------------------------------------------------


async def _flush(stream: trio.SocketStream, protocol: ServerProtocol) -> bool:
    """Send what the protocol has queued, in one write.

    Returns False once the protocol asked for end-of-stream: the caller must stop
    reading and close the stream.
    """
    chunks = protocol.data_to_send()
    if not chunks:
        return True
    # An empty chunk is the protocol's "half-close now" marker (SEND_EOF); it is last.
    wants_eof = chunks[-1] == b""
    payload = b"".join(chunks)
    if payload:
        await stream.send_all(payload)
    if wants_eof:
        await stream.send_eof()
        return False
    return True


async def _handshake(stream: trio.SocketStream, protocol: ServerProtocol, initial: bytes) -> bool:
    """Complete the opening handshake; return True if the connection is open."""
    data = initial
    with trio.fail_after(HEAD_TIMEOUT):
        while True:
            if not data:
                data = await stream.receive_some(RECEIVE_SIZE)
                if not data:
                    return False
            protocol.receive_data(data)
            data = b""
            for event in protocol.events_received():
                if isinstance(event, Request):
                    protocol.send_response(protocol.accept(event))
                    await _flush(stream, protocol)
                    return protocol.state is OPEN
            if not await _flush(stream, protocol):
                return False


async def drive_echo(stream: trio.SocketStream, initial: bytes = b"") -> None:
    """Serve one WebSocket connection on ``stream``, echoing text and binary frames.

    ``initial`` is what was already read from the stream (the request head, when the
    front door read it first). Pings, pongs and the closing handshake are the
    protocol's business: it queues the replies and this loop only flushes them.
    Returns when the connection is closed; never raises for a peer that went away.
    """
    protocol = ServerProtocol()
    async with stream:
        try:
            if not await _handshake(stream, protocol, initial):
                return
            while protocol.state is not CLOSED:
                data = await stream.receive_some(RECEIVE_SIZE)
                if data:
                    protocol.receive_data(data)
                else:
                    protocol.receive_eof()
                for event in protocol.events_received():
                    # Echo frame by frame, so fragmented messages come back fragmented.
                    if event.opcode is Opcode.TEXT:
                        protocol.send_text(event.data, fin=event.fin)
                    elif event.opcode is Opcode.BINARY:
                        protocol.send_binary(event.data, fin=event.fin)
                    elif event.opcode is Opcode.CONT:
                        protocol.send_continuation(event.data, fin=event.fin)
                if not await _flush(stream, protocol) or not data:
                    return
        except PEER_GONE:
            return


# -- running each kind ---------------------------------------------------------------


def _hypercorn_config(port: int) -> Config:
    config = Config()
    config.bind = [f"{HOST}:{port}"]
    return config


async def _serve_frontdoor(port: int, task_status: trio.TaskStatus[int]) -> None:
    http = HttpServer(make_app())
    door = FrontDoor(
        await open_listeners(HOST, port), websocket=drive_echo, http=http.serve_connection
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(http.run)
        await nursery.start(door.run)
        task_status.started(door.port)


async def _serve_quart(port: int, task_status: trio.TaskStatus[int]) -> None:
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(hypercorn_serve, make_app(), _hypercorn_config(port)))
        task_status.started(int(binds[0].rsplit(":", 1)[1]))


async def _serve_triows(port: int, task_status: trio.TaskStatus[int]) -> None:
    from trio_websocket import ConnectionClosed, serve_websocket

    async def echo(request) -> None:
        ws = await request.accept()
        try:
            while True:
                await ws.send_message(await ws.get_message())
        except ConnectionClosed:
            pass

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, echo, HOST, port, None)
        task_status.started(server.port)


async def _serve_sansio(port: int, task_status: trio.TaskStatus[int]) -> None:
    listeners = await trio.open_tcp_listeners(port, host=HOST)
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(drive_echo, listeners)


async def _serve_wstrio(port: int, task_status: trio.TaskStatus[int]) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.trio.server import serve

    async def echo(ws) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass

    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(serve, echo, port, host=HOST, compression=None, ping_interval=None)
        )
        task_status.started(server.listeners[0].socket.getsockname()[1])


SERVERS = {
    "quart": _serve_quart,
    "triows": _serve_triows,
    "sansio": _serve_sansio,
    "frontdoor": _serve_frontdoor,
    "wstrio": _serve_wstrio,
}


async def _main(kind: str, port: int) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(SERVERS[kind], port)
            print(f"READY {bound}", flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> None:
    """Run one candidate server until SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(SERVERS))
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    trio.run(_main, args.kind, args.port)


if __name__ == "__main__":
    main()
