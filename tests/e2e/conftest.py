"""End-to-end fixtures: a real node on a free port, over real HTTP and WebSocket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hubbub.client import HubbubHTTP
from hubbub.node import Node
from tests.helpers.nodes import running_node
from tests.helpers.users import UserMaker


@pytest.fixture
def node_factory(tmp_path: Path, database_url: str) -> Callable[..., AsyncIterator[Node]]:
    """``async with node_factory(direct_rate_limit="3") as node:`` for tests that tune it."""

    def factory(**overrides: str):  # type: ignore[no-untyped-def]
        return running_node(tmp_path / "data", database_url, **overrides)

    return factory


@pytest.fixture
async def node(node_factory: Callable[..., AsyncIterator[Node]]) -> AsyncIterator[Node]:
    async with node_factory() as running:
        yield running


@pytest.fixture
async def http(node: Node) -> AsyncIterator[HubbubHTTP]:
    async with HubbubHTTP(node.url) as client:
        yield client


@pytest.fixture
def make_user(http: HubbubHTTP) -> UserMaker:
    """Sign up and log in a fresh user: ``alice = await make_user("alice")``."""
    return UserMaker(http)
