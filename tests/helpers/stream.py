"""v2 in tests: connecting with ``since``, reading the stream and its cursors, the
conversation list, groups made over HTTP, and the answers to edit / delete / react.

Cursors are opaque to clients (docs/contract.md); the tests read their position only to
check order (docs/decisions/0004: ``<epoch>.<position in hex>``, ``hubbub.protocol.cursor``)
and to spell cursors a server never gave (another epoch, a position ahead of the head).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import attrs
import trio
from trio_websocket import open_websocket_url

from hubbub.client import STREAM_TYPES, Account, ChatClient, HubbubHTTP
from hubbub.node import Node
from hubbub.protocol.cursor import Cursor, parse_cursor
from tests.helpers.chat import Frame, FramePredicate, frames_until, is_type
from tests.helpers.polling import poll_until

#: The answers to edit / delete / react (the sending connection's copy has the client_id).
RICH_ANSWERS = frozenset({"message_edited", "message_deleted", "reaction", "error"})
#: The fields every v2 message object has.
V2_MESSAGE_FIELDS = frozenset({"edited_at", "deleted", "reply_to", "reactions"})


def is_stream(frame: Frame) -> bool:
    return frame["type"] in STREAM_TYPES


def stream_only(frames: Iterable[Frame]) -> list[Frame]:
    return [frame for frame in frames if is_stream(frame)]


def position(cursor: str) -> int:
    """The stream position a cursor the server gave names (fails on anything else)."""
    assert isinstance(cursor, str), f"a cursor is a string, not {cursor!r}"
    parsed = parse_cursor(cursor)
    assert parsed is not None, f"the server gave a cursor it cannot read back: {cursor!r}"
    return parsed.position


def moved(cursor: str, by: int) -> str:
    """``cursor``'s epoch with the position ``by`` further (a place the stream never had)."""
    parsed = parse_cursor(cursor)
    assert parsed is not None
    return str(Cursor(parsed.epoch, parsed.position + by))


def of_other_epoch(cursor: str) -> str:
    """A well-formed cursor at the same position but of another stream (epoch)."""
    parsed = parse_cursor(cursor)
    assert parsed is not None
    other = "zz9" if parsed.epoch != "zz9" else "yy8"
    return str(Cursor(other, parsed.position))


def key(frame: Frame) -> tuple[Any, ...]:
    """What identifies a stream event whatever state it is rendered in: its type, its
    cursor, and the ids it is about."""
    return (
        frame["type"],
        frame.get("cursor"),
        frame.get("message_id"),
        frame.get("group_id"),
        frame.get("user_id"),
        frame.get("emoji"),
        frame.get("op"),
    )


def ws_url(base_url: str, token: str, since: str | None) -> str:
    query = {"token": token}
    if since is not None:
        query["since"] = since
    return base_url.rstrip("/").replace("http://", "ws://", 1) + "/ws/chat?" + urlencode(query)


@asynccontextmanager
async def connect(
    base_url: str, account: Account, since: str | None = None
) -> AsyncIterator[ChatClient]:
    """A WebSocket of ``account`` opened with ``?since=`` (left out when None)."""
    async with open_websocket_url(
        ws_url(base_url, account.access_token, since),
        connect_timeout=10.0,
        message_queue_size=4096,
    ) as ws:
        yield ChatClient(ws)


async def until_synced(chat: ChatClient, timeout: float = 15.0) -> tuple[list[Frame], Frame]:
    """The frames before the ``synced`` frame, and the ``synced`` frame."""
    frames = await frames_until(chat, is_type("synced"), timeout)
    return frames[:-1], frames[-1]


@asynccontextmanager
async def resumed(
    base_url: str, account: Account, since: str
) -> AsyncIterator[tuple[ChatClient, list[Frame], Frame]]:
    """``(chat, replayed frames, synced frame)`` of a connection opened with ``since``."""
    async with connect(base_url, account, since) as chat:
        replay, synced = await until_synced(chat)
        yield chat, replay, synced


async def answer(chat: ChatClient, client_id: str, timeout: float = 10.0) -> Frame:
    """The event or ``error`` that answered the edit / delete / react sent with ``client_id``
    on this connection (other frames are held)."""
    return await chat.receive_where(
        lambda frame: frame["type"] in RICH_ANSWERS and frame.get("client_id") == client_id,
        timeout,
    )


async def request(chat: ChatClient, frame: Frame, client_id: str, timeout: float = 10.0) -> Frame:
    await chat.send({**frame, "client_id": client_id})
    return await answer(chat, client_id, timeout)


async def event(
    chat: ChatClient, frame_type: str, message_id: int | None = None, timeout: float = 10.0
) -> Frame:
    """The next frame of ``frame_type`` (about ``message_id`` if given); others are held."""
    return await chat.receive_where(
        lambda frame: (
            frame["type"] == frame_type
            and (message_id is None or frame.get("message_id") == message_id)
        ),
        timeout,
    )


@attrs.define
class Tap:
    """A connection whose every frame is kept, in order, however it is waited on: a
    witness of what a user's connection received live."""

    chat: ChatClient
    frames: list[Frame] = attrs.Factory(list)

    async def until(self, predicate: FramePredicate, timeout: float = 10.0) -> Frame:
        """Read (and keep) frames up to the first for which ``predicate`` is true."""
        with trio.fail_after(timeout):
            while True:
                frame = await self.chat.receive(timeout=timeout)
                self.frames.append(frame)
                if predicate(frame):
                    return frame

    async def event(self, frame_type: str, message_id: int | None = None) -> Frame:
        return await self.until(
            lambda frame: (
                frame["type"] == frame_type
                and (message_id is None or frame.get("message_id") == message_id)
            )
        )


# -- HTTP ----------------------------------------------------------------------------


def ok(response: Any) -> Any:
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


async def create_group(http: HubbubHTTP, admin: Account, name: str, *members: Account) -> int:
    """A group of ``admin`` (its creator and admin), the ``members`` added in that order."""
    created = ok(await http.post("/groups/create-group", admin.access_token, params={"name": name}))
    group_id = created["group_id"]
    for member in members:
        ok(
            await http.post(
                f"/groups/{group_id}/add-member", admin.access_token, params={"user_id": member.id}
            )
        )
    return group_id


async def conversations(http: HubbubHTTP, viewer: Account, **params: Any) -> dict[str, Any]:
    """``GET /conversations`` (must answer 200)."""
    return ok(await http.get("/conversations", viewer.access_token, **params))


async def conversation(
    http: HubbubHTTP, viewer: Account, *, user_id: int | None = None, group_id: int | None = None
) -> dict[str, Any] | None:
    """The item of one conversation in ``viewer``'s list (every page read), or None."""
    for item in await all_conversations(http, viewer):
        if user_id is not None and item["kind"] == "direct" and item["user_id"] == user_id:
            return item
        if group_id is not None and item["kind"] == "group" and item["group_id"] == group_id:
            return item
    return None


async def all_conversations(http: HubbubHTTP, viewer: Account, limit: int = 200) -> list[Frame]:
    items: list[Frame] = []
    before: str | None = None
    for _page in range(1000):
        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = before
        page = await conversations(http, viewer, **params)
        items += page["conversations"]
        before = page["next"]
        if before is None:
            return items
    raise AssertionError("GET /conversations never ended")


async def group_history(http: HubbubHTTP, viewer: Account, group_id: int) -> list[Frame]:
    """The group's history (up to 200 messages), oldest first."""
    return ok(await http.get(f"/groups/{group_id}/messages", viewer.access_token, limit=200))


async def direct_messages(http: HubbubHTTP, viewer: Account, other_id: int) -> list[Frame]:
    """The direct conversation with ``other_id`` (up to 200 messages), oldest first."""
    return ok(await http.get(f"/messages/{other_id}", viewer.access_token, limit=200))


def by_id(messages: Iterable[Frame]) -> dict[int, Frame]:
    return {message["message_id"]: message for message in messages}


async def sync(http: HubbubHTTP, viewer: Account, since: str, **params: Any) -> dict[str, Any]:
    """One ``GET /sync`` page (must answer 200)."""
    return ok(await http.get("/sync", viewer.access_token, since=since, **params))


async def sync_all(
    http: HubbubHTTP, viewer: Account, since: str, limit: int = 500
) -> tuple[list[Frame], str]:
    """Every event after ``since`` through ``GET /sync`` pages, and the last cursor."""
    events: list[Frame] = []
    for _page in range(1000):
        page = await sync(http, viewer, since, limit=limit)
        assert page["recovered"] is True, page
        events += page["events"]
        since = page["cursor"]
        if not page["has_more"]:
            return events, since
    raise AssertionError("GET /sync never ended")


async def tail_has_dispatched(node: Node, timeout: float = 10.0) -> None:
    """Wait until ``node``'s stream tail has dispatched what its storage holds now.

    For events a test wrote to storage directly, not through the node (which learns of
    them at its next poll): a session that attaches after this gets them as its catch-up,
    never live."""
    head = (await node.storage.stream_state()).head
    tail = node.chat.stream

    async def poll() -> None:
        tail.poll_now()

    await poll_until(
        lambda: tail.position >= head,
        what=f"the stream tail reaching {head}",
        timeout=timeout,
        every=poll,
    )
