"""``/ops``: the operator page's files load for anyone, its data only with the operator
credential (``HUBBUB_OPS_TOKEN`` or a server API key); the data is the node's live state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import trio

from hubbub.client import ChatClient, HubbubHTTP
from hubbub.node import Node
from tests.helpers.chat import attached
from tests.helpers.server_api import create_key
from tests.helpers.users import register
from tests.helpers.views import find_in_tree

TOKEN = "ops-token-for-tests-0123456789"


@pytest.fixture
async def ops_node(node_factory: Callable[..., AsyncIterator[Node]]) -> AsyncIterator[Node]:
    async with node_factory(ops_token=TOKEN) as running:
        yield running


async def test_the_data_needs_the_operator_token(ops_node: Node) -> None:
    async with HubbubHTTP(ops_node.url) as http:
        user = await register(http, "ada")
        for authorization in (None, "Bearer wrong", f"Bearer {user.access_token}", TOKEN):
            headers = {"Authorization": authorization} if authorization else {}
            response = await http.http.get("/ops/state", headers=headers)
            assert response.status_code == 401, authorization
            assert "operator credential required" in response.json()["detail"]
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await http.get("/ops/state", TOKEN)).status_code == 200


async def test_without_a_configured_token_nobody_reads_the_data(
    node: Node, http: HubbubHTTP
) -> None:
    assert node.settings.ops_token is None
    for token in (None, "", "anything"):
        assert (await http.get("/ops/state", token)).status_code == 401


async def test_a_live_server_api_key_is_an_operator_credential(
    node: Node, http: HubbubHTTP
) -> None:
    assert node.settings.ops_token is None
    key = await create_key(node.storage, "ops-page")
    assert (await http.get("/ops/state", key)).status_code == 200
    # Not a key but shaped like one, and a revoked key: refused.
    assert (await http.get("/ops/state", key[:-2] + "xx")).status_code == 401
    assert await node.storage.revoke_api_key("ops-page")
    refused = await http.get("/ops/state", key)
    assert refused.status_code == 401
    assert "server API key" in refused.json()["detail"]


async def test_the_page_and_its_files_load_without_a_token(http: HubbubHTTP) -> None:
    page = await http.get("/ops")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert '<script type="module" src="/ops/assets/ops.js">' in page.text
    script = await http.get("/ops/assets/ops.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "/ops/state" in script.text
    assert (await http.get("/ops/assets/ops.css")).headers["content-type"].startswith("text/css")
    for name in ("nope.js", "..%2Fops_routes.py", "__init__.py"):
        missing = await http.get(f"/ops/assets/{name}")
        assert missing.status_code == 404
        assert missing.json()["detail"]


async def test_the_state_is_the_live_node(ops_node: Node) -> None:
    # The tree shows running actors: Ada's must not park (go idle) before it is read.
    ops_node.chat.user_park_after = 60.0
    async with HubbubHTTP(ops_node.url) as http:
        ada = await register(http, "ada")
        async with ChatClient.connect(ops_node.url, ada.access_token) as chat:
            await attached(chat)
            ack = await chat.send_direct(ada.id, "note to self", "n1")
            assert ack["type"] == "ack"
            state = (await http.get("/ops/state", TOKEN)).json()
            assert state["connections"] == 1
            assert find_in_tree(state["tree"], f"user:{ada.id}") is not None

            # A crashed actor: its restart count rises in the state.
            # ensure, not get: an idle user's actor may be parked (engine/chat/users.py).
            actor = await ops_node.users.ensure(ada.id)
            actor.tell_nowait(object())
            assert await chat.wait_closed() == 1011
            # The socket closes as the actor dies; its restart follows, on the node's time.
            with trio.fail_after(10):
                while True:
                    restarted = (await http.get("/ops/state", TOKEN)).json()
                    entry = find_in_tree(restarted["tree"], f"user:{ada.id}")
                    if entry is not None and entry["restarts"] >= 1:
                        break
                    await trio.sleep(0.02)

    assert state["ready"] is True
    assert state["checks"] == {"storage": True}
    assert state["storage"] == {"backend": ops_node.storage.backend, "ok": True}
    assert state["redis"] == {"configured": False, "ok": None}
    assert state["tree"]["name"] == "node"
    assert state["counters"]["direct_stored"] == 1
    assert state["counters"]["frames_in"] >= 2  # the ping and the send
    assert state["latency"]["delivery"]["count"] == 1
    assert state["latency"]["commit"]["p99"] > 0
    # A lone node lists itself, with where it listens.
    assert [(n["node_id"], n["url"]) for n in state["nodes"]] == [(state["node_id"], ops_node.url)]
    assert entry["restarts"] == 1
    assert restarted["uptime"] > state["uptime"]
