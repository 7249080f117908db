"""v2 stream across nodes (docs/contract.md, "The stream and resuming it";
docs/decisions/0004): a cursor works on any node; with every node committing at once a
reader that keeps dropping and resuming elsewhere gets every message exactly once, in
stream order; a SIGKILLed node's clients resume on the others and lose nothing acked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from itertools import pairwise

import attrs
import pytest
import trio
from trio_websocket import ConnectionClosed

from hubbub.client import Account, ChatClient
from tests.helpers.chat import Frame
from tests.helpers.cluster import NODES, Cluster
from tests.helpers.stream import (
    connect,
    create_group,
    event,
    is_stream,
    position,
    request,
    resumed,
    sync,
    until_synced,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

A, B, C = range(3)
#: Unacked sends per writer.
WINDOW = 16


@attrs.define
class Writer:
    """One sender's plan (frames with client_ids) and what came back."""

    name: str
    plan: list[Frame] = attrs.Factory(list)
    acked: dict[str, int] = attrs.Factory(dict)
    refused: list[Frame] = attrs.Factory(list)
    closed: bool = False
    progress: trio.Event = attrs.Factory(trio.Event)

    def add(self, frame: Frame) -> None:
        client_id = f"{self.name}-{len(self.plan)}"
        self.plan.append({**frame, "message": f"text {client_id}", "client_id": client_id})

    def kind_of(self, client_id: str) -> str:
        return next(f["type"] for f in self.plan if f["client_id"] == client_id)

    def delivered(self) -> set[tuple[str, int]]:
        """(frame type, message id) of every acked message."""
        return {(self.kind_of(cid), mid) for cid, mid in self.acked.items()}

    def unacked(self) -> list[Frame]:
        return [f for f in self.plan if f["client_id"] not in self.acked]

    async def wait_acks(self, count: int) -> None:
        while len(self.acked) < count:
            await self.progress.wait()


def planned(name: str, reader: Account, group_id: int, count: int) -> Writer:
    writer = Writer(name)
    for n in range(count):
        if n % 2:
            writer.add({"type": "group_message", "group_id": group_id})
        else:
            writer.add({"type": "message", "recipient_id": reader.id})
    return writer


async def pump(chat: ChatClient, writer: Writer, frames: Iterable[Frame]) -> None:
    """Send ``frames`` with at most ``WINDOW`` unanswered; return once every one is
    answered, or the connection is gone (``writer.closed``)."""
    frames = list(frames)
    window = trio.Semaphore(WINDOW)
    waiting = {frame["client_id"] for frame in frames}

    async def answers() -> None:
        while waiting:
            frame = await chat.receive(timeout=30)
            if frame["type"] in ("ack", "error") and frame.get("client_id") in waiting:
                waiting.discard(frame["client_id"])
                if frame["type"] == "ack":
                    writer.acked[frame["client_id"]] = frame["message_id"]
                else:
                    writer.refused.append(frame)
                writer.progress.set()
                writer.progress = trio.Event()
                window.release()

    async def sends() -> None:
        for frame in frames:
            await window.acquire()
            await chat.send(frame)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answers)
            nursery.start_soon(sends)
    except* ConnectionClosed:
        writer.closed = True


@attrs.define
class Reader:
    """Every stream frame a reader got over all its connections, and its place."""

    account: Account
    cursor: str
    frames: list[Frame] = attrs.Factory(list)
    synced: list[Frame] = attrs.Factory(list)

    def take(self, frame: Frame) -> None:
        if frame["type"] == "synced":
            assert frame["recovered"] is True, frame
            if self.frames:
                assert position(frame["cursor"]) >= position(self.frames[-1]["cursor"])
            self.synced.append(frame)
            self.cursor = frame["cursor"]
        elif is_stream(frame):
            self.frames.append(frame)
            self.cursor = frame["cursor"]

    def got(self) -> Counter[tuple[str, int]]:
        return Counter((f["type"], f["message_id"]) for f in self.frames)

    def check_order(self) -> None:
        positions = [position(f["cursor"]) for f in self.frames]
        backwards = [
            (n, earlier, later)
            for n, (earlier, later) in enumerate(pairwise(positions))
            if later <= earlier
        ]
        assert backwards == [], f"stream order broken at (index, before, after): {backwards[:10]}"

    async def read(self, chat: ChatClient, count: int | None, timeout: float) -> None:
        """Take frames until ``count`` stream frames came (None: until closed) or
        ``timeout`` passes quietly."""
        taken = 0
        with trio.move_on_after(timeout):
            while count is None or taken < count:
                frame = await chat.receive(timeout=timeout + 1)
                self.take(frame)
                taken += is_stream(frame)

    async def read_until(
        self, chat: ChatClient, wanted: set[tuple[str, int]], timeout: float
    ) -> None:
        with trio.fail_after(timeout):
            while not wanted <= set(self.got()):
                self.take(await chat.receive(timeout=timeout))


def assert_exactly_once(reader: Reader, expected: set[tuple[str, int]]) -> None:
    got = reader.got()
    doubled = {k: n for k, n in got.items() if n > 1}
    assert doubled == {}, f"{len(doubled)} messages came more than once: {sorted(doubled)[:10]}"
    missing = expected - set(got)
    assert missing == set(), f"{len(missing)} acked messages never came: {sorted(missing)[:10]}"
    reader.check_order()


async def test_a_cursor_from_one_node_resumes_on_another(cluster: Cluster) -> None:
    alice, bob = await cluster.register_all("alice", "bob")
    async with cluster.connect(alice, A) as alice_a, cluster.connect(alice, C) as alice_c:
        async with connect(cluster.url(B), bob, since="now") as bob_b:
            await until_synced(bob_b)
            first = await alice_a.send_direct(bob.id, "first", "first")
            cursor = (await event(bob_b, "message", first["message_id"]))["cursor"]
        second = await alice_a.send_direct(bob.id, "second", "second")
        third = await alice_c.send_direct(bob.id, "third", "third")
        edit = {"type": "edit", "message_id": first["message_id"], "message": "first, edited"}
        assert (await request(alice_c, edit, "edit"))["type"] == "message_edited"
        expected = [
            ("message", second["message_id"]),
            ("message", third["message_id"]),
            ("message_edited", first["message_id"]),
        ]
        for via in (C, A, B):
            async with resumed(cluster.url(via), bob, cursor) as (_, replay, synced):
                assert synced["recovered"] is True, via
                # The same replay on every node (the statuses the first resume caused
                # are Alice's, not in Bob's stream).
                assert [(f["type"], f["message_id"]) for f in replay] == expected, via
        polled = await sync(cluster.http(A), bob, cursor)
        assert [(f["type"], f["message_id"]) for f in polled["events"]] == expected
        last = polled["cursor"]
        for via in range(NODES):
            async with resumed(cluster.url(via), bob, last) as (_, replay, synced):
                assert (replay, synced["recovered"]) == ([], True), via


@pytest.mark.redis_cluster
async def test_a_reader_resuming_on_node_after_node_gets_everything_once_in_order(
    cluster: Cluster,
) -> None:
    reader_account, *writer_accounts = await cluster.register_all("reader", "w0", "w1", "w2")
    group_id = await create_group(
        cluster.http(A), writer_accounts[0], "busy", *writer_accounts[1:], reader_account
    )
    per_writer, reconnects = 150, 12
    writers = [planned(f"w{n}", reader_account, group_id, per_writer) for n in range(NODES)]
    async with connect(cluster.url(A), reader_account, since="now") as first:
        _, synced = await until_synced(first)
    reader = Reader(reader_account, synced["cursor"])
    writers_done = trio.Event()

    async def write_all() -> None:
        async with trio.open_nursery() as nursery:
            for n, writer in enumerate(writers):
                nursery.start_soon(write_on, n, writer)
        writers_done.set()

    async def write_on(via: int, writer: Writer) -> None:
        async with cluster.connect(writer_accounts[via], via) as chat:
            await pump(chat, writer, writer.plan)

    async def read_around() -> None:
        for turn in range(reconnects):
            via = (turn + 1) % NODES  # a different node from the last each time
            async with connect(cluster.url(via), reader_account, since=reader.cursor) as chat:
                # Some of the replay and some live traffic, then drop mid-stream.
                await reader.read(chat, count=15 + (turn * 7) % 30, timeout=10)

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(write_all)
            nursery.start_soon(read_around)
        await writers_done.wait()
        for writer in writers:
            assert writer.refused == [] and not writer.closed, writer.name
            assert len(writer.acked) == per_writer, writer.name
        expected = set().union(*(writer.delivered() for writer in writers))
        assert len(expected) == per_writer * NODES
        async with connect(
            cluster.url((reconnects + 1) % NODES), reader_account, since=reader.cursor
        ) as chat:
            await reader.read_until(chat, expected, timeout=60)
            # Anything doubled would have come by the marker: the last writer's last word.
            marker = await cluster_marker(cluster, writer_accounts[0], reader_account)
            await reader.read_until(chat, {("message", marker)}, timeout=30)
    # Each connection but those dropped mid-replay ended its replay with synced.
    assert reader.synced, "no resume ever got to its synced frame"
    assert_exactly_once(reader, expected | {("message", marker)})
    assert set(reader.got()) == expected | {("message", marker)}


async def cluster_marker(cluster: Cluster, sender: Account, to: Account) -> int:
    async with cluster.connect(sender, C) as chat:
        ack = await chat.send_direct(to.id, "marker", "marker")
        assert ack["type"] == "ack", ack
        return ack["message_id"]


async def test_a_sigkilled_nodes_clients_resume_elsewhere_and_lose_nothing_acked(
    cluster: Cluster,
) -> None:
    reader_account, on_a, on_b, on_c = await cluster.register_all("reader", "on-a", "on-b", "on-c")
    group_id = await create_group(cluster.http(A), on_a, "crash", on_b, on_c, reader_account)
    per_writer, kill_after = 200, 60
    survivors = {
        A: planned("a", reader_account, group_id, per_writer),
        C: planned("c", reader_account, group_id, per_writer),
    }
    doomed = planned("b", reader_account, group_id, per_writer)
    async with connect(cluster.url(A), reader_account, since="now") as first:
        _, synced = await until_synced(first)
    reader = Reader(reader_account, synced["cursor"])

    async def survive(via: int, account: Account) -> None:
        async with cluster.connect(account, via) as chat:
            await pump(chat, survivors[via], survivors[via].plan)

    async def doom() -> None:
        async with cluster.connect(on_b, B) as chat:
            await pump(chat, doomed, doomed.plan)

    async def read_on_b() -> None:
        try:
            async with connect(cluster.url(B), reader_account, since=reader.cursor) as chat:
                await reader.read(chat, count=None, timeout=60)
        except* ConnectionClosed:
            pass  # node B died under it

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_on_b)
            nursery.start_soon(survive, A, on_a)
            nursery.start_soon(survive, C, on_c)
            nursery.start_soon(doom)
            await doomed.wait_acks(kill_after)
            await cluster.kill(B)
        assert doomed.closed, "on-b's connection should have died with node B"
        assert len(doomed.acked) < per_writer, "the kill should land mid-burst"
        for writer in survivors.values():
            assert writer.refused == [] and len(writer.acked) == per_writer, writer.name
        acked_before = doomed.delivered()

        # on-b's client resends what was never acked, on node A: the same client_ids, so
        # what B stored before dying is acked with its first id, nothing is stored twice.
        resent = doomed.unacked()
        async with cluster.connect(on_b, A) as chat:
            await pump(chat, doomed, resent)
        assert doomed.refused == [] and len(doomed.acked) == per_writer
        assert acked_before <= doomed.delivered()

        expected = set().union(doomed.delivered(), *(w.delivered() for w in survivors.values()))
        assert len(expected) == 3 * per_writer
        async with connect(cluster.url(C), reader_account, since=reader.cursor) as chat:
            await reader.read_until(chat, expected, timeout=60)
            marker = await cluster_marker(cluster, on_a, reader_account)
            await reader.read_until(chat, {("message", marker)}, timeout=30)
    assert_exactly_once(reader, expected | {("message", marker)})
    assert set(reader.got()) == expected | {("message", marker)}


@pytest.mark.redis_cluster
async def test_typing_crosses_nodes(cluster: Cluster) -> None:
    alice, bob, carol = await cluster.register_all("alice", "bob", "carol")
    group_id = await create_group(cluster.http(A), alice, "typing", bob, carol)
    async with (
        cluster.connect(alice, A) as alice_a,
        cluster.connect(bob, B) as bob_b,
        cluster.connect(carol, C) as carol_c,
    ):
        await alice_a.send({"type": "typing", "recipient_id": bob.id})
        assert await event(bob_b, "typing") == {
            "type": "typing",
            "user_id": alice.id,
            "username": alice.username,
            "recipient_id": bob.id,
            "state": "start",
        }
        await bob_b.send({"type": "typing", "group_id": group_id})
        expected = {
            "type": "typing",
            "user_id": bob.id,
            "username": bob.username,
            "group_id": group_id,
            "state": "start",
        }
        assert await event(alice_a, "typing") == expected
        assert await event(carol_c, "typing") == expected
