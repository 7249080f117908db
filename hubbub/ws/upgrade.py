"""The WebSocket opening handshake over a Trio stream, by the ``websockets`` protocol.

The protocol object parses the upgrade request and writes the answer; it is then dropped,
and the connection's frames are ``client_frames``' to parse. So that no frame is lost at
the switch, only the request's own bytes (up to the blank line that ends its headers) are
given to the protocol; whatever the client sent after them is handed on.
"""

from __future__ import annotations

import attrs
import trio
from websockets.http11 import Request
from websockets.server import ServerProtocol

from hubbub.ws.handshake import echo_first_offered

RECEIVE_SIZE = 65536
#: A request whose headers have not ended by then is dropped.
MAX_REQUEST_BYTES = 64 * 1024
_END_OF_HEADERS = b"\r\n\r\n"


@attrs.frozen
class Upgrade:
    """An accepted upgrade: the request, and what the client sent after it."""

    request: Request
    after: bytes


async def upgrade(stream: trio.SocketStream, already_read: bytes, timeout: float) -> Upgrade | None:
    """Read the upgrade request (``already_read`` is what the front door read of it) and
    answer it: ``101`` and the ``Upgrade``, or a refusal (``4xx``) and None. None, too, if
    the client is gone, is too slow (``timeout`` for the whole handshake) or sends more
    than ``MAX_REQUEST_BYTES`` of headers."""
    protocol = ServerProtocol(select_subprotocol=echo_first_offered)
    with trio.move_on_after(timeout):
        try:
            return await _upgrade(stream, protocol, already_read)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return None
    return None


async def _upgrade(
    stream: trio.SocketStream, protocol: ServerProtocol, received: bytes
) -> Upgrade | None:
    given = 0  # how much of ``received`` the protocol has
    while True:
        end = received.find(_END_OF_HEADERS, max(0, given - 3))
        upto = len(received) if end < 0 else end + len(_END_OF_HEADERS)
        if upto > given:  # (an empty chunk would tell the protocol the stream ended)
            protocol.receive_data(received[given:upto])
            given = upto
        request = next((e for e in protocol.events_received() if isinstance(e, Request)), None)
        if request is not None:
            response = protocol.accept(request)
            protocol.send_response(response)
            await _send(stream, protocol)
            if response.status_code != 101:
                return None
            return Upgrade(request, received[upto:])
        if protocol.handshake_exc is not None:
            await _send(stream, protocol)
            return None
        if len(received) > MAX_REQUEST_BYTES:
            return None
        data = await stream.receive_some(RECEIVE_SIZE)
        if not data:
            return None
        received += data


async def _send(stream: trio.SocketStream, protocol: ServerProtocol) -> None:
    data = b"".join(protocol.data_to_send())
    if data:
        await stream.send_all(data)
