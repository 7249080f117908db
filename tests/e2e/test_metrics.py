"""The histograms and counters an operator alerts on: real traffic, then the series in
``/metrics`` with the counts that traffic must have produced (docs/operations.md)."""

from __future__ import annotations

import trio

from hubbub.client import ChatClient, HubbubHTTP
from hubbub.metrics import SLOW_CONSUMER_REASONS
from hubbub.node import Node
from tests.e2e.test_groups_ws import make_group
from tests.helpers.chat import attached
from tests.helpers.prometheus import scrape
from tests.helpers.users import UserMaker

DIRECT_SENDS = 5
GROUP_SENDS = 3


async def test_traffic_shows_in_the_latency_histograms(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    ada, bo = await make_user("ada"), await make_user("bo")
    group_id = await make_group(node, ada, bo)
    before = await scrape(http)
    async with (
        ChatClient.connect(node.url, ada.access_token) as ada_chat,
        ChatClient.connect(node.url, bo.access_token) as bo_chat,
    ):
        for chat in (ada_chat, bo_chat):
            await attached(chat)
        for n in range(DIRECT_SENDS):
            ack = await ada_chat.send_direct(bo.id, f"hello {n}", f"d{n}")
            assert ack["type"] == "ack"
        for n in range(GROUP_SENDS):
            ack = await ada_chat.send_group(group_id, f"crew {n}", f"g{n}")
            assert ack["type"] == "ack"
        # A resend of a stored message is answered from storage: no second delivery.
        again = await ada_chat.send_direct(bo.id, "hello 0", "d0")
        assert again["type"] == "ack"
        after = await scrape(http)

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - (before.get(name, **labels) or 0.0)

    # Each new message is observed once, whatever its recipients; the resend was not
    # delivered again, so it is not either.
    assert grew("hubbub_delivery_seconds_count", kind="direct") == DIRECT_SENDS
    assert grew("hubbub_delivery_seconds_count", kind="group") == GROUP_SENDS
    assert after.value("hubbub_delivery_seconds_sum", kind="direct") > 0
    # The sends were acked one at a time: each waited for a commit of its own (delivery
    # marks may have ridden along or had commits of their own).
    commits = grew("hubbub_storage_commit_seconds_count")
    assert commits >= DIRECT_SENDS + 1 + GROUP_SENDS
    assert grew("hubbub_storage_commit_batch_size_count") == commits
    assert grew("hubbub_storage_commit_batch_size_sum") >= DIRECT_SENDS + 1 + GROUP_SENDS
    # Each batch has at most MAX_BATCH writes: every observation is in the last finite bucket.
    assert after.value("hubbub_storage_commit_batch_size_bucket", le="512.0") == after.value(
        "hubbub_storage_commit_batch_size_count"
    )
    assert grew("hubbub_ws_handshake_seconds_count") == 2
    # Each message is a stream event: the node's dispatched position catches up with the
    # storage head, never passes it.
    head = (await node.storage.stream_state()).head
    assert head - (before.get("hubbub_stream_position") or 0.0) >= DIRECT_SENDS + GROUP_SENDS
    with trio.fail_after(10):
        while (position := (await scrape(http)).value("hubbub_stream_position")) < head:  # noqa: ASYNC110 (another process's gauge: nothing to wait on but a poll)
            await trio.sleep(0.02)
    assert position == head


async def test_http_time_is_labelled_by_route_template_not_path(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    ada = await make_user("ada")
    group_id = await make_group(node, ada)
    for _ in range(3):
        response = await http.get(f"/groups/{group_id}/messages", ada.access_token)
        assert response.status_code == 200
    assert (await http.get("/groups/999999/messages", ada.access_token)).status_code == 404
    assert (await http.get(f"/no/such/{group_id}")).status_code == 404
    samples = await scrape(http)

    route = "/groups/<int:group_id>/messages"
    count = "hubbub_http_request_seconds_count"
    assert samples.value(count, route=route, method="GET", status="2xx") == 3
    assert samples.value(count, route=route, method="GET", status="4xx") == 1
    assert samples.value(count, route="unmatched", method="GET", status="4xx") == 1
    # No raw path (no id) is ever a label: the series stay as few as the routes.
    routes = {labels["route"] for labels in samples.labels_of(count)}
    assert not any(str(group_id) in r or "999999" in r for r in routes)
    assert "/auth/signup" in routes  # make_user signed up over HTTP


async def test_slow_consumer_closes_are_exported_by_reason_from_the_start(
    http: HubbubHTTP,
) -> None:
    samples = await scrape(http)
    for reason in SLOW_CONSUMER_REASONS:
        assert samples.value("hubbub_slow_consumers_closed_total", reason=reason) == 0
    # The bridge's counters exist without Redis too: a dashboard's queries never miss.
    assert samples.value("hubbub_bus_dropped_total") == 0
    assert samples.value("hubbub_bus_resyncs_total", cause="lost") == 0
