"""A small Python client for hubbub: HTTP via httpx, WebSocket via trio-websocket.

Used by the tests and ``bench/``; usable for bots::

    async with HubbubHTTP("http://127.0.0.1:8000") as http:
        account = await http.register("ada", "ada@example.com", "correct horse")
        async with ChatClient.connect("http://127.0.0.1:8000", account.access_token) as chat:
            await chat.send({"type": "ping"})
            print(await chat.receive())
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import attrs
import httpx
import orjson
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

TokenPlacement = Literal["query", "header", "subprotocol"]


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
    ) -> AsyncIterator[ChatClient]:
        url = base_url.rstrip("/").replace("http://", "ws://", 1) + "/ws/chat"
        headers: list[tuple[bytes, bytes]] = []
        subprotocols: list[str] = []
        if token is not None:
            if placement == "query":
                url += f"?token={token}"
            elif placement == "header":
                headers.append((b"Authorization", f"Bearer {token}".encode()))
            else:
                subprotocols.append(token)
        async with open_websocket_url(
            url,
            subprotocols=subprotocols,
            extra_headers=headers,
            connect_timeout=connect_timeout,
            message_queue_size=4096,
        ) as ws:
            yield cls(ws)

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        """Send a frame (a dict is JSON-encoded; text or bytes go as they are)."""
        if isinstance(frame, dict):
            frame = orjson.dumps(frame).decode()
        await self.ws.send_message(frame)

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

    async def receive_answer(self, client_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The ``ack`` or ``error`` the server answered the send with ``client_id`` with
        (other frames are held, as by ``receive_where``)."""
        return await self.receive_where(
            lambda frame: (
                frame.get("type") in ("ack", "error") and frame.get("client_id") == client_id
            ),
            timeout,
        )

    async def send_direct(
        self, recipient_id: int, text: str, client_id: str, *, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Send a direct message; return its ``ack`` (or the ``error`` that refused it)."""
        frame = {"type": "message", "recipient_id": recipient_id, "message": text}
        return await self.send_and_answer(frame, client_id, timeout)

    async def send_group(
        self, group_id: int, text: str, client_id: str, *, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Send a group message; return its ``ack`` (or the ``error`` that refused it)."""
        frame = {"type": "group_message", "group_id": group_id, "message": text}
        return await self.send_and_answer(frame, client_id, timeout)

    async def send_and_answer(
        self, frame: dict[str, Any], client_id: str, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Send ``frame`` under ``client_id``; return the ``ack`` or ``error`` it got."""
        await self.send({**frame, "client_id": client_id})
        return await self.receive_answer(client_id, timeout)

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
