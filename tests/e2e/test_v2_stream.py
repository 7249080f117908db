"""v2 stream and resume (docs/contract.md, "The stream and resuming it";
docs/decisions/0004): cursors on every stream frame, resume with ``since``, ``since=now``,
lost places, retention, ``GET /sync``, and bad ``since`` values.

The oracle for "what came after the cursor" is a second connection of the same user that
stays open the whole time: the stream is everything any of the user's connections would
have received live, so a resume must replay exactly the witness's frames after the cursor,
in the same order (messages in their current state).
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import orjson
import pytest

from hubbub.client import Account, ChatClient, HubbubHTTP
from hubbub.node import Node
from tests.helpers.chat import Frame, attached, drain, frames_until
from tests.helpers.polling import poll_until
from tests.helpers.stream import (
    STREAM_TYPES,
    Tap,
    by_id,
    connect,
    create_group,
    direct_messages,
    event,
    is_stream,
    key,
    moved,
    of_other_epoch,
    position,
    request,
    resumed,
    stream_only,
    sync,
    until_synced,
)
from tests.helpers.users import UserMaker, register


def strictly_increasing(frames: list[Frame]) -> list[int]:
    positions = [position(frame["cursor"]) for frame in frames]
    assert positions == sorted(set(positions)), f"cursors out of order or repeated: {positions}"
    return positions


def after(frames: list[Frame], cursor: str) -> list[Frame]:
    """The stream frames of ``frames`` past ``cursor``."""
    mark = position(cursor)
    return [f for f in frames if is_stream(f) and position(f["cursor"]) > mark]


async def v1(node: Node, account: Account, stack: AsyncExitStack) -> ChatClient:
    chat = await stack.enter_async_context(ChatClient.connect(node.url, account.access_token))
    return await attached(chat)


async def now_cursor(node: Node, account: Account) -> str:
    """The cursor a ``since=now`` connection of ``account`` is given."""
    async with connect(node.url, account, since="now") as chat:
        replay, synced = await until_synced(chat)
    assert replay == [] and synced["recovered"] is True, (replay, synced)
    return synced["cursor"]


# -- cursors ------------------------------------------------------------------------


async def test_every_stream_frame_kind_carries_a_cursor(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    group_id = await create_group(http, alice, "cursors", bob)
    seen: list[Frame] = []
    async with AsyncExitStack() as stack:
        alice_chat = await v1(node, alice, stack)
        pending = await alice_chat.send_direct(bob.id, "while away", "p")
        assert pending["status"] == "pending"
        bob_chat = await v1(node, bob, stack)  # catch-up: "status" to Alice
        bob_resumed = await stack.enter_async_context(connect(node.url, bob, since="now"))
        await until_synced(bob_resumed)
        seen.append(await event(alice_chat, "status", pending["message_id"]))
        await bob_chat.send({"type": "read", "message_id": pending["message_id"]})
        seen.append(await event(alice_chat, "read_receipt", pending["message_id"]))
        posted = await alice_chat.send_group(group_id, "hello group", "g")
        await bob_chat.send(
            {"type": "group_read", "group_id": group_id, "message_id": posted["message_id"]}
        )
        seen.append(await event(alice_chat, "group_read"))
        live = await alice_chat.send_direct(bob.id, "live", "l")
        message_id = live["message_id"]
        for n, frame in enumerate(
            [
                {"type": "edit", "message_id": message_id, "message": "live, edited"},
                {"type": "react", "message_id": message_id, "emoji": "👍"},
                {"type": "delete", "message_id": message_id},
            ]
        ):
            answered = await request(alice_chat, frame, f"rich-{n}")
            assert answered["type"] != "error", answered
            seen.append(answered)
        done = await alice_chat.send_direct(bob.id, "done", "done")
        for chat in (alice_chat, bob_chat, bob_resumed):
            frames = await frames_until(
                chat, lambda f: f["type"] == "message" and f["message_id"] == done["message_id"]
            )
            seen += frames
            # Live frames keep the stream's order on every connection.
            if chat is not bob_chat:  # (bob_chat's first frame was a catch-up)
                strictly_increasing(stream_only(frames))
    for frame in stream_only(seen):
        assert isinstance(frame.get("cursor"), str) and frame["cursor"], frame
        position(frame["cursor"])
    assert {frame["type"] for frame in seen} >= STREAM_TYPES
    for frame in seen:
        if frame["type"] in ("ack", "presence", "pong", "error", "typing"):
            assert "cursor" not in frame, frame


# -- resume ---------------------------------------------------------------------------


async def test_a_resume_replays_exactly_what_came_after_the_cursor_then_synced(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice, bob, carol, dave = [await make_user(n) for n in ("alice", "bob", "carol", "dave")]
    group_id = await create_group(http, carol, "resume", alice, bob)
    async with AsyncExitStack() as stack:
        alice_chat = await v1(node, alice, stack)
        carol_chat = await v1(node, carol, stack)
        tap = Tap(await stack.enter_async_context(connect(node.url, bob, since="now")))
        witness = tap.chat
        assert (await tap.until(lambda f: f["type"] == "synced"))["recovered"] is True

        async with resumed(node.url, bob, "now") as (reader, replay, synced):
            assert replay == [] and synced["recovered"] is True
            m1 = await alice_chat.send_direct(bob.id, "m1", "m1")
            g1 = await carol_chat.send_group(group_id, "g1", "g1")
            await event(reader, "message", m1["message_id"])
            cursor = (await event(reader, "group_message", g1["message_id"]))["cursor"]

        # While the reader is away: every kind of event of Bob's stream.
        m2 = await alice_chat.send_direct(bob.id, "m2 to be deleted", "m2")
        m3 = await alice_chat.send_direct(bob.id, "m3 draft", "m3")
        for n, frame in enumerate(
            [
                {"type": "edit", "message_id": m1["message_id"], "message": "m1 edited"},
                {"type": "edit", "message_id": m3["message_id"], "message": "m3 final"},
                {"type": "delete", "message_id": m2["message_id"]},
                {"type": "react", "message_id": m3["message_id"], "emoji": "🎉"},
            ]
        ):
            assert (await request(alice_chat, frame, f"a{n}"))["type"] != "error"
        react = {"type": "react", "group_id": group_id, "message_id": g1["message_id"]}
        assert (await request(carol_chat, {**react, "emoji": "👀"}, "c"))["type"] == "reaction"
        # Bob's own doings on his other device are in his stream too.
        own = await witness.send_direct(alice.id, "from bob's other device", "own")
        await alice_chat.send({"type": "read", "message_id": own["message_id"]})
        await tap.event("read_receipt", own["message_id"])
        to_dave = await witness.send_direct(dave.id, "for dave", "dave")
        assert to_dave["status"] == "pending"
        async with ChatClient.connect(node.url, dave.access_token) as dave_chat:
            await attached(dave_chat)  # delivers: a "status" to Bob
        await tap.event("status", to_dave["message_id"])
        read_g1 = {"type": "group_read", "group_id": group_id, "message_id": g1["message_id"]}
        await witness.send(read_g1)
        await carol_chat.send(read_g1)
        # Two users' marks, from two sessions: they commit in either order.
        readers: set[int] = set()

        def both_read(frame: dict) -> bool:
            if frame["type"] == "group_read":
                readers.add(frame["user_id"])
            return readers >= {bob.id, carol.id}

        await tap.until(both_read)
        end = await alice_chat.send_direct(bob.id, "end", "end")
        await tap.event("message", end["message_id"])
        expected = after(tap.frames, cursor)
        assert {f["type"] for f in expected} >= STREAM_TYPES - {"group_message"}

        async with resumed(node.url, bob, cursor) as (reader, replay, synced):
            assert synced == {
                "type": "synced",
                "cursor": synced["cursor"],
                "recovered": True,
            }
            assert stream_only(replay) == replay, "other frames before synced"
            assert [key(f) for f in replay] == [key(f) for f in expected]
            positions = strictly_increasing(replay)
            assert min(positions) > position(cursor), "something at or before the cursor again"
            assert position(synced["cursor"]) >= positions[-1]

            replayed = {(f["type"], f["message_id"]): f for f in replay}
            tombstone = replayed["message", m2["message_id"]]
            assert (tombstone["message"], tombstone["image_url"], tombstone["deleted"]) == (
                None,
                None,
                True,
            )
            assert b"to be deleted" not in orjson.dumps(replay)
            edited = replayed["message", m3["message_id"]]
            assert edited["message"] == "m3 final" and edited["edited_at"] is not None
            assert [r["emoji"] for r in edited["reactions"]] == ["🎉"]
            kinds = [(f["type"], f.get("message_id")) for f in replay]
            assert kinds.index(("message_edited", m3["message_id"])) > kinds.index(
                ("message", m3["message_id"])
            )
            assert ("message_deleted", m2["message_id"]) in kinds
            assert ("message_edited", m1["message_id"]) in kinds  # m1 itself is before

            # Then live, after the synced cursor.
            later = await alice_chat.send_direct(bob.id, "after synced", "later")
            live = await event(reader, "message", later["message_id"])
            assert position(live["cursor"]) > position(synced["cursor"])
            last = live["cursor"]

        # From the last frame received: nothing to replay.
        async with resumed(node.url, bob, last) as (_, replay, synced):
            assert replay == [] and synced["recovered"] is True
            assert position(synced["cursor"]) >= position(last)
        # From that synced frame's cursor: nothing either.
        async with resumed(node.url, bob, synced["cursor"]) as (_, replay, again):
            assert replay == [] and again["recovered"] is True


async def test_a_resume_delivers_pending_messages_as_a_catch_up_would(
    node: Node, make_user: UserMaker, http: HubbubHTTP
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    cursor = await now_cursor(node, bob)
    async with ChatClient.connect(node.url, alice.access_token) as alice_chat:
        await attached(alice_chat)
        sent = [await alice_chat.send_direct(bob.id, f"p{n}", f"p{n}") for n in range(3)]
        assert {ack["status"] for ack in sent} == {"pending"}
        async with resumed(node.url, bob, cursor) as (_, replay, synced):
            assert synced["recovered"] is True
            assert [(f["type"], f["message_id"]) for f in replay] == [
                ("message", ack["message_id"]) for ack in sent
            ]
        for ack in sent:
            status = await event(alice_chat, "status", ack["message_id"])
            assert status["status"] == "delivered"
    history = await direct_messages(http, alice, bob.id)
    assert [m["status"] for m in history] == ["delivered"] * 3
    # Delivered by the resume: a v1 connection now has no catch-up for them.
    async with ChatClient.connect(node.url, bob.access_token) as plain:
        assert stream_only(await drain(plain)) == []


async def test_since_now_is_synced_at_once_without_catch_up(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    group_id = await create_group(http, alice, "now", bob)
    async with ChatClient.connect(node.url, alice.access_token) as alice_chat:
        await attached(alice_chat)
        pending = await alice_chat.send_direct(bob.id, "waiting", "w")
        await alice_chat.send_group(group_id, "unread", "u")
        assert pending["status"] == "pending"
        async with connect(node.url, bob, since="now") as bob_chat:
            first = await bob_chat.receive(timeout=10)
            assert first == {"type": "synced", "cursor": first["cursor"], "recovered": True}
            position(first["cursor"])
            assert [f for f in await drain(bob_chat) if f["type"] != "presence"] == []
            # Alice was told of no delivery: Bob's marker comes first in her stream.
            await bob_chat.send_direct(alice.id, "marker", "marker")
            before_marker = await frames_until(
                alice_chat, lambda f: f["type"] == "message" and f.get("message") == "marker"
            )
            assert [f for f in before_marker if f["type"] == "status"] == []
            history = by_id(await direct_messages(http, bob, alice.id))
            assert history[pending["message_id"]]["status"] == "pending"
            listed = (await http.get("/conversations", bob.access_token)).json()
            direct = next(c for c in listed["conversations"] if c["kind"] == "direct")
            assert direct["last_message"]["message_id"] != pending["message_id"]  # marker's
            assert direct["unread_count"] == 1
            # Live traffic comes after the synced cursor.
            live = await alice_chat.send_direct(bob.id, "live", "live")
            got = await event(bob_chat, "message", live["message_id"])
            assert position(got["cursor"]) > position(first["cursor"])


async def test_without_since_there_is_no_synced_frame(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    async with ChatClient.connect(node.url, alice.access_token) as alice_chat:
        await attached(alice_chat)
        await alice_chat.send_direct(bob.id, "pending", "p")
        async with ChatClient.connect(node.url, bob.access_token) as bob_chat:
            frames = await drain(bob_chat)
            live = await alice_chat.send_direct(bob.id, "live", "l")
            frames += await frames_until(
                bob_chat, lambda f: f["type"] == "message" and f["message_id"] == live["message_id"]
            )
            frames += await drain(bob_chat)
    assert [f["message"] for f in frames if f["type"] == "message"] == ["pending", "live"]
    assert [f for f in frames if f["type"] == "synced"] == []


# -- lost places ----------------------------------------------------------------------

LOST = ["garbage", "now!", "NOW", "other-epoch", "future", "overflow", "too-long", "no-dot"]


def lost_cursor(kind: str, real: str) -> str:
    epoch = real.split(".")[0]
    return {
        "garbage": "garbage",
        "now!": "now!",
        "NOW": "NOW",
        "other-epoch": of_other_epoch(real),
        "future": moved(real, 10**6),
        "overflow": f"{epoch}.ffffffffffffffff",
        "too-long": f"{epoch}.{'0' * 70}1",
        "no-dot": epoch,
    }[kind]


@pytest.mark.parametrize("kind", LOST)
async def test_a_lost_place_gets_the_v1_catch_up_then_synced_not_recovered(
    node: Node, http: HubbubHTTP, make_user: UserMaker, kind: str
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    group_id = await create_group(http, alice, "lost", bob)
    since = lost_cursor(kind, await now_cursor(node, bob))
    async with ChatClient.connect(node.url, alice.access_token) as alice_chat:
        await attached(alice_chat)
        direct = await alice_chat.send_direct(bob.id, "missed direct", "d")
        posted = await alice_chat.send_group(group_id, "missed group", "g")
        async with resumed(node.url, bob, since) as (bob_chat, caught_up, synced):
            assert synced == {"type": "synced", "cursor": synced["cursor"], "recovered": False}
            position(synced["cursor"])
            assert [(f["type"], f["message_id"]) for f in stream_only(caught_up)] == [
                ("message", direct["message_id"]),
                ("group_message", posted["message_id"]),
            ]
            status = await event(alice_chat, "status", direct["message_id"])
            assert status["status"] == "delivered"
            await bob_chat.send({"type": "ping"})
            assert (await event(bob_chat, "pong")) == {"type": "pong"}
        # The synced cursor is a place again: a resume from it is recovered.
        async with resumed(node.url, bob, synced["cursor"]) as (_, replay, again):
            assert again["recovered"] is True
            assert [f for f in replay if f["type"] in ("message", "group_message")] == []


async def test_a_cursor_older_than_the_retention_has_lost_its_place(
    node_factory, make_user: UserMaker
) -> None:
    # Events are kept two seconds and swept five times a second.
    async with (
        node_factory(stream_retention_days=str(2 / 86400), stream_sweep_interval="0.2") as short,
        HubbubHTTP(short.url) as http,
    ):
        alice, bob = await register(http, "alice"), await register(http, "bob")
        old = await now_cursor(short, bob)
        async with ChatClient.connect(short.url, alice.access_token) as alice_chat:
            await attached(alice_chat)
            async with resumed(short.url, bob, old) as (bob_chat, replay, synced):
                assert replay == [] and synced["recovered"] is True
                first = await alice_chat.send_direct(bob.id, "soon swept", "s")
                await event(bob_chat, "message", first["message_id"])

            async def lost() -> bool:
                return (await sync(http, bob, old))["recovered"] is False

            await poll_until(lost, what="the sweep losing the old cursor's place", timeout=30)
            page = await sync(http, bob, old)
            assert (page["events"], page["has_more"]) == ([], False)
            position(page["cursor"])

            second = await alice_chat.send_direct(bob.id, "while lost", "w")
            async with resumed(short.url, bob, old) as (_, caught_up, synced):
                assert synced["recovered"] is False
                assert [(f["type"], f["message_id"]) for f in stream_only(caught_up)] == [
                    ("message", second["message_id"])
                ]


# -- GET /sync -------------------------------------------------------------------------


async def test_sync_pages_the_stream_with_has_more(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    start = await sync(http, bob, "now")
    assert (start["events"], start["recovered"], start["has_more"]) == ([], True, False)
    position(start["cursor"])
    async with AsyncExitStack() as stack:
        alice_chat = await v1(node, alice, stack)
        witness = await stack.enter_async_context(connect(node.url, bob, since=start["cursor"]))
        await until_synced(witness)
        acks = [await alice_chat.send_direct(bob.id, f"s{n}", f"s{n}") for n in range(7)]
        edit = {"type": "edit", "message_id": acks[0]["message_id"], "message": "s0 edited"}
        assert (await request(alice_chat, edit, "e"))["type"] == "message_edited"
        witnessed = await frames_until(witness, lambda f: f["type"] == "message_edited")
    expected = after(witnessed, start["cursor"])
    assert len(expected) == 8

    events: list[Frame] = []
    since, pages = start["cursor"], []
    while True:
        page = await sync(http, bob, since, limit=3)
        assert page["recovered"] is True
        assert len(page["events"]) <= 3
        pages.append((len(page["events"]), page["has_more"]))
        events += page["events"]
        if page["events"]:
            assert page["cursor"] == page["events"][-1]["cursor"]
        since = page["cursor"]
        if not page["has_more"]:
            break
        assert len(pages) < 10
    assert pages == [(3, True), (3, True), (2, False)]
    assert [key(f) for f in events] == [key(f) for f in expected]
    strictly_increasing(events)
    # The same frames: the messages not changed since look as they did live.
    unchanged = {ack["message_id"] for ack in acks[1:]}
    for live, polled in zip(expected, events, strict=True):
        if live["type"] == "message" and live["message_id"] in unchanged:
            assert polled == live
    assert events[0]["message"] == "s0 edited"  # the edited message as it is now
    # Caught up: nothing more, the same place.
    final = await sync(http, bob, since)
    assert (final["events"], final["recovered"], final["has_more"]) == ([], True, False)
    assert position(final["cursor"]) >= position(since)
    # The default page is 100 events, at most.
    assert len((await sync(http, bob, start["cursor"]))["events"]) == 8


async def test_sync_caps_the_limit_at_500_and_defaults_to_100(
    node_factory, make_user: UserMaker
) -> None:
    async with node_factory(group_rate_limit="100000") as busy, HubbubHTTP(busy.url) as http:
        alice, bob = await register(http, "alice"), await register(http, "bob")
        group_id = await create_group(http, alice, "busy", bob)
        since = (await sync(http, bob, "now"))["cursor"]
        async with ChatClient.connect(busy.url, alice.access_token) as chat:
            await attached(chat)
            for n in range(501):
                frame = {"type": "group_message", "group_id": group_id, "message": f"b{n}"}
                await chat.send({**frame, "client_id": f"b{n}"})
            for n in range(501):
                assert (await chat.receive_answer(f"b{n}", timeout=60))["type"] == "ack"
        default = await sync(http, bob, since)
        assert (len(default["events"]), default["has_more"]) == (100, True)
        capped = await sync(http, bob, since, limit=1000)
        assert (len(capped["events"]), capped["has_more"]) == (500, True)
        rest = await sync(http, bob, capped["cursor"], limit=1000)
        assert (len(rest["events"]), rest["has_more"]) == (1, False)
        texts = [f["message"] for f in capped["events"] + rest["events"]]
        assert texts == [f"b{n}" for n in range(501)]


async def test_sync_refusals_and_lost_places(http: HubbubHTTP, make_user: UserMaker) -> None:
    bob = await make_user("bob")
    missing = await http.get("/sync", bob.access_token)
    assert missing.status_code == 422, missing.text
    assert isinstance(missing.json()["detail"], str)
    assert (await http.get("/sync", since="now")).status_code == 401
    assert (await http.get("/sync", "not-a-token", since="now")).status_code == 401
    real = (await sync(http, bob, "now"))["cursor"]
    for since in ("garbage", of_other_epoch(real), moved(real, 10**6)):
        page = await sync(http, bob, since)
        assert (page["events"], page["recovered"], page["has_more"]) == ([], False, False), since
        position(page["cursor"])


# -- fuzz: bad since values ------------------------------------------------------------

BAD_SINCE = [
    "",
    " ",
    "now ",
    " now",
    "\x00",
    "now\x00",
    "%",
    "%00",
    "é.1",
    "🙂" * 40,
    "a" * 1000,
    ".",
    "a.",
    ".1",
    "A.1",
    "a.-1",
    "a.1x",
    "a.0x1",
    "a.1.2",
    "a..1",
    "null",
    "[]",
    '{"cursor": 1}',
    "-1",
    "0",
    "1e309",
]


async def test_a_bad_since_never_breaks_the_connection(node: Node, make_user: UserMaker) -> None:
    """One node for every bad value (a node per value cost minutes): each connection
    still works, and so does the server. Two senders take turns, to stay within the
    default rate limit."""
    alice, carol, bob = await make_user("alice"), await make_user("carol"), await make_user("bob")
    for n, since in enumerate(BAD_SINCE):
        async with connect(node.url, (alice, carol)[n % 2], since=since) as chat:
            await chat.send({"type": "ping"})
            frames = await frames_until(chat, lambda f: f["type"] == "pong")
            synced = [f for f in frames if f["type"] == "synced"]
            if since:
                assert [f["recovered"] for f in synced] == [False], (since, frames)
            else:
                assert len(synced) <= 1 and all(f["recovered"] is False for f in synced), (
                    since,
                    frames,
                )
            ack = await chat.send_direct(bob.id, f"still here {n}", f"x{n}")
            assert ack["type"] == "ack", (since, ack)
            echo = await event(chat, "message", ack["message_id"])
            position(echo["cursor"])
    # Nor the server: another connection works as ever.
    async with ChatClient.connect(node.url, bob.access_token) as other:
        assert [f["message"] for f in stream_only(await drain(other))] == [
            f"still here {n}" for n in range(len(BAD_SINCE))
        ]
