"""What a node shows: history, presence, the supervision tree and metrics over HTTP;
the sessions it logged as closed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hubbub.client import Account, HubbubHTTP
from hubbub.logs import fields_of
from tests.helpers.chat import Frame

HISTORY_PAGE = 200


async def history_pages(
    http: HubbubHTTP, viewer: Account, other_id: int, page: int = HISTORY_PAGE
) -> AsyncIterator[tuple[int | None, list[Frame]]]:
    """``(before, page)`` for each page of ``GET /messages/{other_id}``, newest page first,
    each asked for ``before`` the oldest id of the one before it (None for the first)."""
    before: int | None = None
    while True:
        params: dict[str, int] = {"limit": page}
        if before is not None:
            params["before"] = before
        response = await http.get(f"/messages/{other_id}", viewer.access_token, **params)
        assert response.status_code == 200, response.text
        messages = response.json()
        yield before, messages
        if len(messages) < page:
            return
        before = messages[0]["message_id"]


async def direct_history(
    http: HubbubHTTP, viewer: Account, other_id: int, page: int = HISTORY_PAGE
) -> list[Frame]:
    """The whole direct conversation of ``viewer`` with ``other_id``; ascending ids."""
    pages = [messages async for _, messages in history_pages(http, viewer, other_id, page)]
    return [message for messages in reversed(pages) for message in messages]


async def presence_view(http: HubbubHTTP, viewer: Account, user_id: int) -> str:
    """``presence_status`` of ``user_id`` from ``GET /users/presence/{id}``."""
    response = await http.get(f"/users/presence/{user_id}", viewer.access_token)
    assert response.status_code == 200, response.text
    return response.json()["presence_status"]


async def online_view(http: HubbubHTTP, viewer: Account) -> list[int]:
    """``GET /users/online``."""
    response = await http.get("/users/online", viewer.access_token)
    assert response.status_code == 200, response.text
    return response.json()["online"]


def find_in_tree(tree: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The node called ``name`` in a ``/health/supervisor`` tree, or None."""
    if tree["name"] == name:
        return tree
    for child in tree["children"]:
        if (found := find_in_tree(child, name)) is not None:
            return found
    return None


async def metric(http: HubbubHTTP, name: str) -> float:
    """The value of one unlabelled sample of ``/metrics``."""
    response = await http.get("/metrics")
    response.raise_for_status()
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} is not in /metrics")


def closed_sessions(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The fields of every "connection closed" line the node has logged so far (with
    ``caplog`` at INFO for ``hubbub.ws``)."""
    return [
        fields_of(record) for record in caplog.records if record.getMessage() == "connection closed"
    ]
