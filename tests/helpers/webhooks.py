"""A webhook receiver for tests: a real HTTP/1.1 server (Trio and h11) on a free port that
checks every signature, answers as the test says, and wakes waiters on each request.

``async with open_receiver(SECRET) as receiver:`` then point a node's
``HUBBUB_WEBHOOK_URL`` at ``receiver.url`` and wait with ``receiver.wait_for(...)``.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import h11
import orjson
import trio

from hubbub.webhooks import verify

SECRET = "a webhook secret for tests only"
Event = dict[str, Any]
#: How the receiver answers an event arriving for the ``nth`` time (1 for the first): an
#: HTTP status, or None to never answer (the sender must time out).
Behaviour = Callable[[Event, int], int | None]
WAIT_TIMEOUT = 30.0


def always(status: int) -> Behaviour:
    return lambda event, nth: status


#: Every event accepted at the first try.
ACCEPT_ALL = always(200)


@attrs.define(eq=False)
class Delivery:
    """One POST as received."""

    event: Event
    headers: dict[str, str]
    #: Whether ``X-Hubbub-Signature`` is the body's, and ``X-Hubbub-Event-Id`` its id.
    signed: bool
    #: What was answered (None: nothing).
    status: int | None

    @property
    def accepted(self) -> bool:
        return self.signed and self.status is not None and 200 <= self.status < 300


@attrs.define(eq=False)
class WebhookReceiver:
    secret: str
    behaviour: Behaviour = ACCEPT_ALL
    url: str = ""
    deliveries: list[Delivery] = attrs.Factory(list)
    _changed: trio.Event = attrs.Factory(trio.Event)

    # -- what arrived --------------------------------------------------------------

    def accepted(self, type: str | None = None) -> list[Event]:
        """Every accepted event (a valid signature, answered 2xx), in arrival order; of
        ``type`` if given. An event delivered twice is here twice."""
        return [
            d.event
            for d in self.deliveries
            if d.accepted and (type is None or d.event["type"] == type)
        ]

    def arrivals(self) -> Counter[str]:
        """How many times each event id arrived (accepted or not)."""
        return Counter(d.event["id"] for d in self.deliveries)

    async def wait_for(
        self, check: Callable[[], bool], what: str, timeout: float = WAIT_TIMEOUT
    ) -> None:
        """Return once ``check()`` holds, re-checking on each request; fail saying
        ``what`` did not happen within ``timeout`` seconds."""
        try:
            with trio.fail_after(timeout):
                while True:
                    changed = self._changed
                    if check():
                        return
                    await changed.wait()
        except trio.TooSlowError:
            raise AssertionError(f"{what} did not happen within {timeout} s") from None

    async def wait_event(
        self,
        type: str,
        where: Callable[[Event], bool] = lambda e: True,
        timeout: float = WAIT_TIMEOUT,
    ) -> Event:
        """The first accepted event of ``type`` for which ``where`` holds, once it came."""
        found: list[Event] = []

        def check() -> bool:
            found[:] = [e for e in self.accepted(type) if where(e)]
            return bool(found)

        await self.wait_for(check, f"a {type} webhook", timeout)
        return found[0]

    # -- the server --------------------------------------------------------------------

    def _record(self, request: h11.Request, body: bytes) -> int | None:
        headers = {name.decode().lower(): value.decode() for name, value in request.headers}
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            event = {"id": None, "type": None, "unparsable": body.decode(errors="replace")}
        signed = verify(self.secret, body, headers.get("x-hubbub-signature")) and headers.get(
            "x-hubbub-event-id"
        ) == event.get("id")
        nth = self.arrivals()[event.get("id")] + 1
        status = self.behaviour(event, nth) if signed else 401
        self.deliveries.append(Delivery(event, headers, signed, status))
        self._changed.set()
        self._changed = trio.Event()
        return status

    async def serve(self, stream: trio.SocketStream) -> None:
        """One connection: requests in turn (keep-alive) until the client closes."""
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request, body = await _read_request(stream, conn)
                if request is None:
                    return
                status = self._record(request, body)
                if status is None:
                    await trio.sleep_forever()
                reply = h11.Response(
                    status_code=status,
                    headers=[("content-length", "2"), ("connection", "keep-alive")],
                )
                await stream.send_all(
                    conn.send(reply)
                    + conn.send(h11.Data(data=b"ok"))
                    + conn.send(h11.EndOfMessage())
                )
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            return
        finally:
            await stream.aclose()


async def _read_request(
    stream: trio.SocketStream, conn: h11.Connection
) -> tuple[h11.Request | None, bytes]:
    request: h11.Request | None = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return request, body
        elif isinstance(event, h11.ConnectionClosed):
            return None, b""


@asynccontextmanager
async def open_receiver(
    secret: str = SECRET, behaviour: Behaviour = ACCEPT_ALL
) -> AsyncIterator[WebhookReceiver]:
    """A receiver listening on 127.0.0.1 and a free port until the block ends; its
    ``behaviour`` may be replaced at any time."""
    receiver = WebhookReceiver(secret, behaviour)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, receiver.serve, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        receiver.url = f"http://127.0.0.1:{port}/hooks"
        yield receiver
        nursery.cancel_scope.cancel()
