"""A node SIGKILLed mid-traffic: no acked message is lost, the other nodes carry on, and
the dead node's users go offline for their contacts within the presence expiry."""

from __future__ import annotations

import pytest
import trio
from trio_websocket import ConnectionClosed

from hubbub.client import Account, ChatClient
from tests.helpers.burst import Burst
from tests.helpers.chat import Frame, counts, drain
from tests.helpers.cluster import Cluster
from tests.helpers.views import direct_history, online_view, presence_view

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

A, B, C = range(3)
#: Sends in flight (unacked) per sender: enough to have some lost with the node.
WINDOW = 32
#: More than either sender gets through: the test stops them, the burst never runs out.
BURST = 5000
KILL_AFTER_ACKS = 100
#: Acks the survivor's sender must still get after the kill.
ACKS_AFTER_KILL = 50
#: A dead node's users expire within the presence ttl (15 s) + one sweep (5 s); with slack.
EXPIRY_TIMEOUT = 30.0


async def pump(chat: ChatClient, recipient_id: int, burst: Burst, stop: trio.Event) -> None:
    """Send to ``recipient_id`` with at most ``WINDOW`` unacked, until ``stop`` is set (then
    wait for every outstanding answer) or the connection is gone."""
    window = trio.Semaphore(WINDOW)

    async def answers() -> None:
        while True:
            frame = await chat.receive(timeout=10)
            if frame["type"] in ("ack", "error") and "client_id" in frame:
                burst.record(frame)
                window.release()

    async def sends() -> None:
        for _ in range(BURST):
            await window.acquire()
            if stop.is_set():
                window.release()
                break
            await chat.send(burst.next_frame(recipient_id))
        for _ in range(WINDOW):  # Every answer is in.
            await window.acquire()
        nursery.cancel_scope.cancel()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answers)
            nursery.start_soon(sends)
    except* ConnectionClosed:
        burst.closed = True


async def received(cluster: Cluster, live: ChatClient, account: Account, via: int) -> list[Frame]:
    """What ``account`` got: on its live connection until now, then as catch-up on a new
    connection to node ``via`` (what the live one missed is still pending, so comes there)."""
    frames = await drain(live)
    async with cluster.connect(account, via) as again:
        frames += await drain(again)
    return frames


async def assert_in_history(
    cluster: Cluster, author: Account, recipient: Account, burst: Burst
) -> None:
    stored = {
        m["message_id"]: m["message"]
        for m in await direct_history(cluster.http(C), author, recipient.id)
    }
    lost = {
        client_id: message_id
        for client_id, message_id in burst.acked.items()
        if stored.get(message_id) != burst.text(client_id)
    }
    assert lost == {}, f"{len(lost)} of {len(burst.acked)} acked messages are not in history"


@pytest.mark.redis_cluster
async def test_a_sigkilled_node_loses_no_acked_message_and_its_users_go_offline(
    cluster: Cluster,
) -> None:
    on_a, on_b, to_a, to_b = await cluster.register_all("on-a", "on-b", "to-a", "to-b")
    survivor, doomed = Burst("a"), Burst("b")
    async with (
        cluster.connect(on_a, A) as on_a_chat,
        cluster.connect(on_b, B) as on_b_chat,
        cluster.connect(to_a, C) as to_a_chat,
        cluster.connect(to_b, C) as to_b_chat,
    ):
        # on-b's contacts: on-a (on node A) and to-b (on node C).
        await on_b_chat.send_direct(on_a.id, "hello from B", "hello")
        stop_survivor, never = trio.Event(), trio.Event()
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump, on_a_chat, to_a.id, survivor, stop_survivor)
                nursery.start_soon(pump, on_b_chat, to_b.id, doomed, never)
                await doomed.wait_acks(KILL_AFTER_ACKS)
                acked_before_kill = len(survivor.acked)
                await cluster.kill(B)
                await survivor.wait_acks(acked_before_kill + ACKS_AFTER_KILL)
                stop_survivor.set()

        assert survivor.refused == doomed.refused == []
        assert not survivor.closed
        assert doomed.closed, "on-b's connection should have died with node B"
        assert len(doomed.sent) > len(doomed.acked), "the kill should land mid-burst"
        assert len(survivor.sent) == len(survivor.acked)
        # Back on a new port while its users' presence claims run out.
        await cluster.start(B)

        for contact in (on_a_chat, to_b_chat):
            offline = await contact.receive_where(
                lambda f: f["type"] == "presence" and f["user_id"] == on_b.id,
                timeout=EXPIRY_TIMEOUT,
            )
            assert offline["presence_status"] == "offline", offline
            assert offline["last_seen_iso"] is not None
        assert on_b.id not in await online_view(cluster.http(A), on_a)
        assert await presence_view(cluster.http(C), on_a, on_b.id) == "offline"

        await assert_in_history(cluster, on_a, to_a, survivor)
        await assert_in_history(cluster, on_b, to_b, doomed)
        # At least once, whichever node acked: live, or from storage on the next connect.
        for recipient, live, burst in ((to_a, to_a_chat, survivor), (to_b, to_b_chat, doomed)):
            got = counts(await received(cluster, live, recipient, via=B), "message")
            missing = set(burst.acked.values()) - set(got)
            assert missing == set(), f"{recipient.username} never got {sorted(missing)}"
