"""A small Python client for hubbub: HTTP via httpx, WebSocket via trio-websocket.

Used by the tests and ``bench/``; usable for bots::

    async with HubbubHTTP("http://127.0.0.1:8000") as http:
        account = await http.register("ada", "ada@example.com", "correct horse")
        async with ChatClient.connect("http://127.0.0.1:8000", account.access_token) as chat:
            await chat.send({"type": "ping"})
            print(await chat.receive())

``ChatClient`` is one connection. ``ResumingSession`` (v2) is a connection that stays: it
opens ``/ws/chat`` again by itself when it drops, with ``since=<the last cursor>``, so the
frames it hands over are the user's stream without a gap::

    async with ResumingSession.open("http://127.0.0.1:8000", account.access_token) as chat:
        await chat.send({"type": "message", "recipient_id": 2, "message": "hi"})
        async for frame in chat:
            if is_lost_place(frame):
                ...  # reload GET /conversations and history
            print(frame)
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import urlencode

import attrs
import httpx
import orjson
import trio
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

from hubbub.protocol.codec import encode
from hubbub.protocol.frames import STREAM_FRAMES, ClientFrame, wire_type

TokenPlacement = Literal["query", "header", "subprotocol"]
Frame = dict[str, Any]

#: The ``since`` that asks for no replay: the stream from now on.
SINCE_NOW = "now"
#: The frame types of a user's stream (docs/contract.md, v2): each carries a ``cursor``.
STREAM_TYPES = frozenset(wire_type(frame) for frame in STREAM_FRAMES)


@attrs.frozen
class Account:
    id: int
    username: str
    access_token: str
    refresh_token: str


class HubbubHTTP:
    """The HTTP API, with the helpers a bot or a test needs."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def __aenter__(self) -> HubbubHTTP:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.http.aclose()

    async def signup(self, username: str, email: str, password: str) -> httpx.Response:
        return await self.http.post(
            "/auth/signup", json={"username": username, "email": email, "password": password}
        )

    async def login(self, username: str, password: str) -> httpx.Response:
        return await self.http.post(
            "/auth/login", data={"username": username, "password": password}
        )

    async def register(self, username: str, email: str, password: str) -> Account:
        """Sign up and log in; raises ``httpx.HTTPStatusError`` on any refusal."""
        created = await self.signup(username, email, password)
        created.raise_for_status()
        tokens = await self.login(username, password)
        tokens.raise_for_status()
        body = tokens.json()
        return Account(created.json()["id"], username, body["access_token"], body["refresh_token"])

    async def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.http.get(path, headers=headers, params=params or None)

    async def post(self, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.http.post(path, headers=headers, **kwargs)

    async def conversations(
        self, token: str, *, limit: int | None = None, before: str | None = None
    ) -> dict[str, Any]:
        """``GET /conversations``: ``{"conversations": [...], "next"}``, most recent first;
        pass ``next`` as ``before`` to page on. Raises ``httpx.HTTPStatusError`` on a refusal."""
        response = await self.get("/conversations", token, **_present(limit=limit, before=before))
        response.raise_for_status()
        return response.json()

    async def sync(self, token: str, since: str, *, limit: int | None = None) -> dict[str, Any]:
        """``GET /sync``: ``{"events": [...], "cursor", "recovered", "has_more"}``, the stream
        after ``since``; call again with the returned ``cursor`` to page on. Raises
        ``httpx.HTTPStatusError`` on a refusal."""
        response = await self.get("/sync", token, **_present(since=since, limit=limit))
        response.raise_for_status()
        return response.json()


def _present(**params: Any) -> dict[str, Any]:
    return {name: value for name, value in params.items() if value is not None}


def chat_url(
    base_url: str,
    token: str | None,
    *,
    placement: TokenPlacement = "query",
    since: str | None = None,
) -> str:
    """The ``/ws/chat`` URL to open: ``token`` in the query if placed there, ``since``
    (a cursor, or ``"now"``) if given."""
    url = base_url.rstrip("/").replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    query: dict[str, str] = {}
    if token is not None and placement == "query":
        query["token"] = token
    if since is not None:
        query["since"] = since
    return url + "/ws/chat" + (f"?{urlencode(query)}" if query else "")


class ChatClient:
    """One WebSocket connection. Frames are plain dicts."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self._held: deque[dict[str, Any]] = deque()

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        base_url: str,
        token: str | None,
        *,
        placement: TokenPlacement = "query",
        connect_timeout: float = 10.0,
        since: str | None = None,
    ) -> AsyncIterator[ChatClient]:
        """Open ``/ws/chat``. ``since`` (v2): resume the stream after that cursor, or
        ``"now"``; the server then ends its replay with a ``synced`` frame."""
        url = chat_url(base_url, token, placement=placement, since=since)
        headers: list[tuple[bytes, bytes]] = []
        subprotocols: list[str] = []
        if token is not None:
            if placement == "header":
                headers.append((b"Authorization", f"Bearer {token}".encode()))
            elif placement == "subprotocol":
                subprotocols.append(token)
        async with open_websocket_url(
            url,
            subprotocols=subprotocols,
            extra_headers=headers,
            connect_timeout=connect_timeout,
            message_queue_size=4096,
        ) as ws:
            yield cls(ws)

    async def send(self, frame: dict[str, Any] | ClientFrame | str | bytes) -> None:
        """Send a frame (a dict or a ``hubbub.protocol`` client frame is JSON-encoded; text
        or bytes go as they are)."""
        await self.ws.send_message(frame_text(frame))

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame (held ones first). Raises ``trio.TooSlowError`` after ``timeout``."""
        if self._held:
            return self._held.popleft()
        with trio.fail_after(timeout):
            return orjson.loads(await self.ws.get_message())

    async def receive_where(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """The first frame matching ``predicate``; frames skipped on the way are held for
        later ``receive`` calls, in order."""
        skipped: list[dict[str, Any]] = []
        try:
            for index, frame in enumerate(self._held):
                if predicate(frame):
                    del self._held[index]
                    return frame
            with trio.fail_after(timeout):
                while True:
                    frame = orjson.loads(await self.ws.get_message())
                    if predicate(frame):
                        return frame
                    skipped.append(frame)
        finally:
            self._held.extend(skipped)

    async def receive_type(self, frame_type: str, timeout: float = 5.0) -> dict[str, Any]:
        return await self.receive_where(lambda frame: frame.get("type") == frame_type, timeout)

    async def receive_answer(
        self, client_id: str, timeout: float = 10.0, answer: str = "ack"
    ) -> dict[str, Any]:
        """The ``ack`` (or the ``answer`` type given: ``message_edited`` for an ``edit``, ...)
        or ``error`` the server answered the send with ``client_id`` with (other frames are
        held, as by ``receive_where``)."""
        return await self.receive_where(
            lambda frame: (
                frame.get("type") in (answer, "error") and frame.get("client_id") == client_id
            ),
            timeout,
        )

    async def send_direct(
        self,
        recipient_id: int,
        text: str,
        client_id: str,
        *,
        reply_to: int | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Send a direct message (v2: ``reply_to`` a message of the conversation); return
        its ``ack`` (or the ``error`` that refused it)."""
        frame = {"type": "message", "recipient_id": recipient_id, "message": text}
        return await self.send_and_answer(_with(frame, reply_to=reply_to), client_id, timeout)

    async def send_group(
        self,
        group_id: int,
        text: str,
        client_id: str,
        *,
        reply_to: int | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Send a group message (v2: ``reply_to`` a message of the group); return its
        ``ack`` (or the ``error`` that refused it)."""
        frame = {"type": "group_message", "group_id": group_id, "message": text}
        return await self.send_and_answer(_with(frame, reply_to=reply_to), client_id, timeout)

    async def edit(
        self,
        message_id: int,
        text: str,
        client_id: str,
        *,
        group_id: int | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """v2: replace the text of one's own message (``group_id`` for a group message);
        return the ``message_edited`` this connection got (or the ``error``)."""
        frame = edit_frame(message_id, text, group_id=group_id)
        return await self.send_and_answer(frame, client_id, timeout, answer="message_edited")

    async def delete(
        self,
        message_id: int,
        client_id: str,
        *,
        group_id: int | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """v2: delete a message (one's own; in a group, any as its admin); return the
        ``message_deleted`` this connection got (or the ``error``)."""
        frame = delete_frame(message_id, group_id=group_id)
        return await self.send_and_answer(frame, client_id, timeout, answer="message_deleted")

    async def react(
        self,
        message_id: int,
        emoji: str,
        client_id: str,
        *,
        group_id: int | None = None,
        op: Literal["add", "remove"] = "add",
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """v2: add (or remove) an emoji on a message; return the ``reaction`` this
        connection got (or the ``error``)."""
        frame = react_frame(message_id, emoji, group_id=group_id, op=op)
        return await self.send_and_answer(frame, client_id, timeout, answer="reaction")

    async def typing(
        self,
        *,
        recipient_id: int | None = None,
        group_id: int | None = None,
        state: Literal["start", "stop"] = "start",
    ) -> None:
        """v2: tell the other participants the user is typing (renew every 3 s while they
        are; a ``start`` lasts 6 s) or stopped. Nothing answers it."""
        await self.send(typing_frame(recipient_id=recipient_id, group_id=group_id, state=state))

    async def send_and_answer(
        self, frame: dict[str, Any], client_id: str, timeout: float = 10.0, answer: str = "ack"
    ) -> dict[str, Any]:
        """Send ``frame`` under ``client_id``; return the ``ack`` (or ``answer``) or the
        ``error`` it got."""
        await self.send({**frame, "client_id": client_id})
        return await self.receive_answer(client_id, timeout, answer)

    async def wait_closed(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes the connection; return its close code."""
        code, _reason = await self.wait_close(timeout)
        return code

    async def wait_close(self, timeout: float = 5.0) -> tuple[int | None, str | None]:
        """Read until the server closes the connection; return its close code and reason.
        Raises ``trio.TooSlowError`` if it stays open ``timeout`` seconds."""
        with trio.fail_after(timeout):
            try:
                while True:
                    await self.ws.get_message()
            except ConnectionClosed as closed:
                if closed.reason is None:
                    return None, None
                return closed.reason.code, closed.reason.reason

    @property
    def subprotocol(self) -> str | None:
        return self.ws.subprotocol


# -- v2 frames, as plain dicts -------------------------------------------------------


def _with(frame: Frame, **optional: Any) -> Frame:
    """``frame`` plus the ``optional`` fields that are not None."""
    return {**frame, **_present(**optional)}


def frame_text(frame: Frame | ClientFrame | str | bytes) -> str | bytes:
    """What ``send`` puts on the wire for ``frame``."""
    if isinstance(frame, dict):
        return orjson.dumps(frame).decode()
    if isinstance(frame, str | bytes):
        return frame
    return encode(frame).decode()


def edit_frame(message_id: int, text: str, *, group_id: int | None = None) -> Frame:
    return _with({"type": "edit", "message_id": message_id, "message": text}, group_id=group_id)


def delete_frame(message_id: int, *, group_id: int | None = None) -> Frame:
    return _with({"type": "delete", "message_id": message_id}, group_id=group_id)


def react_frame(
    message_id: int,
    emoji: str,
    *,
    group_id: int | None = None,
    op: Literal["add", "remove"] = "add",
) -> Frame:
    frame = {"type": "react", "message_id": message_id, "emoji": emoji, "op": op}
    return _with(frame, group_id=group_id)


def typing_frame(
    *,
    recipient_id: int | None = None,
    group_id: int | None = None,
    state: Literal["start", "stop"] = "start",
) -> Frame:
    if (recipient_id is None) == (group_id is None):
        raise ValueError("typing names exactly one of recipient_id and group_id")
    return _with({"type": "typing", "state": state}, recipient_id=recipient_id, group_id=group_id)


# -- v2: the stream, resumed ------------------------------------------------------------


def cursor_of(frame: Frame) -> str | None:
    """The cursor a received frame moves the stream to: that of a stream frame or of a
    ``synced``; None for every other frame (``ack``, ``typing``, ``presence``, ...)."""
    kind = frame.get("type")
    if kind in STREAM_TYPES or kind == "synced":
        cursor = frame.get("cursor")
        if isinstance(cursor, str) and cursor:
            return cursor
    return None


def is_lost_place(frame: Frame) -> bool:
    """Whether ``frame`` says a resume lost its place (``synced`` with ``recovered``
    false): the v1 catch-up came instead of a replay, so reload ``GET /conversations`` and
    history."""
    return frame.get("type") == "synced" and frame.get("recovered") is False


@attrs.define
class StreamTracker:
    """Where a session is in the user's stream: the cursor of the last stream frame (or
    ``synced``) it received, and the ``since`` its next connection asks for.

    ``start``: what the first connection asks for: None (v1 behaviour, no ``since``) or
    ``"now"`` or a cursor kept from an earlier session. Until a cursor arrives, every
    connection asks for ``start`` again."""

    start: str | None = None
    cursor: str | None = None
    #: ``synced`` frames seen, and how many of them said the place was lost.
    synced: int = 0
    lost_places: int = 0

    def observe(self, frame: Frame) -> None:
        cursor = cursor_of(frame)
        if cursor is not None:
            self.cursor = cursor
        if frame.get("type") == "synced":
            self.synced += 1
            if is_lost_place(frame):
                self.lost_places += 1

    @property
    def since(self) -> str | None:
        return self.cursor if self.cursor is not None else self.start


@attrs.frozen
class Backoff:
    """Delays between reconnection attempts: ``initial`` doubling per consecutive failure
    up to ``maximum`` seconds, each scaled by a random factor in [1 - jitter, 1] so that
    clients dropped together do not come back together."""

    initial: float = 0.25
    maximum: float = 10.0
    jitter: float = 0.5

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        """The pause before the next attempt after ``failures`` (>= 1) failures in a row."""
        base = min(self.maximum, self.initial * math.pow(2, max(0, failures - 1)))
        return base * (1 - self.jitter * rand())


class SessionEnded(Exception):
    """A ``ResumingSession`` gave up: the server refused its token (1008, and the token
    came as a string, so trying again would not help), or ``max_failures`` attempts in a
    row failed. ``code`` and ``reason`` are the last close's, if there was one."""

    def __init__(self, message: str, code: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason


TokenSource = str | Callable[[], Awaitable[str]]


class ResumingSession:
    """A chat session that survives dropped connections (v2).

    It opens ``/ws/chat`` (the first time without ``since``, or with ``since`` as given:
    ``"now"`` or a cursor), records the ``cursor`` of every stream frame and ``synced`` it
    receives, and when the connection drops opens a new one with ``since=<that cursor>``
    after a bounded backoff, so the server replays what was missed. Every frame received
    is handed over in order, ``synced`` frames included: one for which ``is_lost_place``
    is true means the cursor was too old or unknown (reload conversations and history).

    Iterate it (``async for frame in session``) or call ``receive``; ``send`` waits for a
    connection to be open. Leaving ``open``'s block, or ``stop()``, ends it. ``token`` may
    be an async callable, called before each connection, to hand a fresh access token
    (connections close with 1008 ``token expired`` when theirs expires); with a plain
    string token a 1008 close ends the session with ``SessionEnded`` instead.
    """

    def __init__(
        self,
        base_url: str,
        token: TokenSource,
        *,
        since: str | None = None,
        placement: TokenPlacement = "query",
        backoff: Backoff = Backoff(),
        max_failures: int | None = None,
        connect_timeout: float = 10.0,
        buffer: int = 1024,
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.placement = placement
        self.backoff = backoff
        self.max_failures = max_failures
        self.connect_timeout = connect_timeout
        self.tracker = StreamTracker(start=since)
        #: How many connections were opened, and the ``since`` each asked for.
        self.connections = 0
        self.asked: list[str | None] = []
        self._send_frames, self._frames = trio.open_memory_channel[Frame](buffer)
        self._chat: ChatClient | None = None
        self._open = trio.Event()  # set while a connection is open, or once the session ended
        self._done = False
        self._ended: SessionEnded | None = None
        self._cancel = trio.CancelScope()

    @classmethod
    @asynccontextmanager
    async def open(
        cls, base_url: str, token: TokenSource, **options: Any
    ) -> AsyncIterator[ResumingSession]:
        """Run a session for the duration of the block (options as ``__init__``)."""
        session = cls(base_url, token, **options)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.run)
            try:
                yield session
            finally:
                session.stop()

    @property
    def cursor(self) -> str | None:
        """The last cursor received: keep it to resume a later session (``since=``)."""
        return self.tracker.cursor

    @property
    def connected(self) -> bool:
        return self._chat is not None

    def stop(self) -> None:
        """End the session: close the connection, stop reconnecting."""
        self._cancel.cancel()

    async def run(self) -> None:
        """Connect, read, reconnect, until stopped or given up; then end the iteration
        (giving up is raised to the reader, by ``receive`` and the iterator)."""
        try:
            with self._cancel:
                await self._connect_forever()
        except SessionEnded as ended:
            self._ended = ended
        finally:
            self._done = True
            self._open.set()
            self._send_frames.close()

    async def _connect_forever(self) -> None:
        failures = 0
        while True:
            code, reason, received = await self._one_connection()
            if received:
                failures = 0
            failures += 1
            if code == 1008 and isinstance(self.token, str):
                raise SessionEnded("the server refused the token", code, reason)
            if self.max_failures is not None and failures >= self.max_failures:
                raise SessionEnded(f"{failures} connections in a row failed", code, reason)
            await trio.sleep(self.backoff.delay(failures))

    async def _one_connection(self) -> tuple[int | None, str | None, bool]:
        """One connection, read until it drops: its close code and reason, and whether it
        received any frame (which resets the backoff)."""
        token = self.token if isinstance(self.token, str) else await self.token()
        since = self.tracker.since
        received = False
        try:
            async with ChatClient.connect(
                self.base_url,
                token,
                placement=self.placement,
                connect_timeout=self.connect_timeout,
                since=since,
            ) as chat:
                self.connections += 1
                self.asked.append(since)
                self._chat = chat
                self._open.set()
                try:
                    while True:
                        frame = orjson.loads(await chat.ws.get_message())
                        received = True
                        self.tracker.observe(frame)
                        await self._send_frames.send(frame)
                finally:
                    self._chat = None
                    self._open = trio.Event()
        except ConnectionClosed as closed:
            if closed.reason is None:
                return None, None, received
            return closed.reason.code, closed.reason.reason, received
        except (HandshakeError, OSError, trio.BrokenResourceError, orjson.JSONDecodeError):
            return None, None, received

    async def receive(self, timeout: float | None = None) -> Frame:
        """The next frame. Raises ``SessionEnded`` (or what ended the session) once the
        session is over and every frame was taken, ``trio.TooSlowError`` after
        ``timeout`` seconds."""
        with trio.fail_after(math.inf if timeout is None else timeout):
            try:
                return await self._frames.receive()
            except trio.EndOfChannel:
                raise self._end_error() from None

    def _end_error(self) -> SessionEnded:
        return self._ended or SessionEnded("the session was stopped")

    def __aiter__(self) -> ResumingSession:
        return self

    async def __anext__(self) -> Frame:
        """The next frame; the iteration ends when the session is stopped, and raises
        ``SessionEnded`` when it gave up."""
        try:
            return await self._frames.receive()
        except trio.EndOfChannel:
            if self._ended is not None:
                raise self._ended from None
            raise StopAsyncIteration from None

    async def send(self, frame: Frame | ClientFrame | str | bytes, timeout: float = 10.0) -> None:
        """Send on the open connection, waiting up to ``timeout`` seconds for one. A frame
        sent just before a drop may be lost: send with a ``client_id`` and send it again
        (it is idempotent) if no answer comes."""
        with trio.fail_after(timeout):
            while not self._done:
                chat = self._chat
                if chat is not None:
                    try:
                        await chat.send(frame)
                        return
                    except ConnectionClosed:
                        await trio.sleep(0.05)  # the reader notices the drop meanwhile
                        continue
                await self._open.wait()
        raise self._end_error()
