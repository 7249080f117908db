"""Hypercorn serving the Quart app over connections the front door hands it.

Hypercorn normally owns its listening socket; here the node's front door owns it and
passes every non-WebSocket connection on, with the bytes it already read replayed
first. This uses Hypercorn's trio ``TCPServer`` and ``Lifespan`` directly, so the
Hypercorn version is pinned in pyproject.toml.

Between requests a connection is timed here, not by Hypercorn: its keep-alive timer is
started from the app's task and so is cancelled with the request that started it (with
quart-trio it never fires), and it has no deadline for a request head at all.
``ConnectionDeadlines`` gives every later request head the front door's rule for the
first: complete within ``head_timeout`` of its first byte, however it trickles in.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, Updated
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app
from quart_trio import QuartTrio

log = logging.getLogger("hubbub.http")

#: Longest a request head may take to arrive, from its first byte (the front door's
#: first request and every kept-alive one after it alike).
HEAD_TIMEOUT = 10.0
#: Longest an idle kept-alive connection stays open waiting for its next request.
KEEP_ALIVE_TIMEOUT = 75.0
#: Longest closing a connection may take once Hypercorn decided to.
CLOSE_TIMEOUT = 5.0


class ConnectionDeadlines:
    """When one HTTP connection must be closed, from what Hypercorn tells of it.

    - A request head has begun (the first one, which the front door read whole, or a
      later one's first byte arrived while idle): closed unless the head is complete
      within ``head_timeout`` of then.
    - Idle (a response is done, no byte of the next request yet): closed after
      ``keep_alive_timeout``.
    - A request in progress: no deadline here (bodies and responses have their own).
    """

    def __init__(self, head_timeout: float, keep_alive_timeout: float) -> None:
        self._head_timeout = head_timeout
        self._keep_alive_timeout = keep_alive_timeout
        self._idle = False
        self._deadline = trio.current_time() + head_timeout
        self._changed = trio.Event()

    def received(self) -> None:
        """Bytes arrived on the connection."""
        if self._idle:
            self._idle = False
            self._set(trio.current_time() + self._head_timeout)

    def updated(self, idle: bool) -> None:
        """Hypercorn's word: a request head was parsed (``idle=False``) or the exchange is
        done and the connection waits for the next request (``idle=True``)."""
        self._idle = idle
        self._set(trio.current_time() + self._keep_alive_timeout if idle else math.inf)

    async def enforce(self, close: Callable[[], Awaitable[None]]) -> None:
        """Wait for a deadline to pass, then ``close`` the connection; run until cancelled."""
        while True:
            self._changed = trio.Event()
            with trio.move_on_at(self._deadline) as waiting:
                await self._changed.wait()
            if waiting.cancelled_caught:
                reason = "keep-alive timeout" if self._idle else "request head timeout"
                (log.debug if self._idle else log.info)(
                    "http connection closed", extra={"fields": {"reason": reason}}
                )
                await close()
                return

    def _set(self, deadline: float) -> None:
        self._deadline = deadline
        self._changed.set()


class ReplayStream(trio.abc.HalfCloseableStream):
    """A socket stream whose first reads return bytes someone already read from it."""

    def __init__(
        self,
        stream: trio.SocketStream,
        already_read: bytes,
        on_receive: Callable[[], None] = lambda: None,
    ) -> None:
        self._stream = stream
        self._replay = already_read
        self._on_receive = on_receive
        self.socket = stream.socket

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._replay:
            if max_bytes is None or max_bytes >= len(self._replay):
                data, self._replay = self._replay, b""
            else:
                data, self._replay = self._replay[:max_bytes], self._replay[max_bytes:]
            await trio.lowlevel.checkpoint()
            return data
        data = await self._stream.receive_some(max_bytes)
        if data:
            self._on_receive()
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()


class CloseIfBodyUnread:
    """ASGI middleware: a response that starts before its request's body has all arrived
    says ``connection: close``.

    The server cannot reuse such a connection (the rest of the body is still coming), and
    closes it after the response. Said in the response, the client knows not to send its
    next request on it; unsaid, that request races the close and is lost."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_expected = any(
            (name == b"content-length" and value.strip() not in (b"", b"0"))
            or name == b"transfer-encoding"
            for name, value in scope["headers"]
        )
        body_done = not body_expected

        async def tracked_receive() -> Any:
            nonlocal body_done
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_done = True
            return message

        async def guarded_send(message: Any) -> None:
            if message["type"] == "http.response.start" and not body_done:
                headers = [*message.get("headers", ()), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, tracked_receive, guarded_send)


class _TimedTCPServer(TCPServer):
    """Hypercorn's connection server, telling ``deadlines`` when requests start and end,
    and closing a connection even when told to from a cancelled task."""

    def __init__(self, *args: object, deadlines: ConnectionDeadlines) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self._deadlines = deadlines

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, Updated):
            self._deadlines.updated(event.idle)
        if isinstance(event, Closed):
            # Hypercorn decides to close (say, the response went out before the body it
            # did not need came in) from the app's task, which quart-trio cancels right
            # after the response: unshielded, the close was cancelled half-way and the
            # connection hung, answering nothing more.
            with trio.CancelScope(shield=True) as closing:
                closing.deadline = trio.current_time() + CLOSE_TIMEOUT
                await super().protocol_send(event)
            return
        await super().protocol_send(event)


class HttpServer:
    """Runs the app's lifespan; serves connections with ``serve_connection``."""

    def __init__(
        self,
        app: QuartTrio,
        *,
        head_timeout: float = HEAD_TIMEOUT,
        keep_alive_timeout: float = KEEP_ALIVE_TIMEOUT,
    ) -> None:
        self.head_timeout = head_timeout
        self.keep_alive_timeout = keep_alive_timeout
        self.config = Config()
        self.config.accesslog = None
        self.config.keep_alive_timeout = keep_alive_timeout
        self.app = wrap_app(CloseIfBodyUnread(app), self.config.wsgi_max_body_size, "asgi")
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
        """Serve HTTP on the connection until it closes, or until a deadline of
        ``ConnectionDeadlines`` passes."""
        if not self._ready:
            await stream.aclose()
            return
        deadlines = ConnectionDeadlines(self.head_timeout, self.keep_alive_timeout)
        replay = ReplayStream(stream, already_read, deadlines.received)
        server = _TimedTCPServer(
            self.app,
            self.config,
            self.context,
            ConnectionState(self.state.copy()),
            replay,
            deadlines=deadlines,
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(deadlines.enforce, replay.aclose)
            await server.run()
            nursery.cancel_scope.cancel()
