"""Hypercorn serving the Quart app over connections the front door hands it.

Hypercorn normally owns its listening socket; here the node's front door owns it and
passes every non-WebSocket connection on, with the bytes it already read replayed
first. This uses Hypercorn's trio ``TCPServer`` and ``Lifespan`` directly, so the
Hypercorn version is pinned in pyproject.toml.
"""

from __future__ import annotations

import logging

import trio
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app
from quart_trio import QuartTrio

log = logging.getLogger("hubbub.http")


class ReplayStream(trio.abc.HalfCloseableStream):
    """A socket stream whose first reads return bytes someone already read from it."""

    def __init__(self, stream: trio.SocketStream, already_read: bytes) -> None:
        self._stream = stream
        self._replay = already_read
        self.socket = stream.socket

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._replay:
            if max_bytes is None or max_bytes >= len(self._replay):
                data, self._replay = self._replay, b""
            else:
                data, self._replay = self._replay[:max_bytes], self._replay[max_bytes:]
            await trio.lowlevel.checkpoint()
            return data
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()


class HttpServer:
    """Runs the app's lifespan; serves connections with ``serve_connection``."""

    def __init__(self, app: QuartTrio) -> None:
        self.config = Config()
        self.config.accesslog = None
        self.config.keep_alive_timeout = 75
        self.app = wrap_app(app, self.config.wsgi_max_body_size, "asgi")
        self.state: dict = {}
        self.context = WorkerContext(None)
        self._ready = False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the app (ASGI lifespan), report started, and keep it up until cancelled."""
        lifespan = Lifespan(self.app, self.config, self.state)
        async with trio.open_nursery() as nursery:
            await nursery.start(lifespan.handle_lifespan)
            await lifespan.wait_for_startup()
            self._ready = True
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._ready = False
                with trio.move_on_after(5) as scope:
                    scope.shield = True
                    # Keep-alive connections see this and close after their request.
                    await self.context.terminated.set()
                    await lifespan.wait_for_shutdown()
                nursery.cancel_scope.cancel()

    async def serve_connection(self, stream: trio.SocketStream, already_read: bytes) -> None:
        """Serve HTTP on the connection until it closes."""
        if not self._ready:
            await stream.aclose()
            return
        server = TCPServer(
            self.app,
            self.config,
            self.context,
            ConnectionState(self.state.copy()),
            ReplayStream(stream, already_read),  # type: ignore[arg-type]
        )
        await server.run()
