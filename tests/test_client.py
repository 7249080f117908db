"""The Python client's v2 parts: frames it builds, cursor tracking, backoff, and the
resuming session against a stand-in WebSocket server (no hubbub node needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import trio
from trio_websocket import WebSocketConnection, WebSocketRequest, serve_websocket

from hubbub.client import (
    SINCE_NOW,
    STREAM_TYPES,
    Backoff,
    ResumingSession,
    SessionEnded,
    StreamTracker,
    chat_url,
    cursor_of,
    delete_frame,
    edit_frame,
    frame_text,
    is_lost_place,
    react_frame,
    typing_frame,
)
from hubbub.protocol import STREAM_FRAMES, Delete, Edit, React, Typing, decode_client_frame
from hubbub.protocol.frames import SendDirect, wire_type

# -- frames ----------------------------------------------------------------------------


def test_the_stream_types_are_the_protocol_ones() -> None:
    assert {wire_type(cls) for cls in STREAM_FRAMES} == STREAM_TYPES


@pytest.mark.parametrize(
    ("frame", "decoded"),
    [
        (edit_frame(7, "fixed"), Edit(message_id=7, message="fixed")),
        (edit_frame(9, "x", group_id=3), Edit(message_id=9, message="x", group_id=3)),
        (delete_frame(7), Delete(message_id=7)),
        (delete_frame(9, group_id=3), Delete(message_id=9, group_id=3)),
        (react_frame(7, "👍"), React(message_id=7, emoji="👍")),
        (
            react_frame(9, "🎉", group_id=3, op="remove"),
            React(message_id=9, emoji="🎉", group_id=3, op="remove"),
        ),
        (typing_frame(recipient_id=2), Typing(recipient_id=2)),
        (typing_frame(group_id=3, state="stop"), Typing(group_id=3, state="stop")),
    ],
)
def test_built_frames_are_what_the_server_decodes(frame: dict, decoded: object) -> None:
    assert decode_client_frame(frame_text(frame)) == decoded
    assert None not in frame.values()  # optional fields are left out, not null


@pytest.mark.parametrize(
    "kwargs", [{}, {"recipient_id": 2, "group_id": 3}, {"recipient_id": None, "group_id": None}]
)
def test_typing_names_exactly_one_conversation(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        typing_frame(**kwargs)


def test_protocol_frames_are_sent_as_their_json() -> None:
    text = frame_text(SendDirect(recipient_id=2, message="hi", reply_to=7))
    assert orjson.loads(text) == {
        "type": "message",
        "recipient_id": 2,
        "message": "hi",
        "image_url": None,
        "reply_to": 7,
    }
    assert frame_text("raw") == "raw" and frame_text(b"\x00") == b"\x00"


@pytest.mark.parametrize(
    ("kwargs", "path", "query"),
    [
        ({"token": "t"}, "/ws/chat", {"token": ["t"]}),
        ({"token": "t", "since": "e.2a"}, "/ws/chat", {"token": ["t"], "since": ["e.2a"]}),
        ({"token": "t", "since": SINCE_NOW}, "/ws/chat", {"token": ["t"], "since": ["now"]}),
        ({"token": "t", "placement": "header"}, "/ws/chat", {}),
        ({"token": "t", "placement": "header", "since": "x"}, "/ws/chat", {"since": ["x"]}),
        ({"token": None, "since": "a&b=c"}, "/ws/chat", {"since": ["a&b=c"]}),
    ],
)
def test_chat_url(kwargs: dict, path: str, query: dict) -> None:
    token = kwargs.pop("token")
    url = chat_url("http://127.0.0.1:8000/", token, **kwargs)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("ws", "127.0.0.1:8000", path)
    assert parse_qs(parts.query) == query


def test_chat_url_over_tls() -> None:
    assert chat_url("https://chat.example", "t").startswith("wss://chat.example/ws/chat?")


# -- cursor tracking -------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(STREAM_TYPES | {"synced"}))
def test_stream_frames_and_synced_carry_the_cursor(kind: str) -> None:
    assert cursor_of({"type": kind, "cursor": "e.5"}) == "e.5"


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "typing", "user_id": 1, "cursor": "e.5"},
        {"type": "ack", "message_id": 1, "cursor": "e.5"},
        {"type": "presence", "cursor": "e.5"},
        {"type": "error", "reason": "x", "cursor": "e.5"},
        {"type": "pong"},
        {"type": "message", "message_id": 1},  # v1 frame: no cursor
        {"type": "message", "cursor": None},
        {"type": "message", "cursor": 5},
        {"type": "message", "cursor": ""},
        {"cursor": "e.5"},
    ],
)
def test_other_frames_move_no_cursor(frame: dict) -> None:
    assert cursor_of(frame) is None


def test_the_tracker_keeps_the_last_cursor_received() -> None:
    tracker = StreamTracker()
    assert tracker.since is None  # the first connection asks for no replay: v1 behaviour
    tracker.observe({"type": "message", "message_id": 1})  # v1 catch-up without a cursor
    assert tracker.since is None
    tracker.observe({"type": "message", "message_id": 2, "cursor": "e.3"})
    tracker.observe({"type": "typing", "user_id": 2, "state": "start"})
    tracker.observe({"type": "ack", "message_id": 4, "status": "delivered"})
    assert tracker.since == tracker.cursor == "e.3"
    tracker.observe({"type": "reaction", "message_id": 2, "cursor": "e.4"})
    tracker.observe({"type": "synced", "cursor": "e.9", "recovered": True})
    assert tracker.since == "e.9"
    assert (tracker.synced, tracker.lost_places) == (1, 0)
    tracker.observe({"type": "status", "message_id": 2, "status": "read", "cursor": "e.a"})
    assert tracker.since == "e.a"


@pytest.mark.parametrize("start", [SINCE_NOW, "old.1"])
def test_the_tracker_asks_for_its_start_until_a_cursor_comes(start: str) -> None:
    tracker = StreamTracker(start=start)
    assert tracker.since == start
    tracker.observe({"type": "pong"})
    assert tracker.since == start
    tracker.observe({"type": "synced", "cursor": "e.1", "recovered": False})
    assert tracker.since == "e.1"
    assert (tracker.synced, tracker.lost_places) == (1, 1)


def test_lost_place() -> None:
    assert is_lost_place({"type": "synced", "cursor": "e.1", "recovered": False})
    assert not is_lost_place({"type": "synced", "cursor": "e.1", "recovered": True})
    assert not is_lost_place({"type": "message", "recovered": False})
    assert not is_lost_place({"type": "synced", "cursor": "e.1"})


def test_backoff_doubles_up_to_its_bound_with_jitter() -> None:
    backoff = Backoff(initial=0.5, maximum=4.0, jitter=0.5)
    assert [backoff.delay(n, rand=lambda: 0.0) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]
    assert backoff.delay(1, rand=lambda: 1.0) == 0.25
    assert backoff.delay(100, rand=lambda: 0.999) <= 4.0
    assert all(0.125 <= backoff.delay(2) <= 1.0 for _ in range(100))


# -- the resuming session, against a stand-in server -----------------------------------

Handler = Callable[[int, WebSocketConnection], Awaitable[None]]
FAST = Backoff(initial=0.01, maximum=0.05)


@asynccontextmanager
async def stand_in_server(handler: Handler) -> AsyncIterator[tuple[str, list[str]]]:
    """A WebSocket server on a free port that hands its n-th connection (from 0) to
    ``handler``; yields its base URL and the request target of every connection."""
    targets: list[str] = []

    async def accept(request: WebSocketRequest) -> None:
        number = len(targets)
        targets.append(request.path)
        ws = await request.accept()
        await handler(number, ws)

    async with trio.open_nursery() as nursery:
        serve = partial(serve_websocket, accept, "127.0.0.1", 0, ssl_context=None)
        server = await nursery.start(serve)
        yield f"http://127.0.0.1:{server.port}", targets
        nursery.cancel_scope.cancel()


def query_of(target: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(target).query)


async def send_json(ws: WebSocketConnection, frame: dict) -> None:
    await ws.send_message(orjson.dumps(frame).decode())


async def test_a_dropped_session_reconnects_with_the_last_cursor() -> None:
    got_on_second: list[dict] = []

    async def handler(number: int, ws: WebSocketConnection) -> None:
        if number == 0:
            await send_json(ws, {"type": "message", "message_id": 1, "cursor": "e.1"})
            await send_json(ws, {"type": "group_read", "group_id": 3, "cursor": "e.2"})
            await send_json(ws, {"type": "typing", "user_id": 2, "state": "start"})
            await ws.aclose(code=1011, reason="gone")
        elif number == 1:
            await send_json(ws, {"type": "reaction", "message_id": 1, "cursor": "e.3"})
            await send_json(ws, {"type": "synced", "cursor": "e.3", "recovered": True})
            got_on_second.append(orjson.loads(await ws.get_message()))
            await ws.aclose(code=1012)
        else:
            await send_json(ws, {"type": "synced", "cursor": "e.3", "recovered": True})
            await trio.sleep_forever()

    async with stand_in_server(handler) as (url, targets):
        with trio.fail_after(10):
            async with ResumingSession.open(url, "tok", backoff=FAST) as session:
                frames = [await session.receive() for _ in range(5)]
                await session.send({"type": "ping"})
                assert (await session.receive())["type"] == "synced"  # the third connection
                assert session.cursor == "e.3"
    assert [f["type"] for f in frames] == [
        "message",
        "group_read",
        "typing",
        "reaction",
        "synced",
    ]
    assert got_on_second == [{"type": "ping"}]
    assert [query_of(t).get("since") for t in targets] == [None, ["e.2"], ["e.3"]]
    assert all(query_of(t)["token"] == ["tok"] for t in targets)
    assert session.asked == [None, "e.2", "e.3"]
    assert session.connections == 3


async def test_since_now_and_a_lost_place_reach_the_caller() -> None:
    async def handler(number: int, ws: WebSocketConnection) -> None:
        if number == 0:
            await send_json(ws, {"type": "synced", "cursor": "e.7", "recovered": True})
            await ws.aclose(code=1001)
        else:
            await send_json(ws, {"type": "message", "message_id": 1})  # v1 catch-up
            await send_json(ws, {"type": "synced", "cursor": "f.1", "recovered": False})
            await trio.sleep_forever()

    async with stand_in_server(handler) as (url, targets):
        with trio.fail_after(10):
            async with ResumingSession.open(url, "tok", since=SINCE_NOW, backoff=FAST) as session:
                seen = []
                async for frame in session:
                    seen.append(frame)
                    if is_lost_place(frame):
                        break
    assert [query_of(t)["since"] for t in targets] == [["now"], ["e.7"]]
    assert [f["type"] for f in seen] == ["synced", "message", "synced"]
    assert session.tracker.lost_places == 1
    assert session.cursor == "f.1"


async def test_a_refused_string_token_ends_the_session() -> None:
    async def handler(number: int, ws: WebSocketConnection) -> None:
        await ws.aclose(code=1008, reason="token expired")

    async with stand_in_server(handler) as (url, targets):
        with trio.fail_after(10):
            async with ResumingSession.open(url, "tok", backoff=FAST) as session:
                with pytest.raises(SessionEnded) as ended:
                    async for _frame in session:
                        pass
    assert (ended.value.code, ended.value.reason) == (1008, "token expired")
    assert len(targets) == 1


async def test_a_token_source_is_asked_again_for_each_connection() -> None:
    tokens = iter(["old", "fresh"])

    async def token() -> str:
        return next(tokens)

    async def handler(number: int, ws: WebSocketConnection) -> None:
        if number == 0:
            await send_json(ws, {"type": "status", "message_id": 1, "cursor": "e.1"})
            await ws.aclose(code=1008, reason="token expired")
        else:
            await send_json(ws, {"type": "synced", "cursor": "e.1", "recovered": True})
            await trio.sleep_forever()

    async with stand_in_server(handler) as (url, targets):
        with trio.fail_after(10):
            async with ResumingSession.open(url, token, backoff=FAST) as session:
                assert (await session.receive())["type"] == "status"
                assert (await session.receive())["type"] == "synced"
    assert [(query_of(t)["token"], query_of(t).get("since")) for t in targets] == [
        (["old"], None),
        (["fresh"], ["e.1"]),
    ]


async def test_max_failures_bounds_the_attempts_and_stop_ends_the_iteration() -> None:
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with trio.fail_after(10):
        async with ResumingSession.open(url, "tok", backoff=FAST, max_failures=3) as session:
            with pytest.raises(SessionEnded, match="3 connections in a row failed"):
                await session.receive()
            with pytest.raises(SessionEnded):
                await session.send({"type": "ping"})
        async with ResumingSession.open(url, "tok", backoff=FAST) as session:
            session.stop()
            assert [frame async for frame in session] == []
    assert session.connections == 0
