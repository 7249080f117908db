"""The node's one listening port: WebSocket upgrades to ``/ws/chat`` go to the chat
endpoint, everything else to the HTTP app.

The front door reads only the request head (bounded in size and time), decides, and
passes the connection on with the bytes it read. Why not let Hypercorn serve the
WebSocket too: docs/decisions/0001-websocket-transport.md has the figures.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable

import trio

from hubbub.http.server import HEAD_TIMEOUT
from hubbub.listeners import open_shared_listeners
from hubbub.ws.handshake import is_chat_upgrade

log = logging.getLogger("hubbub.front_door")

MAX_HEAD_BYTES = 16 * 1024
TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"content-length: 44\r\nconnection: close\r\n\r\n"
    b'{"detail": "request head over 16 KiB limit"}'
)

ConnectionHandler = Callable[[trio.SocketStream, bytes], Awaitable[None]]


def request_line(head: bytes) -> tuple[str, str] | None:
    """``(method, target)`` of an HTTP/1.x request head, or None if it is not one."""
    line, _, _ = head.partition(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return None
    try:
        return parts[0].decode("ascii"), parts[1].decode("ascii")
    except UnicodeDecodeError:
        return None


class HeadTooLarge(Exception):
    """The request head did not end within ``MAX_HEAD_BYTES``."""


async def read_head(stream: trio.SocketStream, timeout: float = HEAD_TIMEOUT) -> bytes | None:
    """Everything read up to the end of the request head (perhaps a little beyond it).

    None on EOF or if the head does not arrive within ``timeout`` seconds; raises
    ``HeadTooLarge`` if it does not end within ``MAX_HEAD_BYTES``, however it was split
    into reads."""
    buffer = b""
    with trio.move_on_after(timeout):
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end != -1:
                if end + 4 > MAX_HEAD_BYTES:
                    raise HeadTooLarge
                return buffer
            if len(buffer) >= MAX_HEAD_BYTES:
                raise HeadTooLarge
            data = await stream.receive_some(MAX_HEAD_BYTES)
            if not data:
                return None
            buffer += data
    return None


async def open_listeners(
    host: str, port: int, *, shared: bool = False
) -> list[trio.SocketListener]:
    """Bind the node's port (``shared``: with ``SO_REUSEPORT``, beside the other workers
    of ``--workers``). Raises OSError (port taken, bad address) before anything runs."""
    if shared:
        return await open_shared_listeners(host, port, backlog=1024)
    return await trio.open_tcp_listeners(port, host=host, backlog=1024)


class FrontDoor:
    """Accepts connections on bound listeners and routes each by its request line.

    The listeners outlive a restart of the front door: the port never closes."""

    def __init__(
        self,
        listeners: list[trio.SocketListener],
        *,
        websocket: ConnectionHandler,
        http: ConnectionHandler,
        head_timeout: float = HEAD_TIMEOUT,
    ) -> None:
        self.listeners = listeners
        self._websocket = websocket
        self._http = http
        self._acceptors: trio.CancelScope | None = None
        self._head_timeout = head_timeout

    @property
    def port(self) -> int:
        return self.listeners[0].socket.getsockname()[1]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; report started once accepting. After
        ``stop_accepting`` the connections already open are served on until they end."""
        async with trio.open_nursery() as connections, trio.open_nursery() as acceptors:
            self._acceptors = acceptors.cancel_scope
            await acceptors.start(
                functools.partial(
                    trio.serve_listeners,
                    self._route,
                    self.listeners,
                    handler_nursery=connections,
                )
            )
            task_status.started()

    async def stop_accepting(self) -> None:
        """Close the listening port (a node that drains): new connections are refused at
        once, so a load balancer moves them elsewhere; open ones carry on."""
        if self._acceptors is not None:
            self._acceptors.cancel()
        for listener in self.listeners:
            with contextlib.suppress(trio.ClosedResourceError, OSError):
                await listener.aclose()

    async def _route(self, stream: trio.SocketStream) -> None:
        try:
            try:
                head = await read_head(stream, self._head_timeout)
            except HeadTooLarge:
                await stream.send_all(TOO_LARGE)
                return
            parsed = request_line(head) if head else None
            if head is None or parsed is None:
                await stream.aclose()
                return
            handler = self._websocket if is_chat_upgrade(*parsed) else self._http
            handling = handler(stream, head)
            # The handler owns the head now and drops it after the handshake; holding it
            # here would keep it for the connection's whole life.
            del head, parsed
            await handling
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            pass
        except Exception:
            log.exception("connection handler failed")
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()
